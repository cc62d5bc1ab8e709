package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// What the history tables cost the write path, measured with history written and with it
// turned off (the tables still made, left empty), in the same run.

// BenchmarkReplayHistory rebuilds every read model from BenchmarkReplay's log of 200,000
// events with and without history, one rebuild a run, and reports events/s.
func BenchmarkReplayHistory(b *testing.B) {
	pool := testkit.Cached(b, "replay_1", func(ctx context.Context, pool *pgxpool.Pool) error {
		return appendAccounts(ctx, pool, 1)
	})
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("history=%t", on), func(b *testing.B) {
			projections.SetHistory(on)
			defer projections.SetHistory(true)
			b.ResetTimer()
			st, err := projections.Rebuild(context.Background(), pool, projections.Config{})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Events)/st.Took.Seconds(), "events/s")
			b.ReportMetric(float64(st.Events), "events")
		})
	}
	// The next rebuild (another benchmark's, a runner's) writes history again.
	if _, err := projections.Rebuild(context.Background(), pool, projections.Config{}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLiveFold is the live runner's throughput: a log of about 30,000 simulated events is
// appended first, then a runner started on it folds it in batches of 500 until it reaches the
// head; events/s with and without history. One catch-up a run, whatever b.N.
func BenchmarkLiveFold(b *testing.B) {
	sim := stripesim.New(stripesim.Config{Seed: 83, Customers: 2700, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("history=%t", on), func(b *testing.B) {
			projections.SetHistory(on)
			defer projections.SetHistory(true)
			db := testkit.New(b)
			ctx := context.Background()
			store := eventstore.New(db.Pool)
			batch := make([]domain.Event, 0, 1000)
			for i, ev := range events {
				e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
				if err != nil {
					b.Fatal(err)
				}
				if batch = append(batch, e); len(batch) == cap(batch) || i == len(events)-1 {
					if _, err := store.Append(ctx, batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			head, err := store.Head(ctx)
			if err != nil {
				b.Fatal(err)
			}
			r, err := projections.NewRunner(db.Pool, projections.RunnerConfig{BatchSize: 500, Store: store})
			if err != nil {
				b.Fatal(err)
			}
			r.Signals.FoldedBatch.Init(b)
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			b.ResetTimer()
			start := time.Now()
			go func() {
				defer close(done)
				_ = r.Run(runCtx)
			}()
			r.Signals.FoldedBatch.WaitUntil(func(pos int64) bool { return pos >= head.Position })
			took := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(head.Position)/took.Seconds(), "events/s")
			b.ReportMetric(float64(head.Position), "events")
		})
	}
}
