package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/webhook"
)

const (
	secretLive        = "whsec_endpoint_live_aaaaaaaaaaaa"
	secretTest        = "whsec_endpoint_test_bbbbbbbbbbbb"
	secretConnectLive = "whsec_endpoint_connect_live_cccc"
	secretConnectTest = "whsec_endpoint_connect_test_dddd"
	secretLegacy      = "whsec_endpoint_legacy_eeeeeeeeee"
)

// fourEndpoints is a platform with all four endpoints and a legacy secret beside them.
var fourEndpoints = webhook.EndpointSecrets{
	Live: []string{secretLive}, Test: []string{"whsec_test_rolled_out_soon", secretTest},
	ConnectLive: []string{secretConnectLive}, ConnectTest: []string{secretConnectTest},
	Unstated: []string{secretLegacy},
}

// scopedEvent is an event of the given mode and account ("" for the platform).
func scopedEvent(id string, livemode bool, account string) []byte {
	acct := ""
	if account != "" {
		acct = fmt.Sprintf(`"account":%q,`, account)
	}
	return fmt.Appendf(nil, `{"id":%q,"object":"event",%s"api_version":"2023-10-16","created":%d,"livemode":%t,"type":"charge.succeeded",`+
		`"data":{"object":{"id":"ch_%s","object":"charge","amount":1200,"currency":"usd","status":"succeeded","created":1700000000}}}`,
		id, acct, time.Now().Unix(), livemode, id)
}

