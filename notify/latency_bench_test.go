package notify_test

import (
	"bytes"
	"context"
	"fmt"
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
	"github.com/stripeledger/ledger/notify"
	"github.com/stripeledger/ledger/webhook"
)

// notifyRate is the webhook rate the latency target is stated at.
const notifyRate = 200 // events/s

// BenchmarkNotifyLatency sends signed charge.succeeded webhooks over HTTP to the real handler at
// 200 events/s, with the notify runner filling the outbox and the deliverer sending each match to
// a local webhook receiver, as `ledger serve` wires them (the runner woken by the handler's
// store, the deliverer polling every 100 ms). Each event's latency is from its 200 to the
// receiver's arrival of its notification. Each run sends min(b.N, 1,200) events (six seconds).
// Target: p99 ≤ 500 ms.
func BenchmarkNotifyLatency(b *testing.B) {
	n := min(b.N, 1200)
	ctx := context.Background()
	db := testkit.New(b)
	const secret = "whsec_notify_bench"
	store := eventstore.New(db.Pool)
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{})
	defer appender.Close()
	h, err := webhook.New(webhook.Config{Secrets: []string{secret}, Logger: slog.New(slog.DiscardHandler)}, appender, store, webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	ingress := httptest.NewServer(h)
	defer ingress.Close()

	var mu sync.Mutex
	arrived := map[string]time.Time{}
	all := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(notify.IdempotencyHeader)
		mu.Lock()
		if _, ok := arrived[key]; !ok {
			arrived[key] = time.Now()
			if len(arrived) == n {
				close(all)
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()

	cfg, err := notify.Parse([]byte(`channels:
  erp: {type: webhook, url_env: ERP_URL, secret_env: ERP_SECRET}
rules:
  - name: payments
    events: [charge.succeeded]
    channel: erp
    subject: "Charge {{.object_id}}"
    text: "{{.amount_formatted}}"
`), "bench.yaml", env("ERP_URL", receiver.URL, "ERP_SECRET", "whsec_erp"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO ledger.notify_rules_seen (rule, first_position) VALUES ('payments', 0)`); err != nil {
		b.Fatal(err)
	}
	runner, err := notify.NewRunner(db.Pool, notify.RunnerConfig{Config: cfg, Store: store})
	if err != nil {
		b.Fatal(err)
	}
	channels, err := notify.NewChannels(cfg.Channels, notify.ChannelOptions{Getenv: env("ERP_URL", receiver.URL, "ERP_SECRET", "whsec_erp")})
	if err != nil {
		b.Fatal(err)
	}
	d, err := notify.NewDeliverer(db.Pool, notify.DelivererConfig{Channels: channels, PollInterval: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	d.Signals.Started.Init(b)
	runner.Lease().Signals.Gained.Init(b)
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = runner.Run(rctx) }()
	go func() { defer wg.Done(); _ = d.Run(rctx) }()
	defer func() { stop(); wg.Wait() }()
	runner.Lease().Signals.Gained.Wait()
	d.Signals.Started.Wait()

	keys := make([]string, n)
	bodies := make([][]byte, n)
	for i := range n {
		id := fmt.Sprintf("evt_bench_%06d", i)
		keys[i] = notify.IdempotencyKey("payments", id)
		bodies[i] = testkit.EventJSON(id, "charge.succeeded", fmt.Sprintf("ch_%d", i), time.Now().Unix(), 2048)
	}
	acked := make([]time.Time, n)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 30 * time.Second}
	work := make(chan int, n)
	var senders sync.WaitGroup
	for range 16 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := range work {
				sig := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: bodies[i], Secret: secret}).Header
				req, _ := http.NewRequest(http.MethodPost, ingress.URL, bytes.NewReader(bodies[i]))
				req.Header.Set("Stripe-Signature", sig)
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("webhook %d: %v %v", i, err, resp)
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				resp.Body.Close()
				acked[i] = time.Now()
			}
		}()
	}
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / notifyRate)); wait > 0 {
			time.Sleep(wait) // the sender's pace, not a wait for the system under test
		}
		work <- i
	}
	close(work)
	senders.Wait()
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		got := len(arrived)
		mu.Unlock()
		b.Fatalf("only %d of %d notifications arrived", got, n)
	}
	b.StopTimer()
	mu.Lock()
	lat := make([]time.Duration, 0, n)
	for i, k := range keys {
		lat = append(lat, arrived[k].Sub(acked[i]))
	}
	mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(n), "events")
}
