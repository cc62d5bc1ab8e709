package reconcile_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
)

// limit is Stripe's test-mode rate limit, which the simulator enforces in this benchmark.
const limit = 25

// BenchmarkReconcileScan is a full events pass over a log that already holds every event: the
// reconciler lists ~b.N events from the simulator, which answers 429 beyond 25 requests/s, and
// looks each page up in the log. The bound is what the limit allows, 25 pages of 100 a second
// (2,500 events/s); the target is ≥ 90% of it: time goes to Stripe's limit, not to diffing.
func BenchmarkReconcileScan(b *testing.B) {
	sim := stripesim.New(stripesim.Config{Seed: 91, Customers: max(50, b.N/8), Duration: 29 * 24 * time.Hour, End: end})
	sim.Run(time.Time{})
	db := testkit.New(b)
	store := eventstore.New(db.Pool)
	var batch []domain.Event
	for _, ev := range sim.Events() {
		e, err := domain.NewEvent(ev.API, domain.SourceImport, "")
		if err != nil {
			b.Fatal(err)
		}
		if batch = append(batch, e); len(batch) == 500 {
			if _, err := store.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := store.Append(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	api := httptest.NewServer(stripesim.NewServer(sim, nil, stripesim.ServerConfig{RateLimit: limit}))
	defer api.Close()
	r := reconcile.New(db.Pool, reconcile.Config{Now: sim.Now,
		Stripe: reconcile.StripeConfig{APIKey: "sk_test_bench", APIBase: api.URL, RateLimit: limit}})
	b.ResetTimer()
	start := time.Now()
	run, err := r.Run(context.Background(), reconcile.Options{Job: reconcile.JobEvents, DryRun: true})
	took := time.Since(start)
	b.StopTimer()
	if err != nil || run.MissingFound != 0 {
		b.Fatalf("%+v %v", run, err)
	}
	rate := float64(run.EventsSeen) / took.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(100*rate/(limit*100), "pct-of-bound")
	b.ReportMetric(float64(run.EventsSeen), "events")
	b.ReportMetric(float64(run.RateLimited), "429s")
}
