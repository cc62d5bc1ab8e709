package stripesim

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"time"
)

// The simulator's MRR truth: monthly recurring revenue by the definition of issue #16
// (the README's "MRR: the definition and its settings"), computed from the account's own objects
// and their history — every state of every subscription and customer as its events rendered
// them — and never from the ledger's domain package, so that a test comparing the ledger's
// figures with these compares two computations.
//
// The pieces:
//   - pricePeriodValue and itemMonthly value one item exactly (big.Rat): per-unit (decimal unit
//     amounts, package transform_quantity), volume and graduated tiers; metered items are 0;
//   - SubscriptionMRR values a subscription at an instant: status, items, then item-level
//     discounts, then subscription-level (or the customer's), rounded down once;
//   - the timeline (truthTimeline) walks a subscription's history under TruthSettings and adds
//     the instants the rules fix (a discount's end, past_due + N days, the period end of an
//     immediate cancellation), giving its movements;
//   - TruthMRR sums movements into daily figures per currency and, with a reporting currency,
//     converts them by the two FX rules.

// TruthSettings are the options of the MRR definition; the zero value is Stripe's behaviour.
type TruthSettings struct {
	// Discounts that reduce MRR: "recurring" (forever and repeating coupons; default),
	// "one_time" (once coupons) or "both".
	Discounts string
	// ChurnAt is when an immediate cancellation takes effect: "cancellation" (default) or
	// "period_end" (the MRR held just before it lasts until the end of the period it was in).
	ChurnAt string
	// PastDueDays: 0 (default) counts past_due until it becomes unpaid or canceled; N ≥ 1
	// makes a subscription past_due continuously for N days 0 from then (a churn).
	PastDueDays int
	// Paused: "count" (default; pause_collection changes nothing) or "zero" (0 while paused,
	// as kinds pause and resume).
	Paused string
	// FXRateDate: "period_start" (default; each movement at the rate of its period start) or
	// "report_date" (each day's MRR at that day's rates, the difference an FX effect).
	FXRateDate string
	// ReportingCurrency, when set, adds figures converted into it (lowercase ISO code).
	ReportingCurrency string
}

func (s TruthSettings) withDefaults() TruthSettings {
	if s.Discounts == "" {
		s.Discounts = "recurring"
	}
	if s.ChurnAt == "" {
		s.ChurnAt = "cancellation"
	}
	if s.Paused == "" {
		s.Paused = "count"
	}
	if s.FXRateDate == "" {
		s.FXRateDate = "period_start"
	}
	return s
}

// Validate reports the first setting with a value the definition does not have.
func (s TruthSettings) Validate() error {
	d := s.withDefaults()
	switch {
	case d.Discounts != "recurring" && d.Discounts != "one_time" && d.Discounts != "both":
		return fmt.Errorf("discounts: %q is not recurring, one_time or both", s.Discounts)
	case d.ChurnAt != "cancellation" && d.ChurnAt != "period_end":
		return fmt.Errorf("churn_at: %q is not cancellation or period_end", s.ChurnAt)
	case d.PastDueDays < 0:
		return fmt.Errorf("past_due_days: %d is negative", s.PastDueDays)
	case d.Paused != "count" && d.Paused != "zero":
		return fmt.Errorf("paused: %q is not count or zero", s.Paused)
	case d.FXRateDate != "period_start" && d.FXRateDate != "report_date":
		return fmt.Errorf("fx_rate_date: %q is not period_start or report_date", s.FXRateDate)
	case d.ReportingCurrency != "" && d.ReportingCurrency != strings.ToLower(d.ReportingCurrency):
		return fmt.Errorf("reporting currency: %q is not lowercase", s.ReportingCurrency)
	}
	return nil
}

// String is the canonical form written on every movement, as the ledger writes its settings:
// "discounts=recurring churn_at=cancellation past_due_days=0 paused=count".
func (s TruthSettings) String() string {
	d := s.withDefaults()
	return fmt.Sprintf("discounts=%s churn_at=%s past_due_days=%d paused=%s", d.Discounts, d.ChurnAt, d.PastDueDays, d.Paused)
}

// countsDiscount reports whether a coupon of this duration reduces MRR under the setting.
func (s TruthSettings) countsDiscount(duration string) bool {
	switch s.withDefaults().Discounts {
	case "one_time":
		return duration == "once"
	case "both":
		return true
	}
	return duration == "forever" || duration == "repeating"
}

// Movement kinds.
const (
	KindNew          = "new"
	KindExpansion    = "expansion"
	KindContraction  = "contraction"
	KindChurn        = "churn"
	KindReactivation = "reactivation"
	KindPause        = "pause"
	KindResume       = "resume"
)

// ---- Valuation of one item and one subscription at an instant.

func decimalRat(dec *string, whole *int64) (*big.Rat, bool) {
	if dec != nil {
		r, ok := new(big.Rat).SetString(*dec)
		return r, ok
	}
	if whole != nil {
		return new(big.Rat).SetInt64(*whole), true
	}
	return nil, false
}

