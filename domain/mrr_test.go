package domain_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
)

// subscription is a subscription object: active in usd unless fields say otherwise.
func subObject(fields map[string]any) string {
	o := map[string]any{"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active", "currency": "usd",
		"current_period_start": 0, "current_period_end": 30 * 86400}
	for k, v := range fields {
		o[k] = v
	}
	return obj(o)
}

// items is an items list of the given item objects.
func items(its ...map[string]any) map[string]any {
	return map[string]any{"data": its}
}

// item is a subscription item of quantity q on price.
func item(q int64, price map[string]any) map[string]any {
	return map[string]any{"id": "si_" + fmt.Sprint(len(fmt.Sprint(price))), "quantity": q, "price": price}
}

// perUnit is a licensed per-unit price.
func perUnit(unit any, interval string, count int64) map[string]any {
	p := map[string]any{"id": "price_1", "product": "prod_1", "billing_scheme": "per_unit",
		"recurring": map[string]any{"interval": interval, "interval_count": count, "usage_type": "licensed"}}
	switch u := unit.(type) {
	case string:
		p["unit_amount_decimal"] = u
	default:
		p["unit_amount"] = u
	}
	return p
}

var tiers3 = []any{
	map[string]any{"up_to": 10, "unit_amount": 1000, "flat_amount": nil},
	map[string]any{"up_to": 50, "unit_amount": 800, "flat_amount": 500},
	map[string]any{"up_to": nil, "unit_amount": 600},
}

func tiered(mode string, tiers []any) map[string]any {
	return with(perUnit(nil, "month", 1), "billing_scheme", "tiered", "tiers_mode", mode, "tiers", tiers, "unit_amount", nil)
}

// valued folds one event of the object and returns its MRR (-1 for NULL) and attention.
func valued(t *testing.T, object string, customer []domain.CustomerDiscount, set domain.MRRSettings) (int64, string) {
	t.Helper()
	row, h, err := domain.FoldSubscriptionHistory([]domain.Fact{fact("evt_1", "customer.subscription.updated", 1000, object, "")})
	if err != nil {
		t.Fatal(err)
	}
	h.Value(&row, customer, set)
	mrr := int64(-1)
	if row.MRR != nil {
		mrr = *row.MRR
	}
	return mrr, domain.Deref(row.Attention)
}

