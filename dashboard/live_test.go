package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/dashboard"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/devsink"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
	"github.com/stripeledger/ledger/webhook"
)

const (
	liveToken  = "tok_live_dashboard"
	liveSecret = "whsec_live_dashboard_test_secret"
)

// liveLedger is the ledger in process as serve wires it: the webhook handler appending through
// a store, the projection runner folding from it, the stream's hub woken by both; stream false
// leaves the hub out (GET /api/v1/stream answers 503).
func liveLedger(t *testing.T, stream bool, sinks http.Handler) *httptest.Server {
	t.Helper()
	db := testkit.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	end := time.Now().UTC().Truncate(time.Second)
	sim := stripesim.New(stripesim.Config{Seed: 93, Customers: 30, Duration: 40 * 24 * time.Hour, End: end, Livemode: true})
	sim.Run(time.Time{})
	var evs []domain.Event
	for _, ev := range sim.Events() {
		e, _ := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
		evs = append(evs, e)
	}
	store := eventstore.New(db.Pool)
	if _, err := store.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{})
	hooks, err := webhook.New(webhook.Config{Endpoints: webhook.EndpointSecrets{Live: []string{liveSecret}}}, appender, store, webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	var hub *api.Hub
	var folded func(int64)
	if stream {
		if hub, err = api.NewHub(api.HubConfig{Store: store}); err != nil {
			t.Fatal(err)
		}
		folded = hub.Folded
	}
	runner, err := projections.NewRunner(db.Pool, projections.RunnerConfig{Store: store, Folded: folded})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = runner.Run(ctx); done <- struct{}{} }()
	if hub != nil {
		go func() { _ = hub.Run(ctx); done <- struct{}{} }()
	} else {
		done <- struct{}{}
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/stripe", hooks)
	mux.Handle("/api/v1/", api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(liveToken), Stream: hub}))
	mux.Handle("/", dashboard.New(dashboard.Config{Tokens: auth.MustParseEnv(liveToken), Sinks: sinks}))
	srv := httptest.NewUnstartedServer(mux)
	if hub != nil {
		srv.Config.RegisterOnShutdown(hub.Close)
	}
	srv.Start()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		srv.Close()
		appender.Close()
	})
	return srv
}

// browserContext starts headless Chromium for one test.
func browserContext(t *testing.T) context.Context {
	t.Helper()
	bin := chromium(t)
	profile, err := os.MkdirTemp("", "ledger-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1400, 1800))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	bctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(func() {
		cancelT()
		cancelB()
		cancelA()
		_ = os.RemoveAll(profile) // best effort: Chromium's helpers may still be writing it
	})
	return bctx
}

func signIn(url string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(url + "/"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
		chromedp.SendKeys(`#token`, liveToken, chromedp.ByQuery),
		chromedp.Click(`#signin`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-shown="true/platform"]`, chromedp.ByQuery),
	}
}

// postCharge sends a signed charge.succeeded webhook, created now (so it is the newest charge),
// through the real webhook handler.
func postCharge(t *testing.T, url, chargeID string) {
	t.Helper()
	now := time.Now()
	body := fmt.Appendf(nil, `{"id":"evt_%s","object":"event","api_version":"2023-10-16","created":%d,"livemode":true,"type":"charge.succeeded",`+
		`"data":{"object":{"id":%q,"object":"charge","amount":4242,"amount_refunded":0,"currency":"usd","status":"succeeded","paid":true,"customer":"cus_live_dashboard","created":%d}}}`,
		chargeID, now.Unix(), chargeID, now.Unix())
	req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/stripe", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripesim.SignatureHeader(body, now, liveSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the webhook answered %d", resp.StatusCode)
	}
}

// In Chromium, with the page open on the live stream: a webhook signed and POSTed during the
// test goes through the handler, the log and the projection runner, and its charge appears in
// the charges table without a reload (the page's own marker survives); the header says "live".
// The notifications panel, with no notifications route, says they are off.
func TestDashboardMovesLiveInChromium(t *testing.T) {
	t.Parallel()
	sinks, err := devsink.Start(devsink.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sinks.Close()
	srv := liveLedger(t, true, sinks.Handler())
	ctx := browserContext(t)
	var mode, noticeOff, loadedBy string
	var unreloaded bool
	const charge = "ch_live_dashboard_sse_1"
	err = chromedp.Run(ctx, signIn(srv.URL),
		chromedp.WaitVisible(`body[data-mode="live"]`, chromedp.ByQuery),
		chromedp.Evaluate(`window.__sameDocument = true`, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	postCharge(t, srv.URL, charge)
	err = chromedp.Run(ctx,
		chromedp.WaitVisible(`//table[@id="charges"]//td[text()="`+charge+`"]`, chromedp.BySearch),
		chromedp.Evaluate(`window.__sameDocument === true`, &unreloaded),
		chromedp.Text(`#live`, &mode, chromedp.ByQuery),
		chromedp.Evaluate(`document.body.dataset.loadedBy`, &loadedBy),
		// The panel shows its muted line once its own request has answered (here 404: no
		// deliverer behind this API).
		chromedp.WaitVisible(`#notify-off`, chromedp.ByQuery),
		chromedp.Text(`#notify-off`, &noticeOff, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Drawn by a load the stream's "folded" asked for, not a poll (live mode has none).
	if !unreloaded || mode != "live" || loadedBy != "stream" || noticeOff != "notifications are off" {
		t.Fatalf("same document %v, header says %q, last load by %q, notifications panel %q", unreloaded, mode, loadedBy, noticeOff)
	}

	// ledger dev's page of what its sinks received: a late Slack message reads as one.
	resp, err := http.Post(sinks.SlackURL("payments"), "application/json", strings.NewReader(`{"text":"Payment received: 42.42 USD (late, repaired)"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the Slack sink: %v %v", resp, err)
	}
	resp.Body.Close()
	var channel, late string
	err = chromedp.Run(ctx,
		chromedp.WaitVisible(`#dev-notifications`, chromedp.ByQuery),
		chromedp.Click(`#dev-notifications`, chromedp.ByQuery),
		chromedp.WaitVisible(`#slack .msg.slack.is-late`, chromedp.ByQuery),
		chromedp.Text(`#slack .msg strong`, &channel, chromedp.ByQuery),
		chromedp.Text(`#slack .msg .late`, &late, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if channel != "#payments" || !strings.Contains(late, "late") {
		t.Fatalf("the notifications page shows channel %q, mark %q", channel, late)
	}
}

// Where the stream route is not there (it answers 503), the page polls and says so.
func TestDashboardFallsBackToPollingInChromium(t *testing.T) {
	t.Parallel()
	srv := liveLedger(t, false, nil)
	ctx := browserContext(t)
	var mode string
	err := chromedp.Run(ctx, signIn(srv.URL),
		chromedp.WaitVisible(`body[data-mode="polling"]`, chromedp.ByQuery),
		chromedp.Text(`#live`, &mode, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if mode != "polling every 10 s" {
		t.Fatalf("header says %q", mode)
	}
}
