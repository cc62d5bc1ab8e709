package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
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
