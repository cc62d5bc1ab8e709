package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
)

// A hand-built movement log: subscription events appended to the log and folded by the
// projection engine, so every figure below comes through the real pipeline. Amounts are monthly
// prices in minor units.
//
//	usd, platform, live:  Jan 10 a new 1000; Jan 15 b new 2000; Feb 5 a 1500 (expansion);
//	                      Feb 20 b 1200 (contraction); Mar 3 b canceled (churn); Mar 10 c new 3000;
//	                      Apr 5 c unpaid (churn); Apr 20 c active again (reactivation)
//	jpy, platform, live:  Jan 12 d new ¥5000
//	usd, acct_X, live:    Jan 1 e new 700
//	gbp, platform, test:  Feb 2 f new £10.00 (no rate anywhere)
type step struct {
	day                   string
	sub, cus, cur, status string
	amount                int64
	account               string
	live                  bool
	deleted               bool
}

var log1 = []step{
	{day: "2026-01-10", sub: "sub_a", cus: "cus_a", cur: "usd", status: "active", amount: 1000, live: true},
	{day: "2026-01-15", sub: "sub_b", cus: "cus_b", cur: "usd", status: "active", amount: 2000, live: true},
	{day: "2026-02-05", sub: "sub_a", cus: "cus_a", cur: "usd", status: "active", amount: 1500, live: true},
	{day: "2026-02-20", sub: "sub_b", cus: "cus_b", cur: "usd", status: "active", amount: 1200, live: true},
	{day: "2026-03-03", sub: "sub_b", cus: "cus_b", cur: "usd", status: "canceled", amount: 1200, live: true, deleted: true},
	{day: "2026-03-10", sub: "sub_c", cus: "cus_c", cur: "usd", status: "active", amount: 3000, live: true},
	{day: "2026-04-05", sub: "sub_c", cus: "cus_c", cur: "usd", status: "unpaid", amount: 3000, live: true},
	{day: "2026-04-20", sub: "sub_c", cus: "cus_c", cur: "usd", status: "active", amount: 3000, live: true},
	{day: "2026-01-12", sub: "sub_d", cus: "cus_d", cur: "jpy", status: "active", amount: 5000, live: true},
	{day: "2026-01-01", sub: "sub_e", cus: "cus_e", cur: "usd", status: "active", amount: 700, live: true, account: "acct_X"},
	{day: "2026-02-02", sub: "sub_f", cus: "cus_f", cur: "gbp", status: "active", amount: 1000},
}

