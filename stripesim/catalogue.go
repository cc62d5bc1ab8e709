package stripesim

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// The account's catalogue: what a real subscription business sells, in five currencies, with
// every price shape Stripe has — per-unit prices (some with decimal unit amounts), package
// pricing (transform_quantity), volume and graduated tiers, a metered add-on, and monthly,
// quarterly (month × 3), yearly, weekly and fortnightly cadences — and its coupons: percent-off
// (one of 12.5 %) and amount-off (with currency_options), once, repeating and forever, a 100 %-off
// one, promotion codes, item-level, subscription-level (several stacked) and customer-level.
//
// Amounts are written in US cents and converted exactly by localFactor, so that a decimal unit
// amount stays a finite decimal in every currency.

// sellCurrencies are the currencies customers pay in, weighted by how often they occur.
var sellCurrencies = []string{"usd", "usd", "usd", "eur", "eur", "gbp", "jpy", "cad"}

// localFactor is minor units of each currency per US cent (exact decimals): prices are set per
// market, not at the day's exchange rate.
var localFactor = map[string]*big.Rat{
	"usd": big.NewRat(1, 1),
	"eur": big.NewRat(95, 100),
	"gbp": big.NewRat(80, 100),
	"jpy": big.NewRat(15, 10), // ¥ per cent: $9.00 → ¥1,350
	"cad": big.NewRat(135, 100),
}

// cadence is a billing interval as a price's recurring carries it, with the factor applied to a
// monthly amount.
type cadence struct {
	key, nick      string
	interval       string
	count          int
	monthlyFactor  *big.Rat // the period's amount ÷ the monthly amount
	periodsPerYear int
}

var cadences = map[string]cadence{
	"month":     {"month", "monthly", "month", 1, big.NewRat(1, 1), 12},
	"quarter":   {"quarter", "quarterly", "month", 3, big.NewRat(285, 100), 4}, // 5 % off three months
	"year":      {"year", "yearly", "year", 1, big.NewRat(10, 1), 1},           // two months free
	"week":      {"week", "weekly", "week", 1, big.NewRat(1, 1), 52},           // weekly plans are priced per week
	"fortnight": {"fortnight", "every 2 weeks", "week", 2, big.NewRat(2, 1), 26},
}

// plan is a product and how its prices are built. Amounts are US cents per unit per month (per
// week for weekly products); tiers price seats or volumes.
type plan struct {
	key, product, name string
	cadences           []string // offered cadences, the first the most common
	scheme             string   // per_unit, package, volume, graduated, metered
	unit               string   // decimal cents per unit (per_unit, package, metered)
	divideBy           int64    // package: units per package
	tiers              []tierDef
	minQty, maxQty     int64 // the quantities customers buy (1, 1 for a flat plan)
}

type tierDef struct {
	upTo       int64  // 0: infinity
	unit, flat string // decimal cents
}

