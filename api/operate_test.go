package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/internal/testsignal"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
)

const operateTokens = "fin:read:tok_read, ops:operate:tok_operate, root:admin:tok_admin"

func post(t *testing.T, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// finished signals each "reconcile run finished" log line's run ID.
type finished chan int64

func (f finished) Enabled(context.Context, slog.Level) bool { return true }
func (f finished) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "reconcile run finished" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "run" {
				f <- a.Value.Int64()
			}
			return true
		})
	}
	return nil
}
func (f finished) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f finished) WithGroup(string) slog.Handler      { return f }

// An operator starts a reconcile run over the API: 202 with the run as recorded, which then goes
// on to repair the log from the simulator's Events API; a second start while it runs is 409; bad
// parameters are 400s naming what is accepted.
func TestStartReconcileRunOverAPI(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 3, Customers: 8, Duration: 5 * 24 * time.Hour, End: time.Now().UTC().Truncate(time.Second)})
	sim.Run(time.Time{}) // nothing delivered: every event is missing from the ledger
	stripe := httptest.NewServer(stripesim.NewServer(sim, nil, stripesim.ServerConfig{RateLimit: -1}))
	defer stripe.Close()
	db := testkit.New(t)
	done := make(finished, 4)
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(operateTokens), Logger: slog.New(done),
		// Two keys: without the body's livemode the run would cover both modes.
		Stripe: reconcile.StripeConfig{APIKey: "sk_live_api,sk_test_api", APIBase: stripe.URL, Accounts: "none"}}))
	defer srv.Close()
	base := srv.URL + "/api/v1/reconcile/runs"

	for body, want := range map[string]string{
		`{"job":"refunds"}`:                             "invalid_job",
		`{"since":"yesterday"}`:                         "invalid_window",
		`{"since":"96h","from":"2026-01-01T00:00:00Z"}`: "invalid_window",
		`{"from":"2026-01-01"}`:                         "invalid_time",
		`{"jobs":"events"}`:                             "invalid_body",
		`[1]`:                                           "invalid_body",
		`{"account":"cus_1"}`:                           "invalid_account",
	} {
		if code, _, got := post(t, base, "tok_operate", body); code != 400 || !strings.Contains(got, want) {
			t.Errorf("%s: %d %s", body, code, got)
		}
	}

	code, header, body := post(t, base, "tok_operate", `{"job":"events","since":"240h","livemode":false,"account":"platform"}`)
	var run struct {
		ID      int64
		Job     string
		Status  string
		Trigger string
	}
	if err := json.Unmarshal([]byte(body), &run); err != nil || code != http.StatusAccepted || run.Job != "events" || run.Trigger != "api" ||
		header.Get("Location") != "/api/v1/reconcile/runs/"+strconv.FormatInt(run.ID, 10) {
		t.Fatalf("start: %d %s %v", code, body, header)
	}
	select {
	case id := <-done:
		if id != run.ID {
			t.Fatalf("run %d finished, started %d", id, run.ID)
		}
	case <-time.After(testsignal.Timeout):
		t.Fatal("the run did not finish")
	}
	code, got := get(t, srv.URL+header.Get("Location"), "tok_read")
	var final struct {
		Status   string
		Repaired int
		Scopes   []struct {
			Livemode bool    `json:"livemode"`
			Account  *string `json:"account"`
		}
	}
	_ = json.Unmarshal([]byte(got), &final)
	if len(final.Scopes) != 1 || final.Scopes[0].Livemode || final.Scopes[0].Account != nil {
		t.Fatalf("a run limited to test mode's platform account covered %+v", final.Scopes)
	}
	var logged int
	_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.events WHERE source = 'reconcile'`).Scan(&logged)
	if code != 200 || final.Status != "succeeded" || final.Repaired == 0 || logged != final.Repaired || logged != len(sim.Events()) {
		t.Fatalf("after the run: %d %s; %d events appended of the simulator's %d", code, got, logged, len(sim.Events()))
	}
}

// Without a Stripe key the operate and admin routes that need Stripe say so (503), and the
// quarantine retry answers for what it was given.
func TestOperateRoutesAnswerPrecisely(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(operateTokens)}))
	defer srv.Close()
	for _, c := range []struct {
		path, token, body string
		code              int
		want              string
	}{
		{"/api/v1/reconcile/runs", "tok_operate", `{}`, 503, "stripe_not_configured"},
		{"/api/v1/endpoints/setup", "tok_admin", `{"url":"https://l.example/webhooks/stripe"}`, 503, "stripe_not_configured"},
		{"/api/v1/endpoints/setup", "tok_admin", `{}`, 400, "url is required"},
		{"/api/v1/projections/retry", "tok_operate", `{"all":true}`, 200, `"resolved":0`},
		{"/api/v1/projections/retry", "tok_operate", `{"event_ids":["evt_nope"]}`, 404, "not_quarantined"},
		{"/api/v1/projections/retry", "tok_operate", `{}`, 400, "name the events"},
		{"/api/v1/projections/retry", "tok_operate", `{"all":true,"event_ids":["evt_1"]}`, 400, "not both"},
	} {
		if code, _, got := post(t, srv.URL+c.path, c.token, c.body); code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("%s %s: %d %s", c.path, c.body, code, got)
		}
	}
}

// An admin sets up the webhook endpoint over the API: created once with its secret (not
// cached), then updated without one.
func TestEndpointSetupOverAPI(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 4, Customers: 1, Duration: 24 * time.Hour})
	stripe := httptest.NewServer(stripesim.NewServer(sim, nil, stripesim.ServerConfig{RateLimit: -1}))
	defer stripe.Close()
	db := testkit.New(t)
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(operateTokens),
		Stripe: reconcile.StripeConfig{APIKey: "sk_test_api", APIBase: stripe.URL}, WebhookURL: "https://ledger.example/webhooks/stripe"}))
	defer srv.Close()
	var res struct {
		Created  bool
		Secret   *string
		Endpoint struct{ ID, URL string }
	}
	code, header, body := post(t, srv.URL+"/api/v1/endpoints/setup", "tok_admin", ``)
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 || !res.Created || res.Secret == nil ||
		!strings.HasPrefix(*res.Secret, "whsec_") || res.Endpoint.URL != "https://ledger.example/webhooks/stripe" || header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %s", code, body)
	}
	res.Secret = nil
	code, _, body = post(t, srv.URL+"/api/v1/endpoints/setup", "tok_admin", `{"url":"https://ledger.example/webhooks/stripe"}`)
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 || res.Created || res.Secret != nil {
		t.Fatalf("update: %d %s", code, body)
	}
}
