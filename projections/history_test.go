package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
	"github.com/stripeledger/ledger/webhook"
)

// repairedAccount is a simulated account played into a ledger whose live runner folds as the
// webhooks arrive, through a four-day webhook outage that reconciliation then repairs by
// appending the lost events: older events arriving late, after newer ones.
type repairedAccount struct {
	db            *testkit.DB
	sim           *stripesim.Sim
	beforeRepair  int64 // the log's head before the repair
	repaired, end int64
}

// playRepairedAt plays an account of customers into a fresh ledger (see repairedAccount); version
// is the account's default API version (its Events API, and so the repair, renders at it), ""
// for 2023-10-16.
func playRepairedAt(t *testing.T, customers int, version string) *repairedAccount {
	t.Helper()
	const secret = "whsec_history_test"
	ctx := context.Background()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{})
	t.Cleanup(appender.Close)
	h, err := webhook.New(webhook.Config{Secrets: []string{secret}, Logger: slog.New(slog.DiscardHandler)}, appender, store,
		webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	t.Cleanup(hook.Close)
	cfg, dc, err := stripesim.Setup("outage-4d", stripesim.Config{Seed: 5, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)},
		stripesim.DeliveryConfig{URL: hook.URL, Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Customers, cfg.AccountAPIVersion = customers, version
	sim := stripesim.New(cfg)
	d := stripesim.NewDeliverer(sim, dc)
	api := httptest.NewServer(stripesim.NewServer(sim, d, stripesim.ServerConfig{RateLimit: -1}))
	t.Cleanup(api.Close)

	r := startRunner(t, db.Pool, projections.RunnerConfig{BatchSize: 50, Store: store})
	if err := (&stripesim.Runner{Sim: sim, Deliverer: d}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := "sk_test_history"
	if sim.Config().Livemode {
		key = "sk_live_history"
	}
	rec := reconcile.New(db.Pool, reconcile.Config{Now: sim.Now,
		Stripe: reconcile.StripeConfig{APIKey: key, APIBase: api.URL, RateLimit: 1000, BaseBackoff: 20 * time.Millisecond}})
	run, err := rec.Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	if run.Repaired < 5 {
		t.Fatalf("the repair appended %d events (%+v, head %d of %d): the outage lost too few for the test to mean anything", run.Repaired, run, head.Position, len(sim.Events()))
	}
	caughtUp(t, r, db.Pool)
	end, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &repairedAccount{db: db, sim: sim, beforeRepair: head.Position, repaired: int64(run.Repaired), end: end.Position}
}

// rowsByID are rows (model column order) as JSON, by object ID.
func rowsByID(rows [][]any) map[string]string {
	out := map[string]string{}
	for _, r := range rows {
		b, _ := json.Marshal(r)
		out[r[0].(string)] = string(b)
	}
	return out
}

// For cuts at random times and log positions — alone and together, and at the position where
// the log stood before the repair — every read model's rows from its history equal a fold of
// the log cut at the same place (projections.AsOf, the fold every as-of answer used to be):
// late older events change what is true as of a time, never what was known at a position before
// they arrived. The live runner wrote the history; a replay of the same log writes the same rows.
//
// On an account on dahlia the repair comes at dahlia, and the links basil moved (derived from
// the invoice payments) are the same at every cut as in the fold.
func TestHistoryAnswersEqualAFoldOfTheCutLog(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"", "2026-08-26.dahlia"} {
		t.Run("version="+version, func(t *testing.T) {
			t.Parallel()
			historyAnswersEqualAFoldOfTheCutLog(t, playRepairedAt(t, 80, version))
		})
	}
}

func historyAnswersEqualAFoldOfTheCutLog(t *testing.T, a *repairedAccount) {
	ctx := context.Background()
	start := a.sim.Config().End.Add(-a.sim.Config().Duration)
	outage := a.sim.Config().End.Add(-19 * 24 * time.Hour) // within the outage's undelivered day

	rng := rand.New(rand.NewPCG(17, 5))
	cuts := []projections.Cut{
		{AsOf: outage, KnownAt: a.beforeRepair, Known: true}, // what a close before the repair saw
		{AsOf: outage},
		{KnownAt: a.beforeRepair, Known: true},
		{KnownAt: a.end, Known: true},
		{AsOf: start.Add(-time.Hour)}, // before the account had anything
	}
	for range 4 {
		at := start.Add(time.Duration(rng.Int64N(int64(a.sim.Config().Duration))))
		p := 1 + rng.Int64N(a.end)
		cuts = append(cuts, projections.Cut{AsOf: at}, projections.Cut{KnownAt: p, Known: true}, projections.Cut{AsOf: at, KnownAt: p, Known: true})
	}
	compared, differed := 0, false
	for _, cut := range cuts {
		for _, m := range projections.Models {
			want, err := projections.AsOf(ctx, a.db.Pool, m, cut, "", domain.Identity{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := projections.ReadAt(ctx, a.db.Pool, m, cut, projections.Select{}, domain.Identity{})
			if err != nil {
				t.Fatal(err)
			}
			w, g := rowsByID(want), rowsByID(got)
			for id, row := range w {
				if g[id] != row {
					t.Errorf("%s %s at %+v:\n history %s\n    fold %s", m.Table, id, cut, g[id], row)
				}
			}
			for id := range g {
				if _, ok := w[id]; !ok {
					t.Errorf("%s %s at %+v: in the history, not in the fold", m.Table, id, cut)
				}
			}
			if len(got) != len(g) {
				t.Errorf("%s at %+v: %d rows for %d objects", m.Table, cut, len(got), len(g))
			}
			compared += len(w)
			// One object, as a get reads it.
			if len(want) > 0 {
				id := want[rng.IntN(len(want))][0].(string)
				one, err := projections.ReadAt(ctx, a.db.Pool, m, cut, projections.Select{Pre: []string{"h.id = $1"}, Args: []any{id}}, domain.Identity{})
				if err != nil || len(one) != 1 || rowsByID(one)[id] != w[id] {
					t.Errorf("%s %s at %+v alone: %v %v", m.Table, id, cut, one, err)
				}
			}
		}
	}
	if compared < 500 {
		t.Fatalf("only %d rows compared", compared)
	}
	// The repair must matter at the outage: as known before it, that day's objects differ from
	// what the whole log says of it.
	for _, m := range projections.Models {
		known, _ := projections.ReadAt(ctx, a.db.Pool, m, cuts[0], projections.Select{}, domain.Identity{})
		now, _ := projections.ReadAt(ctx, a.db.Pool, m, cuts[1], projections.Select{}, domain.Identity{})
		if fmt.Sprint(rowsByID(known)) != fmt.Sprint(rowsByID(now)) {
			differed = true
		}
	}
	if !differed {
		t.Fatal("the repaired events changed nothing as of the outage: the cuts test nothing")
	}

	// The movement log the known_at MRR series read, as known at the end, is the live one. (As
	// known before the repair it is not what the live log said then: a version is valued with
	// its customer's discounts as known now, valueSubscription.)
	if got, want := knownMovements(t, a.db, &a.end), knownMovements(t, a.db, nil); got != want || want == "" {
		t.Errorf("the movement log known at the end differs from the live one:\n%s", lineDiff(got, want))
	}

	live := dumpTables(t, a.db, projections.HistoryTables())
	if _, err := projections.Rebuild(ctx, a.db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	replayed := dumpTables(t, a.db, projections.HistoryTables())
	for _, name := range projections.HistoryTables() {
		if live[name] != replayed[name] {
			t.Errorf("ledger.%s: the live runner's history differs from a replay's", name)
		}
	}
	if live["charges_history"] == "" || live["subscription_movements_history"] == "" {
		t.Fatal("no history written")
	}
}

func columnOf(m *projections.Model, name string) int {
	return slices.IndexFunc(m.Columns, func(c projections.Column) bool { return c.Name == name })
}

// dumpTables is the tables' rows as JSON, in a stable order.
func dumpTables(t *testing.T, db *testkit.DB, names []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range names {
		var s *string
		if err := db.Pool.QueryRow(context.Background(), `SELECT json_agg(r ORDER BY r::text)::text FROM ledger.`+name+` r`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s != nil {
			out[name] = *s
		}
	}
	return out
}

// A late event rewrites the versions after it, and only the versions known from its arrival:
// the rows known before stay as they were.
func TestLateEventAddsVersionsKnownFromItsArrival(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 29, Customers: 100, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()
	// Hold back the first event of every object with more than one, then append them last:
	// older events arriving late, after newer ones.
	count := map[string]int{}
	for _, ev := range events {
		count[objectOf(t, ev)]++
	}
	var first, late []*stripesim.Event
	seen := map[string]bool{}
	for _, ev := range events {
		if id := objectOf(t, ev); strings.HasPrefix(id, "ch_") && count[id] > 1 && !seen[id] {
			seen[id] = true
			late = append(late, ev)
		} else {
			first = append(first, ev)
		}
	}
	if len(late) < 5 {
		t.Fatalf("only %d late events", len(late))
	}
	db := testkit.New(t)
	r := startRunner(t, db.Pool, projections.RunnerConfig{BatchSize: 40})
	appendInBatches(t, db.Pool, first, rand.New(rand.NewPCG(29, 1)))
	caughtUp(t, r, db.Pool)
	ctx := context.Background()
	head, _ := eventstore.New(db.Pool).Head(ctx)
	before := dumpRows(t, db, `SELECT json_agg(h ORDER BY h::text)::text FROM ledger.charges_history h`)
	appendInBatches(t, db.Pool, late, rand.New(rand.NewPCG(29, 2)))
	caughtUp(t, r, db.Pool)
	after := dumpRows(t, db, `SELECT json_agg(h ORDER BY h::text)::text FROM ledger.charges_history h WHERE known_from <= `+fmt.Sprint(head.Position))
	if before != after {
		t.Fatal("versions known before the late events changed")
	}
	var added, lateRows int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE valid_from < (SELECT max(valid_from) FROM ledger.charges_history g WHERE g.id = h.id AND g.known_from <= $1))
		FROM ledger.charges_history h WHERE known_from > $1`, head.Position).Scan(&added, &lateRows)
	if added < len(late) || lateRows == 0 {
		t.Fatalf("%d rows added for %d late events, %d of them before the latest version known", added, len(late), lateRows)
	}
	cut := projections.Cut{KnownAt: head.Position, Known: true}
	want, err := projections.AsOf(ctx, db.Pool, projections.Charges, cut, "", domain.Identity{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := projections.ReadAt(ctx, db.Pool, projections.Charges, cut, projections.Select{}, domain.Identity{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rowsByID(want)) != fmt.Sprint(rowsByID(got)) {
		t.Fatal("charges known before the late events differ from a fold of the log cut there")
	}
}

func objectOf(t *testing.T, ev *stripesim.Event) string {
	t.Helper()
	var env struct {
		Data struct {
			Object struct {
				ID string `json:"id"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(ev.Webhook, &env); err != nil {
		t.Fatal(err)
	}
	return env.Data.Object.ID
}

func dumpRows(t *testing.T, db *testkit.DB, sql string) string {
	t.Helper()
	var s *string
	if err := db.Pool.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// knownMovements is the movement log as known at position known (nil: the live table), one
// line per movement in (subscription, seq) order.
func knownMovements(t *testing.T, db *testkit.DB, known *int64) string {
	t.Helper()
	src := "ledger.subscription_movements"
	if known != nil {
		src = "(" + projections.ChildVersionsSQL(projections.Subscriptions.Children[0], fmt.Sprint(*known)) + ")"
	}
	return dumpRows(t, db, `SELECT coalesce(string_agg(json_build_array(subscription, seq, customer, currency, kind, amount, mrr_before, mrr_after, source_events, at, period_start, livemode, account)::text, E'\n' ORDER BY subscription, seq), '') FROM `+src+` m`)
}

// lineDiff lists the lines only one of got and want has (- got, + want), at most 40.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var out []string
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out[:min(len(out), 40)], "\n")
}