// pricePeriodValue is the exact amount of one billing period of p at quantity q (minor units),
// or why it cannot be valued.
func pricePeriodValue(p Price, q int64) (*big.Rat, string) {
	if q <= 0 {
		return new(big.Rat), ""
	}
	switch p.BillingScheme {
	case "per_unit", "":
		unit, ok := decimalRat(p.UnitAmountDecimal, p.UnitAmount)
		if !ok {
			return nil, fmt.Sprintf("price %s has no unit amount", p.ID)
		}
		units := big.NewRat(q, 1)
		if tq := p.TransformQuantity; tq != nil {
			if tq.DivideBy <= 0 {
				return nil, fmt.Sprintf("price %s divides quantities by %d", p.ID, tq.DivideBy)
			}
			n := q / tq.DivideBy
			switch tq.Round {
			case "up":
				if q%tq.DivideBy != 0 {
					n++
				}
			case "down":
			default:
				return nil, fmt.Sprintf("price %s rounds packages %q", p.ID, tq.Round)
			}
			units = big.NewRat(n, 1)
		}
		return unit.Mul(unit, units), ""
	case "tiered":
		if len(p.Tiers) == 0 {
			return nil, fmt.Sprintf("tiered price %s has no tiers (not expanded)", p.ID)
		}
		mode := ""
		if p.TiersMode != nil {
			mode = *p.TiersMode
		}
		tierUnit := func(t PriceTier) *big.Rat {
			if u, ok := decimalRat(t.UnitAmountDecimal, t.UnitAmount); ok {
				return u
			}
			return new(big.Rat)
		}
		tierFlat := func(t PriceTier) *big.Rat {
			if f, ok := decimalRat(t.FlatAmountDecimal, t.FlatAmount); ok {
				return f
			}
			return new(big.Rat)
		}
		switch mode {
		case "volume":
			for _, t := range p.Tiers {
				if t.UpTo == nil || *t.UpTo >= q {
					v := tierUnit(t)
					v.Mul(v, big.NewRat(q, 1))
					return v.Add(v, tierFlat(t)), ""
				}
			}
			return nil, fmt.Sprintf("price %s has no tier for quantity %d", p.ID, q)
		case "graduated":
			total, lower := new(big.Rat), int64(0)
			for _, t := range p.Tiers {
				upper := q
				if t.UpTo != nil && *t.UpTo < q {
					upper = *t.UpTo
				}
				if n := upper - lower; n > 0 {
					v := tierUnit(t)
					v.Mul(v, big.NewRat(n, 1))
					total.Add(total, v.Add(v, tierFlat(t)))
				}
				if t.UpTo == nil || *t.UpTo >= q {
					return total, ""
				}
				lower = *t.UpTo
			}
			return nil, fmt.Sprintf("price %s has no tier for quantity %d", p.ID, q)
		}
		return nil, fmt.Sprintf("price %s has tiers_mode %q", p.ID, mode)
	}
	return nil, fmt.Sprintf("price %s has billing_scheme %q", p.ID, p.BillingScheme)
}

// toMonthly normalises an amount per period of r to a month: month × 1, year ÷ 12,
// week × 52 ÷ 12, day × 365 ÷ 12, each ÷ interval_count. ok is false for another interval.
func toMonthly(v *big.Rat, r *Recurring) (*big.Rat, bool) {
	count := int64(max(r.IntervalCount, 1))
	var f *big.Rat
	switch r.Interval {
	case "month":
		f = big.NewRat(1, count)
	case "year":
		f = big.NewRat(1, 12*count)
	case "week":
		f = big.NewRat(52, 12*count)
	case "day":
		f = big.NewRat(365, 12*count)
	default:
		return nil, false
	}
	return new(big.Rat).Mul(v, f), true
}

// itemMonthly is a licensed item's exact monthly value. Metered items are worth 0 (metered is
// true); why says what makes the item unvaluable.
func itemMonthly(it SubscriptionItem) (v *big.Rat, metered bool, why string) {
	r := it.Price.Recurring
	if r == nil {
		return nil, false, fmt.Sprintf("price %s is not recurring", it.Price.ID)
	}
	if r.UsageType == "metered" {
		return new(big.Rat), true, ""
	}
	per, why := pricePeriodValue(it.Price, it.Quantity)
	if per == nil {
		return nil, false, why
	}
	m, ok := toMonthly(per, r)
	if !ok {
		return nil, false, fmt.Sprintf("price %s has interval %q", it.Price.ID, r.Interval)
	}
	return m, false, ""
}

// couponAmount is an amount-off coupon's amount in currency: its own, or its currency option.
func couponAmount(c Coupon, currency string) (int64, bool) {
	if c.AmountOff == nil {
		return 0, false
	}
	if c.Currency != nil && *c.Currency == currency {
		return *c.AmountOff, true
	}
	if o, ok := c.CurrencyOptions[currency]; ok {
		return o.AmountOff, true
	}
	return 0, false
}

// inForce reports whether a discount reduces MRR at t: start ≤ t and (end null or t < end).
func inForce(d *Discount, t int64) bool {
	return d.Start <= t && (d.End == nil || t < *d.End)
}