func TestMRROfEachPriceShape(t *testing.T) {
	t.Parallel()
	metered := with(perUnit(1000, "month", 1), "id", "price_m", "recurring", map[string]any{"interval": "month", "interval_count": 1, "usage_type": "metered"})
	cases := []struct {
		name   string
		fields map[string]any
		want   int64  // -1: NULL
		attend string // a part of attention
	}{
		{"monthly", map[string]any{"items": items(item(1, perUnit(2900, "month", 1)))}, 2900, ""},
		{"yearly ÷ 12, rounded down", map[string]any{"items": items(item(1, perUnit(29000, "year", 1)))}, 2416, ""},
		{"weekly × 52 ÷ 12", map[string]any{"items": items(item(1, perUnit(100, "week", 1)))}, 433, ""},
		{"daily × 365 ÷ 12", map[string]any{"items": items(item(1, perUnit(100, "day", 1)))}, 3041, ""},
		{"quarterly ÷ interval_count", map[string]any{"items": items(item(1, perUnit(3000, "month", 3)))}, 1000, ""},
		{"mixed intervals", map[string]any{"items": items(item(1, perUnit(1000, "month", 1)), item(1, perUnit(12000, "year", 1)))}, 2000, ""},
		{"quantity", map[string]any{"items": items(item(3, perUnit(900, "month", 1)))}, 2700, ""},
		{"decimal unit amount, exact (0.29 × 100 is 28.999… in floats)", map[string]any{"items": items(item(100, perUnit("0.29", "month", 1)))}, 29, ""},
		{"sub-cent unit amount", map[string]any{"items": items(item(1000, perUnit("0.125", "month", 1)))}, 125, ""},
		{"package, rounded up", map[string]any{"items": items(item(25, with(perUnit(500, "month", 1), "transform_quantity", map[string]any{"divide_by": 10, "round": "up"})))}, 1500, ""},
		{"package, rounded down", map[string]any{"items": items(item(25, with(perUnit(500, "month", 1), "transform_quantity", map[string]any{"divide_by": 10, "round": "down"})))}, 1000, ""},
		{"volume: one tier prices every unit, with its flat amount", map[string]any{"items": items(item(20, tiered("volume", tiers3)))}, 16500, ""},
		{"volume: up_to is inclusive", map[string]any{"items": items(item(10, tiered("volume", tiers3)))}, 10000, ""},
		{"volume: up_to null is infinity", map[string]any{"items": items(item(100, tiered("volume", tiers3)))}, 60000, ""},
		{"graduated: each tier its units and flat amount", map[string]any{"items": items(item(20, tiered("graduated", tiers3)))}, 18500, ""},
		{"graduated into the last tier", map[string]any{"items": items(item(60, tiered("graduated", tiers3)))}, 48500, ""},
		{"graduated with decimal tiers, yearly", map[string]any{"items": items(item(7, with(tiered("graduated", []any{
			map[string]any{"up_to": 5, "unit_amount_decimal": "12.5", "flat_amount_decimal": "100"}, map[string]any{"up_to": nil, "unit_amount": 10}}),
			"recurring", map[string]any{"interval": "year", "interval_count": 1, "usage_type": "licensed"})))}, 15, ""},
		{"metered excluded and flagged", map[string]any{"items": items(item(1, perUnit(1000, "month", 1)), item(1, metered))}, 1000, "metered prices left out of MRR: price_m"},
		{"quantity 0 is worth 0, whatever the shape", map[string]any{"items": items(item(0, tiered("volume", nil)))}, 0, ""},
		{"trials are not revenue", map[string]any{"status": "trialing", "items": items(item(1, perUnit(2900, "month", 1)))}, 0, ""},
		{"past_due counts", map[string]any{"status": "past_due", "items": items(item(1, perUnit(2900, "month", 1)))}, 2900, ""},
		{"the price's currency option", map[string]any{"currency": "eur", "items": items(item(2, with(perUnit(1000, "month", 1), "currency", "usd",
			"currency_options", map[string]any{"eur": map[string]any{"unit_amount": 900}})))}, 1800, ""},
		{"tiers not expanded: unvalued", map[string]any{"items": items(item(3, tiered("volume", nil)))}, -1, "came without its tiers"},
		{"unknown billing_scheme: unvalued", map[string]any{"items": items(item(1, with(perUnit(1000, "month", 1), "billing_scheme", "per_seat")))}, -1, `billing_scheme "per_seat"`},
		{"no amount: unvalued", map[string]any{"items": items(item(1, with(perUnit(nil, "month", 1), "unit_amount", nil)))}, -1, "has no unit amount"},
		{"no option in the subscription's currency: unvalued", map[string]any{"currency": "eur", "items": items(item(1, with(perUnit(1000, "month", 1), "currency", "usd")))}, -1, "has no eur option"},
		{"one unvalued item makes the subscription unvalued", map[string]any{"items": items(item(1, perUnit(1000, "month", 1)), item(1, tiered("graduated", nil)))}, -1, "MRR not valued"},
	}
	for _, tc := range cases {
		got, attention := valued(t, subObject(tc.fields), nil, domain.MRRSettings{})
		if got != tc.want || !strings.Contains(attention, tc.attend) || (tc.attend == "" && attention != "") {
			t.Errorf("%s: MRR %d (attention %q), want %d (%q)", tc.name, got, attention, tc.want, tc.attend)
		}
	}
}

func coupon(duration string, kv ...any) map[string]any {
	return with(map[string]any{"id": "co_" + duration, "object": "coupon", "duration": duration, "percent_off": nil, "amount_off": nil, "currency": nil}, kv...)
}

