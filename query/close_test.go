package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/stripesim"
)

var may = query.Period{Year: 2026, Month: time.May}

// metricFigures are May's figures of live mode's platform account as the metric series compute
// them (query.Series: another code path over the same read models), by currency.
func metricFigures(t *testing.T, b *books) map[string]query.Figures {
	t.Helper()
	out := map[string]query.Figures{}
	for _, name := range []string{"revenue", "mrr"} {
		m, err := query.ParseMetric(name, url.Values{"interval": {"month"}, "from": {"2026-05-01"}, "to": {"2026-05-31"}}, closeEnd)
		if err != nil {
			t.Fatal(err)
		}
		data, err := b.q.Series(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range data {
			var row struct {
				Period, Currency                          string
				GrossRevenue, Refunds, DisputeLosses, MRR int64
			}
			var raw map[string]any
			_ = json.Unmarshal(d, &raw)
			row.Period, row.Currency = raw["period"].(string), raw["currency"].(string)
			if row.Period != "2026-05-01" {
				continue
			}
			f := out[row.Currency]
			f.Currency = row.Currency
			if name == "revenue" {
				f.GrossRevenue, f.Refunds, f.DisputeLosses = int64(raw["gross_revenue"].(float64)), int64(raw["refunds"].(float64)), int64(raw["dispute_losses"].(float64))
			} else {
				f.MRR = int64(raw["mrr"].(float64))
			}
			out[row.Currency] = f
		}
	}
	return out
}

// truthFigures are May's gross revenue, refunds and disputes lost by currency, from the
// simulator's own objects.
func truthFigures(t *testing.T, b *books) map[string]query.Figures {
	t.Helper()
	out := map[string]query.Figures{}
	inMay := func(created int64) bool { return created >= may.Start().Unix() && created < may.End().Unix() }
	type obj struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
		Status   string `json:"status"`
		Created  int64  `json:"created"`
	}
	for _, kind := range []string{"charges", "refunds", "disputes"} {
		for _, raw := range mustObjects(t, b.sim, kind) {
			var o obj
			_ = json.Unmarshal(raw, &o)
			if !inMay(o.Created) {
				continue
			}
			f := out[o.Currency]
			f.Currency = o.Currency
			switch {
			case kind == "charges" && o.Status == "succeeded":
				f.GrossRevenue += o.Amount
			case kind == "refunds" && o.Status == "succeeded":
				f.Refunds += o.Amount
			case kind == "disputes" && o.Status == "lost":
				f.DisputeLosses += o.Amount
			}
			out[o.Currency] = f
		}
	}
	return out
}

func sameRevenue(t *testing.T, what string, figs []query.Figures, want map[string]query.Figures, mrr bool) {
	t.Helper()
	seen := 0
	for _, f := range figs {
		w := want[f.Currency]
		if !f.Livemode || f.Account != nil {
			continue
		}
		seen++
		if f.GrossRevenue != w.GrossRevenue || f.Refunds != w.Refunds || f.DisputeLosses != w.DisputeLosses || (mrr && f.MRR != w.MRR) {
			t.Errorf("%s, %s: close %+v, want %+v", what, f.Currency, f, w)
		}
		if f.Net != f.GrossRevenue-f.Refunds-f.DisputeLosses-f.Fees {
			t.Errorf("%s, %s: net %d is not gross - refunds - disputes - fees", what, f.Currency, f.Net)
		}
	}
	for c, w := range want {
		if w.GrossRevenue != 0 && !slicesHas(figs, c) {
			t.Errorf("%s: no figures in %s, want %+v", what, c, w)
		}
	}
	if seen == 0 {
		t.Errorf("%s: no figures", what)
	}
}

func slicesHas(figs []query.Figures, currency string) bool {
	for _, f := range figs {
		if f.Currency == currency && f.Livemode && f.Account == nil {
			return true
		}
	}
	return false
}

