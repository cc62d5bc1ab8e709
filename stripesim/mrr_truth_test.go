package stripesim_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/stripesim"
)

// runEvents is what a played account's webhooks say about its subscriptions, read from the
// rendered JSON (not from the simulator's structs).
type runEvents struct {
	paused, pastDue, canceledEarly, discounted, unvaluable, canceled map[string]bool
	customerOf                                                       map[string]string
	lastEvent                                                        map[string]int64
	// lastCustomerDiscount is when each customer's own discount last changed.
	lastCustomerDiscount map[string]int64
	discountedCustomers  map[string]bool
}

type wireSub struct {
	ID               string                    `json:"id"`
	Customer         string                    `json:"customer"`
	Status           string                    `json:"status"`
	EndedAt          *int64                    `json:"ended_at"`
	CurrentPeriodEnd int64                     `json:"current_period_end"`
	PauseCollection  json.RawMessage           `json:"pause_collection"`
	Discount         json.RawMessage           `json:"discount"`
	Discounts        []json.RawMessage         `json:"discounts"`
	Items            struct{ Data []wireItem } `json:"items"`
}

type wireItem struct {
	Discounts []json.RawMessage `json:"discounts"`
	Price     struct {
		BillingScheme     string            `json:"billing_scheme"`
		Tiers             []json.RawMessage `json:"tiers"`
		TiersMode         *string           `json:"tiers_mode"`
		TransformQuantity json.RawMessage   `json:"transform_quantity"`
		UnitAmount        *int64            `json:"unit_amount"`
		UnitAmountDecimal *string           `json:"unit_amount_decimal"`
		Recurring         struct {
			Interval      string `json:"interval"`
			IntervalCount int    `json:"interval_count"`
			UsageType     string `json:"usage_type"`
		} `json:"recurring"`
	} `json:"price"`
}

type wireEvent struct {
	Type string `json:"type"`
	Data struct {
		Object   json.RawMessage            `json:"object"`
		Previous map[string]json.RawMessage `json:"previous_attributes"`
	} `json:"data"`
	Created int64 `json:"created"`
}

func readRun(t *testing.T, sim *stripesim.Sim) runEvents {
	t.Helper()
	r := runEvents{paused: map[string]bool{}, pastDue: map[string]bool{}, canceledEarly: map[string]bool{}, discounted: map[string]bool{},
		unvaluable: map[string]bool{}, canceled: map[string]bool{}, customerOf: map[string]string{}, discountedCustomers: map[string]bool{},
		lastEvent: map[string]int64{}, lastCustomerDiscount: map[string]int64{}}
	for _, ev := range sim.Events() {
		var e wireEvent
		if err := json.Unmarshal(ev.Webhook, &e); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(e.Type, "customer.subscription."):
			var s wireSub
			if err := json.Unmarshal(e.Data.Object, &s); err != nil {
				t.Fatal(err)
			}
			r.customerOf[s.ID] = s.Customer
			r.lastEvent[s.ID] = e.Created
			if string(s.PauseCollection) != "null" {
				r.paused[s.ID] = true
			}
			if s.Status == "past_due" {
				r.pastDue[s.ID] = true
			}
			if s.Status == "canceled" {
				r.canceled[s.ID] = true
				if s.EndedAt != nil && *s.EndedAt < s.CurrentPeriodEnd {
					r.canceledEarly[s.ID] = true
				}
			}
			if len(s.Discounts) > 0 || string(s.Discount) != "null" {
				r.discounted[s.ID] = true
			}
			for _, d := range s.Discounts {
				if d[0] == '"' {
					r.unvaluable[s.ID] = true
				}
			}
			for _, it := range s.Items.Data {
				if len(it.Discounts) > 0 {
					r.discounted[s.ID] = true
				}
				if it.Price.BillingScheme == "tiered" && len(it.Price.Tiers) == 0 {
					r.unvaluable[s.ID] = true
				}
			}
		case strings.HasPrefix(e.Type, "customer.discount."):
			var d struct {
				Customer     string  `json:"customer"`
				Subscription *string `json:"subscription"`
			}
			_ = json.Unmarshal(e.Data.Object, &d)
			if d.Subscription == nil {
				r.discountedCustomers[d.Customer] = true
				r.lastCustomerDiscount[d.Customer] = max(r.lastCustomerDiscount[d.Customer], e.Created)
			}
		}
	}
	for sub, cus := range r.customerOf {
		if r.discountedCustomers[cus] {
			r.discounted[sub] = true
		}
	}
	return r
}