// applyMonthly takes the counted discounts in force at t off a monthly value v, in order, each
// on what remains, never below 0. An amount-off coupon takes its amount per period of r,
// normalised to a month.
func applyMonthly(v *big.Rat, refs []DiscountRef, r *Recurring, currency string, t int64, set TruthSettings) (*big.Rat, string) {
	for _, ref := range refs {
		d := ref.Discount
		if d == nil {
			return nil, fmt.Sprintf("discount %s is not expanded", ref.ID)
		}
		if !set.countsDiscount(d.Coupon.Duration) || !inForce(d, t) {
			continue
		}
		switch {
		case d.Coupon.PercentOff != nil:
			pct, ok := new(big.Rat).SetString(string(*d.Coupon.PercentOff))
			if !ok {
				return nil, fmt.Sprintf("coupon %s has percent_off %q", d.Coupon.ID, *d.Coupon.PercentOff)
			}
			v.Sub(v, new(big.Rat).Mul(v, pct.Quo(pct, big.NewRat(100, 1))))
		case d.Coupon.AmountOff != nil:
			a, ok := couponAmount(d.Coupon, currency)
			if !ok {
				return nil, fmt.Sprintf("coupon %s has no amount in %s", d.Coupon.ID, currency)
			}
			if r == nil {
				continue // nothing licensed to take it off
			}
			m, ok := toMonthly(big.NewRat(a, 1), r)
			if !ok {
				return nil, fmt.Sprintf("coupon %s applies to interval %q", d.Coupon.ID, r.Interval)
			}
			v.Sub(v, m)
		default:
			return nil, fmt.Sprintf("coupon %s has neither percent_off nor amount_off", d.Coupon.ID)
		}
		if v.Sign() < 0 {
			v.SetInt64(0)
		}
	}
	return v, ""
}

// MRRValue is a subscription's MRR at an instant.
type MRRValue struct {
	MRR int64 // minor units of the subscription's currency, rounded down; 0 when Unvalued
	// Counts: the status (active or past_due) counts, and the pause rule did not zero it.
	Counts bool
	// Paused: pause_collection is set and the paused = zero setting made the MRR 0.
	Paused bool
	// Unvalued says why the subscription cannot be valued ("" when it can): a tiered price
	// without tiers, a discount given only by its ID, an amount-off coupon without the
	// subscription's currency, an unknown shape. Its MRR is NULL, not 0.
	Unvalued string
	// Metered: a metered item was left out.
	Metered bool
}

// SubscriptionMRR values sub at t (Unix seconds), with the customer's discount cust (nil for
// none), under the discount and pause settings (the rules that need history — past_due days,
// churn at period end — are the timeline's):
//
//   - only active and past_due count;
//   - each licensed item exactly (see pricePeriodValue), normalised to a month; metered items 0;
//   - each item's discounts[] on its value, then the subscription's discounts[] (the legacy
//     discount when discounts is absent; the customer's discount when it has none of its own) on
//     the sum, each in order on what remains, counted by set.Discounts, in force at t;
//   - rounded down once.
func SubscriptionMRR(sub *Subscription, cust *Discount, t int64, set TruthSettings) MRRValue {
	if sub.Status != "active" && sub.Status != "past_due" {
		return MRRValue{}
	}
	if set.withDefaults().Paused == "zero" && sub.PauseCollection != nil {
		return MRRValue{Paused: true}
	}
	out := MRRValue{Counts: true}
	total := new(big.Rat)
	var first *Recurring // the first licensed item's interval, for subscription-level amounts off
	for _, it := range sub.Items.Data {
		v, metered, why := itemMonthly(it)
		if why != "" {
			out.Unvalued = why
			return out
		}
		out.Metered = out.Metered || metered
		if metered {
			continue
		}
		if first == nil {
			first = it.Price.Recurring
		}
		if it.Discounts != nil {
			if v, why = applyMonthly(v, *it.Discounts, it.Price.Recurring, sub.Currency, t, set); why != "" {
				out.Unvalued = why
				return out
			}
		}
		total.Add(total, v)
	}
	var refs []DiscountRef
	switch {
	case sub.Discounts != nil:
		refs = *sub.Discounts
	case sub.Discount != nil:
		refs = []DiscountRef{{ID: sub.Discount.ID, Discount: sub.Discount}}
	}
	if len(refs) == 0 && cust != nil {
		refs = []DiscountRef{{ID: cust.ID, Discount: cust}}
	}
	total, why := applyMonthly(total, refs, first, sub.Currency, t, set)
	if why != "" {
		out.Unvalued = why
		return out
	}
	out.MRR = new(big.Int).Quo(total.Num(), total.Denom()).Int64() // floor: total ≥ 0
	return out
}

// ---- History: every state of every subscription and customer, as its events rendered it.

type subState struct {
	at, seq int64
	event   string
	sub     Subscription // a copy: items copied, lists shared (never edited in place)
}

type custState struct {
	at, seq  int64
	event    string
	discount *Discount
}

type truthHistory struct {
	subs  map[string][]subState
	order []string // subscription IDs in creation order
	custs map[string][]custState
}

