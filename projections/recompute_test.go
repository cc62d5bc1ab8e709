package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// mrrDump is what the MRR settings decide: every subscription's mrr and attention, the
// movement log and the recorded settings.
func mrrDump(t *testing.T, db *testkit.DB) [3]string {
	t.Helper()
	var out [3]string
	for i, q := range []string{
		`SELECT coalesce(json_agg(json_build_array(id, mrr, attention) ORDER BY id), '[]')::text FROM ledger.subscriptions`,
		`SELECT coalesce(json_agg(m ORDER BY subscription, seq), '[]')::text FROM ledger.subscription_movements m`,
		`SELECT string_agg(settings, ',') FROM ledger.mrr_settings`,
	} {
		if err := db.Pool.QueryRow(context.Background(), q).Scan(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A recompute under other settings gives the rows a replay under them gives, for each setting
// of each option, from the inputs kept beside the rows; the settings are recorded with them.
func TestRecomputeIsAReplayUnderTheNewSettings(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 23, Customers: 150, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	ctx := context.Background()
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	defaults := mrrDump(t, db)
	if defaults[2] != domain.DefaultMRRSettings().String() {
		t.Fatalf("recorded settings %q", defaults[2])
	}
	for _, set := range []domain.MRRSettings{
		{Discounts: domain.DiscountsBoth},
		{Discounts: domain.DiscountsOneTime},
		{ChurnAt: domain.ChurnAtPeriodEnd},
		{PastDueDays: 3},
		{Paused: domain.PausedZero},
		{Discounts: domain.DiscountsBoth, ChurnAt: domain.ChurnAtPeriodEnd, PastDueDays: 1, Paused: domain.PausedZero},
		{},
	} {
		t.Run(set.String(), func(t *testing.T) {
			st, err := projections.Recompute(ctx, db.Pool, projections.RecomputeConfig{MRR: set})
			if err != nil {
				t.Fatal(err)
			}
			recomputed := mrrDump(t, db)
			if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{MRR: set}); err != nil {
				t.Fatal(err)
			}
			replayed := mrrDump(t, db)
			for i, what := range []string{"subscriptions' mrr and attention", "movement log", "recorded settings"} {
				if recomputed[i] != replayed[i] {
					t.Errorf("%s: recomputed\n%.2000s\nreplayed\n%.2000s", what, recomputed[i], replayed[i])
				}
			}
			if replayed[2] != set.String() || st.Subscriptions == 0 || st.Movements == 0 {
				t.Fatalf("settings %q, stats %+v", replayed[2], st)
			}
			if set != (domain.MRRSettings{}) && replayed[1] == defaults[1] {
				t.Errorf("the movement log is the defaults' under %s: the account exercises nothing of it", set)
			}
		})
	}
}

// A runner started with other settings than the tables record recomputes before it folds.
func TestRunnerRecomputesOnASettingsChange(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 24, Customers: 60, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	ctx := context.Background()
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	set := domain.MRRSettings{ChurnAt: domain.ChurnAtPeriodEnd, PastDueDays: 2}
	r := startRunner(t, db.Pool, projections.RunnerConfig{MRR: set})
	if st := r.Signals.Recomputed.Wait(); st.Subscriptions == 0 {
		t.Fatalf("recomputed %+v", st)
	}
	caughtUp(t, r, db.Pool)
	live := mrrDump(t, db)
	reference := load(t, sim.Events())
	if _, err := projections.Rebuild(ctx, reference.Pool, projections.Config{MRR: set}); err != nil {
		t.Fatal(err)
	}
	if want := mrrDump(t, reference); live != want {
		t.Fatalf("after the runner's recompute:\n%.1500s\nwant\n%.1500s", live, want)
	}
}
