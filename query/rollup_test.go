package query_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/stripesim"
)

// rollupOfLogSQL is the rollup as one GROUP BY of the movement log computes it.
const rollupOfLogSQL = `SELECT (at AT TIME ZONE 'UTC')::date AS day, (coalesce(period_start, at) AT TIME ZONE 'UTC')::date AS fx_day,
	currency, livemode, account, kind, sum(amount)::bigint AS amount, count(*) AS movements
	FROM ledger.subscription_movements GROUP BY 1, 2, 3, 4, 5, 6`

// rollupDiff is the rows the rollup and the GROUP BY of the log do not share (each side's
// surplus, at most a few), and the number of rollup rows.
func rollupDiff(t *testing.T, db *testkit.DB) (diff []string, rows int) {
	t.Helper()
	ctx := context.Background()
	r, err := db.Pool.Query(ctx, `WITH want AS (`+rollupOfLogSQL+`), got AS (SELECT day, fx_day, currency, livemode, account, kind, amount, movements FROM ledger.mrr_rollup)
		(SELECT 'missing ' || row(w.*)::text FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got) w LIMIT 5)
		UNION ALL
		(SELECT 'extra ' || row(g.*)::text FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want) g LIMIT 5)`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var s string
		if err := r.Scan(&s); err != nil {
			t.Fatal(err)
		}
		diff = append(diff, s)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.mrr_rollup`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	return diff, rows
}

func checkRollup(t *testing.T, db *testkit.DB, when string) int {
	t.Helper()
	diff, rows := rollupDiff(t, db)
	if len(diff) > 0 {
		t.Fatalf("%s: the rollup is not the GROUP BY of the movement log: %v", when, diff)
	}
	if rows == 0 {
		t.Fatalf("%s: the rollup is empty", when)
	}
	return rows
}

// rollupAnswers are the answers the rollup serves, daily and monthly, per currency and in the
// reporting currency at each rate date.
func rollupAnswers(t *testing.T, db *testkit.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, fx := range []query.FX{{}, {Reporting: "usd", RateDate: query.FXPeriodStart}, {Reporting: "usd", RateDate: query.FXReportDate}} {
		q := query.New(db.Pool, query.Config{FX: fx})
		for _, name := range []string{"mrr", "movements", "churn"} {
			for _, params := range []string{"interval=day&from=2026-03-01&to=2026-05-31&livemode=false", "interval=month&from=2025-01-01&to=2026-05-31&livemode=false"} {
				if fx.Reporting != "" {
					params += "&reporting=true"
				}
				_, rows := answer(t, q, name, params)
				if len(rows) == 0 {
					t.Fatalf("%s %s: no rows", name, params)
				}
				key := string(fx.RateDate) + " " + name + " " + params
				out[key] = cellsOf(rows)
			}
		}
	}
	return out
}

func cellsOf(rows map[string]map[string]any) string {
	var b []byte
	for _, k := range sortedKeys(rows) {
		b = append(b, k...)
		for _, c := range sortedKeys(rows[k]) {
			b = append(b, ' ')
			b = append(b, c...)
			b = append(b, '=')
			b = append(b, cell(rows[k][c])...)
		}
		b = append(b, '\n')
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// answersFromTheLog are the same answers with the rollup's triggers off the table, which makes
// the queries sum the movement log itself (the triggers go back with a replay).
func answersFromTheLog(t *testing.T, db *testkit.DB) map[string]string {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `DROP TRIGGER mrr_rollup_insert ON ledger.subscription_movements`); err != nil {
		t.Fatal(err)
	}
	return rollupAnswers(t, db)
}

func compareAnswers(t *testing.T, when string, rollup, log map[string]string) {
	t.Helper()
	if len(rollup) != len(log) {
		t.Fatalf("%s: %d answers from the rollup, %d from the log", when, len(rollup), len(log))
	}
	for k, want := range log {
		if rollup[k] != want {
			t.Fatalf("%s: %s from the rollup:\n%.1500s\nfrom the log:\n%.1500s", when, k, rollup[k], want)
		}
	}
}

// The rollup equals a GROUP BY of the movement log after the live runner folds the simulator's
// events (in batches, with redeliveries: movements deleted and written again), after a replay,
// and after a recompute under other settings swaps a new log in; and the MRR, movement and churn
// answers read from it equal those summed from the log.
func TestRollupFollowsTheMovementLog(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sim := stripesim.New(stripesim.Config{Seed: 61, Customers: 80, End: end})
	sim.Run(time.Time{})
	db := testkit.New(t)
	ctx := context.Background()
	rates := stripesim.FXRatesCSV("usd", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), end)
	if _, err := query.New(db.Pool, query.Config{}).ImportRates(ctx, "usd", "stripesim", rates); err != nil {
		t.Fatal(err)
	}

	// Live: a fresh database, so the runner replays the empty log first (attaching the rollup),
	// then folds every batch with the triggers on.
	r, err := projections.NewRunner(db.Pool, projections.RunnerConfig{BatchSize: 25})
	if err != nil {
		t.Fatal(err)
	}
	r.Signals.FoldedBatch.Init(t)
	r.Signals.Rebuilt.Init(t)
	r.Signals.Recomputed.Init(t)
	r.Lease().Signals.Gained.Init(t)
	r.Lease().Signals.Lost.Init(t)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(runCtx) }()
	stopped := false
	stop := func() {
		if !stopped {
			cancel()
			<-done
			stopped = true
		}
	}
	t.Cleanup(stop)
	rng := rand.New(rand.NewPCG(83, 1))
	evs := sim.Events()
	for range 40 { // redeliveries fold an object again: its movements are deleted and rewritten
		evs = append(evs, evs[rng.IntN(len(evs))])
	}
	store := eventstore.New(db.Pool)
	var head int64
	for len(evs) > 0 {
		n := min(len(evs), 1+rng.IntN(30))
		batch := make([]domain.Event, 0, n)
		for _, ev := range evs[:n] {
			e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, e)
		}
		res, err := store.Append(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range res {
			head = max(head, a.Position)
		}
		evs = evs[n:]
	}
	r.Signals.FoldedBatch.WaitUntil(func(pos int64) bool { return pos >= head })
	stop()
	live := checkRollup(t, db, "after live folds")
	liveAnswers := rollupAnswers(t, db)

	// Replay: new tables swapped in, the rollup summed again.
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if replayed := checkRollup(t, db, "after a replay"); replayed != live {
		t.Fatalf("the replay's rollup has %d groups, the live one %d", replayed, live)
	}
	compareAnswers(t, "after live folds", liveAnswers, answersFromTheLog(t, db))

	// Recompute under settings that move other amounts on other days (pause and resume kinds,
	// churn at period end): a new log renamed into place.
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil { // triggers back
		t.Fatal(err)
	}
	before := rollupAnswers(t, db)
	set := domain.MRRSettings{Discounts: domain.DiscountsBoth, ChurnAt: domain.ChurnAtPeriodEnd, PastDueDays: 1, Paused: domain.PausedZero}
	if _, err := projections.Recompute(ctx, db.Pool, projections.RecomputeConfig{MRR: set}); err != nil {
		t.Fatal(err)
	}
	checkRollup(t, db, "after a recompute")
	recomputed := rollupAnswers(t, db)
	same := 0
	for k := range before {
		if before[k] == recomputed[k] {
			same++
		}
	}
	if same == len(before) {
		t.Fatal("the recompute changed no answer: the settings exercise nothing")
	}
	// Movements folded after the recompute reach the rollup too (the triggers are on the new log).
	if _, err := db.Pool.Exec(ctx, `DELETE FROM ledger.subscription_movements WHERE subscription = (SELECT min(subscription) FROM ledger.subscription_movements)`); err != nil {
		t.Fatal(err)
	}
	checkRollup(t, db, "after a delete from the recomputed log")
	recomputed = rollupAnswers(t, db)
	compareAnswers(t, "after a recompute", recomputed, answersFromTheLog(t, db))
}
