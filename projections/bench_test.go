package projections_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// BenchmarkReplay rebuilds every read model from a log of realistic simulated events at two
// sizes in the same run, 200,000 and 2,000,000 events, and reports events/s and the peak heap
// the rebuild used: replay's memory is bounded by a partition, so the peak at 2M must stay
// within 1.3× the peak at 200k. Each size's log is built once (the simulator's accounts, 18,000
// customers for every 200,000 events) and kept on the test server for later runs. b.N is
// ignored: one rebuild a run.
func BenchmarkReplay(b *testing.B) {
	for _, size := range []struct {
		name     string
		accounts int // of 18,000 customers: ~200,000 events each
	}{{"events=200k", 1}, {"events=2M", 10}} {
		b.Run(size.name, func(b *testing.B) {
			pool := testkit.Cached(b, fmt.Sprintf("replay_%d", size.accounts), func(ctx context.Context, pool *pgxpool.Pool) error {
				return appendAccounts(ctx, pool, size.accounts)
			})
			runtime.GC()
			peak := watchHeap()
			b.ResetTimer()
			st, err := projections.Rebuild(context.Background(), pool, projections.Config{})
			b.StopTimer()
			heap := peak()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Events)/st.Took.Seconds(), "events/s")
			b.ReportMetric(float64(st.Events), "events")
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(st.Partitions), "partitions")
		})
	}
}

// appendAccounts appends n simulated accounts of 18,000 customers each, one after the other, so
// the benchmark's own memory stays that of one account however large the log.
func appendAccounts(ctx context.Context, pool *pgxpool.Pool, n int) error {
	store := eventstore.New(pool)
	for i := range n {
		sim := stripesim.New(stripesim.Config{Seed: 64 + uint64(i), Customers: 18_000, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
		sim.Run(time.Time{})
		batch := make([]domain.Event, 0, 1000)
		for _, ev := range sim.Events() {
			e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
			if err != nil {
				return err
			}
			if batch = append(batch, e); len(batch) == cap(batch) {
				if _, err := store.Append(ctx, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if _, err := store.Append(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// watchHeap samples the heap's size (live objects and those not yet swept) every 5 ms until the
// returned function is called, which answers the largest sample.
func watchHeap() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak.Load()
	}
}