func events(t *testing.T, steps []step) []domain.Event {
	t.Helper()
	seen := map[string]bool{}
	var out []domain.Event
	for i, s := range steps {
		at, _ := time.Parse(time.DateOnly, s.day)
		created := at.Add(12 * time.Hour).Unix()
		typ := "customer.subscription.updated"
		if !seen[s.sub] {
			typ = "customer.subscription.created"
		}
		if s.deleted {
			typ = "customer.subscription.deleted"
		}
		seen[s.sub] = true
		account := "null"
		if s.account != "" {
			account = fmt.Sprintf("%q", s.account)
		}
		obj := fmt.Sprintf(`{"id":%q,"object":"subscription","customer":%q,"status":%q,"currency":%q,"livemode":%t,`+
			`"current_period_start":%d,"current_period_end":%d,"cancel_at_period_end":false,"created":%d,`+
			`"items":{"object":"list","data":[{"id":"si_%s","object":"subscription_item","quantity":1,"price":{"id":"price_%s_%d","object":"price","product":"prod_1","currency":%q,"unit_amount":%d,"recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]}}`,
			s.sub, s.cus, s.status, s.cur, s.live, created, created+30*86400, created, s.sub, s.sub, i, s.cur, s.amount)
		raw := fmt.Sprintf(`{"id":"evt_%d","object":"event","api_version":"2023-10-16","created":%d,"livemode":%t,"account":%s,`+
			`"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":%q,"data":{"object":%s}}`,
			i, created, s.live, account, typ, obj)
		ev, err := domain.NewEvent([]byte(raw), domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

type bundle struct {
	db *testkit.DB
	q  func(fx query.FX) *query.Queries
}

func setup(t *testing.T, steps []step) bundle {
	t.Helper()
	db := testkit.New(t)
	ctx := context.Background()
	if _, err := eventstore.New(db.Pool).Append(ctx, events(t, steps)); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	return bundle{db: db, q: func(fx query.FX) *query.Queries { return query.New(db.Pool, query.Config{FX: fx}) }}
}

// answer asks q for metric name with params ("k=v&…") and indexes its rows by period,
// currency and account.
func answer(t *testing.T, q *query.Queries, name, params string) (query.Answer, map[string]map[string]any) {
	t.Helper()
	v, _ := url.ParseQuery(params)
	m, err := query.ParseMetric(name, v, time.Date(2026, 4, 30, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	a, err := q.Answer(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]map[string]any{}
	for _, d := range a.Data {
		var r map[string]any
		dec := json.NewDecoder(strings.NewReader(string(d)))
		dec.UseNumber()
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		acct := "platform"
		if r["account"] != nil {
			acct = r["account"].(string)
		}
		key := fmt.Sprintf("%s %s %s", r["period"], r["currency"], acct)
		if r["month"] != nil {
			key += " +" + r["month"].(json.Number).String()
		}
		rows[key] = r
	}
	return a, rows
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case json.Number:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

// check compares the named cells of each row (key "period currency account") with want.
func check(t *testing.T, what string, rows map[string]map[string]any, want map[string]map[string]string) {
	t.Helper()
	for key, cols := range want {
		row, ok := rows[key]
		if !ok {
			t.Errorf("%s: no row %s (rows: %d)", what, key, len(rows))
			continue
		}
		for c, w := range cols {
			if got := cell(row[c]); got != w {
				t.Errorf("%s %s: %s = %s, want %s", what, key, c, got, w)
			}
		}
	}
}

func TestMetricFormulas(t *testing.T) {
	t.Parallel()
	b := setup(t, log1)
	q := b.q(query.FX{})
	const months = "interval=month&from=2026-01-01&to=2026-04-30"
	cases := []struct {
		metric, params string
		want           map[string]map[string]string
	}{
		{"mrr", months, map[string]map[string]string{
			"2026-01-01 usd platform": {"mrr": "3000", "arr": "36000", "active_subscribers": "2"},
			"2026-02-01 usd platform": {"mrr": "2700", "arr": "32400", "active_subscribers": "2"},
			"2026-03-01 usd platform": {"mrr": "4500", "active_subscribers": "2"},
			"2026-04-01 usd platform": {"mrr": "4500", "active_subscribers": "2"},
			"2026-01-01 jpy platform": {"mrr": "5000", "arr": "60000"},
		}},
		{"movements", months, map[string]map[string]string{
			"2026-01-01 usd platform": {"new_mrr": "3000", "expansion_mrr": "0", "net_mrr": "3000", "fx_effect": "0"},
			"2026-02-01 usd platform": {"expansion_mrr": "500", "contraction_mrr": "-800", "churned_mrr": "0", "net_mrr": "-300"},
			"2026-03-01 usd platform": {"new_mrr": "3000", "churned_mrr": "-1200", "net_mrr": "1800"},
			"2026-04-01 usd platform": {"churned_mrr": "-3000", "reactivation_mrr": "3000", "net_mrr": "0", "pause_mrr": "0", "resume_mrr": "0"},
		}},
		{"churn", months, map[string]map[string]string{
			// January starts from nothing: no rate.
			"2026-01-01 usd platform": {"mrr_start": "0", "gross_mrr_churn_rate": "null", "churn_rate_bps": "null"},
			// −(−800) ÷ 3000 and −(−800 + 500) ÷ 3000.
			"2026-02-01 usd platform": {"mrr_start": "3000", "gross_mrr_churn_rate": "0.266667", "net_mrr_churn_rate": "0.100000", "churn_rate_bps": "2667"},
			"2026-03-01 usd platform": {"mrr_start": "2700", "gross_mrr_churn_rate": "0.444444", "net_mrr_churn_rate": "0.444444"},
			// A churn and a reactivation of the same MRR: gross 3000 ÷ 4500, net 0.
			"2026-04-01 usd platform": {"mrr_start": "4500", "gross_mrr_churn_rate": "0.666667", "net_mrr_churn_rate": "0.000000"},
		}},
		{"subscribers", months, map[string]map[string]string{
			// Nobody churned: LTV = ARPA ÷ 1.67 % = 1500 ÷ 0.0167 = 89820.36.
			"2026-01-01 usd platform": {"subscribers": "2", "new_subscribers": "2", "churned_subscribers": "0", "subscriber_churn_rate": "0.000000",
				"arpa": "1500", "ltv": "89820", "quick_ratio": "null"},
			"2026-02-01 usd platform": {"subscribers": "2", "new_subscribers": "0", "subscriber_churn_rate": "0.000000", "arpa": "1350", "ltv": "80838",
				"quick_ratio": "0.625000"},
			// b left, c came: 1 ÷ (2 + 1); LTV = 2250 × 3.
			"2026-03-01 usd platform": {"subscribers": "2", "new_subscribers": "1", "churned_subscribers": "1", "subscriber_churn_rate": "0.333333",
				"arpa": "2250", "ltv": "6750", "quick_ratio": "2.500000"},
			"2026-04-01 usd platform": {"subscribers": "2", "new_subscribers": "1", "churned_subscribers": "1", "subscriber_churn_rate": "0.333333",
				"quick_ratio": "1.000000"},
		}},
		{"subscribers", "interval=day&from=2026-03-01&to=2026-03-31", map[string]map[string]string{
			// 30 days ending 2026-03-02: a and b since January, nobody new, nobody gone.
			"2026-03-02 usd platform": {"subscribers": "2", "new_subscribers": "0", "churned_subscribers": "0", "mrr": "2700"},
			"2026-03-03 usd platform": {"subscribers": "1", "churned_subscribers": "1", "subscriber_churn_rate": "0.500000", "mrr": "1500"},
			"2026-03-10 usd platform": {"subscribers": "2", "new_subscribers": "1", "subscriber_churn_rate": "0.333333", "arpa": "2250"},
		}},
		{"cohorts", months, map[string]map[string]string{
			"2026-01-01 usd platform +0": {"customers": "2", "base_mrr": "3000", "mrr": "3000", "nrr": "1.000000", "grr": "1.000000"},
			// a 1500 (min 1000), b 1200 (min 1200).
			"2026-01-01 usd platform +1": {"customers": "2", "mrr": "2700", "retained_mrr": "2200", "nrr": "0.900000", "grr": "0.733333"},
			"2026-01-01 usd platform +3": {"mrr": "1500", "retained_mrr": "1000", "nrr": "0.500000", "grr": "0.333333"},
			"2026-03-01 usd platform +1": {"customers": "1", "base_mrr": "3000", "mrr": "3000", "nrr": "1.000000", "grr": "1.000000"},
		}},
		{"mrr", months + "&account=all", map[string]map[string]string{
			"2026-01-01 usd platform": {"mrr": "3000"},
			"2026-01-01 usd acct_X":   {"mrr": "700"},
			"2026-01-01 usd all":      {"mrr": "3700", "active_subscribers": "3"},
			"2026-04-01 usd all":      {"mrr": "5200"},
		}},
		{"churn", months + "&account=all", map[string]map[string]string{
			// The total's rate is of the totals: 800 ÷ 3700.
			"2026-02-01 usd all": {"mrr_start": "3700", "gross_mrr_churn_rate": "0.216216"},
		}},
	}
	for _, c := range cases {
		_, rows := answer(t, q, c.metric, c.params)
		check(t, c.metric+" "+c.params, rows, c.want)
	}
	// Test mode is its own scope: the gbp subscription only, the live ones not.
	_, rows := answer(t, q, "mrr", months+"&livemode=false")
	check(t, "test mode", rows, map[string]map[string]string{"2026-02-01 gbp platform": {"mrr": "1000", "livemode": "false"}})
	if _, ok := rows["2026-02-01 usd platform"]; ok {
		t.Fatal("test mode answered live figures")
	}
	// A series cuts at its end: what happens after `to` is not counted.
	_, rows = answer(t, q, "mrr", "interval=month&from=2026-03-01&to=2026-03-05")
	check(t, "cut at to", rows, map[string]map[string]string{"2026-03-01 usd platform": {"mrr": "1500"}})
}

// MRR answers read the movement log at the cut: as_of stops at its instant, not at the end of
// its day, and known_at leaves out what the ledger had not yet received — in every MRR metric,
// the subscriber counts and the cohorts.
func TestMetricsAtACut(t *testing.T) {
	t.Parallel()
	b := setup(t, log1)
	q := b.q(query.FX{})
	const months = "interval=month&from=2026-01-01&to=2026-04-30"
	// sub_c's new movement is at 2026-03-10 12:00: six hours after the cut.
	_, rows := answer(t, q, "mrr", months+"&as_of=2026-03-10T06:00:00Z")
	check(t, "as_of", rows, map[string]map[string]string{"2026-03-01 usd platform": {"mrr": "1500", "active_subscribers": "1"}})
	if _, ok := rows["2026-04-01 usd platform"]; ok {
		t.Error("as_of answered a period after it")
	}
	_, rows = answer(t, q, "subscribers", "interval=day&from=2026-03-01&to=2026-03-31&as_of=2026-03-10T06:00:00Z")
	check(t, "subscribers as_of", rows, map[string]map[string]string{"2026-03-10 usd platform": {"subscribers": "1", "new_subscribers": "0", "mrr": "1500"}})
	// The first five events (sub_a's and sub_b's, through b's cancellation) are positions 1–5:
	// known at 5, sub_c, sub_d (jpy) and acct_X's sub_e had not arrived.
	const known = "&known_at=position:5"
	_, rows = answer(t, q, "mrr", months+known+"&account=all")
	check(t, "known_at", rows, map[string]map[string]string{
		"2026-04-01 usd platform": {"mrr": "1500"},
		"2026-04-01 usd all":      {"mrr": "1500", "active_subscribers": "1"},
	})
	for _, key := range []string{"2026-01-01 jpy platform", "2026-01-01 usd acct_X"} {
		if _, ok := rows[key]; ok {
			t.Errorf("known_at answered %s, which arrived later", key)
		}
	}
	_, rows = answer(t, q, "movements", months+known)
	check(t, "movements known_at", rows, map[string]map[string]string{"2026-03-01 usd platform": {"new_mrr": "0", "churned_mrr": "-1200"}})
	_, rows = answer(t, q, "cohorts", months+known)
	if _, ok := rows["2026-03-01 usd platform +1"]; ok {
		t.Error("known_at answered sub_c's cohort, which arrived later")
	}
	check(t, "cohorts known_at", rows, map[string]map[string]string{"2026-01-01 usd platform +3": {"mrr": "1500"}})
	// At the head, the cut changes nothing.
	_, rows = answer(t, q, "mrr", months+"&known_at=position:11")
	check(t, "known_at head", rows, map[string]map[string]string{"2026-04-01 usd platform": {"mrr": "4500"}})
}

// Unvalued subscriptions are counted in every MRR answer.
func TestUnvaluedCounted(t *testing.T) {
	t.Parallel()
	b := setup(t, log1[:2])
	q := b.q(query.FX{})
	a, _ := answer(t, q, "mrr", "interval=month&from=2026-01-01&to=2026-04-30")
	if a.Unvalued != 0 {
		t.Fatalf("unvalued %d, want 0", a.Unvalued)
	}
	// The ledger leaves a subscription it cannot value with mrr NULL; count what it holds.
	var null int64
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.subscriptions WHERE mrr IS NULL AND livemode AND account IS NULL`).Scan(&null); err != nil {
		t.Fatal(err)
	}
	if a.Unvalued != null {
		t.Fatalf("unvalued %d, the read model has %d", a.Unvalued, null)
	}
}

func mustMetric(t *testing.T, name, params string) query.Metric {
	t.Helper()
	v, _ := url.ParseQuery(params)
	m, err := query.ParseMetric(name, v, time.Date(2026, 4, 30, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The SQL views finance points a BI tool at give the figures the API gives.
func TestViewsAgreeWithTheAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, log1)
	q := b.q(query.FX{})
	ctx := context.Background()
	compare := func(what, sql string, rows map[string]map[string]any, keyOf func(vals []any) string, cols []string) {
		t.Helper()
		rs, err := b.db.Pool.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer rs.Close()
		n := 0
		for rs.Next() {
			vals, _ := rs.Values()
			row, ok := rows[keyOf(vals)]
			if !ok {
				continue
			}
			n++
			for i, c := range cols {
				got, want := cell(row[c]), fmt.Sprint(vals[i+1])
				if vals[i+1] == nil {
					want = "null"
				}
				if got != want {
					t.Errorf("%s %s: %s API %s, view %s", what, keyOf(vals), c, got, want)
				}
			}
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("%s: nothing compared", what)
		}
	}
	_, churn := answer(t, q, "churn", "interval=month&from=2026-01-01&to=2026-04-30")
	compare("mrr_rates_monthly", `SELECT month::text || ' ' || currency || ' platform', mrr_start, gross_mrr_churn_rate::text, net_mrr_churn_rate::text
		FROM ledger.mrr_rates_monthly WHERE livemode AND account IS NULL AND month BETWEEN '2026-01-01' AND '2026-04-01'`,
		churn, func(v []any) string { return v[0].(string) }, []string{"mrr_start", "gross_mrr_churn_rate", "net_mrr_churn_rate"})
	_, subs := answer(t, q, "subscribers", "interval=day&from=2026-01-01&to=2026-04-30")
	compare("subscribers_daily", `SELECT day::text || ' ' || currency || ' platform', subscribers, new_subscribers, churned_subscribers,
		subscriber_churn_rate::text, arpa, ltv FROM ledger.subscribers_daily WHERE livemode AND account IS NULL AND day BETWEEN '2026-01-01' AND '2026-04-30'`,
		subs, func(v []any) string { return v[0].(string) }, []string{"subscribers", "new_subscribers", "churned_subscribers", "subscriber_churn_rate", "arpa", "ltv"})
	_, cohorts := answer(t, q, "cohorts", "interval=month&from=2026-01-01&to=2026-04-30")
	compare("mrr_cohorts", `SELECT cohort::text || ' ' || currency || ' platform +' || month, customers, base_mrr, mrr, retained_mrr, nrr::text, grr::text
		FROM ledger.mrr_cohorts WHERE livemode AND account IS NULL AND cohort + month * interval '1 month' <= '2026-04-01'`,
		cohorts, func(v []any) string { return v[0].(string) }, []string{"customers", "base_mrr", "mrr", "retained_mrr", "nrr", "grr"})
}
