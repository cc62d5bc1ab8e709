package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/internal/testsignal"
	"github.com/stripeledger/ledger/notify"
)

const notifyCrashSecret = "whsec_notify_crash_erp"

// keyReceiver is the webhook channel's receiver: it checks every signature, counts each
// idempotency key, closes all once it has seen want distinct keys, and holds the hold-th request
// until released (so a test can kill the sender while a delivery is in flight).
type keyReceiver struct {
	mu       sync.Mutex
	counts   map[string]int
	requests int
	want     int
	all      chan struct{}
	hold     int
	held     chan struct{} // closed when the hold-th request arrives
	release  chan struct{}
	badSig   int
}

func newKeyReceiver(want, hold int) *keyReceiver {
	return &keyReceiver{counts: map[string]int{}, want: want, all: make(chan struct{}), hold: hold,
		held: make(chan struct{}), release: make(chan struct{})}
}

func (k *keyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	k.mu.Lock()
	if notify.VerifySignature(body, r.Header.Get(notify.SignatureHeader), notifyCrashSecret, 0) != nil {
		k.badSig++
		k.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	key := r.Header.Get(notify.IdempotencyHeader)
	k.counts[key]++
	k.requests++
	n := k.requests
	if len(k.counts) == k.want && k.counts[key] == 1 {
		close(k.all)
	}
	k.mu.Unlock()
	if n == k.hold {
		close(k.held)
		<-k.release
	}
	w.WriteHeader(http.StatusOK)
}

// serve is killed with SIGKILL while a notification is in flight (its receiver holds the
// request). After a restart every notification arrives; the one in flight may arrive twice, with
// the same idempotency key, and nothing else repeats.
func TestNotifySIGKILLDuringDeliveryLosesNothingAndRepeatsAtMostOnce(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	const total = 200
	rcv := newKeyReceiver(total, total/3)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	defer func() {
		select {
		case <-rcv.release:
		default:
			close(rcv.release)
		}
	}()

	cfgPath := filepath.Join(t.TempDir(), "notify.yaml")
	if err := os.WriteFile(cfgPath, []byte(`channels:
  erp: {type: webhook, url_env: ERP_WEBHOOK_URL, secret_env: ERP_WEBHOOK_SECRET}
rules:
  - name: payments
    events: [charge.succeeded]
    channel: erp
    subject: "Charge {{.object_id}}"
    text: "{{.amount_formatted}}"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The rule fires from the start of the log (as if the runner had seen it before any event).
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO ledger.notify_rules_seen (rule, first_position) VALUES ('payments', 0)`); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=" + crashSecret, "LEDGER_NOTIFY_CONFIG=" + cfgPath,
		"ERP_WEBHOOK_URL=" + srv.URL + "/ledger", "ERP_WEBHOOK_SECRET=" + notifyCrashSecret}
	server := startLedger(t, env, "serve", "--addr", "127.0.0.1:0")
	url := "http://" + server.listening(t) + "/webhooks/stripe"

	client := &http.Client{Timeout: 10 * time.Second}
	for i := range total {
		body := testkit.EventJSON(fmt.Sprintf("evt_notify_crash_%04d", i), "charge.succeeded", fmt.Sprintf("ch_%d", i), time.Now().Unix(), 512)
		sig := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: crashSecret}).Header
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", sig)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook %d: %d", i, resp.StatusCode)
		}
	}
	select {
	case <-rcv.held:
	case <-server.exited:
		t.Fatalf("serve exited: %v\n%s", server.err, server.stderr.String())
	case <-time.After(testsignal.Timeout):
		t.Fatalf("the %d-th notification never came", total/3)
	}
	server.kill()
	close(rcv.release)
	// What the restarted process has to mark: every row not marked delivered by the first,
	// whether or not it was in the outbox yet.
	var pending int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT $1 - count(*) FROM ledger.notify_outbox WHERE rule = 'payments' AND status = 'delivered'`, total).Scan(&pending); err != nil {
		t.Fatal(err)
	}

	server = startLedger(t, env, "serve", "--addr", "127.0.0.1:0", "--log-level", "debug")
	server.listening(t)
	select {
	case <-rcv.all:
	case <-server.exited:
		t.Fatalf("serve exited after the restart: %v\n%s", server.err, server.stderr.String())
	case <-time.After(testsignal.Timeout):
		rcv.mu.Lock()
		n := len(rcv.counts)
		rcv.mu.Unlock()
		t.Fatalf("after the restart only %d of %d notifications arrived", n, total)
	}
	// Every row is marked delivered: the restarted process says so of each it sent (the
	// receiver counts a request before its answer reaches the sender).
	server.stderr.printedOrWait(t, fmt.Sprintf("%d notifications marked delivered", pending), func(string) bool {
		return strings.Count(server.stderr.String(), `"msg":"notification delivered"`) >= pending
	})
	if err := server.stop(); err != nil {
		t.Fatalf("serve stop: %v", err)
	}
	var delivered int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM ledger.notify_outbox WHERE rule = 'payments' AND status = 'delivered'`).Scan(&delivered); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	repeats := 0
	for key, n := range rcv.counts {
		if n > 2 {
			t.Errorf("%s arrived %d times", key, n)
		}
		if n == 2 {
			repeats++
		}
	}
	if delivered != total || len(rcv.counts) != total || repeats > 1 || rcv.badSig > 0 {
		t.Fatalf("%d delivered rows, %d distinct keys of %d, %d repeated, %d bad signatures", delivered, len(rcv.counts), total, repeats, rcv.badSig)
	}
	t.Logf("killed with notification %d in flight; after the restart all %d arrived, %d repeated (same key)", total/3, total, repeats)
}
