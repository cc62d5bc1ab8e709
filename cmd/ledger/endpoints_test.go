package main_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/internal/testkit"
)

// serve takes a secret per endpoint: a live event signed with the test endpoint's secret is
// acknowledged, shown with its endpoint and hold by `events show`, listed by `projections status`
// and released by `projections retry`; `verify` and `verify --signatures` pass over all of it.
// The same secret for two endpoints stops serve before it listens; the legacy variable alone
// starts it with a line recommending the per-endpoint ones.
func TestServeAttributesEndpointsAndHoldsMismatches(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	base := []string{"DATABASE_URL=" + db.URL}

	r := ledger(t, append(base, "STRIPE_WEBHOOK_SECRET_LIVE=whsec_same_one", "STRIPE_WEBHOOK_SECRET_CONNECT_TEST=whsec_same_one"),
		"serve", "--addr", "127.0.0.1:0")
	if r.code != 2 || !strings.Contains(r.stderr, "STRIPE_WEBHOOK_SECRET_LIVE and STRIPE_WEBHOOK_SECRET_CONNECT_TEST") ||
		strings.Contains(r.stdout+r.stderr, "whsec_same_one") {
		t.Fatalf("the same secret twice: %+v", r)
	}

	legacy := startLedger(t, append(base, "STRIPE_WEBHOOK_SECRET=whsec_e2e_legacy"), "serve", "--addr", "127.0.0.1:0")
	legacy.stderr.waitFor(t, "the legacy variable's warning", func(l string) bool {
		return strings.Contains(l, `"level":"WARN"`) && strings.Contains(l, "STRIPE_WEBHOOK_SECRET_LIVE, _TEST, _CONNECT_LIVE or _CONNECT_TEST")
	})
	legacy.listening(t)
	if err := legacy.stop(); err != nil {
		t.Fatal(err)
	}

	secrets := []string{"STRIPE_WEBHOOK_SECRET_LIVE=whsec_e2e_live", "STRIPE_WEBHOOK_SECRET_TEST=whsec_e2e_test",
		"STRIPE_WEBHOOK_SECRET_CONNECT_LIVE=whsec_e2e_connect_live", "STRIPE_WEBHOOK_SECRET_CONNECT_TEST=whsec_e2e_connect_test"}
	env := append(base, secrets...)
	p := startLedger(t, env, "serve", "--addr", "127.0.0.1:0", "--log-level", "debug")
	url := "http://" + p.listening(t) + "/webhooks/stripe"
	for _, d := range []struct {
		id, secret string
		livemode   bool
	}{{"evt_e2e_ok", "whsec_e2e_test", false}, {"evt_e2e_held", "whsec_e2e_test", true}} {
		body := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":%t,"type":"charge.succeeded",`+
			`"data":{"object":{"id":"ch_%s","object":"charge","amount":1500,"amount_captured":1500,"currency":"usd","status":"succeeded","paid":true,"created":1780000000}}}`,
			d.id, time.Now().Unix(), d.livemode, d.id)
		sig := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: d.secret, Timestamp: time.Now()}).Header
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", d.id, resp.StatusCode)
		}
	}
	p.foldedThrough(t, 2)

	r = ledger(t, base, "projections", "status")
	if r.code != 1 || !strings.Contains(r.stdout, "evt_e2e_held") || !strings.Contains(r.stdout, "mode_mismatch: a livemode=true event came to the test endpoint") ||
		strings.Contains(r.stdout, "evt_e2e_ok") || !strings.Contains(r.stderr, "1 of them held") {
		t.Fatalf("status: %+v", r)
	}
	r = ledger(t, base, "events", "show", "evt_e2e_held")
	if r.code != 0 || !strings.Contains(r.stdout, "endpoint     test\n") ||
		!strings.Contains(r.stdout, "hold         mode_mismatch (held out of the read models; release: ledger projections retry evt_e2e_held)") {
		t.Fatalf("show: %+v", r)
	}
	if r := ledger(t, base, "projections", "retry", "--all"); r.code != 0 || !strings.Contains(r.stdout, "1 held event(s) left held") {
		t.Fatalf("retry --all: %+v", r)
	}
	if r := ledger(t, base, "projections", "retry", "evt_e2e_held"); r.code != 0 || !strings.Contains(r.stdout, "released 1 held event(s)") {
		t.Fatalf("retry: %+v", r)
	}
	if r := ledger(t, base, "events", "show", "--json", "evt_e2e_held"); r.code != 0 ||
		!strings.Contains(r.stdout, `"endpoint":"test","hold_reason":"mode_mismatch","released":true`) {
		t.Fatalf("show --json: %+v", r)
	}
	if r := ledger(t, base, "projections", "status"); r.code != 0 {
		t.Fatalf("status after the release: %+v", r)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if r := ledger(t, base, "verify"); r.code != 0 || !strings.Contains(r.stdout, "ok: 2 events") {
		t.Fatalf("verify: %+v", r)
	}
	if r := ledger(t, env, "verify", "--signatures"); r.code != 0 || !strings.Contains(r.stdout, "signatures: 2 verified, 0 unverifiable, 0 failed") {
		t.Fatalf("verify --signatures: %+v", r)
	}
}
