package stripesim_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/stripesim"
)

func i64(v int64) *int64        { return &v }
func str(v string) *string      { return &v }
func num(v string) *json.Number { n := json.Number(v); return &n }

func perUnit(unit int64, interval string, count int) stripesim.Price {
	return stripesim.Price{ID: "price_x", BillingScheme: "per_unit", UnitAmount: i64(unit),
		Recurring: &stripesim.Recurring{Interval: interval, IntervalCount: count, UsageType: "licensed"}}
}

func item(p stripesim.Price, qty int64, ds ...stripesim.DiscountRef) stripesim.SubscriptionItem {
	it := stripesim.SubscriptionItem{ID: "si_x", Price: p, Quantity: qty}
	if ds != nil {
		refs := stripesim.DiscountRefs(ds)
		it.Discounts = &refs
	}
	return it
}

func subscription(status, currency string, items ...stripesim.SubscriptionItem) *stripesim.Subscription {
	return &stripesim.Subscription{ID: "sub_x", Status: status, Currency: currency,
		Items: stripesim.List[stripesim.SubscriptionItem]{Data: items}, Discounts: &stripesim.DiscountRefs{}}
}

func volume(mode string, tiers ...stripesim.PriceTier) stripesim.Price {
	return stripesim.Price{ID: "price_t", BillingScheme: "tiered", TiersMode: str(mode), Tiers: tiers,
		Recurring: &stripesim.Recurring{Interval: "month", IntervalCount: 1, UsageType: "licensed"}}
}