func discount(id string, c any, kv ...any) map[string]any {
	return with(map[string]any{"id": id, "object": "discount", "start": 500, "end": nil, "coupon": c, "promotion_code": nil}, kv...)
}

func TestMRROfEachDiscountShape(t *testing.T) {
	t.Parallel()
	monthly := items(item(1, perUnit(10000, "month", 1)))
	forever := func(kv ...any) map[string]any { return discount("di_f", coupon("forever", kv...)) }
	both := domain.MRRSettings{Discounts: domain.DiscountsBoth}
	oneTime := domain.MRRSettings{Discounts: domain.DiscountsOneTime}
	cases := []struct {
		name     string
		fields   map[string]any
		set      domain.MRRSettings
		customer []domain.CustomerDiscount
		want     int64
		attend   string
	}{
		{"legacy discount, forever percent", map[string]any{"items": monthly, "discount": forever("percent_off", 20)}, domain.MRRSettings{}, nil, 8000, ""},
		{"decimal percent_off", map[string]any{"items": monthly, "discount": forever("percent_off", 12.5)}, domain.MRRSettings{}, nil, 8750, ""},
		{"percent of a fraction, rounded down once", map[string]any{"items": items(item(1, perUnit(1000, "month", 1))), "discount": forever("percent_off", 33.3333)}, domain.MRRSettings{}, nil, 666, ""},
		{"repeating counts as recurring", map[string]any{"items": monthly, "discount": discount("di_r", coupon("repeating", "percent_off", 25, "duration_in_months", 3), "end", 9000000)}, domain.MRRSettings{}, nil, 7500, ""},
		{"once does not count as recurring", map[string]any{"items": monthly, "discount": discount("di_o", coupon("once", "percent_off", 25))}, domain.MRRSettings{}, nil, 10000, ""},
		{"once counts as one_time", map[string]any{"items": monthly, "discount": discount("di_o", coupon("once", "percent_off", 25))}, oneTime, nil, 7500, ""},
		{"repeating does not count as one_time", map[string]any{"items": monthly, "discount": discount("di_r", coupon("repeating", "percent_off", 25), "end", 9000000)}, oneTime, nil, 10000, ""},
		{"ended discount", map[string]any{"items": monthly, "discount": discount("di_r", coupon("repeating", "percent_off", 25), "end", 1000)}, domain.MRRSettings{}, nil, 10000, ""},
		{"not yet started", map[string]any{"items": monthly, "discount": discount("di_r", coupon("forever", "percent_off", 25), "start", 1001)}, domain.MRRSettings{}, nil, 10000, ""},
		{"amount_off", map[string]any{"items": monthly, "discount": forever("amount_off", 1500, "currency", "usd")}, domain.MRRSettings{}, nil, 8500, ""},
		{"amount_off per year on a yearly item", map[string]any{"items": items(item(1, perUnit(12000, "year", 1))), "discount": forever("amount_off", 1200, "currency", "usd")}, domain.MRRSettings{}, nil, 900, ""},
		{"amount_off in a currency option", map[string]any{"items": monthly, "discount": forever("amount_off", 1500, "currency", "eur", "currency_options", map[string]any{"usd": map[string]any{"amount_off": 1700}})}, domain.MRRSettings{}, nil, 8300, ""},
		{"amount_off in no currency of the subscription: unvalued", map[string]any{"items": monthly, "discount": forever("amount_off", 1500, "currency", "eur")}, domain.MRRSettings{}, nil, -1, "no amount_off in usd"},
		{"amount_off never below 0", map[string]any{"items": monthly, "discount": forever("amount_off", 15000, "currency", "usd")}, domain.MRRSettings{}, nil, 0, ""},
		{"100 % off", map[string]any{"items": monthly, "discount": forever("percent_off", 100)}, domain.MRRSettings{}, nil, 0, ""},
		{"stacked, each on what remains", map[string]any{"items": monthly, "discounts": []any{forever("percent_off", 50), discount("di_a", coupon("forever", "amount_off", 1000, "currency", "usd"))}}, domain.MRRSettings{}, nil, 4000, ""},
		{"stacked the other way", map[string]any{"items": monthly, "discounts": []any{discount("di_a", coupon("forever", "amount_off", 1000, "currency", "usd")), forever("percent_off", 50)}}, domain.MRRSettings{}, nil, 4500, ""},
		{"stacked once and forever, both", map[string]any{"items": monthly, "discounts": []any{discount("di_o", coupon("once", "percent_off", 50)), forever("percent_off", 10)}}, both, nil, 4500, ""},
		{"discounts[] wins over the legacy discount", map[string]any{"items": monthly, "discount": forever("percent_off", 50), "discounts": []any{}}, domain.MRRSettings{}, nil, 10000, ""},
		{"an ID resolved by the legacy discount", map[string]any{"items": monthly, "discount": forever("percent_off", 50), "discounts": []any{"di_f"}}, domain.MRRSettings{}, nil, 5000, ""},
		{"an ID that cannot be resolved: unvalued", map[string]any{"items": monthly, "discounts": []any{"di_zzz"}}, domain.MRRSettings{}, nil, -1, "di_zzz is not expanded"},
		{"coupon left as an ID: unvalued", map[string]any{"items": monthly, "discount": discount("di_x", "co_x")}, domain.MRRSettings{}, nil, -1, `coupon "co_x" is not expanded`},
		{"promotion code: its coupon", map[string]any{"items": monthly, "discount": discount("di_p", "co_x", "promotion_code", map[string]any{"id": "promo_1", "coupon": coupon("forever", "percent_off", 30)})}, domain.MRRSettings{}, nil, 7000, ""},
		{"dahlia: discount.source.coupon", map[string]any{"items": monthly, "discounts": []any{with(discount("di_s", nil), "source", map[string]any{"type": "coupon", "coupon": coupon("forever", "percent_off", 40)})}}, domain.MRRSettings{}, nil, 6000, ""},
		{"item discount on its item, then the subscription's on the sum", map[string]any{
			"items":    items(with(item(1, perUnit(10000, "month", 1)), "discounts", []any{discount("di_i", coupon("forever", "percent_off", 10))}), item(1, perUnit(5000, "month", 1))),
			"discount": forever("percent_off", 50)}, domain.MRRSettings{}, nil, 7000, ""},
		{"item amount_off by its own interval", map[string]any{
			"items": items(item(1, perUnit(1000, "month", 1)), with(item(1, perUnit(12000, "year", 1)), "discounts", []any{discount("di_i", coupon("forever", "amount_off", 2400, "currency", "usd"))}))}, domain.MRRSettings{}, nil, 1800, ""},
		{"the customer's discount when the subscription has none", map[string]any{"items": monthly}, domain.MRRSettings{},
			[]domain.CustomerDiscount{{At: 100, Discount: &domain.Discount{ID: "di_c", Duration: "forever", PercentOff: ptr(domain.Decimal("25"))}}}, 7500, ""},
		{"not when it has its own", map[string]any{"items": monthly, "discount": forever("percent_off", 10)}, domain.MRRSettings{},
			[]domain.CustomerDiscount{{At: 100, Discount: &domain.Discount{ID: "di_c", Duration: "forever", PercentOff: ptr(domain.Decimal("25"))}}}, 9000, ""},
		{"the customer's discount as of t", map[string]any{"items": monthly}, domain.MRRSettings{},
			[]domain.CustomerDiscount{{At: 100, Discount: &domain.Discount{ID: "di_c", Duration: "forever", PercentOff: ptr(domain.Decimal("25"))}}, {At: 900}}, 10000, ""},
	}
	for _, tc := range cases {
		got, attention := valued(t, subObject(tc.fields), tc.customer, tc.set)
		if got != tc.want || !strings.Contains(attention, tc.attend) || (tc.attend == "" && attention != "") {
			t.Errorf("%s: MRR %d (attention %q), want %d (%q)", tc.name, got, attention, tc.want, tc.attend)
		}
	}
}