var (
	planBasic = &plan{key: "Basic", product: "prod_Basic", name: "Basic", cadences: []string{"month", "year", "quarter"},
		scheme: "per_unit", unit: "900", minQty: 1, maxQty: 1}
	// Pro is priced with a fraction of a cent ($29.125 a month), so its unit_amount is null and
	// unit_amount_decimal carries the price.
	planPro = &plan{key: "Pro", product: "prod_Pro", name: "Pro", cadences: []string{"month", "year"},
		scheme: "per_unit", unit: "2912.5", minQty: 1, maxQty: 1}
	// Team is per seat, every seat at the price of the tier the seat count falls in.
	planTeam = &plan{key: "Team", product: "prod_Team", name: "Team", cadences: []string{"month", "year", "quarter"},
		scheme: "volume", minQty: 1, maxQty: 30, tiers: []tierDef{{5, "1200", ""}, {20, "1000", ""}, {0, "800", "2000"}}}
	// API is a committed volume in thousands of requests: the first ten are in the base fee, then
	// $2.50 and $1.875 per thousand.
	planAPI = &plan{key: "API", product: "prod_API", name: "API", cadences: []string{"month"},
		scheme: "graduated", minQty: 5, maxQty: 300, tiers: []tierDef{{10, "0", "4900"}, {100, "250", ""}, {0, "187.5", ""}}}
	// Storage is sold in packs of 10 GB, a started pack billed whole.
	planStorage = &plan{key: "Storage", product: "prod_Storage", name: "Storage", cadences: []string{"month", "quarter"},
		scheme: "package", unit: "500", divideBy: 10, minQty: 5, maxQty: 200}
	planBox = &plan{key: "Box", product: "prod_Box", name: "Box", cadences: []string{"fortnight", "week"},
		scheme: "per_unit", unit: "1500", minQty: 1, maxQty: 3}
	// Overage is metered: billed in arrears from usage, never part of MRR.
	planOverage = &plan{key: "Overage", product: "prod_Overage", name: "Overage", cadences: []string{"month"},
		scheme: "metered", unit: "0.4", minQty: 1, maxQty: 1}
	// Support is a yearly add-on to monthly plans: a subscription with mixed intervals.
	planSupport = &plan{key: "Support", product: "prod_Support", name: "Support", cadences: []string{"year"},
		scheme: "per_unit", unit: "1000", minQty: 1, maxQty: 1}
)

// primaryPlans are what new subscriptions start on, with their weights in percent.
var primaryPlans = []struct {
	p      *plan
	weight int
}{{planBasic, 38}, {planPro, 22}, {planTeam, 15}, {planAPI, 10}, {planStorage, 10}, {planBox, 5}}

func mustRat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("stripesim: bad decimal " + s)
	}
	return r
}

// decimalString renders r, a finite decimal, exactly ("2766.875").
func decimalString(r *big.Rat) string {
	for places := 0; places <= 12; places++ {
		if s := r.FloatString(places); mustRat(s).Cmp(r) == 0 {
			return s
		}
	}
	panic("stripesim: not a decimal of at most 12 places: " + r.String())
}

// amountFields is a Stripe amount pair: the integer when the amount is whole (else null) and the
// decimal string.
func amountFields(r *big.Rat) (*int64, *string) {
	dec := decimalString(r)
	if r.IsInt() {
		return ptr(r.Num().Int64()), &dec
	}
	return nil, &dec
}

// local converts decimal US cents into currency's minor units for a cadence.
func local(cents string, currency string, cd cadence) *big.Rat {
	v := new(big.Rat).Mul(mustRat(cents), localFactor[currency])
	return v.Mul(v, cd.monthlyFactor)
}

// price builds the plan's price in a currency and cadence. hideTiers renders a tiered price
// without its tiers, as Stripe renders one whose tiers were not expanded.
func (p *plan) price(currency, cadenceKey string, hideTiers bool) Price {
	cd := cadences[cadenceKey]
	pr := Price{ID: fmt.Sprintf("price_%s_%s_%s", p.key, currency, cd.key), Object: "price", Active: true,
		BillingScheme: "per_unit", Currency: currency, Nickname: p.name + " " + cd.nick, Product: p.product, Type: "recurring",
		Recurring: &Recurring{Interval: cd.interval, IntervalCount: cd.count, UsageType: "licensed"}, plan: p, cadence: cd.key}
	switch p.scheme {
	case "per_unit", "package", "metered":
		pr.UnitAmount, pr.UnitAmountDecimal = amountFields(local(p.unit, currency, cd))
		if p.scheme == "package" {
			pr.TransformQuantity = &TransformQuantity{DivideBy: p.divideBy, Round: "up"}
		}
		if p.scheme == "metered" {
			pr.Recurring.UsageType, pr.Recurring.AggregateUsage = "metered", ptr("sum")
		}
	case "volume", "graduated":
		pr.BillingScheme, pr.TiersMode = "tiered", ptr(p.scheme)
		for _, t := range p.tiers {
			var tier PriceTier
			if t.upTo > 0 {
				tier.UpTo = ptr(t.upTo)
			}
			tier.UnitAmount, tier.UnitAmountDecimal = amountFields(local(t.unit, currency, cd))
			if t.flat != "" {
				tier.FlatAmount, tier.FlatAmountDecimal = amountFields(local(t.flat, currency, cd))
			}
			pr.Tiers = append(pr.Tiers, tier)
		}
		if hideTiers {
			pr.ID += "_legacy"
			pr.hiddenTiers, pr.Tiers = pr.Tiers, nil
		}
	}
	return pr
}