// record keeps the state an event carries, for the subscriptions and customers it is about.
func (s *Sim) record(ev *Event, obj any) {
	h := &s.hist
	switch o := obj.(type) {
	case *Subscription:
		if h.subs == nil {
			h.subs, h.custs = map[string][]subState{}, map[string][]custState{}
		}
		c := *o
		c.Items.Data = append([]SubscriptionItem(nil), o.Items.Data...)
		if _, ok := h.subs[o.ID]; !ok {
			h.order = append(h.order, o.ID)
		}
		h.subs[o.ID] = append(h.subs[o.ID], subState{ev.Created, int64(ev.Seq), ev.ID, c})
	case *Customer:
		if h.subs == nil {
			h.subs, h.custs = map[string][]subState{}, map[string][]custState{}
		}
		hs := h.custs[o.ID]
		if n := len(hs); n == 0 || hs[n-1].discount != o.Discount {
			h.custs[o.ID] = append(hs, custState{ev.Created, int64(ev.Seq), ev.ID, o.Discount})
		}
	}
}

// TruthMovement is one change of one subscription's MRR, as the ledger's movement log has it.
type TruthMovement struct {
	Livemode     bool   `json:"livemode"`
	Account      string `json:"account,omitempty"`
	Customer     string `json:"customer"`
	Subscription string `json:"subscription"`
	Kind         string `json:"kind"`
	Amount       int64  `json:"amount"` // MRRAfter − MRRBefore
	MRRBefore    int64  `json:"mrr_before"`
	MRRAfter     int64  `json:"mrr_after"`
	Currency     string `json:"currency"`
	Settings     string `json:"settings"`
	// SourceEvents: the event at At; for a movement at an instant a rule fixes, the
	// subscription's latest event before it (the one whose state the rule ran on).
	SourceEvents []string  `json:"source_events"`
	At           time.Time `json:"at"`
	// PeriodStart is the current_period_start in force at At (the FX date under period_start).
	PeriodStart time.Time `json:"period_start"`
	// TimeDriven: At is fixed by a rule (discount end, past_due + N days, period end), not by an
	// event.
	TimeDriven bool `json:"time_driven"`
}

// point is an instant the timeline evaluates: an event of the subscription or its customer, or
// an instant a rule fixes. Rule instants sort before the events of the same second.
type point struct {
	at, seq  int64
	rule     bool
	sub      int // index into the subscription's states, -1: none
	cust     int // index into the customer's states, -1: none
	pastDue  bool
	periodAt bool
}

type span struct {
	at       int64
	unvalued bool // unvalued and counting, from at on
}

// subTimeline is one subscription's movements and its unvalued spans.
type subTimeline struct {
	moves    []TruthMovement
	unvalued []span
	// last is the value as of the subscription's newest input (its latest event, or a later
	// change of its customer's discount), evaluated at that instant: what a read model's row
	// holds (a rule instant after it moves only the log).
	last MRRValue
}