// A coupon with a decimal percent_off folds (it was once read as an integer and quarantined
// every event of its subscription), with either decoder.
func TestDecimalPercentOffDecodes(t *testing.T) {
	t.Parallel()
	f := fact("evt_1", "customer.subscription.updated", 1000, subObject(map[string]any{"items": items(item(1, perUnit(10000, "month", 1))),
		"discount": discount("di_1", coupon("forever", "percent_off", 12.5))}), "")
	row, err := domain.FoldSubscription([]domain.Fact{f})
	if err != nil || row.MRR == nil || *row.MRR != 8750 || len(row.Discounts) != 1 || *row.Discounts[0].PercentOff != "12.5" {
		t.Fatalf("%+v %v", row, err)
	}
	b, _ := json.Marshal(row.Discounts)
	if !strings.Contains(string(b), `"percent_off":"12.5"`) {
		t.Fatalf("discounts %s", b)
	}
}

const days = 86400

type wantMove struct {
	Kind   domain.MovementKind
	Amount int64
	At     int64
	Source string // the movement's first source event
}

func moves(t *testing.T, facts []domain.Fact, customer []domain.CustomerDiscount, set domain.MRRSettings) ([]wantMove, *int64) {
	t.Helper()
	row, h, err := domain.FoldSubscriptionHistory(facts)
	if err != nil {
		t.Fatal(err)
	}
	var out []wantMove
	var sum int64
	for i, m := range h.Value(&row, customer, set) {
		if m.Seq != i || m.Amount != m.MRRAfter-m.MRRBefore || m.Settings != set.String() || m.Subscription != "sub_1" || m.Customer != "cus_1" {
			t.Fatalf("movement %+v", m)
		}
		sum += m.Amount
		out = append(out, wantMove{m.Kind, m.Amount, m.At, m.SourceEvents[0]})
	}
	return out, row.MRR
}