// couponDef is a coupon of the catalogue. Amount-off coupons are defined in US cents and offered
// in every currency through currency_options.
type couponDef struct {
	id, name  string
	duration  string
	months    int64  // repeating only
	percent   string // a JSON number
	amountOff int64  // US cents
}

var (
	couponLaunch  = couponDef{id: "LAUNCH20", name: "Launch 20 %", duration: "forever", percent: "20"}
	couponSpring  = couponDef{id: "SPRING12_5", name: "Spring 12.5 %", duration: "repeating", months: 2, percent: "12.5"}
	couponWelcome = couponDef{id: "WELCOME50", name: "Welcome 50 %", duration: "once", percent: "50"}
	couponFiveOff = couponDef{id: "FIVEOFF", name: "$5 off for 3 months", duration: "repeating", months: 3, amountOff: 500}
	couponLoyal   = couponDef{id: "LOYAL10", name: "$10 off", duration: "forever", amountOff: 1000}
	couponFriends = couponDef{id: "FRIENDS100", name: "Friends and family", duration: "forever", percent: "100"}
	couponAddon   = couponDef{id: "ADDON25", name: "Add-on 25 %", duration: "forever", percent: "25"}
	couponPartner = couponDef{id: "PARTNER15", name: "Partner 15 %", duration: "forever", percent: "15"}
	couponWinback = couponDef{id: "WINBACK30", name: "Win-back 30 %", duration: "repeating", months: 1, percent: "30"}
	couponRetain  = couponDef{id: "RETAIN25", name: "Retention 25 %", duration: "repeating", months: 2, percent: "25"}
)

// coupon is the account's coupon of d, made (with its coupon.created event) when it is first
// used: the account creates a coupon before it can apply it.
func (s *Sim) coupon(d couponDef) Coupon {
	if c, ok := s.coupons[d.id]; ok {
		return c
	}
	c := s.newCoupon(d)
	if s.coupons == nil {
		s.coupons = map[string]Coupon{}
	}
	s.coupons[d.id] = c
	s.objs.add("coupons", c.ID, c.Created, &c)
	s.emitFrom(s.couponRNG, "coupon.created", &c, c.ID, nil, true)
	return c
}

func (s *Sim) newCoupon(d couponDef) Coupon {
	c := Coupon{ID: d.id, Object: "coupon", Created: s.unix(), Duration: d.duration,
		Livemode: s.cfg.Livemode, Metadata: map[string]string{}, Name: ptr(d.name), Valid: true}
	if d.months > 0 {
		c.DurationInMonths = ptr(d.months)
	}
	if d.percent != "" {
		c.PercentOff = ptr(json.Number(d.percent))
	}
	if d.amountOff > 0 {
		c.AmountOff, c.Currency = ptr(d.amountOff), ptr("usd")
		c.CurrencyOptions = map[string]CouponCurrencyOption{}
		for cur, f := range localFactor {
			if cur != "usd" {
				v := new(big.Rat).Mul(big.NewRat(d.amountOff, 1), f)
				c.CurrencyOptions[cur] = CouponCurrencyOption{AmountOff: new(big.Int).Quo(v.Num(), v.Denom()).Int64()}
			}
		}
	}
	return c
}