// timeline walks a subscription's states under set and returns its movements (those after now
// included, at their future instants: a discount ending tomorrow is known today).
func (s *Sim) timeline(id string, set TruthSettings) subTimeline {
	states := s.hist.subs[id]
	custID := states[0].sub.Customer
	custs := s.hist.custs[custID]
	set = set.withDefaults()
	var pts []point
	for i, st := range states {
		pts = append(pts, point{at: st.at, seq: st.seq, sub: i, cust: -1})
	}
	for j, cs := range custs {
		if cs.seq > states[0].seq {
			pts = append(pts, point{at: cs.at, seq: cs.seq, sub: -1, cust: j})
		}
		if d := cs.discount; d != nil {
			for _, at := range []*int64{d.End, &d.Start} {
				if at != nil && *at > cs.at {
					pts = append(pts, point{at: *at, rule: true, sub: -1, cust: -1})
				}
			}
		}
	}
	ends := map[int64]bool{}
	for i, st := range states {
		lists := []*DiscountRefs{st.sub.Discounts}
		for _, it := range st.sub.Items.Data {
			lists = append(lists, it.Discounts)
		}
		for _, l := range lists {
			if l == nil {
				continue
			}
			for _, r := range *l {
				d := r.Discount
				if d == nil {
					continue
				}
				for _, at := range []*int64{d.End, &d.Start} {
					if at != nil && *at > st.at && !ends[*at] {
						ends[*at] = true
						pts = append(pts, point{at: *at, rule: true, sub: -1, cust: -1})
					}
				}
			}
		}
		prevStatus := ""
		if i > 0 {
			prevStatus = states[i-1].sub.Status
		}
		if set.PastDueDays > 0 && st.sub.Status == "past_due" && prevStatus != "past_due" {
			pts = append(pts, point{at: st.at + int64(set.PastDueDays)*86400, rule: true, sub: -1, cust: -1, pastDue: true})
		}
		if set.ChurnAt == "period_end" && st.sub.Status == "canceled" && prevStatus != "canceled" && st.sub.CurrentPeriodEnd > st.at {
			pts = append(pts, point{at: st.sub.CurrentPeriodEnd, rule: true, sub: -1, cust: -1, periodAt: true})
		}
	}
	sort.SliceStable(pts, func(i, j int) bool {
		a, b := pts[i], pts[j]
		if a.at != b.at {
			return a.at < b.at
		}
		if a.rule != b.rule {
			return a.rule
		}
		return a.seq < b.seq
	})

	var (
		out          subTimeline
		si, ci       = -1, -1
		cur          MRRValue
		churned      bool  // the last zero was a churn: a return is a reactivation
		inPause      bool  // the last zero was a pause: a return is a resume
		pastDueSince int64 = -1
		frozen       *MRRValue
		frozenUntil  int64
	)
	ciFor := func(seq int64) int { // the customer's state in force after event seq
		k := -1
		for j, cs := range custs {
			if cs.seq <= seq {
				k = j
			}
		}
		return k
	}
	// Each distinct instant is evaluated once, after every event of that second: the MRR is a
	// function of time at Stripe's one-second resolution, so same-second events (and rule
	// instants falling in the second of an event) make one movement.
	for g := 0; g < len(pts); {
		t := pts[g].at
		h := g
		for h < len(pts) && pts[h].at == t {
			h++
		}
		var subEvents, custEvents []string
		for _, p := range pts[g:h] {
			switch {
			case p.sub >= 0:
				prev := ""
				if si >= 0 {
					prev = states[si].sub.Status
				}
				si = p.sub
				ci = ciFor(states[si].seq)
				subEvents = append(subEvents, states[si].event)
				st := states[si].sub
				if st.Status == "past_due" && prev != "past_due" {
					pastDueSince = t
				} else if st.Status != "past_due" {
					pastDueSince = -1
				}
				if st.Status == "canceled" && prev != "canceled" && set.ChurnAt == "period_end" && st.CurrentPeriodEnd > t {
					f := cur
					frozen, frozenUntil = &f, st.CurrentPeriodEnd
				}
			case p.cust >= 0:
				ci = p.cust
				custEvents = append(custEvents, custs[ci].event)
			}
		}
		g = h
		if si < 0 {
			continue
		}
		st := states[si].sub
		var cd *Discount
		if ci >= 0 {
			cd = custs[ci].discount
		}
		var v MRRValue
		switch {
		case st.Status == "canceled" && frozen != nil && t < frozenUntil:
			v = *frozen
		case st.Status != "active" && st.Status != "past_due":
		case st.Status == "past_due" && set.PastDueDays > 0 && pastDueSince >= 0 && t >= pastDueSince+int64(set.PastDueDays)*86400:
		default:
			v = SubscriptionMRR(&st, cd, t, set)
		}
		// The newest input: the subscription's latest event, or a later change of its
		// customer's discount, which the row takes in too.
		if si == len(states)-1 && (len(subEvents) > 0 || len(custEvents) > 0) {
			out.last = v
		}
		unvalued := v.Unvalued != "" && v.Counts
		if n := len(out.unvalued); (n == 0 && unvalued) || (n > 0 && out.unvalued[n-1].unvalued != unvalued) {
			out.unvalued = append(out.unvalued, span{t, unvalued})
		}
		if v.Unvalued != "" {
			v.MRR = cur.MRR // an unvalued instant moves nothing: the log keeps its last figure
		}
		if v.MRR == cur.MRR {
			if v.MRR == 0 && !v.Paused && inPause {
				inPause, churned = false, true // stopped counting while paused: a return is a reactivation
			}
			cur = v
			continue
		}
		m := TruthMovement{Livemode: s.cfg.Livemode, Account: s.cfg.Account, Customer: st.Customer, Subscription: id,
			Amount: v.MRR - cur.MRR, MRRBefore: cur.MRR, MRRAfter: v.MRR, Currency: st.Currency, Settings: set.String(),
			At: time.Unix(t, 0).UTC(), PeriodStart: time.Unix(st.CurrentPeriodStart, 0).UTC()}
		switch {
		case len(subEvents) > 0:
			m.SourceEvents = subEvents
		case len(custEvents) > 0:
			m.SourceEvents = custEvents
		default:
			m.SourceEvents, m.TimeDriven = []string{states[si].event}, true
		}
		switch {
		case v.MRR == 0 && v.Paused:
			m.Kind, inPause = KindPause, true
		case v.MRR == 0:
			m.Kind, churned, inPause = KindChurn, true, false
		case cur.MRR == 0 && inPause:
			m.Kind, inPause = KindResume, false
		case cur.MRR == 0 && churned:
			m.Kind = KindReactivation
		case cur.MRR == 0:
			m.Kind = KindNew
		case v.MRR > cur.MRR:
			m.Kind = KindExpansion
		default:
			m.Kind = KindContraction
		}
		out.moves = append(out.moves, m)
		cur = v
	}
	return out
}

// ---- Daily figures.

// TruthFigures are one day's (or one period's) MRR figures in one currency, minor units.
type TruthFigures struct {
	MRR          int64 `json:"mrr"` // at the end of the day: movements with at < the day's end
	ARR          int64 `json:"arr"` // 12 × MRR
	New          int64 `json:"new"`
	Expansion    int64 `json:"expansion"`
	Contraction  int64 `json:"contraction"` // negative
	Churn        int64 `json:"churn"`       // negative
	Reactivation int64 `json:"reactivation"`
	Pause        int64 `json:"pause"` // negative; paused = zero only
	Resume       int64 `json:"resume"`
	NetNew       int64 `json:"net_new"` // the sum of the kinds: the day's MRR change
}

