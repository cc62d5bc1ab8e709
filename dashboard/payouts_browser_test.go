package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/dashboard"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
)

// In headless Chromium, the payouts page lists every payout with its arrival date, amount,
// status and match: ✓ for those whose balance transactions add up, ✗ for the one the simulator
// made 1.37 larger than its transactions; selecting it shows its parts (the difference -1.37)
// and each of its transactions; the unreconciled list names it; the closed month links to its
// printable report, which opens. A screenshot is kept in .data/test-artifacts/payouts.png.
func TestPayoutsPageInChromium(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	sim := stripesim.New(stripesim.Config{Seed: 93, Customers: 60, Duration: 45 * 24 * time.Hour,
		End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), PayoutMismatch: 137})
	sim.Run(time.Time{})
	db := testkit.New(t)
	ctx := context.Background()
	var evs []domain.Event
	for _, ev := range sim.Events() {
		e, _ := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
		evs = append(evs, e)
	}
	if _, err := eventstore.New(db.Pool).Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	stripe := httptest.NewServer(stripesim.NewServer(sim, nil, stripesim.ServerConfig{RateLimit: -1}))
	defer stripe.Close()
	rec := reconcile.New(db.Pool, reconcile.Config{Now: sim.Now,
		Stripe: reconcile.StripeConfig{APIKey: "sk_test_payouts", APIBase: stripe.URL, RateLimit: 1000, BaseBackoff: 20 * time.Millisecond}})
	if run, err := rec.Run(ctx, reconcile.Options{Job: reconcile.JobBalance, From: sim.Config().Start}); err != nil || run.Status != "succeeded" {
		t.Fatalf("balance run: %+v %v", run, err)
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := query.New(db.Pool, query.Config{}).ClosePeriod(ctx, query.Period{Year: 2026, Month: time.May}, time.Now(), "finance"); err != nil {
		t.Fatal(err)
	}
	var payouts int
	var mismatched string
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), (SELECT payout FROM ledger.payout_reconciliation WHERE NOT match)
		FROM ledger.payout_reconciliation`).Scan(&payouts, &mismatched); err != nil {
		t.Fatal(err)
	}
	var transactions int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.balance_transactions WHERE payout = $1`, mismatched).Scan(&transactions); err != nil {
		t.Fatal(err)
	}

	const token = "tok_payouts_test"
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(token)}))
	mux.Handle("/", dashboard.New(dashboard.Config{Tokens: auth.MustParseEnv(token)}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	profile, err := os.MkdirTemp("", "ledger-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(profile) }()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1400, 1600))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
	defer cancelT()

	var rows, bad, txRows, findings int
	var mark, difference, title, status, report, navHref string
	var nan bool
	var shot []byte
	err = chromedp.Run(bctx,
		chromedp.Navigate(srv.URL+"/payouts"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery), // redirected to the login form
		chromedp.SendKeys(`#token`, token, chromedp.ByQuery),
		chromedp.Click(`#signin`, chromedp.ByQuery),
		chromedp.WaitVisible(`#nav-payouts`, chromedp.ByQuery), // the dashboard links to the page
		chromedp.AttributeValue(`#nav-payouts`, "href", &navHref, nil, chromedp.ByQuery),
		chromedp.Click(`#nav-payouts`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-loaded="true"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#payouts tbody tr').length`, &rows),
		chromedp.Evaluate(`document.querySelectorAll('#payouts tbody tr[data-match="false"]').length`, &bad),
		chromedp.Text(`#payouts tbody tr[data-match="false"] td.mismatch`, &mark, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#unreconciled tbody tr[data-kind="payout_mismatch"]').length`, &findings),
		chromedp.Text(`#status`, &status, chromedp.ByQuery),
		chromedp.Click(`#payouts tbody tr[data-match="false"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#detail[data-payout="`+mismatched+`"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#transactions tbody tr').length`, &txRows),
		chromedp.Text(`#parts td[data-part="difference"]`, &difference, chromedp.ByQuery),
		chromedp.Text(`#detail-title`, &title, chromedp.ByQuery),
		chromedp.Evaluate(`document.body.innerHTML.includes('NaN') || document.body.innerHTML.includes('undefined')`, &nan),
		chromedp.FullScreenshot(&shot, 100),
		chromedp.AttributeValue(`#closes tbody tr a`, "href", &report, nil, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if navHref != "/payouts" || rows != payouts || rows < 20 || bad != 1 || !strings.HasPrefix(mark, "✗") || !strings.Contains(mark, "-1.37") || findings != 1 {
		t.Fatalf("page: nav %q, %d rows for %d payouts, %d marked ✗ (%q), %d mismatch findings; status %q", navHref, rows, payouts, bad, mark, findings, status)
	}
	if txRows != transactions || difference != "-1.37 USD" || !strings.Contains(title, mismatched) || !strings.Contains(title, "does not reconcile") || nan {
		t.Fatalf("drill-down: %d transactions shown of %d; difference %q; title %q; NaN/undefined %v", txRows, transactions, difference, title, nan)
	}
	var matched int
	if err := chromedp.Run(bctx, chromedp.Evaluate(`[...document.querySelectorAll('#payouts tbody td.match')].filter(td => td.textContent === '✓').length`, &matched)); err != nil {
		t.Fatal(err)
	}
	if matched != payouts-1 {
		t.Fatalf("%d payouts marked ✓, want %d", matched, payouts-1)
	}
	art := filepath.Join(pgboot.RepoRoot(), ".data", "test-artifacts")
	if err := os.MkdirAll(art, 0o755); err == nil {
		if err := os.WriteFile(filepath.Join(art, "payouts.png"), shot, 0o644); err == nil {
			t.Logf("screenshot: %s", filepath.Join(art, "payouts.png"))
		}
	}
	// The closed month's printable report opens with the cookie.
	var heading string
	var reportShot []byte
	if err := chromedp.Run(bctx, chromedp.Navigate(srv.URL+report), chromedp.WaitVisible(`h1`, chromedp.ByQuery),
		chromedp.Text(`h1`, &heading, chromedp.ByQuery), chromedp.FullScreenshot(&reportShot, 100)); err != nil {
		t.Fatal(err)
	}
	if report != "/api/v1/closes/2026-05/report" || heading != "Month-end close: 2026-05" {
		t.Fatalf("report link %q opened %q", report, heading)
	}
	_ = os.WriteFile(filepath.Join(art, "close-report.png"), reportShot, 0o644)
}
