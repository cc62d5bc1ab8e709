package projections_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// An account on a version the ledger has never seen (a future one), whose unpinned endpoint
// sends every webhook at it: the events are folded as the nearest older version the reducers
// know (dahlia), counted apart in the metrics, and a row whose link that version leaves out says
// so in attention.
func TestAnUnseenVersionIsReadAsTheNearestOlder(t *testing.T) {
	t.Parallel()
	const unseen = "2027-03-01.fig"
	sim := stripesim.New(stripesim.Config{Seed: 31, Customers: 30, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		AccountAPIVersion: unseen, WebhookAPIVersion: stripesim.Unpinned})
	sim.Run(time.Time{})
	db := testkit.New(t)
	m := projections.NewMetrics(prometheus.NewRegistry())
	r := startRunner(t, db.Pool, projections.RunnerConfig{Metrics: m})
	appendInBatches(t, db.Pool, sim.Events(), rand.New(rand.NewPCG(3, 1)))
	caughtUp(t, r, db.Pool)
	if n := testutil.ToFloat64(m.ByVersion().WithLabelValues(unseen, "false")); int(n) != len(sim.Events()) {
		t.Fatalf("%v events counted at %s, of %d", n, unseen, len(sim.Events()))
	}
	var invoices, noSubscription, silent int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE subscription IS NULL),
		count(*) FILTER (WHERE payment_intent IS NULL AND amount_due > 0 AND attention IS NULL) FROM ledger.invoices`).Scan(&invoices, &noSubscription, &silent); err != nil {
		t.Fatal(err)
	}
	if invoices == 0 || noSubscription != 0 || silent != 0 {
		t.Fatalf("%d invoices: %d without their subscription, %d without their payment intent and no word why", invoices, noSubscription, silent)
	}
}
