package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/internal/testsignal"
	"github.com/stripeledger/ledger/webhook"
)

const (
	secretA = "whsec_test_aaaaaaaaaaaaaaaaaaaaaaaa"
	secretB = "whsec_test_bbbbbbbbbbbbbbbbbbbbbbbb"
)

type testBundle struct {
	db      *testkit.DB
	store   *eventstore.Store
	metrics *webhook.Metrics
	url     string
	// batches is every group commit's outcome (nil: committed), in order.
	batches *testsignal.Signal[error]
}

func setup(t *testing.T, secrets ...string) *testBundle {
	t.Helper()
	return setupOn(t, testkit.New(t), webhook.Config{Secrets: secrets})
}

// setupOn serves the handler over real HTTP on db with cfg (default: secretA, 3 s append timeout).
func setupOn(t *testing.T, db *testkit.DB, cfg webhook.Config) *testBundle {
	t.Helper()
	if len(cfg.Secrets) == 0 {
		cfg.Secrets = []string{secretA}
	}
	if cfg.AppendTimeout == 0 {
		cfg.AppendTimeout = 3 * time.Second
	}
	store := eventstore.New(db.Pool)
	metrics := webhook.NewMetrics(prometheus.NewRegistry())
	batches := &testsignal.Signal[error]{}
	batches.Init(t)
	app := eventstore.NewAppender(store, eventstore.AppenderConfig{OnBatch: func(events int, took time.Duration, err error) {
		metrics.ObserveBatch(events, took, err)
		batches.Signal(err)
	}})
	t.Cleanup(app.Close)
	h, err := webhook.New(cfg, app, store, metrics)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/stripe", h)
	mux.HandleFunc("/", webhook.NotFound)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testBundle{db: db, store: store, metrics: metrics, url: srv.URL + "/webhooks/stripe", batches: batches}
}

// signed signs body with secret at time ts (zero: now) using stripe-go's own test helper.
func signed(body []byte, secret string, ts time.Time) string {
	return stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: ts}).Header
}

type answer struct {
	Status    int
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	Received  bool   `json:"received"`
	Duplicate bool   `json:"duplicate"`
}

func post(t *testing.T, method, url string, body io.Reader, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer is not one JSON object: %q", raw)
	}
	if strings.Count(strings.TrimSpace(string(raw)), "\n") != 0 {
		t.Fatalf("answer is not one line: %q", raw)
	}
	return a
}

func deliver(t *testing.T, url string, body []byte, sig string) answer {
	t.Helper()
	return post(t, http.MethodPost, url, bytes.NewReader(body), map[string]string{"Stripe-Signature": sig, "Content-Type": "application/json"})
}

func event(id string) []byte {
	return testkit.EventJSON(id, "invoice.paid", "in_"+id, time.Now().Unix(), 2500)
}

func (b *testBundle) logSize(t *testing.T) (events, quarantined int64) {
	t.Helper()
	ctx := context.Background()
	if err := b.db.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM ledger.events), (SELECT count(*) FROM ledger.webhook_quarantine)").Scan(&events, &quarantined); err != nil {
		t.Fatal(err)
	}
	return events, quarantined
}

func TestRejectsWhatIsNotASignedEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := event("evt_bad_input")
	now := time.Now()
	goodSig := signed(body, secretA, now)
	huge := testkit.EventJSON("evt_huge", "invoice.paid", "in_huge", now.Unix(), (1<<20)+10)

	cases := []struct {
		name     string
		method   string
		path     string
		body     io.Reader
		header   map[string]string
		status   int
		reason   string
		contains string
	}{
		{"GET", http.MethodGet, "", nil, nil, 405, "method_not_allowed", "method GET not allowed"},
		{"PUT", http.MethodPut, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": goodSig}, 405, "method_not_allowed", "method PUT"},
		{"wrong path", http.MethodPost, "/../webhooks/strip", bytes.NewReader(body), map[string]string{"Stripe-Signature": goodSig}, 404, "not_found", "no such path"},
		{"missing header", http.MethodPost, "", bytes.NewReader(body), nil, 400, "missing_signature_header", "missing Stripe-Signature header"},
		{"header without t", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": "v1=" + strings.Repeat("ab", 32)}, 400, "malformed_signature_header", "t= is missing"},
		{"t not a number", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": "t=yesterday,v1=" + strings.Repeat("ab", 32)}, 400, "malformed_signature_header", "t= is missing or not a Unix timestamp"},
		{"element without =", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": "t=1,garbage"}, 400, "malformed_signature_header", "element without '='"},
		{"only v0", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": fmt.Sprintf("t=%d,v0=%s", now.Unix(), strings.Repeat("ab", 32))}, 400, "malformed_signature_header", "no v1 signature"},
		{"v1 not hex", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": fmt.Sprintf("t=%d,v1=%s", now.Unix(), strings.Repeat("zz", 32))}, 400, "malformed_signature_header", "no v1 signature"},
		{"header too long", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": goodSig + strings.Repeat(",x=y", 3000)}, 400, "malformed_signature_header", "longer than 8 KiB"},
		{"timestamp too old", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": signed(body, secretA, now.Add(-301*time.Second))}, 400, "timestamp_too_old", "beyond the 5m0s tolerance"},
		{"timestamp in future", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": signed(body, secretA, now.Add(302*time.Second))}, 400, "timestamp_in_future", "in the future"},
		{"wrong secret", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": signed(body, secretB, now)}, 400, "no_valid_signature", "no valid signature"},
		{"body altered after signing", http.MethodPost, "", bytes.NewReader(append(bytes.Clone(body[:len(body)-1]), ' ', '}')), map[string]string{"Stripe-Signature": goodSig}, 400, "no_valid_signature", "no valid signature"},
		{"signature of another timestamp", http.MethodPost, "", bytes.NewReader(body), map[string]string{"Stripe-Signature": strings.Replace(goodSig, fmt.Sprintf("t=%d", now.Unix()), fmt.Sprintf("t=%d", now.Unix()-1), 1)}, 400, "no_valid_signature", "no valid signature"},
		{"empty body", http.MethodPost, "", bytes.NewReader(nil), map[string]string{"Stripe-Signature": signed(nil, secretA, now)}, 400, "empty_body", "empty body"},
		{"too large with length", http.MethodPost, "", bytes.NewReader(huge), map[string]string{"Stripe-Signature": signed(huge, secretA, now)}, 413, "body_too_large", "larger than 1048576 bytes"},
		// No Content-Length (chunked): the limit is enforced while reading.
		{"too large chunked", http.MethodPost, "", io.MultiReader(bytes.NewReader(huge)), map[string]string{"Stripe-Signature": signed(huge, secretA, now)}, 413, "body_too_large", "larger than 1048576 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := b.url
			if tc.path != "" {
				url = strings.TrimSuffix(b.url, "/webhooks/stripe") + tc.path
			}
			a := post(t, tc.method, url, tc.body, tc.header)
			if a.Status != tc.status || a.Reason != tc.reason || !strings.Contains(a.Error, tc.contains) {
				t.Fatalf("got %d %q %q, want %d %q containing %q", a.Status, a.Reason, a.Error, tc.status, tc.reason, tc.contains)
			}
			if strings.Contains(a.Error, secretA) || strings.Contains(a.Error, "whsec_") {
				t.Fatal("error names a secret")
			}
		})
	}
	if events, quarantined := b.logSize(t); events != 0 || quarantined != 0 {
		t.Fatalf("rejected requests stored something: %d events, %d quarantined", events, quarantined)
	}
	if got := testutil.ToFloat64(b.metrics.Rejected.WithLabelValues("malformed_signature_header")); got != 6 {
		t.Fatalf("rejected{malformed} = %v", got)
	}
}

func TestSignedBodiesThatAreNotEventsAreQuarantined(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct{ name, body, reason string }{
		{"not json", `this is not json`, "not_json"},
		{"no evt id", `{"id":"ch_1","object":"event","type":"charge.succeeded","created":1700000000}`, "no_id"},
		{"no type", `{"id":"evt_notype","object":"event","created":1700000000}`, "no_type"},
	}
	for i, tc := range cases {
		sig := signed([]byte(tc.body), secretA, time.Time{})
		a := deliver(t, b.url, []byte(tc.body), sig)
		if a.Status != 400 || a.Reason != "not_an_event" || !strings.Contains(a.Error, "kept in quarantine") {
			t.Fatalf("%s: %+v", tc.name, a)
		}
		// Stripe retries a 400: the same body is kept once.
		deliver(t, b.url, []byte(tc.body), signed([]byte(tc.body), secretA, time.Time{}))
		var reason string
		var payload []byte
		err := b.db.Pool.QueryRow(context.Background(), "SELECT reason, payload FROM ledger.webhook_quarantine ORDER BY id OFFSET $1 LIMIT 1", i).Scan(&reason, &payload)
		if err != nil || reason != tc.reason || string(payload) != tc.body {
			t.Fatalf("%s: quarantined %q %q %v", tc.name, reason, payload, err)
		}
	}
	if events, quarantined := b.logSize(t); events != 0 || quarantined != 3 {
		t.Fatalf("%d events, %d quarantined", events, quarantined)
	}
}

func TestAcceptsWhatIsSigned(t *testing.T) {
	t.Parallel()

	t.Run("bytes are stored exactly, with the header", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		body := []byte("{\n  \"id\": \"evt_exact\",\n  \"object\": \"event\",\n  \"api_version\": \"2023-10-16\",\n  \"created\": 1700000000,\n" +
			"  \"type\": \"charge.succeeded\",\n  \"data\": {\"object\": {\"id\": \"ch_1\", \"object\": \"charge\", \"description\": \"\\u00e9t\\u00e9 €\"}}\n}\n")
		sig := signed(body, secretA, time.Time{})
		a := deliver(t, b.url, body, sig)
		if a.Status != 200 || !a.Received || a.Duplicate {
			t.Fatalf("%+v", a)
		}
		rec, err := b.store.Get(context.Background(), "evt_exact")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Payload, body) || rec.Signature != sig || rec.Source != domain.SourceWebhook || rec.ObjectID != "ch_1" {
			t.Fatalf("stored %q sig %q", rec.Payload, rec.Signature)
		}
		// A retry (new t, new signature) is a duplicate and changes nothing.
		a = deliver(t, b.url, body, signed(body, secretA, time.Now().Add(-time.Second)))
		if a.Status != 200 || !a.Duplicate {
			t.Fatalf("retry: %+v", a)
		}
		again, _ := b.store.Get(context.Background(), "evt_exact")
		if again.Signature != sig || again.Hash != rec.Hash {
			t.Fatal("a duplicate delivery altered the stored event")
		}
	})

	t.Run("secret rotation: two v1, either secret", func(t *testing.T) {
		t.Parallel()
		body := event("evt_rotation")
		now := time.Now()
		sigA := stripewebhook.ComputeSignature(now, body, secretA)
		sigB := stripewebhook.ComputeSignature(now, body, secretB)
		header := fmt.Sprintf("t=%d,v1=%x,v1=%x,v0=%x", now.Unix(), sigA, sigB, sigA)
		for _, secret := range []string{secretA, secretB} {
			b := setup(t, secret)
			if a := deliver(t, b.url, body, header); a.Status != 200 || a.Duplicate {
				t.Fatalf("configured %s…: %+v", secret[:12], a)
			}
		}
	})

	t.Run("several configured secrets", func(t *testing.T) {
		t.Parallel()
		b := setup(t, secretA, secretB)
		for i, secret := range []string{secretA, secretB} {
			body := event(fmt.Sprintf("evt_multi_%d", i))
			if a := deliver(t, b.url, body, signed(body, secret, time.Time{})); a.Status != 200 {
				t.Fatalf("signed with secret %d: %+v", i, a)
			}
		}
	})

	t.Run("unknown types and other API versions are stored", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bodies := [][]byte{
			[]byte(`{"id":"evt_unknown","object":"event","api_version":"2023-10-16","created":1700000000,"type":"issuing_card.shipped","data":{"object":{"id":"ic_1","object":"issuing.card"}}}`),
			[]byte(`{"id":"evt_future","object":"event","api_version":"2025-03-31.basil","created":1700000000,"type":"customer.subscription.updated","data":{"object":{"id":"sub_1","object":"subscription","items":{"data":[{"current_period_end":1}]}}}}`),
		}
		for _, body := range bodies {
			if a := deliver(t, b.url, body, signed(body, secretA, time.Time{})); a.Status != 200 {
				t.Fatalf("%s: %+v", body[:30], a)
			}
		}
		if events, _ := b.logSize(t); events != 2 {
			t.Fatalf("%d events stored", events)
		}
		if testutil.ToFloat64(b.metrics.UnknownTypes) != 1 || testutil.ToFloat64(b.metrics.OtherVersions.WithLabelValues("2025-03-31.basil")) != 1 {
			t.Fatal("unknown type / other version not counted")
		}
	})
}

func TestConcurrentDeliveriesOfOneEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := event("evt_fifty")
	var wg sync.WaitGroup
	answers := make([]answer, 50)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = deliver(t, b.url, body, signed(body, secretA, time.Now().Add(-time.Duration(i)*time.Second)))
		}()
	}
	wg.Wait()
	originals := 0
	for i, a := range answers {
		if a.Status != 200 || !a.Received {
			t.Fatalf("delivery %d: %+v", i, a)
		}
		if !a.Duplicate {
			originals++
		}
	}
	if events, _ := b.logSize(t); events != 1 || originals != 1 {
		t.Fatalf("%d rows, %d non-duplicate answers", events, originals)
	}
}

// A flood of forged requests must not flood the logs: rejections are logged at a bounded rate,
// and always counted.
func TestRejectionLogsAreRateLimited(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	b := setupOn(t, testkit.New(t), webhook.Config{Logger: logger, RejectionLogsPerSecond: 1})
	for range 100 {
		post(t, http.MethodPost, b.url, strings.NewReader("{}"), map[string]string{"Stripe-Signature": "t=1,v1=00"})
	}
	mu.Lock()
	lines := strings.Count(logs.String(), `"msg":"webhook rejected"`)
	mu.Unlock()
	if lines < 20 || lines > 25 {
		t.Fatalf("%d rejection log lines for 100 rejections (burst 20, then 1/s)", lines)
	}
	if got := testutil.ToFloat64(b.metrics.Rejected.WithLabelValues("malformed_signature_header")); got != 100 {
		t.Fatalf("counted %v rejections", got)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A signed thin event (an event destination's unversioned notification) is stored byte for
// byte, indexed by its related object, and counted neither as an unknown type nor as another
// API version; a thin event that is not one (created a number) is kept in quarantine.
func TestAcceptsThinEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	body := []byte(`{"id":"evt_test_65thin","object":"v2.core.event","type":"v1.invoice.paid","created":"` + created +
		`","livemode":false,"context":null,"reason":null,"related_object":{"id":"in_thin","type":"invoice","url":"/v1/invoices/in_thin"}}`)
	if a := deliver(t, b.url, body, signed(body, secretA, time.Time{})); a.Status != http.StatusOK || a.Duplicate {
		t.Fatalf("%+v", a)
	}
	rec, err := b.store.Get(context.Background(), "evt_test_65thin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Payload, body) || rec.ObjectType != "invoice" || rec.ObjectID != "in_thin" || rec.APIVersion != "" || rec.Source != domain.SourceWebhook {
		t.Fatalf("stored %+v", rec.Envelope)
	}
	if n := testutil.ToFloat64(b.metrics.UnknownTypes); n != 0 {
		t.Fatalf("%v unknown types", n)
	}
	if n := testutil.CollectAndCount(b.metrics.OtherVersions); n != 0 {
		t.Fatalf("%d other-version series", n)
	}
	bad := []byte(`{"id":"evt_test_65bad","object":"v2.core.event","type":"v1.invoice.paid","created":1790856000}`)
	if a := deliver(t, b.url, bad, signed(bad, secretA, time.Time{})); a.Status != http.StatusBadRequest || !strings.Contains(a.Error, "RFC 3339") {
		t.Fatalf("%+v", a)
	}
	if events, quarantined := b.logSize(t); events != 1 || quarantined != 1 {
		t.Fatalf("%d events, %d quarantined", events, quarantined)
	}
}
