package query_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/stripesim"
)

// The ledger's MRR, ARR, subscribers and each movement kind equal the simulator's truth — its
// own computation from its own objects — for every day of a small run, in every currency and in
// the reporting currency, under each setting of each option (one changed at a time from the
// defaults). Each settings change is a replay of the log, never an edit of rows.
func TestMetricsEqualTheSimulatorsTruth(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sim := stripesim.New(stripesim.Config{Seed: 61, Customers: 80, End: end})
	sim.Run(time.Time{})
	db := testkit.New(t)
	ctx := context.Background()
	var evs []domain.Event
	for _, ev := range sim.Events() {
		e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if _, err := eventstore.New(db.Pool).Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// The operator's rates are the simulator's (as its balance transactions quote them).
	rates := stripesim.FXRatesCSV("usd", end.AddDate(0, 0, -120), end)
	if _, err := query.New(db.Pool, query.Config{}).ImportRates(ctx, "usd", "stripesim", rates); err != nil {
		t.Fatal(err)
	}
	variants := []stripesim.TruthSettings{
		{}, {Discounts: "one_time"}, {Discounts: "both"}, {ChurnAt: "period_end"}, {PastDueDays: 3}, {Paused: "zero"},
		{FXRateDate: "report_date"},
	}
	for _, set := range variants {
		set.ReportingCurrency = "usd"
		tr, err := sim.TruthMRR(set)
		if err != nil {
			t.Fatal(err)
		}
		mrr := domain.MRRSettings{Discounts: set.Discounts, ChurnAt: set.ChurnAt, PastDueDays: set.PastDueDays, Paused: set.Paused,
			FXRateDate: set.FXRateDate, ReportingCurrency: set.ReportingCurrency}.WithDefaults()
		if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{MRR: mrr}); err != nil {
			t.Fatal(err)
		}
		q := query.New(db.Pool, query.Config{FX: query.FX{Reporting: "usd", RateDate: mrr.FXRateDate}})
		first, last := tr.Days[0].Day, tr.Days[len(tr.Days)-1].Day
		params := fmt.Sprintf("interval=day&from=%s&to=%s&livemode=%t", first, last, tr.Livemode)
		name := mrr.String()
		_, mrrRows := answer(t, q, "mrr", params)
		_, moveRows := answer(t, q, "movements", params)
		_, subRows := answer(t, q, "subscribers", params)
		a, _ := answer(t, q, "mrr", params)
		days, currencies := 0, map[string]bool{}
		var unvalued int64
		for _, d := range tr.Days {
			key := d.Day + " " + d.Currency + " platform"
			f := d.TruthFigures
			want := map[string]int64{"mrr": f.MRR, "arr": f.ARR}
			wantMoves := map[string]int64{"new_mrr": f.New, "expansion_mrr": f.Expansion, "contraction_mrr": f.Contraction,
				"churned_mrr": f.Churn, "reactivation_mrr": f.Reactivation, "pause_mrr": f.Pause, "resume_mrr": f.Resume, "net_mrr": f.NetNew}
			for col, w := range want {
				if got := num(mrrRows[key], col); got != w {
					t.Fatalf("%s: %s %s = %d, the simulator says %d", name, key, col, got, w)
				}
			}
			for col, w := range wantMoves {
				if got := num(moveRows[key], col); got != w {
					t.Fatalf("%s: %s %s = %d, the simulator says %d", name, key, col, got, w)
				}
			}
			if got := num(subRows[key], "subscribers"); got != int64(d.Subscribers) {
				t.Fatalf("%s: %s subscribers = %d, the simulator says %d", name, key, got, d.Subscribers)
			}
			if d.Day == last {
				unvalued += int64(d.Unvalued)
			}
			days++
			currencies[d.Currency] = true
		}
		if a.Unvalued != unvalued {
			t.Fatalf("%s: unvalued %d, the simulator says %d", name, a.Unvalued, unvalued)
		}
		rep, repRows := answer(t, q, "mrr", params+"&reporting=true")
		_, repMoves := answer(t, q, "movements", params+"&reporting=true")
		if rep.MissingRatesTotal != 0 {
			t.Fatalf("%s: missing rates %v", name, rep.MissingRates)
		}
		for _, d := range tr.Reporting {
			key := d.Day + " usd platform"
			if d.Figures == nil {
				t.Fatalf("%s: the simulator lacks a rate on %s: %v", name, d.Day, d.Missing)
			}
			f := *d.Figures
			checks := map[string]int64{"mrr": f.MRR, "new_mrr": f.New, "expansion_mrr": f.Expansion, "contraction_mrr": f.Contraction,
				"churned_mrr": f.Churn, "reactivation_mrr": f.Reactivation, "pause_mrr": f.Pause, "resume_mrr": f.Resume}
			for col, w := range checks {
				row := repMoves[key]
				if col == "mrr" {
					row = repRows[key]
				}
				if got := num(row, col); got != w {
					t.Fatalf("%s: in usd, %s %s = %d, the simulator says %d", name, d.Day, col, got, w)
				}
			}
			var fx int64
			if d.FXEffect != nil {
				fx = *d.FXEffect
			}
			if got := num(repMoves[key], "fx_effect"); got != fx {
				t.Fatalf("%s: in usd, %s fx_effect = %d, the simulator says %d", name, d.Day, got, fx)
			}
		}
		if days < 90 || len(currencies) < 2 || len(tr.Reporting) < 90 {
			t.Fatalf("%s: compared %d days in %d currencies, %d reporting days: too little", name, days, len(currencies), len(tr.Reporting))
		}
	}
}

// num is an integer cell; a row the answer does not have (before a currency's first movement)
// is 0.
func num(row map[string]any, col string) int64 {
	if row == nil {
		return 0
	}
	if row[col] == nil {
		return -1 << 62 // null never equals a figure
	}
	var n int64
	_, _ = fmt.Sscan(cell(row[col]), &n)
	return n
}