// May is closed while a four-day outage has kept some of its events from the ledger; then the
// events reconcile job repairs the outage. The close keeps its figures (they equal the metric
// series at the close), the repaired events show as May's adjustments (each appended after the
// close, with its effect and when it arrived), and the figures with the adjustments equal the
// simulator's own sums and today's metric series. A second close is refused saying when the
// first was made; a month not ended and a malformed month are refused; the frozen rows cannot
// be changed in SQL either.
func TestClosedPeriodKeepsItsFiguresAndRepairsShowAsAdjustments(t *testing.T) {
	t.Parallel()
	b := playBooks(t, "outage-4d", func(cfg *stripesim.Config, _ *stripesim.DeliveryConfig) { cfg.Customers = 120 })
	b.balanceJob(t)
	b.rebuild(t)
	ctx := context.Background()

	closedAt := time.Now().UTC().Truncate(time.Second)
	c, err := b.q.ClosePeriod(ctx, may, closedAt, "finance@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Adjustments) != 0 || !reflect.DeepEqual(c.Figures, c.Adjusted) || c.Position == 0 || c.Head != c.Position {
		t.Fatalf("a fresh close: %d adjustments, position %d head %d", len(c.Adjustments), c.Position, c.Head)
	}
	sameRevenue(t, "as closed", c.Figures, metricFigures(t, b), true)
	var fees, payouts int64
	for _, f := range c.Figures {
		fees += f.Fees
		payouts += f.Payouts
	}
	if fees == 0 || payouts == 0 {
		t.Fatalf("May's close has fees %d and payouts %d", fees, payouts)
	}

	// The refusals.
	_, err = b.q.ClosePeriod(ctx, may, time.Now(), "")
	var closed *query.AlreadyClosedError
	if !errors.As(err, &closed) || !closed.ClosedAt.Equal(closedAt) {
		t.Fatalf("closing May again: %v", err)
	}
	_, err = b.q.ClosePeriod(ctx, query.Period{Year: 2026, Month: time.June}, closeEnd, "")
	var open *query.NotEndedError
	if !errors.As(err, &open) {
		t.Fatalf("closing June on June 1: %v", err)
	}
	for _, bad := range []string{"2026-13", "2026-5", "May 2026", "1969-12", "2026-05-01"} {
		if _, err := query.ParsePeriod(bad); !query.IsBadRequest(err) {
			t.Errorf("period %q: %v", bad, err)
		}
	}
	for _, sql := range []string{`UPDATE ledger.close_figures SET gross_revenue = 0`, `DELETE FROM ledger.close_lines`, `TRUNCATE ledger.closes CASCADE`} {
		if _, err := b.db.Pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s was allowed", sql)
		}
	}

	// The repair.
	run := b.repair(t)
	if run.Repaired < 10 {
		t.Fatalf("the repair appended %d events", run.Repaired)
	}
	b.rebuild(t)
	after, err := b.q.ReadClose(ctx, may, query.Scope{Account: query.AllAccounts})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after.Figures, c.Figures) || after.Position != c.Position || !after.ClosedAt.Equal(closedAt) {
		t.Fatalf("the close changed:\nbefore %+v\nafter  %+v", c.Figures, after.Figures)
	}
	if len(after.Adjustments) == 0 {
		t.Fatal("the repair shows no adjustment")
	}
	var repairedInMay, withEffect int
	listed := map[string]bool{}
	for _, a := range after.Adjustments {
		if a.EventID == nil {
			t.Errorf("an adjustment without its event: %+v", a)
			continue
		}
		listed[*a.EventID] = true
		if *a.Position <= c.Position || !a.ReceivedAt.After(closedAt.Add(-time.Second)) {
			t.Errorf("adjustment %s at position %d arrived %s: not after the close (%d, %s)", *a.EventID, *a.Position, a.ReceivedAt, c.Position, closedAt)
		}
		if a.Currency != nil && a.Effect != (query.Figures{Livemode: a.Livemode, Account: a.Account, Currency: *a.Currency}) {
			withEffect++
		}
	}
	rows, err := b.db.Pool.Query(ctx, `SELECT event_id FROM ledger.events WHERE source = 'reconcile' AND created >= $1 AND created < $2`, may.Start(), may.End())
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		repairedInMay++
		if !listed[id] {
			t.Errorf("repaired event %s of May is not among the adjustments", id)
		}
	}
	rows.Close()
	t.Logf("%d adjustments, %d with an effect, %d repaired events in May", len(after.Adjustments), withEffect, repairedInMay)
	if repairedInMay == 0 || withEffect == 0 {
		t.Fatalf("%d repaired events in May, %d adjustments with an effect", repairedInMay, withEffect)
	}
	// The figures with the adjustments are May's as the account knows it, and as the metrics
	// compute it now.
	sameRevenue(t, "adjusted vs the account", after.Adjusted, truthFigures(t, b), false)
	sameRevenue(t, "adjusted vs the metrics", after.Adjusted, metricFigures(t, b), true)
	if reflect.DeepEqual(after.Adjusted, after.Figures) {
		t.Fatal("the adjustments changed no figure")
	}

	// Scoped: test mode has nothing in this live-mode account.
	test, err := b.q.ReadClose(ctx, may, query.Scope{Livemode: new(bool), Account: query.AllAccounts})
	if err != nil || len(test.Figures) != 0 || len(test.Adjustments) != 0 {
		t.Fatalf("test mode: %+v %v", test, err)
	}
	// The report: a closed row per figures row, an adjustment row each, an adjusted row each.
	rep := query.CloseReportRows(after)
	if len(rep) != 1+len(after.Figures)+len(after.Adjustments)+len(after.Adjusted) || rep[1][0] != "closed" {
		t.Fatalf("report: %d rows", len(rep))
	}
}

