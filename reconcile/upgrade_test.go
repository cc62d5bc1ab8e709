package reconcile_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
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

// An endpoint upgrade: the old endpoint (pinned to 2023-10-16) keeps sending while a new one,
// pinned to dahlia, is created halfway through. Every event from then on arrives twice, in two
// shapes, in either order: the log holds it once, the first shape that came, and the other is
// kept beside it; the read models equal the account whichever came first.
func TestAnEndpointUpgradeKeepsBothShapes(t *testing.T) {
	t.Parallel()
	const oldSecret, newSecret, dahlia = "whsec_old_endpoint", "whsec_new_endpoint", "2026-08-26.dahlia"
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{})
	t.Cleanup(appender.Close)
	h, err := webhook.New(webhook.Config{Secrets: []string{oldSecret, newSecret}, Logger: slog.New(slog.DiscardHandler)}, appender, store,
		webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	t.Cleanup(hook.Close)
	sim := stripesim.New(stripesim.Config{Seed: 9, Customers: 60, Duration: 40 * 24 * time.Hour, End: end, AccountAPIVersion: dahlia})
	since := end.Add(-20 * 24 * time.Hour)
	// The old endpoint is down for two hours after the upgrade: what it misses it is sent again
	// later, after the new endpoint's copy, which the log then holds.
	down := since.Add(5 * 24 * time.Hour)
	old := stripesim.NewDeliverer(sim, stripesim.DeliveryConfig{URL: hook.URL, Secrets: []string{oldSecret},
		Outages: []stripesim.Window{{From: down, To: down.Add(2 * time.Hour)}}})
	upgraded := stripesim.NewDeliverer(sim, stripesim.DeliveryConfig{URL: hook.URL, Secrets: []string{newSecret}, APIVersion: dahlia, Since: since})
	if err := (&stripesim.Runner{Sim: sim, Deliverers: []*stripesim.Deliverer{old, upgraded}}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := &account{db: db, sim: sim}
	var logged, after, twice, bothShapes, firstDahlia int
	if err := db.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM ledger.events),
		(SELECT count(*) FROM ledger.events WHERE created >= $1),
		(SELECT count(*) FROM ledger.event_renderings r JOIN ledger.events e USING (event_id) WHERE r.source = 'webhook'),
		(SELECT count(*) FROM ledger.event_renderings r JOIN ledger.events e USING (event_id)
			WHERE r.source = 'webhook' AND e.created >= $1 AND e.api_version <> r.api_version
			AND '2023-10-16' IN (e.api_version, r.api_version) AND $2 IN (e.api_version, r.api_version)),
		(SELECT count(*) FROM ledger.events WHERE api_version = $2)`, since, dahlia).Scan(&logged, &after, &twice, &bothShapes, &firstDahlia); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events, %d since the upgrade, each kept in both shapes: %d; %d stored at dahlia first", logged, after, bothShapes, firstDahlia)
	if logged != len(sim.Events()) || after == 0 || twice != after || bothShapes != after || firstDahlia == 0 || firstDahlia == after {
		t.Fatalf("%d events logged of %d; %d since the upgrade; %d renderings, %d in the other shape; %d stored at dahlia first",
			logged, len(sim.Events()), after, twice, bothShapes, firstDahlia)
	}
	a.matchesTruth(t, "subscriptions", "charges", "invoices", "customers")
}

// An account on dahlia whose endpoint pins no version and is not subscribed to coupon.* (it
// was set up with an older list of types): every event names its discounts' coupons by ID alone
// and the log has no coupon, so discounted subscriptions (and those of discounted customers) are
// unvalued. An objects run lists the coupons first and appends a snapshot of each; the
// subscriptions and customers are then compared with those terms, so none needs a snapshot of
// its own for its coupon, and every version of their history is valued: the ledger's unvalued
// subscriptions, and its movement log, are the account's.
func TestObjectsRunValuesCouponsNamedByID(t *testing.T) {
	t.Parallel()
	var enabled []string
	for _, typ := range domain.ReadModelEventTypes {
		if !strings.HasPrefix(typ, "coupon.") {
			enabled = append(enabled, typ)
		}
	}
	a := play(t, "steady", func(c *stripesim.Config, d *stripesim.DeliveryConfig) {
		c.Customers, c.AccountAPIVersion, c.WebhookAPIVersion = 80, "2026-08-26.dahlia", stripesim.Unpinned
		d.EnabledEvents = enabled
	}, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	blind := func() (subs, customers int) {
		t.Helper()
		if _, err := projections.Rebuild(ctx, a.db.Pool, projections.Config{}); err != nil {
			t.Fatal(err)
		}
		if err := a.db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger.subscriptions WHERE mrr IS NULL AND attention LIKE '%is not expanded%'),
			(SELECT count(*) FROM ledger.customers WHERE discount->>'unvalued' LIKE '%is not expanded%')`).Scan(&subs, &customers); err != nil {
			t.Fatal(err)
		}
		return subs, customers
	}
	subs, customers := blind()
	if subs == 0 || customers == 0 {
		t.Fatalf("%d subscriptions and %d customers with a coupon named by ID: the account should have both", subs, customers)
	}
	run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobObjects})
	if err != nil || run.Repaired == 0 || run.Drift["coupons.missing"] == 0 || run.Drift["subscriptions.mrr"] != 0 || run.Drift["customers.discount"] != 0 {
		t.Fatalf("run %+v %v", run, err)
	}
	if s, c := blind(); s != 0 || c != 0 {
		t.Fatalf("after the objects run: %d subscriptions and %d customers still unvalued (before: %d, %d)", s, c, subs, customers)
	}
	var unvaluedMoves int
	if err := a.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.subscriptions_history WHERE mrr IS NULL AND attention LIKE '%is not expanded%'`).Scan(&unvaluedMoves); err != nil || unvaluedMoves != 0 {
		t.Fatalf("%d versions of the subscriptions' history still unvalued (%v)", unvaluedMoves, err)
	}
	var unvalued int
	if err := a.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.subscriptions WHERE mrr IS NULL AND status IN ('active', 'past_due')`).Scan(&unvalued); err != nil {
		t.Fatal(err)
	}
	if want := a.sim.TruthMetrics().Unvalued; unvalued != want {
		t.Fatalf("%d subscriptions unvalued, the account %d", unvalued, want)
	}
	t.Logf("%d subscriptions and %d customers valued by the objects run's %d snapshots (%d coupons)", subs, customers, run.Repaired, run.Drift["coupons.missing"])
}