// newDiscount applies a coupon now: to a subscription, one of its items, or (sub nil) a customer.
// A repeating coupon ends duration_in_months after it starts.
func (s *Sim) newDiscount(d couponDef, customer string, sub *Subscription, item string, promo bool) *Discount {
	dc := &Discount{ID: s.newID("di", 24), Object: "discount", Coupon: s.coupon(d), Customer: ptr(customer), Start: s.unix()}
	if sub != nil {
		dc.Subscription = ptr(sub.ID)
	}
	if item != "" {
		dc.SubscriptionItem = ptr(item)
	}
	if d.months > 0 {
		dc.End = ptr(s.now.AddDate(0, int(d.months), 0).Unix())
	}
	if promo {
		dc.PromotionCode = ptr(s.newID("promo", 24))
	}
	return dc
}

// chooseItems picks a new subscription's items: one primary plan, sometimes an add-on (a metered
// overage, a yearly support plan on a monthly one, or a second Basic seat at the same cadence).
func (s *Sim) chooseItems(sub *Subscription) []SubscriptionItem {
	r, p := s.rng.IntN(100), primaryPlans[0].p
	for _, pp := range primaryPlans {
		if r < pp.weight {
			p = pp.p
			break
		}
		r -= pp.weight
	}
	cd := p.cadences[0]
	if len(p.cadences) > 1 && s.chance(0.35) {
		cd = p.cadences[1+s.rng.IntN(len(p.cadences)-1)]
	}
	hide := p.scheme == "volume" && s.chance(0.1) // a tiered price as an unexpanded webhook shows it
	items := []SubscriptionItem{s.item(sub, p, cd, hide)}
	switch r := s.rng.Float64(); {
	case cd == "month" && r < 0.06:
		items = append(items, s.item(sub, planOverage, "month", false))
	case cd == "month" && r < 0.12:
		items = append(items, s.item(sub, planSupport, "year", false))
	case (cd == "month" || cd == "year" || cd == "quarter") && p != planBasic && r < 0.18:
		items = append(items, s.item(sub, planBasic, cd, false))
	}
	// Add-ons are often discounted on their own.
	for i := 1; i < len(items); i++ {
		if items[i].Price.Recurring.UsageType == "licensed" && s.chance(0.4) {
			d := s.newDiscount(couponAddon, sub.Customer, sub, items[i].ID, false)
			items[i].Discounts = &DiscountRefs{{ID: d.ID, Discount: d}}
		}
	}
	return items
}

func (s *Sim) item(sub *Subscription, p *plan, cd string, hideTiers bool) SubscriptionItem {
	q := p.minQty
	if p.maxQty > p.minQty {
		q = p.minQty + s.rng.Int64N(p.maxQty-p.minQty+1)
	}
	if p.scheme == "metered" {
		q = 0 // metered items carry no quantity: usage is reported
	}
	return SubscriptionItem{ID: s.newID("si", 14), Object: "subscription_item", Created: s.unix(), Discounts: &DiscountRefs{},
		Price: p.price(sub.Currency, cd, hideTiers), Quantity: q, Subscription: sub.ID}
}

// chooseDiscounts gives some new subscriptions coupons of their own: a fifth of them, one coupon
// or two stacked, some through a promotion code; a few render one discount as a bare ID (as
// Stripe renders discounts[] unless expanded), which no reader of the webhook can value.
func (s *Sim) chooseDiscounts(sub *Subscription) {
	var defs []couponDef
	bare := false
	switch r := s.rng.Float64(); {
	case r < 0.06:
		defs = []couponDef{couponLaunch}
	case r < 0.09:
		defs = []couponDef{couponSpring}
	case r < 0.12:
		defs = []couponDef{couponWelcome}
	case r < 0.14:
		defs = []couponDef{couponFiveOff}
	case r < 0.16:
		defs = []couponDef{couponLoyal}
	case r < 0.17:
		defs = []couponDef{couponFriends}
	case r < 0.19:
		defs = []couponDef{couponLaunch, couponFiveOff}
	case r < 0.20:
		defs, bare = []couponDef{couponLaunch, couponLoyal}, true
	}
	refs := DiscountRefs{}
	for i, d := range defs {
		dc := s.newDiscount(d, sub.Customer, sub, "", d.id == couponSpring.id || s.chance(0.2))
		ref := DiscountRef{ID: dc.ID, Discount: dc}
		if bare && i == 1 {
			ref.Discount, ref.hidden = nil, dc
		}
		refs = append(refs, ref)
	}
	s.setDiscounts(sub, refs)
}

