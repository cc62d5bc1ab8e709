package stripesim

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// timelineBundle is an account whose history a test writes event by event, at chosen instants,
// so that every movement can be worked out by hand.
type timelineBundle struct {
	s  *Sim
	t0 time.Time
}

func newTimeline(t *testing.T) *timelineBundle {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// One customer is scheduled, never played: the history is the test's alone.
	s := New(Config{Seed: 1, Customers: 1, Start: t0, End: t0.Add(70 * day)})
	return &timelineBundle{s: s, t0: t0}
}

// at is day d, 10:00 (plus extra).
func (b *timelineBundle) at(d int, extra ...time.Duration) time.Time {
	t := b.t0.Add(time.Duration(d)*day + 10*time.Hour)
	for _, e := range extra {
		t = t.Add(e)
	}
	return t
}

func (b *timelineBundle) emit(when time.Time, typ string, obj any, id string) {
	b.s.now = when
	b.s.emit(typ, obj, id, nil, false)
}

func (b *timelineBundle) truth(t *testing.T, set TruthSettings) *MRRTruth {
	t.Helper()
	b.s.now = b.t0.Add(70 * day)
	tr, err := b.s.TruthMRR(set)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func moves(tr *MRRTruth, sub string) string {
	var out []string
	for _, m := range tr.Movements {
		if m.Subscription == sub {
			out = append(out, fmt.Sprintf("%s %s %+d", m.At.Format("01-02 15:04"), m.Kind, m.Amount))
		}
	}
	return strings.Join(out, ", ")
}

func monthly(id string, amount, qty int64) SubscriptionItem {
	return SubscriptionItem{ID: id, Object: "subscription_item", Discounts: &DiscountRefs{}, Quantity: qty,
		Price: Price{ID: "price_" + id, Object: "price", BillingScheme: "per_unit", UnitAmount: ptr(amount),
			Recurring: &Recurring{Interval: "month", IntervalCount: 1, UsageType: "licensed"}}}
}

// usdLifecycle writes one subscription's life: signup, a seat added, a past_due spell of ten
// days, a pause of ten days, a repeating 20 % coupon for five days (removed a day late), an
// immediate cancellation ten days before its period ends.
func (b *timelineBundle) usdLifecycle() {
	c := &Customer{ID: "cus_usd", Object: "customer", Currency: ptr("usd")}
	b.emit(b.at(0, -time.Hour), "customer.created", c, c.ID)
	sub := &Subscription{ID: "sub_usd", Object: "subscription", Customer: c.ID, Currency: "usd", Status: "active",
		Discounts: &DiscountRefs{}, CurrentPeriodStart: b.at(0).Unix(), CurrentPeriodEnd: b.at(30).Unix()}
	sub.Items.Data = []SubscriptionItem{monthly("si_1", 3000, 1)}
	b.emit(b.at(0), "customer.subscription.created", sub, sub.ID)
	sub.Items.Data = []SubscriptionItem{monthly("si_1", 3000, 2)}
	b.emit(b.at(5), "customer.subscription.updated", sub, sub.ID)
	sub.Status = "past_due"
	b.emit(b.at(10), "customer.subscription.updated", sub, sub.ID)
	sub.Status = "active"
	b.emit(b.at(20), "customer.subscription.updated", sub, sub.ID)
	sub.PauseCollection = &PauseCollection{Behavior: "void"}
	b.emit(b.at(25), "customer.subscription.updated", sub, sub.ID)
	sub.CurrentPeriodStart, sub.CurrentPeriodEnd = b.at(30).Unix(), b.at(60).Unix()
	b.emit(b.at(30), "customer.subscription.updated", sub, sub.ID)
	sub.PauseCollection = nil
	b.emit(b.at(35), "customer.subscription.updated", sub, sub.ID)
	d := &Discount{ID: "di_1", Object: "discount", Coupon: Coupon{ID: "R20", Duration: "repeating", PercentOff: ptrNum("20")},
		Start: b.at(40).Unix(), End: ptr(b.at(45).Unix())}
	sub.Discounts, sub.Discount = &DiscountRefs{{ID: d.ID, Discount: d}}, d
	b.emit(b.at(40), "customer.subscription.updated", sub, sub.ID)
	sub.Discounts, sub.Discount = &DiscountRefs{}, nil
	b.emit(b.at(46), "customer.subscription.updated", sub, sub.ID) // Stripe removes it late
	sub.Status, sub.EndedAt, sub.CanceledAt = "canceled", ptr(b.at(50).Unix()), ptr(b.at(50).Unix())
	b.emit(b.at(50), "customer.subscription.deleted", sub, sub.ID)
}

// Every movement of one subscription's life, under each setting, worked out by hand: the
// setting moves what it should and nothing else.
func TestTimelineUnderEachSetting(t *testing.T) {
	t.Parallel()
	b := newTimeline(t)
	b.usdLifecycle()
	const (
		signup    = "01-01 10:00 new +3000, 01-06 10:00 expansion +3000"
		pastDue7  = "01-18 10:00 churn -6000, 01-21 10:00 reactivation +6000"
		paused    = "01-26 10:00 pause -6000, 02-05 10:00 resume +6000"
		coupon    = "02-10 10:00 contraction -1200, 02-15 10:00 expansion +1200" // ends at its end, not at the removal
		canceled  = "02-20 10:00 churn -6000"
		periodEnd = "03-02 10:00 churn -6000"
	)
	for _, tc := range []struct {
		set  TruthSettings
		want []string
	}{
		{TruthSettings{}, []string{signup, coupon, canceled}},
		{TruthSettings{PastDueDays: 7}, []string{signup, pastDue7, coupon, canceled}},
		{TruthSettings{PastDueDays: 10}, []string{signup, coupon, canceled}}, // churned and paid in the same second: no movement
		{TruthSettings{PastDueDays: 11}, []string{signup, coupon, canceled}}, // paid again first
		{TruthSettings{Paused: "zero"}, []string{signup, paused, coupon, canceled}},
		{TruthSettings{ChurnAt: "period_end"}, []string{signup, coupon, periodEnd}},
		{TruthSettings{Discounts: "one_time"}, []string{signup, canceled}},
		{TruthSettings{Discounts: "both"}, []string{signup, coupon, canceled}},
		{TruthSettings{PastDueDays: 7, Paused: "zero", ChurnAt: "period_end"}, []string{signup, pastDue7, paused, coupon, periodEnd}},
	} {
		tr := b.truth(t, tc.set)
		if got, want := moves(tr, "sub_usd"), strings.Join(tc.want, ", "); got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.set, got, want)
		}
		for _, m := range tr.Movements {
			if m.Settings != tc.set.String() || m.Amount != m.MRRAfter-m.MRRBefore || len(m.SourceEvents) == 0 {
				t.Errorf("%s: movement %+v", tc.set, m)
			}
		}
	}
	// The daily figures of the default: MRR at each day's end, the day's movements.
	tr := b.truth(t, TruthSettings{})
	days := map[string]TruthDay{}
	for _, d := range tr.Days {
		days[d.Day] = d
	}
	for day, want := range map[string]TruthFigures{
		"2026-01-01": {MRR: 3000, ARR: 36000, New: 3000, NetNew: 3000},
		"2026-01-06": {MRR: 6000, ARR: 72000, Expansion: 3000, NetNew: 3000},
		"2026-01-18": {MRR: 6000, ARR: 72000},
		"2026-02-10": {MRR: 4800, ARR: 57600, Contraction: -1200, NetNew: -1200},
		"2026-02-15": {MRR: 6000, ARR: 72000, Expansion: 1200, NetNew: 1200},
		"2026-02-20": {MRR: 0, ARR: 0, Churn: -6000, NetNew: -6000},
		"2026-03-12": {},
	} {
		if got := days[day]; got.TruthFigures != want || got.Currency != "usd" {
			t.Errorf("%s: %+v, want %+v", day, got, want)
		}
	}
	if days["2026-02-19"].Subscribers != 1 || days["2026-02-20"].Subscribers != 0 || len(tr.Days) != 71 {
		t.Errorf("subscribers %d then %d; %d days", days["2026-02-19"].Subscribers, days["2026-02-20"].Subscribers, len(tr.Days))
	}
	// A churned subscriber has 0, whatever the settings.
	for _, set := range []TruthSettings{{}, {ChurnAt: "period_end"}, {Paused: "zero", PastDueDays: 3}} {
		var sum int64
		for _, m := range b.truth(t, set).Movements {
			sum += m.Amount
		}
		if sum != 0 {
			t.Errorf("%s: a canceled subscription's movements add to %d", set, sum)
		}
	}
}