func (f *TruthFigures) add(kind string, amount int64) {
	switch kind {
	case KindNew:
		f.New += amount
	case KindExpansion:
		f.Expansion += amount
	case KindContraction:
		f.Contraction += amount
	case KindChurn:
		f.Churn += amount
	case KindReactivation:
		f.Reactivation += amount
	case KindPause:
		f.Pause += amount
	case KindResume:
		f.Resume += amount
	}
	f.NetNew += amount
}

// TruthDay is one UTC day of one scope in one currency.
type TruthDay struct {
	Day      string `json:"day"` // YYYY-MM-DD, UTC
	Livemode bool   `json:"livemode"`
	Account  string `json:"account,omitempty"`
	Currency string `json:"currency"`
	TruthFigures
	// Subscribers are customers with MRR > 0 at the day's end.
	Subscribers int `json:"subscribers"`
	// Unvalued are subscriptions whose status counts but whose MRR cannot be computed (NULL).
	Unvalued int `json:"unvalued"`
}

// TruthReportingDay is one UTC day of one scope in the reporting currency.
type TruthReportingDay struct {
	Day      string `json:"day"`
	Livemode bool   `json:"livemode"`
	Account  string `json:"account,omitempty"`
	Currency string `json:"currency"` // the reporting currency
	// Figures are nil when a rate is missing (Missing names the currency and date pairs).
	Figures *TruthFigures `json:"figures"`
	// FXEffect (report_date only) = MRR(D) − MRR(D − 1) − the day's converted movements,
	// computed exactly and rounded once; nil under period_start, which has none.
	FXEffect    *int64   `json:"fx_effect"`
	Missing     []string `json:"missing,omitempty"` // "eur 2026-03-01"
	Subscribers int      `json:"subscribers"`
	Unvalued    int      `json:"unvalued"`
}

// MRRTruth is one scope's MRR truth under one set of settings.
type MRRTruth struct {
	Livemode bool   `json:"livemode"`
	Account  string `json:"account,omitempty"`
	Settings string `json:"settings"`
	// Days: every UTC day from the account's opening to its clock, per currency it sells in,
	// ordered by day then currency.
	Days []TruthDay `json:"days"`
	// Reporting: the same days in TruthSettings.ReportingCurrency (empty without one).
	Reporting []TruthReportingDay `json:"reporting,omitempty"`
	// Movements: every subscription's, ordered by time (then subscription), including those
	// after the clock that rules have fixed already (a discount's end, a period end).
	Movements []TruthMovement `json:"movements"`
}

// TruthMRR computes the scope's MRR truth under set.
func (s *Sim) TruthMRR(set TruthSettings) (*MRRTruth, error) {
	if err := set.Validate(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.truthMRR(set.withDefaults()), nil
}

// TruthMRRDaily is TruthMRR's daily figures per currency.
func (s *Sim) TruthMRRDaily(set TruthSettings) ([]TruthDay, error) {
	t, err := s.TruthMRR(set)
	if err != nil {
		return nil, err
	}
	return t.Days, nil
}

func utcDay(t int64) int64 { return floorDiv(t, 86400) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (s *Sim) truthMRR(set TruthSettings) *MRRTruth {
	out := &MRRTruth{Livemode: s.cfg.Livemode, Account: s.cfg.Account, Settings: set.String(), Movements: []TruthMovement{}}
	first := utcDay(s.cfg.Start.Unix())
	last := utcDay(s.now.Unix())
	if s.now.After(s.cfg.End) {
		last = utcDay(s.cfg.End.Unix())
	}
	nDays := int(last - first + 1)
	idx := func(at int64) int { // the day index a change at `at` first shows in, clamped to 0
		return int(max(utcDay(at)-first, 0))
	}
	type perCurrency struct {
		moves       []TruthFigures // per day, the day's movement sums (MRR not yet filled)
		subscribers []int          // per day, the change
		unvalued    []int
	}
	curs := map[string]*perCurrency{}
	get := func(c string) *perCurrency {
		if pc, ok := curs[c]; ok {
			return pc
		}
		pc := &perCurrency{moves: make([]TruthFigures, nDays), subscribers: make([]int, nDays+1), unvalued: make([]int, nDays+1)}
		curs[c] = pc
		return pc
	}
	byCust := map[string][]TruthMovement{}
	var custOrder []string
	for _, id := range s.hist.order {
		tl := s.timeline(id, set)
		cur := s.hist.subs[id][0].sub.Currency
		pc := get(cur)
		for _, m := range tl.moves {
			out.Movements = append(out.Movements, m)
			if d := idx(m.At.Unix()); d < nDays {
				pc.moves[d].add(m.Kind, m.Amount)
			}
			key := m.Customer + " " + cur
			if _, ok := byCust[key]; !ok {
				custOrder = append(custOrder, key)
			}
			byCust[key] = append(byCust[key], m)
		}
		for _, sp := range tl.unvalued {
			d := idx(sp.at)
			if d >= nDays {
				continue
			}
			if sp.unvalued {
				pc.unvalued[d]++
			} else {
				pc.unvalued[d]--
			}
		}
	}
	// Subscribers: a customer's MRR in a currency is the sum of their subscriptions'.
	for _, key := range custOrder {
		ms := byCust[key]
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].At.Before(ms[j].At) })
		pc := get(ms[0].Currency)
		var total int64
		for _, m := range ms {
			before := total > 0
			total += m.Amount
			if after := total > 0; after != before {
				d := idx(m.At.Unix())
				if d >= nDays {
					continue
				}
				if after {
					pc.subscribers[d]++
				} else {
					pc.subscribers[d]--
				}
			}
		}
	}
	sort.SliceStable(out.Movements, func(i, j int) bool {
		a, b := out.Movements[i], out.Movements[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		return a.Subscription < b.Subscription
	})
	currencies := make([]string, 0, len(curs))
	for c := range curs {
		currencies = append(currencies, c)
	}
	slices.Sort(currencies)
	running := map[string][3]int64{}
	for d := range nDays {
		day := time.Unix((first+int64(d))*86400, 0).UTC().Format(time.DateOnly)
		for _, c := range currencies {
			pc := curs[c]
			r := running[c]
			r[0] += pc.moves[d].NetNew
			r[1] += int64(pc.subscribers[d])
			r[2] += int64(pc.unvalued[d])
			running[c] = r
			f := pc.moves[d]
			f.MRR, f.ARR = r[0], 12*r[0]
			out.Days = append(out.Days, TruthDay{Day: day, Livemode: s.cfg.Livemode, Account: s.cfg.Account, Currency: c,
				TruthFigures: f, Subscribers: int(r[1]), Unvalued: int(r[2])})
		}
	}
	if set.ReportingCurrency != "" {
		out.Reporting = reportingDays(out, set, first, nDays, currencies)
	}
	return out
}

