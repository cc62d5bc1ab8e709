package main_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/internal/testsignal"
)

const crashSecret = "whsec_crash_test_secret"

// startServe starts `ledger serve` on a port of the system's choosing and returns it with its
// webhook URL once it listens.
func startServe(t *testing.T, dbURL string) (*process, string) {
	t.Helper()
	p := startLedger(t, []string{"DATABASE_URL=" + dbURL, "STRIPE_WEBHOOK_SECRET=" + crashSecret}, "serve", "--addr", "127.0.0.1:0")
	return p, "http://" + p.listening(t) + "/webhooks/stripe"
}

// The server is killed with SIGKILL in the middle of a load of signed webhooks. Everything it
// answered 200 must already be in the log; after a restart and a re-send of everything that got
// no 200 (as Stripe would retry), the log holds each sent event exactly once.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	server, url := startServe(t, db.URL)

	const total = 4000
	bodies := make([][]byte, total)
	for i := range bodies {
		bodies[i] = testkit.EventJSON(fmt.Sprintf("evt_crash_%05d", i), "charge.succeeded", fmt.Sprintf("ch_%d", i), time.Now().Unix(), 2048)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	send := func(i int) bool {
		body := bodies[i]
		sig := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: crashSecret}).Header
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", sig)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	acked := make([]atomic.Bool, total)
	var ackCount atomic.Int64
	var next atomic.Int64
	killAt := int64(total / 4)
	reached := make(chan struct{}) // closed by the sender of the killAt-th acknowledged webhook
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				if send(int(i)) {
					acked[i].Store(true)
					if ackCount.Add(1) == killAt {
						close(reached)
					}
				}
			}
		}()
	}
	select {
	case <-reached:
	case <-server.exited:
		t.Fatalf("serve exited under load: %v\n%s", server.err, server.stderr.String())
	case <-time.After(testsignal.Timeout):
		t.Fatalf("fewer than %d webhooks acknowledged in %s", killAt, testsignal.Timeout)
	}
	server.kill()
	wg.Wait()

	before := ackCount.Load()
	if before < killAt || before == total {
		t.Fatalf("the kill did not land mid-load: %d of %d acknowledged", before, total)
	}
	// Nothing acknowledged is lost: check the log before anything is re-sent.
	ids := make([]string, 0, before)
	for i := range acked {
		if acked[i].Load() {
			ids = append(ids, fmt.Sprintf("evt_crash_%05d", i))
		}
	}
	var present int64
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM ledger.events WHERE event_id = ANY($1)", ids).Scan(&present); err != nil {
		t.Fatal(err)
	}
	if present != int64(len(ids)) {
		t.Fatalf("%d events were acknowledged but only %d are in the log", len(ids), present)
	}

	_, url = startServe(t, db.URL)
	for i := range acked {
		if !acked[i].Load() && !send(i) {
			t.Fatalf("re-send of event %d after restart failed", i)
		}
	}
	var rows, distinct int64
	if err := db.Pool.QueryRow(context.Background(),
		"SELECT count(*), count(DISTINCT event_id) FROM ledger.events WHERE event_id LIKE 'evt_crash_%'").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != total || distinct != total {
		t.Fatalf("log holds %d rows (%d distinct) for %d sent events", rows, distinct, total)
	}
	t.Logf("killed after %d of %d acknowledgements; all %d present exactly once after re-send", before, total, total)
	if r := ledger(t, []string{"DATABASE_URL=" + db.URL}, "verify"); r.code != 0 {
		t.Fatalf("verify after crash: %+v", r)
	}
}