// setDiscounts replaces the subscription's discounts (never edited in place: the history keeps
// the old list) and its legacy single discount, which Stripe fills when there is exactly one.
func (s *Sim) setDiscounts(sub *Subscription, refs DiscountRefs) {
	sub.Discounts, sub.Discount = &refs, nil
	if len(refs) == 1 && refs[0].Discount != nil {
		sub.Discount = refs[0].Discount
	}
	for _, r := range refs {
		s.scheduleDiscountEnd(sub, nil, r.discount())
	}
}

// scheduleDiscountEnd removes a repeating discount when it has ended. Stripe does so at a
// delay (it notices at the next invoice run): anything that counts on the removal event to
// stop a discount is late by that much.
func (s *Sim) scheduleDiscountEnd(sub *Subscription, c *Customer, d *Discount) {
	if d == nil || d.End == nil || d.endScheduled {
		return
	}
	d.endScheduled = true // once, however often the list is rebuilt
	delay := time.Duration(1+s.rng.IntN(36*60)) * time.Minute
	s.at(time.Unix(*d.End, 0).Add(delay), func() {
		if c != nil {
			s.removeCustomerDiscount(c, d)
		} else {
			s.removeDiscount(sub, d)
		}
	})
}

// removeDiscount takes d off the subscription (or its items): customer.discount.deleted and a
// subscription update.
func (s *Sim) removeDiscount(sub *Subscription, d *Discount) {
	if sub.Status == "canceled" {
		return
	}
	prev := map[string]any{}
	if sub.Discounts != nil && sub.Discounts.has(d) {
		prev["discounts"], prev["discount"] = sub.Discounts, sub.Discount
		refs := sub.Discounts.without(d)
		sub.Discounts, sub.Discount = &refs, nil
		if len(refs) == 1 && refs[0].Discount != nil {
			sub.Discount = refs[0].Discount
		}
	}
	old := sub.Items
	items := append([]SubscriptionItem(nil), old.Data...)
	for i := range items {
		if items[i].Discounts != nil && items[i].Discounts.has(d) {
			refs := items[i].Discounts.without(d)
			items[i].Discounts = &refs
			prev["items"] = old
		}
	}
	if len(prev) == 0 {
		return
	}
	sub.Items = newList(old.URL, items)
	s.emit("customer.discount.deleted", d, d.ID, nil, false)
	s.emit("customer.subscription.updated", sub, sub.ID, prev, false)
}

func (rs *DiscountRefs) has(d *Discount) bool {
	for _, r := range *rs {
		if r.discount() == d {
			return true
		}
	}
	return false
}

func (rs *DiscountRefs) without(d *Discount) DiscountRefs {
	out := DiscountRefs{}
	for _, r := range *rs {
		if r.discount() != d {
			out = append(out, r)
		}
	}
	return out
}

// removeUsedOnceDiscounts drops once coupons that have discounted an invoice, as the
// subscription renews (their removal rides on the renewal's update; prev gets the old lists).
func (s *Sim) removeUsedOnceDiscounts(sub *Subscription, prev map[string]any) {
	if sub.Discounts == nil {
		return
	}
	for _, r := range *sub.Discounts {
		if d := r.discount(); d.Coupon.Duration == "once" && d.used {
			if _, ok := prev["discounts"]; !ok {
				prev["discounts"], prev["discount"] = sub.Discounts, sub.Discount
			}
			refs := sub.Discounts.without(d)
			sub.Discounts, sub.Discount = &refs, nil
			if len(refs) == 1 && refs[0].Discount != nil {
				sub.Discount = refs[0].Discount
			}
			s.emit("customer.discount.deleted", d, d.ID, nil, false)
		}
	}
}