// rateInto is the rate of c into r on day (UTC day number): 1 for the same currency, else the
// simulator's rate of the day — the exchange_rate its balance transactions carry and the rates
// file FXRatesCSV writes — as a factor from minor units of c to minor units of r.
func rateInto(c, r string, day int64) (*big.Rat, bool) {
	if c == r {
		return big.NewRat(1, 1), true
	}
	rate, ok := FXRate(c, r, time.Unix(day*86400, 0).UTC())
	if !ok {
		return nil, false
	}
	f := new(big.Rat).Set(rate)
	shift := CurrencyExponent(r) - CurrencyExponent(c)
	p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(shift))), nil))
	if shift > 0 {
		f.Mul(f, p)
	} else if shift < 0 {
		f.Quo(f, p)
	}
	return f, true
}

// reportingDays converts the days into the reporting currency by the FX rule in force:
//   - period_start: each movement at the rate of its period_start's date; MRR the running sum
//     of converted movements; no FX effect;
//   - report_date: MRR(D) = Σ MRR_c(D) × rate(c, D); each movement at rate(c, D); the FX
//     effect the rest of the change.
//
// Converted amounts stay exact until a day's figure, which is rounded half away from zero.
func reportingDays(t *MRRTruth, set TruthSettings, first int64, nDays int, currencies []string) []TruthReportingDay {
	R := set.ReportingCurrency
	type rateKey struct {
		c   string
		day int64
	}
	rates := map[rateKey]*big.Rat{}
	rateInto := func(c, r string, day int64) (*big.Rat, bool) { // memoised: a day's rate is asked for often
		k := rateKey{c, day}
		if v, ok := rates[k]; ok {
			return v, v != nil
		}
		v, ok := rateInto(c, r, day)
		rates[k] = v
		return v, ok
	}
	type exact struct {
		mrr   *big.Rat
		kinds map[string]*big.Rat
	}
	days := make([]exact, nDays)
	for d := range days {
		days[d] = exact{mrr: new(big.Rat), kinds: map[string]*big.Rat{}}
	}
	missing := make([]map[string]bool, nDays)
	miss := func(d int, c string, day int64) {
		if missing[d] == nil {
			missing[d] = map[string]bool{}
		}
		missing[d][c+" "+time.Unix(day*86400, 0).UTC().Format(time.DateOnly)] = true
	}
	addKind := func(d int, kind string, v *big.Rat) {
		if days[d].kinds[kind] == nil {
			days[d].kinds[kind] = new(big.Rat)
		}
		days[d].kinds[kind].Add(days[d].kinds[kind], v)
	}
	byDay := map[string]map[int]TruthDay{}
	for _, td := range t.Days {
		if byDay[td.Currency] == nil {
			byDay[td.Currency] = map[int]TruthDay{}
		}
		d := int(utcDay(mustDay(td.Day)) - first)
		byDay[td.Currency][d] = td
	}
	if set.FXRateDate == "period_start" {
		// The running sum of converted movements; a missing rate poisons every day from the
		// movement's on.
		poisonFrom := nDays
		for _, m := range t.Movements {
			d := int(max(utcDay(m.At.Unix())-first, 0))
			if d >= nDays {
				continue
			}
			psDay := utcDay(m.PeriodStart.Unix())
			rate, ok := rateInto(m.Currency, R, psDay)
			if !ok {
				miss(d, m.Currency, psDay)
				poisonFrom = min(poisonFrom, d)
				continue
			}
			v := new(big.Rat).Mul(big.NewRat(m.Amount, 1), rate)
			addKind(d, m.Kind, v)
		}
		run := new(big.Rat)
		out := make([]TruthReportingDay, nDays)
		seen := map[string]bool{} // a missing rate stays missing for every later day's MRR
		for d := range nDays {
			for _, v := range days[d].kinds {
				run.Add(run, v)
			}
			out[d] = reportingDay(t, R, first, d, byDay, currencies)
			for k := range missing[d] {
				seen[k] = true
			}
			if d >= poisonFrom {
				for k := range seen {
					out[d].Missing = append(out[d].Missing, k)
				}
				continue
			}
			f := figuresOf(days[d].kinds, run)
			out[d].Figures = &f
		}
		return sortMissing(out)
	}
	// report_date.
	out := make([]TruthReportingDay, nDays)
	prev := new(big.Rat)
	prevOK := true
	for d := range nDays {
		day := first + int64(d)
		out[d] = reportingDay(t, R, first, d, byDay, currencies)
		mrr, ok := new(big.Rat), true
		kinds := map[string]*big.Rat{}
		for _, c := range currencies {
			td := byDay[c][d]
			rate, has := rateInto(c, R, day)
			if !has {
				if td.MRR != 0 || td.NetNew != 0 || td.New != 0 || td.Churn != 0 || td.Expansion != 0 || td.Contraction != 0 ||
					td.Reactivation != 0 || td.Pause != 0 || td.Resume != 0 {
					miss(d, c, day)
					ok = false
				}
				continue
			}
			mrr.Add(mrr, new(big.Rat).Mul(big.NewRat(td.MRR, 1), rate))
			for kind, v := range map[string]int64{KindNew: td.New, KindExpansion: td.Expansion, KindContraction: td.Contraction,
				KindChurn: td.Churn, KindReactivation: td.Reactivation, KindPause: td.Pause, KindResume: td.Resume} {
				if kinds[kind] == nil {
					kinds[kind] = new(big.Rat)
				}
				kinds[kind].Add(kinds[kind], new(big.Rat).Mul(big.NewRat(v, 1), rate))
			}
		}
		for k := range missing[d] {
			out[d].Missing = append(out[d].Missing, k)
		}
		if ok {
			f := figuresOf(kinds, mrr)
			out[d].Figures = &f
			if prevOK {
				fx := new(big.Rat).Sub(mrr, prev)
				for _, v := range kinds {
					fx.Sub(fx, v)
				}
				out[d].FXEffect = ptr(roundHalfAway(fx))
			}
		}
		prev, prevOK = mrr, ok
	}
	return sortMissing(out)
}

