// Package loadgen sends realistic signed Stripe webhooks at a ledger over HTTP and measures the
// answers. It is bounded by request count and time and stops by itself. The benchmarks and
// `go run ./cmd/loadgen` use it.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"
)

// Config says what to send. Zero values take the documented defaults.
type Config struct {
	URL         string        // the webhook endpoint, e.g. http://127.0.0.1:8080/webhooks/stripe
	Secret      string        // whsec_… the endpoint verifies with
	Requests    int           // deliveries to send; default 10,000
	Concurrency int           // concurrent senders; default 64
	DupRate     float64       // share of deliveries that re-send an earlier event; default 0.10
	MinBytes    int           // smallest event; default 2 KiB
	MaxBytes    int           // largest event; default 6 KiB
	Timeout     time.Duration // bound on the whole run; default 2 minutes
	Seed        uint64        // event content seed; runs with the same seed send the same events
	IDPrefix    string        // keeps event IDs of different runs apart; default "evt_load"
}

func (c *Config) setDefaults() {
	if c.Requests <= 0 {
		c.Requests = 10000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.DupRate == 0 {
		c.DupRate = 0.10
	}
	if c.MinBytes <= 0 {
		c.MinBytes = 2 << 10
	}
	if c.MaxBytes < c.MinBytes {
		c.MaxBytes = 6 << 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.IDPrefix == "" {
		c.IDPrefix = "evt_load"
	}
}

// Stats is what a run measured.
type Stats struct {
	Sent       int
	Acked      int // 2xx
	Duplicates int // 2xx answered {"duplicate":true}
	Failed     int // non-2xx or transport error
	Elapsed    time.Duration
	P50, P99   time.Duration
	FirstError string
}

// PerSecond is acknowledged deliveries per second.
func (s Stats) PerSecond() float64 { return float64(s.Acked) / s.Elapsed.Seconds() }

func (s Stats) String() string {
	return fmt.Sprintf("sent %d, acked %d (%d duplicates), failed %d in %s: %.0f acked/s, p50 %s, p99 %s",
		s.Sent, s.Acked, s.Duplicates, s.Failed, s.Elapsed.Round(time.Millisecond), s.PerSecond(), s.P50, s.P99)
}

var eventTypes = []struct{ typ, object, prefix string }{
	{"customer.subscription.created", "subscription", "sub"},
	{"customer.subscription.updated", "subscription", "sub"},
	{"invoice.created", "invoice", "in"},
	{"invoice.finalized", "invoice", "in"},
	{"invoice.paid", "invoice", "in"},
	{"invoice.payment_failed", "invoice", "in"},
	{"charge.succeeded", "charge", "ch"},
	{"charge.failed", "charge", "ch"},
	{"charge.refunded", "charge", "ch"},
	{"charge.refund.updated", "refund", "re"},
	{"charge.dispute.created", "dispute", "dp"},
	{"customer.created", "customer", "cus"},
	{"customer.updated", "customer", "cus"},
	{"checkout.session.completed", "checkout.session", "cs"},
	{"payment_intent.succeeded", "payment_intent", "pi"},
}

// Events builds n distinct realistic events (2023-10-16 shape, padded to a size between min and
// max bytes with the kind of metadata and line items real payloads carry).
func Events(n int, seed uint64, prefix string, minBytes, maxBytes int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	out := make([][]byte, n)
	created := time.Now().Unix()
	for i := range out {
		et := eventTypes[rng.IntN(len(eventTypes))]
		size := minBytes + rng.IntN(maxBytes-minBytes+1)
		obj := fmt.Sprintf("%s_%d", et.prefix, rng.IntN(n/4+1))
		head := fmt.Sprintf(`{"id":"%s_%08d","object":"event","api_version":"2023-10-16","created":%d,`+
			`"data":{"object":{"id":%q,"object":%q,"amount":%d,"currency":%q,"customer":"cus_%d","livemode":false,`+
			`"metadata":{"app_user_id":"user_%d"},"lines":{"object":"list","data":[`,
			prefix, i, created-int64(rng.IntN(86400)), obj, et.object, 100+rng.IntN(100000),
			[]string{"usd", "eur", "gbp", "jpy"}[rng.IntN(4)], rng.IntN(5000), rng.IntN(5000))
		tail := fmt.Sprintf(`]}},"previous_attributes":null},"livemode":false,"pending_webhooks":1,`+
			`"request":{"id":"req_%d","idempotency_key":null},"type":%q}`, rng.IntN(1<<30), et.typ)
		var lines strings.Builder
		for n := 0; lines.Len()+len(head)+len(tail) < size-200; n++ {
			if n > 0 {
				lines.WriteByte(',')
			}
			fmt.Fprintf(&lines, `{"id":"il_%d","object":"line_item","amount":%d,"description":"1 x Plan %d (at $%d.00 / month)","period":{"start":%d,"end":%d}}`,
				rng.IntN(1<<30), rng.IntN(10000), rng.IntN(50), rng.IntN(100), created, created+2592000)
		}
		out[i] = []byte(head + lines.String() + tail)
	}
	return out
}

// Run sends cfg.Requests signed deliveries and reports what came back.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	cfg.setDefaults()
	if cfg.URL == "" || cfg.Secret == "" {
		return Stats{}, errors.New("loadgen: URL and Secret are required")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	distinct := max(1, int(float64(cfg.Requests)*(1-cfg.DupRate)))
	bodies := Events(distinct, cfg.Seed, cfg.IDPrefix, cfg.MinBytes, cfg.MaxBytes)
	// The delivery order: every event once, plus duplicates of events sent earlier in the run.
	rng := rand.New(rand.NewPCG(cfg.Seed+1, 7))
	order := make([]int, 0, cfg.Requests)
	for i := range distinct {
		order = append(order, i)
	}
	for len(order) < cfg.Requests {
		at := rng.IntN(len(order)) + 1
		dup := order[rng.IntN(at)]
		order = slices.Insert(order, at, dup)
	}

	transport := &http.Transport{MaxIdleConns: cfg.Concurrency, MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	latencies := make([]time.Duration, len(order))
	var next atomic.Int64
	var acked, dups, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(order)) {
					return
				}
				body := bodies[order[i]]
				t0 := time.Now()
				status, dup, err := deliver(ctx, client, cfg.URL, cfg.Secret, body)
				latencies[i] = time.Since(t0)
				switch {
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case status/100 != 2:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d", status))
				default:
					acked.Add(1)
					if dup {
						dups.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	st := Stats{Elapsed: time.Since(start), Acked: int(acked.Load()), Duplicates: int(dups.Load()), Failed: int(failed.Load())}
	st.Sent = st.Acked + st.Failed
	sent := latencies[:min(st.Sent, len(latencies))]
	slices.Sort(sent)
	if len(sent) > 0 {
		st.P50 = sent[len(sent)/2]
		st.P99 = sent[len(sent)*99/100]
	}
	if e, ok := firstErr.Load().(string); ok {
		st.FirstError = e
	}
	return st, ctx.Err()
}

var dupMarker = []byte(`"duplicate":true`)

func deliver(ctx context.Context, client *http.Client, url, secret string, body []byte) (int, bool, error) {
	sig := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: secret}).Header
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Stripe-Signature", sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, bytes.Contains(answer, dupMarker), nil
}