// Each price shape, valued by SubscriptionMRR against figures worked out by hand (minor units
// per month, rounded down once per subscription).
func TestPriceShapesByHand(t *testing.T) {
	t.Parallel()
	decimal := perUnit(0, "month", 1)
	decimal.UnitAmount, decimal.UnitAmountDecimal = nil, str("2912.5")
	both := perUnit(900, "month", 1)
	both.UnitAmountDecimal = str("900.5") // the decimal string is the exact amount
	quarterDecimal := perUnit(0, "month", 3)
	quarterDecimal.UnitAmount, quarterDecimal.UnitAmountDecimal = nil, str("8300.625")
	pack := func(round string) stripesim.Price {
		p := perUnit(500, "month", 1)
		p.TransformQuantity = &stripesim.TransformQuantity{DivideBy: 10, Round: round}
		return p
	}
	vol := volume("volume", stripesim.PriceTier{UpTo: i64(5), UnitAmount: i64(1200)}, stripesim.PriceTier{UpTo: i64(20), UnitAmount: i64(1000)},
		stripesim.PriceTier{UnitAmount: i64(800), FlatAmount: i64(2000)})
	yearlyVol := vol
	yearlyVol.Recurring = &stripesim.Recurring{Interval: "year", IntervalCount: 1, UsageType: "licensed"}
	yearlyVol.Tiers = []stripesim.PriceTier{{UpTo: i64(5), UnitAmount: i64(12000)}, {UnitAmount: i64(10000)}}
	grad := volume("graduated", stripesim.PriceTier{UpTo: i64(10), UnitAmount: i64(0), FlatAmount: i64(4900)},
		stripesim.PriceTier{UpTo: i64(100), UnitAmount: i64(250)}, stripesim.PriceTier{UnitAmountDecimal: str("187.5")})
	gradFlat := volume("graduated", stripesim.PriceTier{UpTo: i64(1), UnitAmount: i64(1000)},
		stripesim.PriceTier{UnitAmount: i64(500), FlatAmountDecimal: str("300")})
	metered := perUnit(40, "month", 1)
	metered.Recurring.UsageType = "metered"
	noTiers := volume("volume")
	weird := perUnit(900, "month", 1)
	weird.BillingScheme = "per_flux"
	noAmount := perUnit(0, "month", 1)
	noAmount.UnitAmount = nil
	noMode := vol
	noMode.TiersMode = nil
	short := volume("volume", stripesim.PriceTier{UpTo: i64(10), UnitAmount: i64(100)})

	cases := []struct {
		name     string
		sub      *stripesim.Subscription
		mrr      int64
		counts   bool
		unvalued string // a substring of the reason
		metered  bool
	}{
		{"monthly × quantity", subscription("active", "usd", item(perUnit(900, "month", 1), 2)), 1800, true, "", false},
		{"yearly ÷ 12", subscription("active", "usd", item(perUnit(9000, "year", 1), 1)), 750, true, "", false},
		{"weekly × 52 ÷ 12, rounded down", subscription("active", "usd", item(perUnit(1000, "week", 1), 1)), 4333, true, "", false},
		{"fortnightly", subscription("active", "usd", item(perUnit(3000, "week", 2), 1)), 6500, true, "", false},
		{"daily × 365 ÷ 12", subscription("active", "usd", item(perUnit(100, "day", 1), 1)), 3041, true, "", false},
		{"quarterly (month × 3)", subscription("active", "usd", item(perUnit(3000, "month", 3), 1)), 1000, true, "", false},
		{"every 2 years, past_due counts", subscription("past_due", "usd", item(perUnit(24000, "year", 2), 1)), 1000, true, "", false},
		{"rounded once per subscription", subscription("active", "usd", item(perUnit(1100, "year", 1), 1), item(perUnit(1100, "year", 1), 1)), 183, true, "", false},
		{"mixed intervals", subscription("active", "usd", item(perUnit(900, "month", 1), 1), item(perUnit(12000, "year", 1), 1)), 1900, true, "", false},
		{"decimal unit amount", subscription("active", "usd", item(decimal, 3)), 8737, true, "", false},      // 8737.5
		{"decimal beats the integer", subscription("active", "usd", item(both, 2)), 1801, true, "", false},   // 1801
		{"decimal quarterly", subscription("active", "usd", item(quarterDecimal, 1)), 2766, true, "", false}, // 2766.875
		{"package rounded up", subscription("active", "usd", item(pack("up"), 25)), 1500, true, "", false},
		{"package exact", subscription("active", "usd", item(pack("up"), 30)), 1500, true, "", false},
		{"package rounded down", subscription("active", "usd", item(pack("down"), 29)), 1000, true, "", false},
		{"volume, first tier", subscription("active", "usd", item(vol, 3)), 3600, true, "", false},
		{"volume, at a tier's up_to", subscription("active", "usd", item(vol, 5)), 6000, true, "", false},
		{"volume, next tier prices every unit", subscription("active", "usd", item(vol, 6)), 6000, true, "", false},
		{"volume, last tier with its flat amount", subscription("active", "usd", item(vol, 21)), 18800, true, "", false},
		{"volume yearly", subscription("active", "usd", item(yearlyVol, 6)), 5000, true, "", false},
		{"graduated, within the flat tier", subscription("active", "usd", item(grad, 5)), 4900, true, "", false},
		{"graduated, one unit into the second", subscription("active", "usd", item(grad, 11)), 5150, true, "", false},
		{"graduated, three tiers", subscription("active", "usd", item(grad, 151)), 36962, true, "", false}, // 4900 + 90×250 + 51×187.5
		{"graduated flat only when a unit falls in", subscription("active", "usd", item(gradFlat, 1)), 1000, true, "", false},
		{"graduated flat of the second tier", subscription("active", "usd", item(gradFlat, 3)), 2300, true, "", false},
		{"quantity 0 is worth 0", subscription("active", "usd", item(vol, 0)), 0, true, "", false},
		{"metered excluded and flagged", subscription("active", "usd", item(perUnit(900, "month", 1), 1), item(metered, 0)), 900, true, "", true},
		{"tiers not expanded", subscription("active", "usd", item(noTiers, 3)), 0, true, "no tiers", false},
		{"unknown billing scheme", subscription("active", "usd", item(weird, 1)), 0, true, "billing_scheme", false},
		{"no amount", subscription("active", "usd", item(noAmount, 1)), 0, true, "no unit amount", false},
		{"no tiers mode", subscription("active", "usd", item(noMode, 1)), 0, true, "tiers_mode", false},
		{"no tier for the quantity", subscription("active", "usd", item(short, 11)), 0, true, "no tier", false},
		{"trialing is not MRR", subscription("trialing", "usd", item(perUnit(900, "month", 1), 1)), 0, false, "", false},
		{"unpaid is churned", subscription("unpaid", "usd", item(perUnit(900, "month", 1), 1)), 0, false, "", false},
		{"canceled", subscription("canceled", "usd", item(perUnit(900, "month", 1), 1)), 0, false, "", false},
		{"incomplete", subscription("incomplete", "usd", item(perUnit(900, "month", 1), 1)), 0, false, "", false},
		{"status before shape: a trial of an unvaluable price is 0", subscription("trialing", "usd", item(noTiers, 1)), 0, false, "", false},
	}
	for _, tc := range cases {
		v := stripesim.SubscriptionMRR(tc.sub, nil, 1000, stripesim.TruthSettings{})
		if v.MRR != tc.mrr || v.Counts != tc.counts || v.Metered != tc.metered || (tc.unvalued == "") != (v.Unvalued == "") ||
			!strings.Contains(v.Unvalued, tc.unvalued) {
			t.Errorf("%s: %+v, want mrr %d counts %v unvalued %q metered %v", tc.name, v, tc.mrr, tc.counts, tc.unvalued, tc.metered)
		}
	}
}