// giveCustomerDiscount puts a coupon on the customer: it applies to their subscriptions that
// have none of their own.
func (s *Sim) giveCustomerDiscount(c *Customer) {
	if c.Deleted || c.Discount != nil {
		return
	}
	def := couponPartner
	if s.chance(0.4) {
		def = couponWinback
	}
	d := s.newDiscount(def, c.ID, nil, "", false)
	c.Discount = d
	s.emit("customer.discount.created", d, d.ID, nil, true)
	s.emit("customer.updated", c, c.ID, map[string]any{"discount": nil}, true)
	s.scheduleDiscountEnd(nil, c, d)
}

func (s *Sim) removeCustomerDiscount(c *Customer, d *Discount) {
	if c.Discount != d {
		return
	}
	c.Discount = nil
	s.emit("customer.discount.deleted", d, d.ID, nil, false)
	s.emit("customer.updated", c, c.ID, map[string]any{"discount": d}, false)
}

// retain offers a subscriber a repeating coupon on top of what they have.
func (s *Sim) retain(sub *Subscription) {
	if sub.Status == "canceled" {
		return
	}
	prev := map[string]any{"discounts": sub.Discounts, "discount": sub.Discount}
	d := s.newDiscount(couponRetain, sub.Customer, sub, "", s.chance(0.5))
	refs := append(DiscountRefs{}, *sub.Discounts...)
	s.setDiscounts(sub, append(refs, DiscountRef{ID: d.ID, Discount: d}))
	s.emit("customer.discount.created", d, d.ID, nil, true)
	s.emit("customer.subscription.updated", sub, sub.ID, prev, true)
}

// oneOffAmount is the price of a one-off purchase: a few months of a plan.
func oneOffAmount(n int, currency string) int64 {
	cents := []string{"900", "2900", "9900"}[n]
	v := local(cents, currency, cadences["month"])
	return new(big.Int).Quo(v.Num(), v.Denom()).Int64()
}

// ---- Billing: what the account invoices (exact, then rounded half away from zero per line,
// as Stripe rounds line amounts). MRR is computed apart, in mrr_truth.go, from the objects as
// rendered.

// periodEndFor is the end of a period of r starting at from.
func periodEndFor(from time.Time, r *Recurring) int64 {
	n := max(r.IntervalCount, 1)
	switch r.Interval {
	case "year":
		return from.AddDate(n, 0, 0).Unix()
	case "week":
		return from.AddDate(0, 0, 7*n).Unix()
	case "day":
		return from.AddDate(0, 0, n).Unix()
	}
	return from.AddDate(0, n, 0).Unix()
}

// markDue decides which items the invoice of the period starting now bills: every item whose
// own period has run out (all of them, unless the subscription mixes intervals). The item slice
// is replaced, not edited: the history holds the old one.
func markDue(sub *Subscription) {
	items := append([]SubscriptionItem(nil), sub.Items.Data...)
	for i := range items {
		items[i].dueNow = items[i].billedTo <= sub.CurrentPeriodStart
		if items[i].dueNow {
			items[i].billedTo = periodEndFor(time.Unix(sub.CurrentPeriodStart, 0), items[i].Price.Recurring)
		}
	}
	sub.Items.Data = items
}

// dueItems are the items the current period's invoice bills.
func dueItems(sub *Subscription) []SubscriptionItem {
	var out []SubscriptionItem
	for _, it := range sub.Items.Data {
		if it.dueNow {
			out = append(out, it)
		}
	}
	return out
}

// meteredUsage is the usage an item reports for the period starting at t: deterministic, so that
// it draws nothing from the seed's stream.
func meteredUsage(itemID string, t int64) int64 {
	h := splitmix(uint64(t) ^ uint64(len(itemID))<<40)
	for _, c := range itemID {
		h = splitmix(h ^ uint64(c))
	}
	return 1 + int64(h%5000) // some usage every period
}

