package projections_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
	"github.com/stripeledger/ledger/webhook"
)

// lagRate is the delivery rate the lag target is stated at.
const lagRate = 1000 // events/s

// BenchmarkLiveLag delivers a simulated account's webhooks over HTTP to the real handler at
// 1,000 events/s while the live runner folds them, and measures each event's lag from its 200
// to the moment the read models' checkpoint covers it (seen by a reader polling every 1 ms).
// Each run sends min(b.N, 6,000) events. The baseline is the same runner with watermill-sql's
// default poll interval (1 s). Target: p99 ≤ 250 ms.
func BenchmarkLiveLag(b *testing.B) {
	for _, c := range []struct {
		name string
		poll time.Duration
	}{{"runner=ledger", 0}, {"runner=watermill-default-poll", time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			n := min(b.N, 6000)
			sim := stripesim.New(stripesim.Config{Seed: 81, Customers: n/9 + 50, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
			sim.Run(time.Time{})
			events := sim.Events()
			if len(events) < n {
				b.Fatalf("the simulator made %d events, need %d", len(events), n)
			}
			events = events[:n]
			lags, acks := measureLag(b, events, c.poll)
			slices.Sort(lags)
			slices.Sort(acks)
			q := func(s []time.Duration, p float64) float64 {
				return float64(s[int(float64(len(s)-1)*p)].Microseconds()) / 1000
			}
			b.ReportMetric(q(lags, 0.5), "p50-lag-ms")
			b.ReportMetric(q(lags, 0.99), "p99-lag-ms")
			b.ReportMetric(q(lags, 1), "max-lag-ms")
			b.ReportMetric(q(acks, 0.99), "p99-ack-ms")
			b.ReportMetric(float64(len(events)), "events")
		})
	}
}

func measureLag(b *testing.B, events []*stripesim.Event, poll time.Duration) (lags, acks []time.Duration) {
	b.Helper()
	ctx := context.Background()
	db := testkit.New(b)
	const secret = "whsec_lag_bench"
	store := eventstore.New(db.Pool)
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{})
	defer appender.Close()
	h, err := webhook.New(webhook.Config{Secrets: []string{secret}, Logger: slog.New(slog.DiscardHandler)}, appender, store, webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	runner, err := projections.NewRunner(db.Pool, projections.RunnerConfig{PollInterval: poll})
	if err != nil {
		b.Fatal(err)
	}
	rctx, stopRunner := context.WithCancel(ctx)
	runnerDone := make(chan struct{})
	go func() { defer close(runnerDone); _ = runner.Run(rctx) }()
	defer func() { stopRunner(); <-runnerDone }()
	for !runner.Active() {
		time.Sleep(time.Millisecond)
	}

	// The observer: when did the checkpoint first cover each position?
	type seen struct {
		at  time.Time
		pos int64
	}
	var observed []seen
	obsCtx, stopObs := context.WithCancel(ctx)
	obsDone := make(chan struct{})
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(obsDone)
		defer conn.Release()
		var last int64 = -1
		for obsCtx.Err() == nil {
			var pos int64
			if err := conn.QueryRow(obsCtx, `SELECT position FROM ledger.projection_state WHERE name = $1`, projections.StateName).Scan(&pos); err == nil && pos != last {
				observed = append(observed, seen{time.Now(), pos})
				last = pos
			}
			time.Sleep(time.Millisecond)
		}
	}()

	// The sender: event i leaves at start + i/rate, whatever the answers' latency.
	acked := make([]time.Time, len(events))
	acks = make([]time.Duration, len(events))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	work := make(chan int, len(events))
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				body := events[i].Webhook
				sig := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: secret}).Header
				req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
				req.Header.Set("Stripe-Signature", sig)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("delivery %d: %v %v", i, err, resp)
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				resp.Body.Close()
				acked[i] = time.Now()
				acks[i] = acked[i].Sub(t0)
			}
		}()
	}
	b.ResetTimer()
	start := time.Now()
	for i := range events {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / lagRate)); d > 0 {
			time.Sleep(d)
		}
		work <- i
	}
	close(work)
	wg.Wait()
	// Wait for the runner to cover the last event, then stop observing.
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var pos int64
		_ = db.Pool.QueryRow(ctx, `SELECT position FROM ledger.projection_state WHERE name = $1`, projections.StateName).Scan(&pos)
		if pos >= head.Position || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	stopObs()
	<-obsDone
	b.StopTimer()

	positions := map[string]int64{}
	rows, err := db.Pool.Query(ctx, `SELECT event_id, position FROM ledger.events`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id string
		var pos int64
		_ = rows.Scan(&id, &pos)
		positions[id] = pos
	}
	rows.Close()
	for i, ev := range events {
		pos, ok := positions[ev.ID]
		if !ok || acked[i].IsZero() {
			b.Fatalf("event %s not acknowledged or not in the log", ev.ID)
		}
		k, found := slices.BinarySearchFunc(observed, pos, func(s seen, p int64) int {
			if s.pos < p {
				return -1
			}
			if s.pos > p {
				return 1
			}
			return 0
		})
		if k == len(observed) && !found {
			b.Fatalf("the runner never covered position %d", pos)
		}
		lags = append(lags, max(0, observed[k].at.Sub(acked[i])))
	}
	return lags, acks
}

// BenchmarkLiveCatchUp is the live runner's throughput: it folds a log of b.N realistic events
// that is already there, from position 0 (what a runner does after downtime).
func BenchmarkLiveCatchUp(b *testing.B) {
	sim := stripesim.New(stripesim.Config{Seed: 82, Customers: max(1, b.N/11), End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := loadB(b, sim.Events())
	b.ResetTimer()
	start := time.Now()
	runner, err := projections.NewRunner(db.Pool, projections.RunnerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	head, _ := eventstore.New(db.Pool).Head(ctx)
	for {
		var pos int64
		_ = db.Pool.QueryRow(ctx, `SELECT coalesce((SELECT position FROM ledger.projection_state WHERE name = $1), 0)`, projections.StateName).Scan(&pos)
		if pos >= head.Position {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(head.Position)/took.Seconds(), "events/s")
	b.ReportMetric(float64(head.Position), "events")
}
