package reconcile_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
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
