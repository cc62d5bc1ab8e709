package notify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/stripesim"
)

// BenchmarkNotifyFill measures the outbox fill rate: the runner matching a log of simulated
// events (one stripesim account: customers, subscriptions, invoices, charges, disputes…)
// against the shipped rules and inserting their rows, checkpoint and outbox in one transaction
// per batch. Each iteration empties the outbox and rewinds the checkpoint to the start. Target:
// ≥ 20,000 events/s.
func BenchmarkNotifyFill(b *testing.B) {
	pool := testkit.Cached(b, "notify_fill", func(ctx context.Context, pool *pgxpool.Pool) error {
		sim := stripesim.New(stripesim.Config{Seed: 18, Customers: 4000, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
		sim.Run(time.Time{})
		store := eventstore.New(pool)
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
		_, err := store.Append(ctx, batch)
		return err
	})
	cfg, err := Load(examplePath(nil), exampleEnv)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	head, err := eventstore.New(pool).Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var rows int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for _, q := range []string{`TRUNCATE ledger.notify_outbox, ledger.notify_rules_seen`,
			`INSERT INTO ledger.notify_rules_seen (rule, first_position) SELECT unnest($1::text[]), 0`,
			`DELETE FROM ledger.projection_state WHERE name = 'notify'`} {
			var args []any
			if strings.Contains(q, "$1") {
				args = []any{ruleNames(cfg)}
			}
			if _, err := pool.Exec(ctx, q, args...); err != nil {
				b.Fatal(err)
			}
		}
		r, err := NewRunner(pool, RunnerConfig{Config: cfg, SweepInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		r.Signals.Filled.Init(b)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		b.StartTimer()
		start := time.Now()
		go func() {
			defer close(done)
			_ = r.Run(runCtx)
		}()
		r.Signals.Filled.WaitUntil(func(p int64) bool { return p >= head.Position })
		took := time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger.notify_outbox`).Scan(&rows); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(head.Position)/took.Seconds(), "events/s")
		b.StartTimer()
	}
	b.ReportMetric(float64(head.Position), "events")
	b.ReportMetric(float64(rows), "notifications")
}

func ruleNames(cfg *Config) []string {
	out := make([]string, len(cfg.Rules))
	for i, r := range cfg.Rules {
		out[i] = r.Name
	}
	return out
}