// periodValue is an item's exact amount for one billing period, before discounts, with the
// tiers the account knows even where the rendered price hides them.
func periodValue(it SubscriptionItem, periodStart int64) *big.Rat {
	p := it.Price
	if len(p.Tiers) == 0 && len(p.hiddenTiers) > 0 {
		p.Tiers = p.hiddenTiers
	}
	q := it.Quantity
	if p.Recurring != nil && p.Recurring.UsageType == "metered" {
		q = meteredUsage(it.ID, periodStart)
		p.Recurring = &Recurring{Interval: p.Recurring.Interval, IntervalCount: p.Recurring.IntervalCount, UsageType: "licensed"}
	}
	v, _ := pricePeriodValue(p, q)
	if v == nil {
		return new(big.Rat)
	}
	return v
}

// billingDiscounts are the discounts an invoice of the period starting at t applies: in force at
// t, and a once coupon only until it has been used.
func billingDiscounts(refs *DiscountRefs, t int64) []*Discount {
	var out []*Discount
	if refs == nil {
		return nil
	}
	for _, r := range *refs {
		d := r.discount()
		if d.Start > t || (d.End != nil && t >= *d.End) || (d.Coupon.Duration == "once" && d.used) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// applyBilling takes the discounts off v, per billing period.
func applyBilling(v *big.Rat, ds []*Discount, currency string) *big.Rat {
	for _, d := range ds {
		if d.Coupon.PercentOff != nil {
			pct := mustRat(string(*d.Coupon.PercentOff))
			v.Sub(v, new(big.Rat).Mul(v, pct.Quo(pct, big.NewRat(100, 1))))
		} else if a, ok := couponAmount(d.Coupon, currency); ok {
			v.Sub(v, big.NewRat(a, 1))
		}
		if v.Sign() < 0 {
			v.SetInt64(0)
		}
	}
	return v
}

// lineQuantity is an invoice line's quantity: the item's, or for a metered item the usage billed.
func lineQuantity(sub *Subscription, it SubscriptionItem) int64 {
	if it.Price.Recurring != nil && it.Price.Recurring.UsageType == "metered" {
		return meteredUsage(it.ID, sub.CurrentPeriodStart)
	}
	return it.Quantity
}

// lineAmount is the invoice line of an item for the current period, before discounts.
func lineAmount(sub *Subscription, it SubscriptionItem) int64 {
	return roundHalfAway(periodValue(it, sub.CurrentPeriodStart))
}

// subscriptionAmount is what the invoice of the current period bills: the due items, each less
// its own discounts, then the subscription's discounts (or, when it has none, its customer's) on
// the sum.
func subscriptionAmount(sub *Subscription) int64 {
	t := sub.CurrentPeriodStart
	total := new(big.Rat)
	for _, it := range dueItems(sub) {
		v := big.NewRat(lineAmount(sub, it), 1) // lines are whole minor units; discounts come off them
		total.Add(total, applyBilling(v, billingDiscounts(it.Discounts, t), sub.Currency))
	}
	total = applyBilling(total, billingDiscounts(subDiscountsForBilling(sub), t), sub.Currency)
	return roundHalfAway(total)
}

func subDiscountsForBilling(sub *Subscription) *DiscountRefs {
	if sub.Discounts != nil && len(*sub.Discounts) > 0 {
		return sub.Discounts
	}
	if sub.cust != nil && sub.cust.Discount != nil {
		return &DiscountRefs{{ID: sub.cust.Discount.ID, Discount: sub.cust.Discount}}
	}
	return nil
}

// markOnceUsed records that the invoice just issued used the subscription's once coupons.
func markOnceUsed(sub *Subscription) {
	lists := []*DiscountRefs{subDiscountsForBilling(sub)}
	for _, it := range sub.Items.Data {
		lists = append(lists, it.Discounts)
	}
	for _, l := range lists {
		for _, d := range billingDiscounts(l, sub.CurrentPeriodStart) {
			if d.Coupon.Duration == "once" {
				d.used = true
			}
		}
	}
}

func describeItem(it SubscriptionItem) string {
	if it.Price.Recurring != nil && it.Price.Recurring.UsageType == "metered" {
		return "Usage of " + it.Price.Nickname
	}
	return fmt.Sprintf("%d × %s", it.Quantity, strings.TrimSpace(it.Price.Nickname))
}
