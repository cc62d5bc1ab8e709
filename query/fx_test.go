package query_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/query"
)

func TestRatesFileRefusedWholeNamingTheLine(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, file, want string }{
		{"bad date", "date,currency,rate\n2026-01-31,eur,1.08\n2026-13-01,eur,1.09\n", "line 3: date \"2026-13-01\""},
		{"float rate", "2026-01-31,eur,1.08e0\n", "line 1: rate \"1.08e0\""},
		{"negative", "2026-01-31,eur,1.08\n2026-02-01,eur,-1.08\n", "line 2: rate \"-1.08\""},
		{"zero", "2026-01-31,eur,0.000\n", "line 1: rate is 0"},
		{"upper currency", "2026-01-31,EUR,1.08\n", "line 1: currency \"EUR\""},
		{"reporting currency", "2026-01-31,usd,1\n", "line 1: currency usd is the reporting currency"},
		{"fields", "2026-01-31,eur\n", "line 1: 2 fields"},
		{"twice", "2026-01-31,eur,1.08\n2026-01-30,eur,1.07\n2026-01-31,eur,1.09\n", "line 3: eur 2026-01-31 is also on line 1"},
		{"empty", "date,currency,rate\n", "no rates"},
	}
	for _, c := range cases {
		_, err := query.ParseRates(strings.NewReader(c.file), "usd")
		var re *query.RatesError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal naming %q", c.name, err, c.want)
		}
	}
	rates, err := query.ParseRates(strings.NewReader("date,currency,rate\n2026-01-31,jpy,0.006712\n"), "usd")
	if err != nil || len(rates) != 1 || rates[0].Rate.RatString() != "839/125000" {
		t.Fatalf("a good file: %v %+v", err, rates)
	}
}

func TestRatesImportReplacesAndRecords(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	q := b.q(query.FX{})
	if _, err := q.ImportRates(ctx, "usd", "bad.csv", []byte("2026-01-31,eur,1.08\n2026-01-31,gbp,x\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad file: %v", err)
	}
	var n int
	_ = b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.fx_rates`).Scan(&n)
	if n != 0 {
		t.Fatalf("a refused file left %d rates", n)
	}
	first, err := q.ImportRates(ctx, "usd", "jan.csv", []byte("2026-01-31,eur,1.08\n2026-01-31,jpy,0.0067\n"))
	if err != nil || first.Added != 2 || first.Replaced != 0 {
		t.Fatalf("first import: %+v %v", first, err)
	}
	second, err := q.ImportRates(ctx, "usd", "fix.csv", []byte("2026-01-31,jpy,0.006712345678901234\n2026-02-01,jpy,0.0068\n"))
	if err != nil || second.Added != 1 || second.Replaced != 1 {
		t.Fatalf("second import: %+v %v", second, err)
	}
	var rate, old, newRate string
	var oldImport int64
	if err := b.db.Pool.QueryRow(ctx, `SELECT ledger.fx_rate('jpy', 'usd', '2026-01-31')::text`).Scan(&rate); err != nil || rate != "0.006712345678901234" {
		t.Fatalf("replaced rate %q %v: not exact", rate, err)
	}
	if err := b.db.Pool.QueryRow(ctx, `SELECT old_rate::text, old_import_id, new_rate::text FROM ledger.fx_rate_replacements WHERE import_id = $1`, second.ID).
		Scan(&old, &oldImport, &newRate); err != nil || old != "0.0067" || oldImport != first.ID || newRate != rate {
		t.Fatalf("replacement record: %s %d %s %v", old, oldImport, newRate, err)
	}
	var one, missing *string
	_ = b.db.Pool.QueryRow(ctx, `SELECT ledger.fx_rate('usd', 'usd', '2026-01-31')::text, ledger.fx_rate('chf', 'usd', '2026-01-31')::text`).Scan(&one, &missing)
	if one == nil || *one != "1" || missing != nil {
		t.Fatalf("same currency %v, missing %v (never 1)", one, missing)
	}
}

// MRR in the reporting currency: each movement at its period start's rate, or each period's
// MRR at the rate of its last day with the FX effect apart; ¥ has no minor unit, $ two.
func TestReportingCurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, log1)
	ctx := context.Background()
	rates := "date,currency,rate\n2026-01-12,jpy,0.0067\n2026-01-31,jpy,0.0070\n2026-02-28,jpy,0.0068\n"
	if _, err := b.q(query.FX{}).ImportRates(ctx, "usd", "rates.csv", []byte(rates)); err != nil {
		t.Fatal(err)
	}
	const months = "interval=month&from=2026-01-01&to=2026-02-28&reporting=true"
	ps := b.q(query.FX{Reporting: "usd", RateDate: query.FXPeriodStart})
	a, rows := answer(t, ps, "mrr", months)
	// ¥5000 × 0.0067 = $33.50 = 3350 cents, beside 3000 cents.
	check(t, "period_start", rows, map[string]map[string]string{
		"2026-01-01 usd platform": {"mrr": "6350", "arr": "76200"},
		"2026-02-01 usd platform": {"mrr": "6050"},
	})
	if a.Reporting != "usd" || a.MissingRatesTotal != 0 {
		t.Fatalf("answer: %+v", a)
	}
	_, rows = answer(t, ps, "movements", months)
	check(t, "period_start movements", rows, map[string]map[string]string{
		"2026-01-01 usd platform": {"new_mrr": "6350", "fx_effect": "0"},
	})
	rd := b.q(query.FX{Reporting: "usd", RateDate: query.FXReportDate})
	_, rows = answer(t, rd, "mrr", months)
	check(t, "report_date", rows, map[string]map[string]string{
		"2026-01-01 usd platform": {"mrr": "6500"},
		"2026-02-01 usd platform": {"mrr": "6100"},
	})
	_, rows = answer(t, rd, "movements", months)
	// February: ¥5000 went from $35.00 to $34.00, apart from the −300 of movements.
	check(t, "report_date movements", rows, map[string]map[string]string{
		"2026-01-01 usd platform": {"new_mrr": "6500", "fx_effect": "0"},
		"2026-02-01 usd platform": {"net_mrr": "-300", "fx_effect": "-100"},
	})
	// In a zero-decimal reporting currency: $30.00 at 150 ¥/$ is ¥4500.
	if _, err := b.q(query.FX{}).ImportRates(ctx, "jpy", "usdjpy.csv", []byte("2026-01-31,usd,150\n")); err != nil {
		t.Fatal(err)
	}
	_, rows = answer(t, b.q(query.FX{Reporting: "jpy", RateDate: query.FXReportDate}), "mrr", "interval=month&from=2026-01-01&to=2026-01-31&reporting=true")
	check(t, "into jpy", rows, map[string]map[string]string{"2026-01-01 jpy platform": {"mrr": "9500"}})
	// No rate for gbp anywhere: the figures that need one are null and the answer names the pair.
	a, rows = answer(t, ps, "mrr", months+"&livemode=false")
	check(t, "missing", rows, map[string]map[string]string{"2026-02-01 usd platform": {"mrr": "null", "arr": "null"}})
	if a.MissingRatesTotal != 1 || a.MissingRates[0] != (query.MissingRate{Currency: "gbp", Date: "2026-02-02"}) {
		t.Fatalf("missing rates: %+v", a.MissingRates)
	}
	// Without a reporting currency, asking for one is refused.
	_, err := b.q(query.FX{}).Answer(ctx, mustMetric(t, "mrr", months))
	var br *query.BadRequest
	if !errors.As(err, &br) || br.Code != "no_reporting_currency" {
		t.Fatalf("no reporting currency: %v", err)
	}
}
