package projections_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
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
// to the commit of the batch that folds it (the runner's FoldedBatch signal). Each run sends
// min(b.N, 6,000) events. The baseline is the same runner polling every second with no wake-up
// from the appender (watermill-sql's default poll interval, which the runner used to tail the
// log with). Target: p99 ≤ 250 ms.
func BenchmarkLiveLag(b *testing.B) {
	for _, c := range []struct {
		name string
		poll time.Duration
	}{{"runner=ledger", 0}, {"runner=poll-1s", time.Second}} {
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

	// The ledger's runner shares the webhook handler's store, as `ledger serve` does, so an
	// append wakes it at once; the baseline polls every second on a store of its own.
	cfg := projections.RunnerConfig{Store: store}
	if poll > 0 {
		cfg = projections.RunnerConfig{PollInterval: poll}
	}
	runner, err := projections.NewRunner(db.Pool, cfg)
	if err != nil {
		b.Fatal(err)
	}
	runner.Signals.FoldedBatch.Init(b)
	runner.Lease().Signals.Gained.Init(b)
	rctx, stopRunner := context.WithCancel(ctx)
	runnerDone := make(chan struct{})
	go func() { defer close(runnerDone); _ = runner.Run(rctx) }()
	defer func() { stopRunner(); <-runnerDone }()
	runner.Lease().Signals.Gained.Wait()

	// The observer: when did each batch commit, up to which position? It stops at the first
	// batch that reaches target, set once everything is sent (a value below 0 only wakes it to
	// look at target again).
	type seen struct {
		at  time.Time
		pos int64
	}
	var observed []seen
	var target atomic.Int64
	target.Store(math.MaxInt64)
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		var last int64
		for last < target.Load() {
			pos := runner.Signals.FoldedBatch.Wait()
			if pos < 0 {
				continue
			}
			observed = append(observed, seen{time.Now(), pos})
			last = pos
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
	// Wait for the runner to cover the last event.
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	target.Store(head.Position)
	runner.Signals.FoldedBatch.Signal(-1)
	<-obsDone
	b.StopTimer()

	positions := map[string]int64{}
	recs, err := store.List(ctx, eventstore.Filter{})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range recs {
		positions[r.ID] = r.Position
	}
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
	runner.Signals.FoldedBatch.Init(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	head, _ := eventstore.New(db.Pool).Head(ctx)
	runner.Signals.FoldedBatch.WaitUntil(func(pos int64) bool { return pos >= head.Position })
	took := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(head.Position)/took.Seconds(), "events/s")
	b.ReportMetric(float64(head.Position), "events")
}