func ptrNum(s string) *json.Number { n := json.Number(s); return &n }

// A customer-level discount reaches the subscriptions that have none of their own, from the
// customer's own events, and ends at its end; the figures in a reporting currency follow the
// two FX rules, exactly, with jpy's zero decimals.
func TestCustomerDiscountAndReportingCurrency(t *testing.T) {
	t.Parallel()
	b := newTimeline(t)
	ceur := &Customer{ID: "cus_eur", Object: "customer", Currency: ptr("eur")}
	b.emit(b.at(1, -time.Hour), "customer.created", ceur, ceur.ID)
	eur := &Subscription{ID: "sub_eur", Object: "subscription", Customer: ceur.ID, Currency: "eur", Status: "active",
		Discounts: &DiscountRefs{}, CurrentPeriodStart: b.at(1).Unix(), CurrentPeriodEnd: b.at(31).Unix()}
	eur.Items.Data = []SubscriptionItem{monthly("si_e", 10000, 1)}
	b.emit(b.at(1), "customer.subscription.created", eur, eur.ID)
	d := &Discount{ID: "di_c", Object: "discount", Coupon: Coupon{ID: "W10", Duration: "repeating", PercentOff: ptrNum("10")},
		Customer: ptr(ceur.ID), Start: b.at(3).Unix(), End: ptr(b.at(8).Unix())}
	ceur.Discount = d
	b.emit(b.at(3), "customer.updated", ceur, ceur.ID)
	cjpy := &Customer{ID: "cus_jpy", Object: "customer", Currency: ptr("jpy")}
	b.emit(b.at(2, -time.Hour), "customer.created", cjpy, cjpy.ID)
	jpy := &Subscription{ID: "sub_jpy", Object: "subscription", Customer: cjpy.ID, Currency: "jpy", Status: "active",
		Discounts: &DiscountRefs{}, CurrentPeriodStart: b.at(2).Unix(), CurrentPeriodEnd: b.at(32).Unix()}
	jpy.Items.Data = []SubscriptionItem{monthly("si_j", 1350, 1)}
	b.emit(b.at(2), "customer.subscription.created", jpy, jpy.ID)

	tr := b.truth(t, TruthSettings{})
	if got, want := moves(tr, "sub_eur"), "01-02 10:00 new +10000, 01-04 10:00 contraction -1000, 01-09 10:00 expansion +1000"; got != want {
		t.Fatalf("eur:\n got %s\nwant %s", got, want)
	}
	for _, m := range tr.Movements {
		if m.Kind == KindExpansion && !m.TimeDriven || m.Kind == KindContraction && m.TimeDriven {
			t.Fatalf("time-driven wrong: %+v", m)
		}
	}

	rate := func(c string, day string) *big.Rat {
		d, _ := time.Parse(time.DateOnly, day)
		r, _ := FXRate(c, "usd", d)
		return r
	}
	cents := func(amount int64, c, day string) *big.Rat { // minor units of c → exact US cents
		v := new(big.Rat).Mul(big.NewRat(amount, 1), rate(c, day))
		if c == "jpy" {
			v.Mul(v, big.NewRat(100, 1))
		}
		return v
	}
	// period_start: each movement at its period start's rate (Jan 2 for eur, Jan 3 for jpy).
	ps := b.truth(t, TruthSettings{ReportingCurrency: "usd"})
	want := new(big.Rat).Add(cents(10000, "eur", "2026-01-02"), cents(1350, "jpy", "2026-01-03"))
	day9 := ps.Reporting[8]
	if day9.Day != "2026-01-09" || day9.Figures == nil || day9.Figures.MRR != roundHalfAway(want) || day9.FXEffect != nil ||
		day9.Figures.Expansion != roundHalfAway(cents(1000, "eur", "2026-01-02")) || day9.Subscribers != 2 {
		t.Fatalf("period_start %+v %+v, want MRR %s", day9, day9.Figures, want.FloatString(4))
	}
	// report_date: the day's MRR at the day's rates; the rest of the change is the FX effect.
	rd := b.truth(t, TruthSettings{ReportingCurrency: "usd", FXRateDate: "report_date"})
	mrr := func(day string, eurMRR int64) *big.Rat {
		return new(big.Rat).Add(cents(eurMRR, "eur", day), cents(1350, "jpy", day))
	}
	d9, d10 := rd.Reporting[8], rd.Reporting[9]
	if d9.Figures.MRR != roundHalfAway(mrr("2026-01-09", 10000)) || d9.Figures.Expansion != roundHalfAway(cents(1000, "eur", "2026-01-09")) {
		t.Fatalf("report_date day 9 %+v", d9.Figures)
	}
	fx := new(big.Rat).Sub(mrr("2026-01-10", 10000), mrr("2026-01-09", 10000))
	if d10.FXEffect == nil || *d10.FXEffect != roundHalfAway(fx) || d10.Figures.NetNew != 0 {
		t.Fatalf("report_date day 10 fx %v, want %s", d10.FXEffect, fx.FloatString(4))
	}
	// A currency without a rate leaves the converted figures NULL and says which.
	aud := &Subscription{ID: "sub_xxx", Object: "subscription", Customer: "cus_xxx", Currency: "xxx", Status: "active",
		Discounts: &DiscountRefs{}, CurrentPeriodStart: b.at(5).Unix(), CurrentPeriodEnd: b.at(35).Unix()}
	aud.Items.Data = []SubscriptionItem{monthly("si_x", 500, 1)}
	b.emit(b.at(5), "customer.subscription.created", aud, aud.ID)
	for _, rule := range []string{"period_start", "report_date"} {
		r := b.truth(t, TruthSettings{ReportingCurrency: "usd", FXRateDate: rule}).Reporting
		if r[4].Figures == nil || r[5].Figures != nil || len(r[5].Missing) != 1 || !strings.HasPrefix(r[5].Missing[0], "xxx 2026-01-06") {
			t.Fatalf("%s: day 5 %+v, day 6 %+v", rule, r[4].Figures, r[5])
		}
	}
}
