package eventstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
)

// benchCallers is the number of concurrent callers, each appending one ~3 KB event at a time:
// the shape of webhook traffic.
const benchCallers = 64

var benchSeq atomic.Int64

// BenchmarkAppend compares, in one run on one database server:
//   - group-commit: callers go through Appender, which shares transactions between them;
//   - per-event:    each caller runs its own Store.Append transaction (same lock, same hash
//     chain: the baseline of one INSERT transaction per event).
//
// Reported: events/s, p50 and p99 latency of one caller's append in ms.
func BenchmarkAppend(b *testing.B) {
	db := testkit.New(b)
	// The per-event baseline needs a connection per caller to be a fair baseline.
	store := eventstore.New(db.OpenPool(b, benchCallers+4))

	b.Run("group-commit", func(b *testing.B) {
		app := eventstore.NewAppender(store, eventstore.AppenderConfig{})
		defer app.Close()
		runAppendBench(b, app.Append)
	})
	b.Run("per-event", func(b *testing.B) {
		runAppendBench(b, store.Append)
	})
}

func runAppendBench(b *testing.B, appendFn func(context.Context, []domain.Event) ([]eventstore.Result, error)) {
	ctx := context.Background()
	run := benchSeq.Add(1)
	events := make([]domain.Event, b.N)
	for i := range events {
		events[i] = testkit.Event(fmt.Sprintf("evt_b%d_%d", run, i), "invoice.paid", fmt.Sprintf("in_%d", i%5000), 1700000000, 3072, domain.SourceWebhook)
	}
	latencies := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failures atomic.Int64
	b.SetBytes(3072)
	b.ResetTimer()
	start := time.Now()
	for range benchCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				res, err := appendFn(ctx, events[i:i+1])
				latencies[i] = time.Since(t0)
				if err != nil || res[0].Err != nil || res[0].Duplicate {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d appends failed", n)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