func coupon(duration string, percent string, amountOff int64) stripesim.Coupon {
	c := stripesim.Coupon{ID: "C", Object: "coupon", Duration: duration}
	if percent != "" {
		c.PercentOff = num(percent)
	}
	if amountOff > 0 {
		c.AmountOff, c.Currency = i64(amountOff), str("usd")
		c.CurrencyOptions = map[string]stripesim.CouponCurrencyOption{"eur": {AmountOff: amountOff * 9 / 10}}
	}
	return c
}

func discount(c stripesim.Coupon, start int64, end *int64) stripesim.DiscountRef {
	return stripesim.DiscountRef{ID: "di_x", Discount: &stripesim.Discount{ID: "di_x", Object: "discount", Coupon: c, Start: start, End: end}}
}

func withDiscounts(sub *stripesim.Subscription, ds ...stripesim.DiscountRef) *stripesim.Subscription {
	refs := stripesim.DiscountRefs(ds)
	sub.Discounts = &refs
	return sub
}

// Each discount shape, by hand: which count under each setting, in force when, in what order, on
// what value (t = 1000 throughout).
func TestDiscountShapesByHand(t *testing.T) {
	t.Parallel()
	month := func(amount int64) stripesim.SubscriptionItem { return item(perUnit(amount, "month", 1), 1) }
	forever20 := discount(coupon("forever", "20", 0), 0, nil)
	legacy := subscription("active", "usd", month(10000))
	legacy.Discounts, legacy.Discount = nil, forever20.Discount
	emptyAndLegacy := subscription("active", "usd", month(10000))
	emptyAndLegacy.Discount = forever20.Discount
	promo := discount(coupon("forever", "30", 0), 0, nil)
	promo.Discount.PromotionCode = str("promo_SPRING")
	meteredFirst := perUnit(40, "month", 1)
	meteredFirst.Recurring.UsageType = "metered"
	customer15 := discount(coupon("forever", "15", 0), 0, nil).Discount
	bare := stripesim.DiscountRef{ID: "di_bare"}

	cases := []struct {
		name      string
		sub       *stripesim.Subscription
		cust      *stripesim.Discount
		discounts string
		mrr       int64
		unvalued  string
	}{
		{"forever percent off", withDiscounts(subscription("active", "usd", month(10000)), forever20), nil, "", 8000, ""},
		{"decimal percent off", withDiscounts(subscription("active", "usd", month(2900)), discount(coupon("forever", "12.5", 0), 0, nil)), nil, "", 2537, ""}, // 2537.5
		{"repeating, in force", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("repeating", "12.5", 0), 0, i64(2000))), nil, "", 8750, ""},
		{"repeating, at its end", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("repeating", "12.5", 0), 0, i64(1000))), nil, "", 10000, ""},
		{"not yet started", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("forever", "20", 0), 1001, nil)), nil, "", 10000, ""},
		{"once, under recurring", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("once", "50", 0), 0, nil)), nil, "recurring", 10000, ""},
		{"once, under one_time", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("once", "50", 0), 0, nil)), nil, "one_time", 5000, ""},
		{"forever, under one_time", withDiscounts(subscription("active", "usd", month(10000)), forever20), nil, "one_time", 10000, ""},
		{"both", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("once", "50", 0), 0, nil), forever20), nil, "both", 4000, ""},
		{"amount off, monthly", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("forever", "", 500), 0, nil)), nil, "", 9500, ""},
		{"amount off per year, a twelfth a month", withDiscounts(subscription("active", "usd", item(perUnit(120000, "year", 1), 1)), discount(coupon("forever", "", 1200), 0, nil)), nil, "", 9900, ""},
		{"amount off in a currency option", withDiscounts(subscription("active", "eur", month(10000)), discount(coupon("forever", "", 500), 0, nil)), nil, "", 9550, ""},
		{"amount off without the currency", withDiscounts(subscription("active", "gbp", month(10000)), discount(coupon("forever", "", 500), 0, nil)), nil, "", 0, "no amount in gbp"},
		{"amount off never below 0", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("forever", "", 20000), 0, nil)), nil, "", 0, ""},
		{"stacked, percent then amount", withDiscounts(subscription("active", "usd", month(10000)), forever20, discount(coupon("forever", "", 500), 0, nil)), nil, "", 7500, ""},
		{"stacked, amount then percent", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("forever", "", 500), 0, nil), forever20), nil, "", 7600, ""},
		{"item-level before subscription-level", withDiscounts(subscription("active", "usd",
			item(perUnit(10000, "month", 1), 1, discount(coupon("forever", "25", 0), 0, nil)), month(5000)),
			discount(coupon("forever", "10", 0), 0, nil)), nil, "", 11250, ""},
		{"item-level amount off by the item's interval", subscription("active", "usd",
			item(perUnit(30000, "month", 3), 1, discount(coupon("forever", "", 3000), 0, nil))), nil, "", 9000, ""},
		{"subscription-level amount off by the first licensed item", withDiscounts(subscription("active", "usd",
			item(meteredFirst, 0), item(perUnit(120000, "year", 1), 1)), discount(coupon("forever", "", 1200), 0, nil)), nil, "", 9900, ""},
		{"customer-level when the subscription has none", subscription("active", "usd", month(10000)), customer15, "", 8500, ""},
		{"the subscription's own beat the customer's", withDiscounts(subscription("active", "usd", month(10000)), forever20), customer15, "", 8000, ""},
		{"legacy discount when discounts is absent", legacy, nil, "", 8000, ""},
		{"discounts present: the legacy field is not read", emptyAndLegacy, nil, "", 10000, ""},
		{"a promotion code's coupon", withDiscounts(subscription("active", "usd", month(10000)), promo), nil, "", 7000, ""},
		{"100 % off", withDiscounts(subscription("active", "usd", month(10000)), discount(coupon("forever", "100", 0), 0, nil)), nil, "", 0, ""},
		{"a discount by ID only", withDiscounts(subscription("active", "usd", month(10000)), forever20, bare), nil, "", 0, "not expanded"},
	}
	for _, tc := range cases {
		v := stripesim.SubscriptionMRR(tc.sub, tc.cust, 1000, stripesim.TruthSettings{Discounts: tc.discounts})
		if v.MRR != tc.mrr || !v.Counts || (tc.unvalued == "") != (v.Unvalued == "") || !strings.Contains(v.Unvalued, tc.unvalued) {
			t.Errorf("%s: %+v, want mrr %d unvalued %q", tc.name, v, tc.mrr, tc.unvalued)
		}
	}
}

// Bad settings are refused with the setting's name; the canonical string is the ledger's.
func TestTruthSettings(t *testing.T) {
	t.Parallel()
	if got := (stripesim.TruthSettings{}).String(); got != "discounts=recurring churn_at=cancellation past_due_days=0 paused=count" {
		t.Fatalf("default settings %q", got)
	}
	for _, bad := range []stripesim.TruthSettings{{Discounts: "all"}, {ChurnAt: "never"}, {PastDueDays: -1}, {Paused: "skip"},
		{FXRateDate: "today"}, {ReportingCurrency: "USD"}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	sim := stripesim.New(stripesim.Config{Seed: 1, Customers: 1, End: end})
	if _, err := sim.TruthMRR(stripesim.TruthSettings{Paused: "skip"}); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("TruthMRR with a bad setting: %v", err)
	}
}
