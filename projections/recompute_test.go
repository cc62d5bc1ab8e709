package projections_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// mrrDump is what the MRR settings decide: every subscription's mrr and attention, the
// movement log and the recorded settings, and the history of the first two.
func mrrDump(t *testing.T, db *testkit.DB) [5]string {
	t.Helper()
	var out [5]string
	for i, q := range []string{
		`SELECT coalesce(json_agg(json_build_array(id, mrr, attention) ORDER BY id), '[]')::text FROM ledger.subscriptions`,
		`SELECT coalesce(json_agg(m ORDER BY subscription, seq), '[]')::text FROM ledger.subscription_movements m`,
		`SELECT string_agg(settings, ',') FROM ledger.mrr_settings`,
		`SELECT coalesce(json_agg(json_build_array(id, valid_from, known_from, mrr, attention) ORDER BY id, valid_from, known_from), '[]')::text FROM ledger.subscriptions_history`,
		`SELECT coalesce(json_agg(m ORDER BY subscription, seq, known_from), '[]')::text FROM ledger.subscription_movements_history m`,
	} {
		if err := db.Pool.QueryRow(context.Background(), q).Scan(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A recompute under other settings gives the rows a replay under them gives, for each setting
// of each option, from the inputs kept beside the rows; the settings are recorded with them.
//
// Its recomputes value the history seven subscriptions at a time, so that they take many chunks,
// each valued while the one before is written and the next read: not in parallel, as that size
// is the package's.
func TestRecomputeIsAReplayUnderTheNewSettings(t *testing.T) {
	defer projections.SetRevalueChunk(7)()
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
	// Each change is made from the previous one's replay. A change that can act on few
	// subscriptions values only those and writes them in place; one that can act on many
	// writes the log whole: both ways must be taken.
	inPlace, whole := 0, 0
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
			t.Logf("revalued %d of %d subscriptions: %s", st.Revalued, st.Subscriptions, projections.PhaseList(st.Phases))
			if st.Revalued < st.Subscriptions {
				inPlace++
			} else {
				whole++
			}
			recomputed := mrrDump(t, db)
			if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{MRR: set}); err != nil {
				t.Fatal(err)
			}
			replayed := mrrDump(t, db)
			for i, what := range []string{"subscriptions' mrr and attention", "movement log", "recorded settings", "versions' mrr and attention", "movement history"} {
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
	if inPlace == 0 || whole == 0 {
		t.Errorf("%d changes recomputed in place, %d whole: both must be exercised", inPlace, whole)
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

// After a settings change, the history is under the new settings too: every subscription as of
// a time, as known at a position, and the MRR series known at a position equal a fold of the
// log cut there under the new settings, and the history tables are those a replay under them
// writes.
func TestRecomputeRevaluesTheHistory(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 31, Customers: 80, Livemode: true, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	ctx := context.Background()
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	tables := []string{"subscriptions_history", "subscription_movements_history"}
	before := dumpTables(t, db, tables)
	// Every version is valued again from its stored inputs; one whose inputs do not decode (a
	// version written in an older encoding) has its subscription folded again from the log.
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger.subscriptions_history SET valuation_inputs = '\x00'::bytea
		WHERE (id, valid_from, known_from) = (SELECT id, valid_from, known_from FROM ledger.subscriptions_history WHERE mrr > 0 ORDER BY id, known_from LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	set := domain.MRRSettings{Discounts: domain.DiscountsBoth, ChurnAt: domain.ChurnAtPeriodEnd, PastDueDays: 3, Paused: domain.PausedZero}
	st, err := projections.Recompute(ctx, db.Pool, projections.RecomputeConfig{MRR: set})
	if err != nil {
		t.Fatal(err)
	}
	if st.Versions == 0 || st.Refolded != 1 {
		t.Fatalf("recomputed %+v: want every version valued, one subscription (the one whose inputs do not decode) folded again", st)
	}
	after := dumpTables(t, db, tables)
	for _, name := range tables {
		if after[name] == before[name] {
			t.Errorf("ledger.%s is the defaults' after the recompute", name)
		}
	}

	head, err := eventstoreNew(db).Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	end := sim.Config().End
	start := end.Add(-sim.Config().Duration)
	cuts := []projections.Cut{{AsOf: end}, {KnownAt: head.Position, Known: true}}
	for _, f := range []float64{0.3, 0.6, 0.85} {
		at := start.Add(time.Duration(f * float64(sim.Config().Duration)))
		p := int64(f * float64(head.Position))
		cuts = append(cuts, projections.Cut{AsOf: at}, projections.Cut{KnownAt: p, Known: true}, projections.Cut{AsOf: at, KnownAt: p, Known: true})
	}
	compared, valued := 0, 0
	mrr := columnOf(projections.Subscriptions, "mrr")
	for _, cut := range cuts {
		want, err := projections.AsOf(ctx, db.Pool, projections.Subscriptions, cut, "", domain.Identity{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := projections.ReadAt(ctx, db.Pool, projections.Subscriptions, cut, projections.Select{}, domain.Identity{})
		if err != nil {
			t.Fatal(err)
		}
		w, g := rowsByID(want), rowsByID(got)
		if len(w) != len(g) {
			t.Errorf("at %+v: %d subscriptions in the history, %d in the fold", cut, len(g), len(w))
		}
		for id, row := range w {
			if g[id] != row {
				t.Errorf("%s at %+v:\n history %s\n    fold %s", id, cut, g[id], row)
			}
		}
		for _, r := range want {
			if v, _ := r[mrr].(*int64); v != nil && *v > 0 {
				valued++
			}
		}
		compared += len(w)
	}
	if compared < 100 || valued < 20 {
		t.Fatalf("%d subscriptions compared, %d with an MRR: the cuts test nothing", compared, valued)
	}
	// The movement log known at a position (what the known_at MRR series read) is that of a
	// replay, under the new settings, of the log cut there with the customers' later events:
	// a version is valued with its customer's discounts as the ledger knows them now
	// (valueSubscription). Known at the head, it is the live one.
	cutAt := len(sim.Events()) / 2
	events := slices.Clone(sim.Events()[:cutAt])
	for _, ev := range sim.Events()[cutAt:] {
		if strings.HasPrefix(ev.Type, "customer.") && !strings.HasPrefix(ev.Type, "customer.subscription.") {
			events = append(events, ev)
		}
	}
	reference := load(t, events)
	if _, err := projections.Rebuild(ctx, reference.Pool, projections.Config{MRR: set}); err != nil {
		t.Fatal(err)
	}
	// The same appends of the same events up to the cut: the same positions.
	known := int64(0)
	if err := db.Pool.QueryRow(ctx, `SELECT position FROM ledger.events WHERE event_id = $1`, sim.Events()[cutAt-1].ID).Scan(&known); err != nil {
		t.Fatal(err)
	}
	if got, want := knownMovements(t, db, &known), knownMovements(t, reference, nil); got != want {
		t.Errorf("the movement log known at %d differs from a replay of the log cut there:\n%s", known, lineDiff(got, want))
	}
	if got, want := knownMovements(t, db, &head.Position), knownMovements(t, db, nil); got != want {
		t.Errorf("the movement log known at the head differs from the live one:\n%s", lineDiff(got, want))
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{MRR: set}); err != nil {
		t.Fatal(err)
	}
	replayed := dumpTables(t, db, tables)
	for _, name := range tables {
		if after[name] != replayed[name] {
			t.Errorf("ledger.%s: the recompute's differs from a replay's under the same settings", name)
		}
	}
}

// A subscription without a discount of its own takes its customer's, from the customer's own
// events, in a replay, a recompute and the live runner alike; a decimal percent_off folds.
func TestCustomerDiscountReachesTheSubscription(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	raw := func(id, typ string, created int64, object string) domain.Event {
		e, err := domain.NewEvent([]byte(fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"created":%d,"api_version":"2023-10-16","livemode":false,"data":{"object":%s}}`,
			id, typ, created, object)), domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	const day = 86400
	sub := `{"id":"sub_c","object":"subscription","customer":"cus_c","status":"active","currency":"usd","created":1000,"current_period_start":1000,"current_period_end":2593000,
		"items":{"object":"list","data":[{"id":"si_c","quantity":1,"price":{"id":"p","product":"prod","billing_scheme":"per_unit","unit_amount":10000,"recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]},"discount":null}`
	customer := func(discount string) string {
		return `{"id":"cus_c","object":"customer","email":null,"created":500,"discount":` + discount + `}`
	}
	events := []domain.Event{
		raw("evt_c1", "customer.created", 500, customer("null")),
		raw("evt_s1", "customer.subscription.created", 1000, sub),
		raw("evt_c2", "customer.updated", 1000+10*day, customer(`{"id":"di_c","object":"discount","start":864000,"end":null,"coupon":{"id":"co","duration":"forever","percent_off":12.5}}`)),
	}
	if _, err := eventstoreNew(db).Append(ctx, events); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		var mrr int64
		var kinds string
		if err := db.Pool.QueryRow(ctx, `SELECT s.mrr, (SELECT string_agg(kind || ':' || amount || '@' || extract(epoch FROM at)::bigint, ' ' ORDER BY seq) FROM ledger.subscription_movements WHERE subscription = s.id)
			FROM ledger.subscriptions s WHERE id = 'sub_c'`).Scan(&mrr, &kinds); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("new:10000@1000 contraction:-1250@%d", 1000+10*day); mrr != 8750 || kinds != want {
			t.Fatalf("%s: mrr %d, movements %s, want 8750, %s", what, mrr, kinds, want)
		}
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	check("replay")
	if _, err := projections.Recompute(ctx, db.Pool, projections.RecomputeConfig{MRR: domain.MRRSettings{Discounts: domain.DiscountsBoth}}); err != nil {
		t.Fatal(err)
	}
	check("recompute")
	// Live: the customer's discount arrives after the subscription was folded.
	live := testkit.New(t)
	if _, err := projections.Rebuild(ctx, live.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	r := startRunner(t, live.Pool, projections.RunnerConfig{})
	for _, e := range events {
		if _, err := eventstoreNew(live).Append(ctx, []domain.Event{e}); err != nil {
			t.Fatal(err)
		}
		caughtUp(t, r, live.Pool)
	}
	db = live
	check("live")
}

func eventstoreNew(db *testkit.DB) *eventstore.Store { return eventstore.New(db.Pool) }