// A close is final, so it is refused while the read models cannot give final figures: built
// from other declarations than this version's (the runner or a replay is rebuilding them).
func TestCloseRefusedUntilTheReadModelsAreBuilt(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	q := query.New(db.Pool, query.Config{})
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger.projection_state SET schema = 'v0:older' WHERE name = $1`, projections.StateName); err != nil {
		t.Fatal(err)
	}
	if _, err := q.ClosePeriod(ctx, may, closeEnd, ""); !errors.Is(err, query.ErrNotReady) {
		t.Fatalf("built from other declarations: %v", err)
	}
	var closes int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.closes`).Scan(&closes)
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.ClosePeriod(ctx, may, closeEnd, ""); err != nil || closes != 0 {
		t.Fatalf("rebuilt: %v (%d closes before)", err, closes)
	}
}

// With a reporting currency, a close freezes each of its currencies' rates of the period's last
// day and shows every mode's and account's figures converted at them: each currency's figure
// converted as the simulator converts an amount (its own arithmetic), then summed. A currency
// without a rate leaves its rows' figures null and is named, never converted at 1. Rates
// imported after the close do not move it, and the frozen rates cannot be changed in SQL.
func TestCloseInTheReportingCurrency(t *testing.T) {
	t.Parallel()
	b := playBooks(t, "steady", func(cfg *stripesim.Config, _ *stripesim.DeliveryConfig) { cfg.Customers = 120 })
	b.balanceJob(t)
	b.rebuild(t)
	ctx := context.Background()
	// eur: Stripe's balance transactions settle in usd, so every rate comes from the file. April
	// has every rate; May's file leaves gbp out.
	const reporting, left = "eur", "gbp"
	april := query.Period{Year: 2026, Month: time.April}
	var file []byte
	for _, l := range strings.SplitAfter(string(stripesim.FXRatesCSV(reporting, april.Start(), may.End().AddDate(0, 0, -1))), "\n") {
		if !strings.HasPrefix(l, "2026-05") || !strings.Contains(l, ","+left+",") {
			file = append(file, l...)
		}
	}
	q := query.New(b.db.Pool, query.Config{FX: query.FX{Reporting: reporting, RateDate: query.FXPeriodStart}})
	if _, err := q.ImportRates(ctx, reporting, "rates.csv", file); err != nil {
		t.Fatal(err)
	}
	for _, p := range []query.Period{april, may} {
		c, err := q.ClosePeriod(ctx, p, time.Now(), "")
		if err != nil {
			t.Fatal(err)
		}
		lastDay := p.End().AddDate(0, 0, -1)
		r := c.Reporting
		if r == nil || r.Currency != reporting || r.RateDate != lastDay.Format(time.DateOnly) {
			t.Fatalf("%s: the close's reporting part: %+v", p, r)
		}
		want := map[string]map[string]*int64{} // mode/account → figure → converted sum
		currencies := map[string]bool{}
		for _, f := range c.Figures {
			k := fmt.Sprintf("%t/%s", f.Livemode, str(f.Account))
			if want[k] == nil {
				want[k] = map[string]*int64{}
				for _, n := range query.FigureNames {
					want[k][n] = new(int64)
				}
			}
			currencies[f.Currency] = true
			for _, n := range query.FigureNames {
				if want[k][n] == nil || (p == may && f.Currency == left) {
					want[k][n] = nil
					continue
				}
				v, err := stripesim.ConvertMinor(f.Get(n), f.Currency, reporting, lastDay)
				if err != nil {
					t.Fatal(err)
				}
				if n != "net" {
					*want[k][n] += v
				}
			}
			if w := want[k]; w["net"] != nil {
				*w["net"] = *w["gross_revenue"] - *w["refunds"] - *w["dispute_losses"] - *w["fees"]
			}
		}
		missing := []string{}
		if p == may {
			missing = []string{left}
		}
		if len(currencies) < 3 || !currencies[left] {
			t.Fatalf("%s's figures are in %v: the conversion tests little", p, currencies)
		}
		if len(r.Figures) != len(want) || !slices.Equal(r.MissingRates, missing) || len(r.Rates) != len(currencies) {
			t.Fatalf("%s: %d reporting rows for %d modes and accounts; missing %v; %d rates for %d currencies", p, len(r.Figures), len(want), r.MissingRates, len(r.Rates), len(currencies))
		}
		converted, null := 0, 0
		for _, f := range r.Figures {
			k := fmt.Sprintf("%t/%s", f.Livemode, str(f.Account))
			for _, n := range query.FigureNames {
				got, w := f.Get(n), want[k][n]
				if (got == nil) != (w == nil) || (got != nil && *got != *w) {
					t.Errorf("%s %s %s in %s: %s, want %s", p, k, n, reporting, show(got), show(w))
				}
				if got == nil {
					null++
				} else if *got != 0 {
					converted++
				}
			}
		}
		if (p == april && (converted == 0 || null > 0)) || (p == may && null == 0) {
			t.Fatalf("%s: %d figures converted, %d null", p, converted, null)
		}
		if !reflect.DeepEqual(r.Adjusted, r.Figures) {
			t.Errorf("%s: no adjustment, yet the adjusted figures in %s differ", p, reporting)
		}
	}
	// A month with no figures, closed with a reporting currency, says so: no rates, no rows.
	empty, err := q.ClosePeriod(ctx, query.Period{Year: 2025, Month: time.January}, time.Now(), "")
	if err != nil || empty.Reporting == nil || empty.Reporting.Currency != reporting || len(empty.Reporting.Figures) != 0 {
		t.Fatalf("an empty month closed in %s: %+v %v", reporting, empty.Reporting, err)
	}
	// A rate corrected after the close does not move it.
	before, err := q.ReadClose(ctx, may, query.Scope{Account: query.AllAccounts})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.ImportRates(ctx, reporting, "corrected.csv", []byte("date,currency,rate\n2026-05-31,usd,2.5\n2026-05-31,"+left+",1.2\n")); err != nil {
		t.Fatal(err)
	}
	again, err := query.New(b.db.Pool, query.Config{}).ReadClose(ctx, may, query.Scope{Account: query.AllAccounts})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Reporting, before.Reporting) {
		t.Fatalf("the close in %s moved after a rate import:\nbefore %+v\nafter  %+v", reporting, before.Reporting, again.Reporting)
	}
	if _, err := b.db.Pool.Exec(ctx, `UPDATE ledger.close_rates SET rate = 1`); err == nil {
		t.Error("UPDATE ledger.close_rates was allowed")
	}
	// The report carries the reporting rows.
	kinds := map[string]int{}
	for _, row := range query.CloseReportRows(again) {
		kinds[row[0]]++
	}
	if kinds["closed_reporting"] != len(again.Reporting.Figures) || kinds["adjusted_reporting"] != len(again.Reporting.Adjusted) {
		t.Errorf("report rows by kind: %v", kinds)
	}
	var page strings.Builder
	if err := query.WriteCloseReport(&page, again); err != nil || !strings.Contains(page.String(), `id="reporting-closed"`) ||
		!strings.Contains(page.String(), "No rate frozen with the close for "+left) {
		t.Errorf("the printable report lacks the %s figures (%v)", reporting, err)
	}
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func show(v *int64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatInt(*v, 10)
}