func played(t *testing.T, seed uint64, customers int) *stripesim.Sim {
	t.Helper()
	sim := stripesim.New(stripesim.Config{Seed: seed, Customers: customers, End: end})
	sim.Run(time.Time{})
	return sim
}

func truth(t *testing.T, sim *stripesim.Sim, set stripesim.TruthSettings) *stripesim.MRRTruth {
	t.Helper()
	tr, err := sim.TruthMRR(set)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var settingsVariants = []stripesim.TruthSettings{
	{}, {Discounts: "one_time"}, {Discounts: "both"}, {ChurnAt: "period_end"}, {PastDueDays: 3}, {Paused: "zero"},
	{Discounts: "both", ChurnAt: "period_end", PastDueDays: 5, Paused: "zero"},
}

// The truth's invariants over a played account, under every setting: each day's movements sum
// to its MRR change; ARR is 12 × MRR; each subscription's movements chain and are of the right
// kind; the last day's MRR is the movements so far; a canceled subscription ends at 0; one that
// cannot be valued has no movements and is counted.
func TestTruthInvariants(t *testing.T) {
	t.Parallel()
	sim := played(t, 7, 150)
	run := readRun(t, sim)
	metrics := sim.TruthMetrics()
	for _, set := range settingsVariants {
		tr := truth(t, sim, set)
		prev := map[string]int64{}
		lastDay := tr.Days[len(tr.Days)-1].Day
		for _, d := range tr.Days {
			f := d.TruthFigures
			kinds := f.New + f.Expansion + f.Contraction + f.Churn + f.Reactivation + f.Pause + f.Resume
			if f.MRR-prev[d.Currency] != f.NetNew || kinds != f.NetNew || f.ARR != 12*f.MRR || f.MRR < 0 || d.Subscribers < 0 || d.Unvalued < 0 ||
				f.New < 0 || f.Expansion < 0 || f.Contraction > 0 || f.Churn > 0 || f.Reactivation < 0 || f.Pause > 0 || f.Resume < 0 {
				t.Fatalf("%s: %s %s: %+v after MRR %d", set, d.Day, d.Currency, d, prev[d.Currency])
			}
			if set.Paused != "zero" && (f.Pause != 0 || f.Resume != 0) {
				t.Fatalf("%s: pause movements with paused=count: %+v", set, d)
			}
			prev[d.Currency] = f.MRR
		}
		dayEnd, _ := time.Parse(time.DateOnly, lastDay)
		dayEnd = dayEnd.Add(24 * time.Hour)
		upToEnd, total, rows := map[string]int64{}, map[string]int64{}, map[string]int64{}
		last := map[string]stripesim.TruthMovement{}
		for i, m := range tr.Movements {
			if i > 0 && m.At.Before(tr.Movements[i-1].At) {
				t.Fatalf("%s: movements out of order at %d", set, i)
			}
			p, seen := last[m.Subscription]
			okKind := false
			switch m.Kind {
			case stripesim.KindNew:
				okKind = !seen && m.MRRBefore == 0 && m.MRRAfter > 0
			case stripesim.KindReactivation, stripesim.KindResume:
				okKind = seen && m.MRRBefore == 0 && m.MRRAfter > 0
			case stripesim.KindExpansion:
				okKind = m.MRRBefore > 0 && m.MRRAfter > m.MRRBefore
			case stripesim.KindContraction:
				okKind = m.MRRAfter > 0 && m.MRRAfter < m.MRRBefore
			case stripesim.KindChurn, stripesim.KindPause:
				okKind = m.MRRBefore > 0 && m.MRRAfter == 0
			}
			if !okKind || m.Amount != m.MRRAfter-m.MRRBefore || (seen && p.MRRAfter != m.MRRBefore) || m.Settings != set.String() ||
				len(m.SourceEvents) == 0 || m.Livemode || m.Account != "" {
				t.Fatalf("%s: movement %+v after %+v", set, m, p)
			}
			last[m.Subscription] = m
			total[m.Subscription] += m.Amount
			if m.At.Before(dayEnd) {
				upToEnd[m.Currency] += m.Amount
			}
			// The row is as of the subscription's newest input: its latest event, or a later
			// change of its customer's own discount.
			if m.At.Unix() <= max(run.lastEvent[m.Subscription], run.lastCustomerDiscount[run.customerOf[m.Subscription]]) {
				rows[m.Currency] += m.Amount
			}
			if run.unvaluable[m.Subscription] {
				t.Fatalf("%s: an unvaluable subscription moved: %+v", set, m)
			}
		}
		unvalued := 0
		for _, d := range tr.Days {
			if d.Day == lastDay {
				if d.MRR != upToEnd[d.Currency] {
					t.Fatalf("%s: %s MRR %d, movements %d", set, d.Currency, d.MRR, upToEnd[d.Currency])
				}
				unvalued += d.Unvalued
			}
		}
		for sub := range run.canceled {
			if total[sub] != 0 {
				t.Fatalf("%s: canceled %s ends at %d", set, sub, total[sub])
			}
		}
		if set == (stripesim.TruthSettings{}) {
			if unvalued != metrics.Unvalued || unvalued == 0 {
				t.Fatalf("unvalued: %d on the last day, %d in the metrics", unvalued, metrics.Unvalued)
			}
			for cur, v := range metrics.MRR { // as of each subscription's newest input
				if v != rows[cur] {
					t.Fatalf("metrics MRR %s %d, movements to each latest event %d", cur, v, rows[cur])
				}
			}
		}
	}
}

// Each setting changes the figures of the subscriptions it is about and of no other; the FX
// rule changes only the reporting currency's.
func TestSettingsChangeOnlyWhatTheyShould(t *testing.T) {
	t.Parallel()
	sim := played(t, 11, 150)
	run := readRun(t, sim)
	bySub := func(tr *stripesim.MRRTruth) map[string]string {
		out := map[string]string{}
		for _, m := range tr.Movements {
			out[m.Subscription] += fmt.Sprintf("%d %s %d;", m.At.Unix(), m.Kind, m.Amount)
		}
		return out
	}
	base := truth(t, sim, stripesim.TruthSettings{})
	want := bySub(base)
	for _, tc := range []struct {
		set      stripesim.TruthSettings
		affected map[string]bool
	}{
		{stripesim.TruthSettings{Discounts: "one_time"}, run.discounted},
		{stripesim.TruthSettings{Discounts: "both"}, run.discounted},
		{stripesim.TruthSettings{ChurnAt: "period_end"}, run.canceledEarly},
		{stripesim.TruthSettings{PastDueDays: 3}, run.pastDue},
		{stripesim.TruthSettings{Paused: "zero"}, run.paused},
	} {
		got := bySub(truth(t, sim, tc.set))
		changed := 0
		for sub := range run.customerOf {
			if got[sub] == want[sub] {
				continue
			}
			if !tc.affected[sub] {
				t.Errorf("%s changed %s, which it is not about:\n%s\n%s", tc.set, sub, want[sub], got[sub])
			}
			changed++
		}
		if changed == 0 {
			t.Errorf("%s changed nothing (%d subscriptions it is about)", tc.set, len(tc.affected))
		}
	}
	ps := truth(t, sim, stripesim.TruthSettings{ReportingCurrency: "eur"})
	rd := truth(t, sim, stripesim.TruthSettings{ReportingCurrency: "eur", FXRateDate: "report_date"})
	if !reflect.DeepEqual(ps.Days, base.Days) || !reflect.DeepEqual(rd.Days, base.Days) || reflect.DeepEqual(ps.Reporting, rd.Reporting) {
		t.Fatal("the FX rule changed the per-currency days, or not the reporting currency's")
	}
	var fx int64
	for _, d := range rd.Reporting {
		if d.Figures == nil || d.FXEffect == nil {
			t.Fatalf("report_date %s: %+v", d.Day, d)
		}
		fx += *d.FXEffect
	}
	for _, d := range ps.Reporting {
		if d.Figures == nil || d.FXEffect != nil {
			t.Fatalf("period_start %s: %+v", d.Day, d)
		}
	}
	if fx == 0 {
		t.Fatal("90 days of moving rates and no FX effect")
	}
}

// The same seed gives the same truth, byte for byte.
func TestTruthIsDeterministic(t *testing.T) {
	t.Parallel()
	set := stripesim.TruthSettings{ReportingCurrency: "usd", Paused: "zero", PastDueDays: 2}
	a, _ := json.Marshal(truth(t, played(t, 3, 60), set))
	b, _ := json.Marshal(truth(t, played(t, 3, 60), set))
	c, _ := json.Marshal(truth(t, played(t, 4, 60), set))
	if string(a) != string(b) || string(a) == string(c) {
		t.Fatalf("same seed equal %v, other seed differs %v", string(a) == string(b), string(a) != string(c))
	}
}

// The catalogue sells every shape the MRR definition names, in five currencies, and the account
// does everything to its subscriptions the definition has a rule for.
func TestCatalogueHasEveryShape(t *testing.T) {
	t.Parallel()
	sim := played(t, 5, 250)
	seen := map[string]bool{}
	currencies := map[string]bool{}
	for _, ev := range sim.Events() {
		var e wireEvent
		_ = json.Unmarshal(ev.Webhook, &e)
		switch {
		case strings.HasPrefix(e.Type, "customer.subscription."):
			var s wireSub
			_ = json.Unmarshal(e.Data.Object, &s)
			var raw struct {
				Currency string `json:"currency"`
			}
			_ = json.Unmarshal(e.Data.Object, &raw)
			currencies[raw.Currency] = true
			seen["status "+s.Status] = true
			if string(s.PauseCollection) != "null" {
				seen["paused"] = true
			}
			if _, ok := e.Data.Previous["pause_collection"]; ok && string(s.PauseCollection) == "null" {
				seen["resumed"] = true
			}
			if old, ok := e.Data.Previous["status"]; ok {
				seen["status "+strings.Trim(string(old), `"`)+" → "+s.Status] = true
			}
			if _, ok := e.Data.Previous["items"]; ok {
				seen["items changed"] = true
			}
			if e.Type == "customer.subscription.deleted" && s.EndedAt != nil && *s.EndedAt < s.CurrentPeriodEnd {
				seen["canceled mid-period"] = true
			}
			intervals := map[string]bool{}
			for _, it := range s.Items.Data {
				p := it.Price
				r := p.Recurring
				intervals[fmt.Sprint(r.Interval, r.IntervalCount)] = true
				seen[fmt.Sprintf("interval %s×%d", r.Interval, r.IntervalCount)] = true
				switch {
				case r.UsageType == "metered":
					seen["metered"] = true
				case p.BillingScheme == "tiered" && len(p.Tiers) == 0:
					seen["tiers not expanded"] = true
				case p.BillingScheme == "tiered":
					seen["tiered "+*p.TiersMode] = true
				case string(p.TransformQuantity) != "null":
					seen["package"] = true
				case p.UnitAmount == nil && p.UnitAmountDecimal != nil:
					seen["decimal unit amount"] = true
				}
				if len(it.Discounts) > 0 {
					seen["item-level discount"] = true
				}
			}
			if len(intervals) > 1 {
				seen["mixed intervals"] = true
			}
			if len(s.Discounts) > 1 {
				seen["stacked discounts"] = true
			}
			for _, d := range s.Discounts {
				if d[0] == '"' {
					seen["discount by ID only"] = true
					continue
				}
				var dc struct {
					PromotionCode *string `json:"promotion_code"`
					Coupon        struct {
						Duration   string       `json:"duration"`
						PercentOff *json.Number `json:"percent_off"`
						AmountOff  *int64       `json:"amount_off"`
					} `json:"coupon"`
				}
				_ = json.Unmarshal(d, &dc)
				seen["coupon "+dc.Coupon.Duration] = true
				switch {
				case dc.Coupon.PercentOff != nil:
					seen["percent off "+string(*dc.Coupon.PercentOff)] = true
				case dc.Coupon.AmountOff != nil:
					seen["amount off"] = true
				}
				if dc.PromotionCode != nil {
					seen["promotion code"] = true
				}
			}
		case e.Type == "customer.discount.created":
			var d struct{ Subscription *string }
			_ = json.Unmarshal(e.Data.Object, &d)
			if d.Subscription == nil {
				seen["customer-level discount"] = true
			}
		case e.Type == "customer.discount.deleted":
			var d struct {
				End    *int64 `json:"end"`
				Coupon struct{ Duration string }
			}
			_ = json.Unmarshal(e.Data.Object, &d)
			if d.End != nil && e.Created > *d.End {
				seen["repeating removed after its end"] = true
			}
			if d.End != nil && e.Created <= *d.End {
				t.Errorf("a repeating discount removed at %d, before its end %d", e.Created, *d.End)
			}
			if d.Coupon.Duration == "once" {
				seen["once removed"] = true
			}
		}
	}
	for _, want := range []string{"interval month×1", "interval month×3", "interval year×1", "interval week×1", "interval week×2",
		"metered", "tiers not expanded", "tiered volume", "tiered graduated", "package", "decimal unit amount", "mixed intervals",
		"item-level discount", "stacked discounts", "discount by ID only", "coupon once", "coupon repeating", "coupon forever",
		"percent off 12.5", "percent off 100", "amount off", "promotion code", "customer-level discount", "repeating removed after its end",
		"once removed", "paused", "resumed", "items changed", "canceled mid-period", "status trialing → active",
		"status active → past_due", "status past_due → active", "status past_due → unpaid"} {
		if !seen[want] {
			t.Errorf("no %s in the run", want)
		}
	}
	if len(currencies) != 5 {
		t.Errorf("currencies %v", currencies)
	}
}

// Invoices follow the prices and the discounts: an invoice of a subscription that never had a
// discount totals its lines (plus any tax); with discounts it is at most that. Every line has a
// quantity (a metered one, its usage).
func TestInvoicesFollowPricesAndDiscounts(t *testing.T) {
	t.Parallel()
	sim := played(t, 9, 150)
	run := readRun(t, sim)
	var invoices []struct {
		Total        int64   `json:"total"`
		Tax          *int64  `json:"tax"`
		Subscription *string `json:"subscription"`
		Lines        struct {
			Data []struct {
				Amount    int64 `json:"amount"`
				Quantity  int64 `json:"quantity"`
				Proration bool  `json:"proration"`
			}
		} `json:"lines"`
	}
	if err := json.Unmarshal(sim.Truth().Objects["invoices"], &invoices); err != nil {
		t.Fatal(err)
	}
	plain, discounted := 0, 0
	for _, inv := range invoices {
		var sum int64
		proration := false
		for _, l := range inv.Lines.Data {
			sum += l.Amount
			proration = proration || l.Proration
			if l.Quantity <= 0 && !l.Proration {
				t.Fatalf("a line of quantity %d", l.Quantity)
			}
		}
		var tax int64
		if inv.Tax != nil {
			tax = *inv.Tax
		}
		switch {
		case inv.Subscription == nil || proration:
		case run.discounted[*inv.Subscription]:
			discounted++
			if inv.Total-tax > sum || inv.Total < 0 {
				t.Fatalf("discounted invoice %d (tax %d), lines %d", inv.Total, tax, sum)
			}
		default:
			plain++
			if inv.Total-tax != sum || sum <= 0 {
				t.Fatalf("invoice %d (tax %d), lines %d", inv.Total, tax, sum)
			}
		}
	}
	if plain == 0 || discounted == 0 {
		t.Fatalf("%d plain and %d discounted invoices", plain, discounted)
	}
}

// GET /sim/mrr serves a scope's truth under the query's settings, refuses a bad one by name,
// and agrees with Platform.TruthMRR.
func TestMRRTruthOverHTTP(t *testing.T) {
	t.Parallel()
	b := setupPlatform(t, small(23), stripesim.PlatformDelivery{}, stripesim.ServerConfig{})
	get := func(q string) (int, stripesim.MRRTruth, string) {
		t.Helper()
		resp, err := http.Get(b.url + "/sim/mrr" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var tr stripesim.MRRTruth
		_ = json.Unmarshal(raw, &tr)
		return resp.StatusCode, tr, string(raw)
	}
	set := stripesim.TruthSettings{Paused: "zero", PastDueDays: 4, ReportingCurrency: "gbp"}
	all, err := b.p.TruthMRR(set)
	if err != nil {
		t.Fatal(err)
	}
	acct := b.p.Accounts()[0].ID
	status, tr, _ := get("?livemode=false&account=" + acct + "&paused=zero&past_due_days=4&reporting_currency=gbp")
	var want *stripesim.MRRTruth
	for _, x := range all {
		if !x.Livemode && x.Account == acct {
			want = x
		}
	}
	if status != 200 || want == nil || len(want.Movements) == 0 || tr.Settings != set.String() || len(tr.Days) != len(want.Days) || len(tr.Reporting) != len(want.Reporting) ||
		len(tr.Movements) != len(want.Movements) || tr.Account != acct || tr.Livemode {
		t.Fatalf("%d: %s, %d days, %d movements (want %d, %d)", status, tr.Settings, len(tr.Days), len(tr.Movements), len(want.Days), len(want.Movements))
	}
	for q, param := range map[string]string{"?paused=maybe": "paused", "?past_due_days=x": "past_due_days", "?past_due_days=-2": "past_due_days",
		"?discounts=all": "discounts", "?churn_at=now": "churn_at", "?fx_rate_date=x": "fx_rate_date", "?reporting_currency=USD": "reporting_currency"} {
		if status, _, body := get(q); status != 400 || !strings.Contains(body, `"param":"`+param+`"`) {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
	if status, _, _ := get("?account=acct_nope"); status != 404 {
		t.Fatalf("unknown account: %d", status)
	}
}

// BenchmarkTruthMRR is the truth's cost over a played account (customers per b.N-independent
// size), so a ledger-side test knows what computing it adds: all settings at their defaults plus
// a reporting currency.
func BenchmarkTruthMRR(b *testing.B) {
	for _, customers := range []int{200, 2000} {
		b.Run(fmt.Sprintf("customers=%d", customers), func(b *testing.B) {
			sim := stripesim.New(stripesim.Config{Seed: 1, Customers: customers, End: end})
			sim.Run(time.Time{})
			set := stripesim.TruthSettings{ReportingCurrency: "usd", FXRateDate: "report_date"}
			b.ResetTimer()
			for range b.N {
				if _, err := sim.TruthMRR(set); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