func TestMovementsUnderEachSetting(t *testing.T) {
	t.Parallel()
	monthly := items(item(1, perUnit(10000, "month", 1)))
	at := func(d int64) int64 { return 1000 + d*days }
	ev := func(id string, d int64, typ string, fields map[string]any) domain.Fact {
		return fact(id, typ, at(d), subObject(with(map[string]any{"items": monthly}, flatten(fields)...)), "")
	}
	upd := "customer.subscription.updated"
	cases := []struct {
		name     string
		facts    []domain.Fact
		customer []domain.CustomerDiscount
		set      domain.MRRSettings
		want     []wantMove
		mrr      int64 // the row's, as of the latest event; -1 NULL
	}{
		{"a repeating discount's end is an expansion at its end", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", map[string]any{"discount": discount("di_r", coupon("repeating", "percent_off", 20), "end", at(90))}),
			ev("evt_2", 40, upd, map[string]any{"discount": discount("di_r", coupon("repeating", "percent_off", 20), "end", at(90)), "metadata": map[string]any{"a": "b"}}),
		}, nil, domain.MRRSettings{}, []wantMove{{"new", 8000, at(0), "evt_1"}, {"expansion", 2000, at(90), "evt_2"}}, 8000},
		{"a once discount under one_time is in force until it ends", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", map[string]any{"discount": discount("di_o", coupon("once", "percent_off", 50), "end", at(30))}),
		}, nil, domain.MRRSettings{Discounts: domain.DiscountsOneTime}, []wantMove{{"new", 5000, at(0), "evt_1"}, {"expansion", 5000, at(30), "evt_1"}}, 5000},
		{"past_due counts by default", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 30, upd, map[string]any{"status": "past_due"}), ev("evt_3", 40, upd, nil),
		}, nil, domain.MRRSettings{}, []wantMove{{"new", 10000, at(0), "evt_1"}}, 10000},
		{"past_due N days is a churn at p + N, paid again a reactivation", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 30, upd, map[string]any{"status": "past_due"}),
			ev("evt_3", 31, upd, map[string]any{"status": "past_due", "metadata": map[string]any{"retry": "1"}}), ev("evt_4", 40, upd, nil),
		}, nil, domain.MRRSettings{PastDueDays: 3}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"churn", -10000, at(33), "evt_3"}, {"reactivation", 10000, at(40), "evt_4"}}, 10000},
		{"past_due shorter than N moves nothing", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 30, upd, map[string]any{"status": "past_due"}), ev("evt_3", 32, upd, nil),
		}, nil, domain.MRRSettings{PastDueDays: 3}, []wantMove{{"new", 10000, at(0), "evt_1"}}, 10000},
		{"unpaid churns", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 30, upd, map[string]any{"status": "unpaid"}),
		}, nil, domain.MRRSettings{}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"churn", -10000, at(30), "evt_2"}}, 0},
		{"an immediate cancellation churns at cancellation", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 10, "customer.subscription.deleted", map[string]any{"status": "canceled"}),
		}, nil, domain.MRRSettings{}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"churn", -10000, at(10), "evt_2"}}, 0},
		{"or at the end of its period", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 10, "customer.subscription.deleted", map[string]any{"status": "canceled"}),
		}, nil, domain.MRRSettings{ChurnAt: domain.ChurnAtPeriodEnd}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"churn", -10000, 30 * days, "evt_2"}}, 10000},
		{"cancel_at_period_end: the two agree", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 30, "customer.subscription.deleted", map[string]any{"status": "canceled", "current_period_end": at(30)}),
		}, nil, domain.MRRSettings{ChurnAt: domain.ChurnAtPeriodEnd}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"churn", -10000, at(30), "evt_2"}}, 0},
		{"paused collection counts by default", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 5, upd, map[string]any{"pause_collection": map[string]any{"behavior": "void"}}), ev("evt_3", 20, upd, nil),
		}, nil, domain.MRRSettings{}, []wantMove{{"new", 10000, at(0), "evt_1"}}, 10000},
		{"paused = zero: pause and resume, never churn", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 5, upd, map[string]any{"pause_collection": map[string]any{"behavior": "void"}}), ev("evt_3", 20, upd, nil),
		}, nil, domain.MRRSettings{Paused: domain.PausedZero}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"pause", -10000, at(5), "evt_2"}, {"resume", 10000, at(20), "evt_3"}}, 10000},
		{"canceled while paused, back later: a reactivation", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 5, upd, map[string]any{"pause_collection": map[string]any{"behavior": "void"}}),
			ev("evt_3", 20, upd, map[string]any{"status": "unpaid"}), ev("evt_4", 25, upd, nil),
		}, nil, domain.MRRSettings{Paused: domain.PausedZero}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"pause", -10000, at(5), "evt_2"}, {"reactivation", 10000, at(25), "evt_4"}}, 10000},
		{"quantity up, price down", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 5, upd, map[string]any{"items": items(item(3, perUnit(10000, "month", 1)))}),
			ev("evt_3", 9, upd, map[string]any{"items": items(item(3, perUnit(9000, "month", 1)))}),
		}, nil, domain.MRRSettings{}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"expansion", 20000, at(5), "evt_2"}, {"contraction", -3000, at(9), "evt_3"}}, 27000},
		{"a trial converts: new at conversion", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", map[string]any{"status": "trialing"}), ev("evt_2", 14, upd, nil),
		}, nil, domain.MRRSettings{}, []wantMove{{"new", 10000, at(14), "evt_2"}}, 10000},
		{"the customer's discount, from its own events", []domain.Fact{ev("evt_1", 0, "customer.subscription.created", nil)},
			[]domain.CustomerDiscount{{At: at(10), Discount: &domain.Discount{ID: "di_c", Duration: "repeating", PercentOff: ptr(domain.Decimal("25")), End: ptr(at(70))}}},
			domain.MRRSettings{}, []wantMove{{"new", 10000, at(0), "evt_1"}, {"contraction", -2500, at(10), "evt_1"}, {"expansion", 2500, at(70), "evt_1"}}, 7500},
		{"an unvalued state moves nothing and the row is NULL", []domain.Fact{
			ev("evt_1", 0, "customer.subscription.created", nil), ev("evt_2", 5, upd, map[string]any{"items": items(item(3, tiered("volume", nil)))}),
		}, nil, domain.MRRSettings{}, []wantMove{{"new", 10000, at(0), "evt_1"}}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, mrr := moves(t, tc.facts, tc.customer, tc.set)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("movements\n%+v\nwant\n%+v", got, tc.want)
			}
			if m := int64(-1); mrr != nil && *mrr != tc.mrr || mrr == nil && m != tc.mrr {
				t.Fatalf("row MRR %v, want %d", mrr, tc.mrr)
			}
			// The log is a function of the set of events: every arrival order, and a duplicate.
			for _, p := range permutations(tc.facts) {
				again, _ := moves(t, append(p, p[0]), tc.customer, tc.set)
				if !reflect.DeepEqual(again, got) {
					t.Fatalf("arrival %s: %+v", eventIDs(p), again)
				}
			}
		})
	}
}