func sortMissing(out []TruthReportingDay) []TruthReportingDay {
	for i := range out {
		slices.Sort(out[i].Missing)
	}
	return out
}

func mustDay(s string) int64 {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

func reportingDay(t *MRRTruth, R string, first int64, d int, byDay map[string]map[int]TruthDay, currencies []string) TruthReportingDay {
	rd := TruthReportingDay{Day: time.Unix((first+int64(d))*86400, 0).UTC().Format(time.DateOnly), Livemode: t.Livemode,
		Account: t.Account, Currency: R}
	for _, c := range currencies {
		rd.Subscribers += byDay[c][d].Subscribers
		rd.Unvalued += byDay[c][d].Unvalued
	}
	return rd
}

func figuresOf(kinds map[string]*big.Rat, mrr *big.Rat) TruthFigures {
	var f TruthFigures
	round := func(k string) int64 {
		if v := kinds[k]; v != nil {
			return roundHalfAway(v)
		}
		return 0
	}
	f.New, f.Expansion, f.Contraction, f.Churn = round(KindNew), round(KindExpansion), round(KindContraction), round(KindChurn)
	f.Reactivation, f.Pause, f.Resume = round(KindReactivation), round(KindPause), round(KindResume)
	net := new(big.Rat)
	for _, v := range kinds {
		net.Add(net, v)
	}
	f.NetNew = roundHalfAway(net)
	f.MRR = roundHalfAway(mrr)
	f.ARR = roundHalfAway(new(big.Rat).Mul(mrr, big.NewRat(12, 1)))
	return f
}

// rowMRR is every subscription's value as of its latest event, with default settings.
func (s *Sim) rowMRR() map[string]MRRValue {
	out := map[string]MRRValue{}
	for _, id := range s.hist.order {
		out[id] = s.timeline(id, TruthSettings{}).last
	}
	return out
}

// TruthMRR is every scope's MRR truth under set, in Scopes order.
func (p *Platform) TruthMRR(set TruthSettings) ([]*MRRTruth, error) {
	out := make([]*MRRTruth, 0, len(p.scopes))
	for _, sc := range p.scopes {
		t, err := p.sims[sc].TruthMRR(set)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