// syncLog is a log the test reads.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Each endpoint's secret verifies its deliveries, and the event is stored with that endpoint
// (the second secret of a rotation list too); events that agree with their endpoint are not held
// and count no mismatch.
func TestEachEndpointVerifiesAndIsAttributed(t *testing.T) {
	t.Parallel()
	b := setupOn(t, testkit.New(t), webhook.Config{Endpoints: fourEndpoints})
	cases := []struct {
		id       string
		secret   string
		livemode bool
		account  string
		want     eventstore.Endpoint
	}{
		{"evt_ep_live", secretLive, true, "", eventstore.EndpointLive},
		{"evt_ep_test", secretTest, false, "", eventstore.EndpointTest},
		{"evt_ep_connect_live", secretConnectLive, true, "acct_1", eventstore.EndpointConnectLive},
		{"evt_ep_connect_test", secretConnectTest, false, "acct_1", eventstore.EndpointConnectTest},
		// The legacy variable's endpoint states no mode: either mode agrees with it.
		{"evt_ep_legacy_live", secretLegacy, true, "", eventstore.EndpointUnstated},
		{"evt_ep_legacy_test", secretLegacy, false, "", eventstore.EndpointUnstated},
	}
	for _, c := range cases {
		body := scopedEvent(c.id, c.livemode, c.account)
		if a := deliver(t, b.url, body, signed(body, c.secret, time.Time{})); a.Status != 200 || a.Duplicate {
			t.Fatalf("%s: %+v", c.id, a)
		}
		r, err := b.store.Get(context.Background(), c.id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Endpoint != c.want || r.HoldReason != "" || r.Held() {
			t.Errorf("%s: endpoint %q hold %q, want %q and no hold", c.id, r.Endpoint, r.HoldReason, c.want)
		}
	}
	if n := testutil.CollectAndCount(b.metrics.EndpointMismatch); n != 0 {
		t.Fatalf("%d mismatch series for agreeing events", n)
	}
	// Only the legacy secret configured (as STRIPE_WEBHOOK_SECRET alone): the unstated endpoint.
	legacy := setupOn(t, testkit.New(t), webhook.Config{Secrets: []string{secretLegacy}})
	body := scopedEvent("evt_only_legacy", true, "")
	if a := deliver(t, legacy.url, body, signed(body, secretLegacy, time.Time{})); a.Status != 200 {
		t.Fatalf("legacy: %+v", a)
	}
	if r, err := legacy.store.Get(context.Background(), "evt_only_legacy"); err != nil || r.Endpoint != eventstore.EndpointUnstated || r.HoldReason != "" {
		t.Fatalf("legacy: %+v %v", r.Endpoint, err)
	}
	// The legacy variable always took Connect secrets too: a connected account's event through
	// it is not held (its endpoint's kind is not said).
	body = scopedEvent("evt_legacy_connect", true, "acct_legacy")
	if a := deliver(t, legacy.url, body, signed(body, secretLegacy, time.Time{})); a.Status != 200 {
		t.Fatalf("legacy Connect: %+v", a)
	}
	if r, err := legacy.store.Get(context.Background(), "evt_legacy_connect"); err != nil || r.HoldReason != "" || r.Account != "acct_legacy" {
		t.Fatalf("legacy Connect: held %q, account %q (%v)", r.HoldReason, r.Account, err)
	}
}

// An event that disagrees with its endpoint is stored and acknowledged (200), marked with its
// reason in its row, counted by endpoint and reason, and logged without any secret.
func TestMismatchesAreStoredMarkedCountedAndLogged(t *testing.T) {
	t.Parallel()
	logs := &syncLog{}
	b := setupOn(t, testkit.New(t), webhook.Config{Endpoints: fourEndpoints, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	cases := []struct {
		id       string
		secret   string
		livemode bool
		account  string
		endpoint eventstore.Endpoint
		reason   string
	}{
		// A "live" event signed only by the test endpoint's secret.
		{"evt_mm_live_on_test", secretTest, true, "", eventstore.EndpointTest, eventstore.HoldModeMismatch},
		{"evt_mm_test_on_live", secretLive, false, "", eventstore.EndpointLive, eventstore.HoldModeMismatch},
		{"evt_mm_test_on_connect_live", secretConnectLive, false, "acct_1", eventstore.EndpointConnectLive, eventstore.HoldModeMismatch},
		{"evt_mm_account_on_live", secretLive, true, "acct_2", eventstore.EndpointLive, eventstore.HoldAccountOnPlatform},
		// The legacy endpoint cannot check the mode, but it is a platform endpoint.
		{"evt_mm_platform_on_connect", secretConnectTest, false, "", eventstore.EndpointConnectTest, eventstore.HoldNoAccountOnConnect},
	}
	for _, c := range cases {
		body := scopedEvent(c.id, c.livemode, c.account)
		if a := deliver(t, b.url, body, signed(body, c.secret, time.Time{})); a.Status != 200 || !a.Received || a.Duplicate {
			t.Fatalf("%s: %+v", c.id, a)
		}
		r, err := b.store.Get(context.Background(), c.id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Endpoint != c.endpoint || r.HoldReason != c.reason || !r.Held() || !bytes.Equal(r.Payload, body) {
			t.Errorf("%s: endpoint %q hold %q held %t, want %q %q held", c.id, r.Endpoint, r.HoldReason, r.Held(), c.endpoint, c.reason)
		}
		if !strings.Contains(logs.String(), `"event_id":"`+c.id+`","type":"charge.succeeded","endpoint":"`+string(c.endpoint)+`","reason":"`+c.reason+`"`) {
			t.Errorf("%s: no mismatch log line in %s", c.id, logs)
		}
	}
	for key, want := range map[[2]string]float64{
		{"test", eventstore.HoldModeMismatch}: 1, {"live", eventstore.HoldModeMismatch}: 1, {"connect-live", eventstore.HoldModeMismatch}: 1,
		{"live", eventstore.HoldAccountOnPlatform}: 1, {"unstated", eventstore.HoldAccountOnPlatform}: 0,
		{"connect-test", eventstore.HoldNoAccountOnConnect}: 1,
	} {
		if got := testutil.ToFloat64(b.metrics.EndpointMismatch.WithLabelValues(key[0], key[1])); got != want {
			t.Errorf("mismatch{%s,%s} = %v, want %v", key[0], key[1], got, want)
		}
	}
	for _, s := range fourEndpoints.All() {
		if strings.Contains(logs.String(), s) {
			t.Fatal("a secret was logged")
		}
	}
}

// A duplicate delivery through another endpoint keeps the first delivery's attribution: a live
// event first delivered to the live endpoint and replayed with the test endpoint's secret stays
// attributed to live and is not held (the replay is counted as a mismatch all the same), and one
// first delivered to the wrong endpoint stays held when the right one redelivers it.
func TestDuplicateViaAnotherEndpointKeepsTheFirstAttribution(t *testing.T) {
	t.Parallel()
	b := setupOn(t, testkit.New(t), webhook.Config{Endpoints: fourEndpoints})
	ctx := context.Background()
	right := scopedEvent("evt_dup_right_first", true, "")
	if a := deliver(t, b.url, right, signed(right, secretLive, time.Time{})); a.Status != 200 || a.Duplicate {
		t.Fatalf("first: %+v", a)
	}
	if a := deliver(t, b.url, right, signed(right, secretTest, time.Time{})); a.Status != 200 || !a.Duplicate {
		t.Fatalf("again via test: %+v", a)
	}
	if r, err := b.store.Get(ctx, "evt_dup_right_first"); err != nil || r.Endpoint != eventstore.EndpointLive || r.HoldReason != "" {
		t.Fatalf("after a replay via test: endpoint %q hold %q (%v)", r.Endpoint, r.HoldReason, err)
	}
	if got := testutil.ToFloat64(b.metrics.EndpointMismatch.WithLabelValues("test", eventstore.HoldModeMismatch)); got != 1 {
		t.Fatalf("the replay via test was not counted: %v", got)
	}

	wrong := scopedEvent("evt_dup_wrong_first", true, "")
	if a := deliver(t, b.url, wrong, signed(wrong, secretTest, time.Time{})); a.Status != 200 || a.Duplicate {
		t.Fatalf("first: %+v", a)
	}
	if a := deliver(t, b.url, wrong, signed(wrong, secretLive, time.Time{})); a.Status != 200 || !a.Duplicate {
		t.Fatalf("again via live: %+v", a)
	}
	if r, err := b.store.Get(ctx, "evt_dup_wrong_first"); err != nil || r.Endpoint != eventstore.EndpointTest || r.HoldReason != eventstore.HoldModeMismatch {
		t.Fatalf("after a redelivery via live: endpoint %q hold %q (%v)", r.Endpoint, r.HoldReason, err)
	}
}

// The secrets come from one variable per endpoint; the same secret in two is refused naming both
// variables and never the secret, and none at all is refused too.
func TestSecretsConfiguration(t *testing.T) {
	t.Parallel()
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	s, err := webhook.LoadSecrets(env(map[string]string{
		"STRIPE_WEBHOOK_SECRET_LIVE": "whsec_l1, whsec_l2", "STRIPE_WEBHOOK_SECRET_CONNECT_TEST": "whsec_ct",
		"STRIPE_WEBHOOK_SECRET": "whsec_legacy"}))
	if err != nil || len(s.Live) != 2 || len(s.ConnectTest) != 1 || len(s.Unstated) != 1 || len(s.Test) != 0 || !s.Stated() {
		t.Fatalf("%+v %v", s, err)
	}
	if got := s.All(); strings.Join(got, ",") != "whsec_l1,whsec_l2,whsec_ct,whsec_legacy" {
		t.Fatalf("order: %v", got)
	}
	_, err = webhook.LoadSecrets(env(map[string]string{"STRIPE_WEBHOOK_SECRET_TEST": "whsec_same", "STRIPE_WEBHOOK_SECRET_CONNECT_LIVE": "whsec_other,whsec_same"}))
	if err == nil || !strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRET_TEST and STRIPE_WEBHOOK_SECRET_CONNECT_LIVE") || strings.Contains(err.Error(), "whsec_same") {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := webhook.LoadSecrets(env(nil)); err == nil || !strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRET_LIVE") {
		t.Fatalf("none: %v", err)
	}
	if _, err := webhook.LoadSecrets(env(map[string]string{"STRIPE_WEBHOOK_SECRET_CONNECT_LIVE": "sk_live_x"})); err == nil ||
		err.Error() != "STRIPE_WEBHOOK_SECRET_CONNECT_LIVE entry 1 does not start with whsec_" {
		t.Fatalf("bad entry: %v", err)
	}
	// The handler refuses the same secret for two endpoints, the legacy list included.
	if _, err := webhook.New(webhook.Config{Endpoints: webhook.EndpointSecrets{Live: []string{secretA}}, Secrets: []string{secretA}}, nil, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRET_LIVE and STRIPE_WEBHOOK_SECRET") {
		t.Fatalf("handler: %v", err)
	}
}