func flatten(m map[string]any) []any {
	var out []any
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

func TestParseMRRSettings(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	s, err := domain.ParseMRRSettings(env())
	if err != nil || s != domain.DefaultMRRSettings() || s.String() != "discounts=recurring churn_at=cancellation past_due_days=0 paused=count" {
		t.Fatalf("defaults %+v %v %s", s, err, s)
	}
	if (domain.MRRSettings{}).String() != s.String() {
		t.Fatal("the zero value is not the defaults")
	}
	s, err = domain.ParseMRRSettings(env("LEDGER_MRR_DISCOUNTS", "both", "LEDGER_MRR_CHURN_AT", "period_end", "LEDGER_MRR_PAST_DUE_DAYS", "14",
		"LEDGER_MRR_PAUSED", "zero", "LEDGER_FX_RATE_DATE", "report_date", "LEDGER_REPORTING_CURRENCY", "eur"))
	if err != nil || s.String() != "discounts=both churn_at=period_end past_due_days=14 paused=zero" || s.FXRateDate != "report_date" || s.ReportingCurrency != "eur" {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range [][2]string{{"LEDGER_MRR_DISCOUNTS", "forever"}, {"LEDGER_MRR_CHURN_AT", "later"}, {"LEDGER_MRR_PAST_DUE_DAYS", "-1"},
		{"LEDGER_MRR_PAST_DUE_DAYS", "3.5"}, {"LEDGER_MRR_PAUSED", "skip"}, {"LEDGER_FX_RATE_DATE", "today"}, {"LEDGER_REPORTING_CURRENCY", "USD"}} {
		_, err := domain.ParseMRRSettings(env(bad[0], bad[1]))
		if err == nil || !strings.Contains(err.Error(), bad[0]) || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad[1])) {
			t.Errorf("%s=%s: %v", bad[0], bad[1], err)
		}
		if err := (domain.MRRSettings{Discounts: "x"}).Validate(); err == nil {
			t.Error("Validate accepts a bad value")
		}
	}
}

// The customer's discount history: one entry per change, in the ordering rule's order.
func TestCustomerDiscountHistory(t *testing.T) {
	t.Parallel()
	cust := func(id string, created int64, d any) domain.Fact {
		return fact(id, "customer.updated", created, obj(map[string]any{"id": "cus_1", "object": "customer", "discount": d}), "")
	}
	d := discount("di_c", coupon("forever", "percent_off", 12.5))
	facts := []domain.Fact{cust("evt_1", 10, nil), cust("evt_2", 20, d), cust("evt_3", 30, d), cust("evt_4", 40, nil)}
	for _, p := range permutations(facts) {
		row, err := domain.FoldCustomer(p)
		if err != nil {
			t.Fatal(err)
		}
		h := row.DiscountHistory
		if len(h) != 2 || h[0].At != 20 || h[0].Discount == nil || *h[0].Discount.PercentOff != "12.5" || h[1].At != 40 || h[1].Discount != nil || row.Discount != nil {
			b, _ := json.Marshal(h)
			t.Fatalf("arrival %s: history %s", eventIDs(p), b)
		}
	}
}
