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
	"github.com/stripeledger/ledger/internal/loadgen"
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
		var batches, events atomic.Int64
		var busy atomic.Int64
		app := eventstore.NewAppender(store, eventstore.AppenderConfig{OnBatch: func(n int, took time.Duration, _ error) {
			batches.Add(1)
			events.Add(int64(n))
			busy.Add(int64(took))
		}})
		defer app.Close()
		runAppendBench(b, app.Append)
		b.ReportMetric(float64(events.Load())/float64(batches.Load()), "events/batch")
		b.ReportMetric(float64(busy.Load())/float64(batches.Load())/1e6, "ms/batch")
	})
	b.Run("per-event", func(b *testing.B) {
		runAppendBench(b, store.Append)
	})
}

func runAppendBench(b *testing.B, appendFn func(context.Context, []domain.Event) ([]eventstore.Result, error)) {
	ctx := context.Background()
	run := benchSeq.Add(1)
	events := make([]domain.Event, b.N)
	for i, raw := range loadgen.Events(b.N, uint64(run), fmt.Sprintf("evt_b%d", run), 3072, 3072) {
		ev, err := domain.NewEvent(raw, domain.SourceWebhook, "t=1700000000,v1=00")
		if err != nil {
			b.Fatal(err)
		}
		events[i] = ev
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
