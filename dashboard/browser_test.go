package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/dashboard"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

var installOnce sync.Once

// chromium finds Debian's Chromium, installing the package when it is missing and the tests run
// as root (as on a fresh CI machine).
func chromium(t *testing.T) string {
	t.Helper()
	const path = "/usr/bin/chromium"
	installOnce.Do(func() {
		if _, err := os.Stat(path); err == nil || os.Geteuid() != 0 {
			return
		}
		t.Log("installing Debian's chromium for the dashboard test")
		cmd := exec.Command("apt-get", "install", "-y", "-q", "chromium")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			upd := exec.Command("apt-get", "update", "-q")
			_ = upd.Run()
			if out2, err2 := exec.Command("apt-get", "install", "-y", "-q", "chromium").CombinedOutput(); err2 != nil {
				t.Logf("apt-get install chromium: %v\n%s\n%s", err, out, out2)
			}
		}
	})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the dashboard test needs Chromium at %s: apt-get install chromium", path)
	}
	return path
}

// In headless Chromium: the login form takes the token, the dashboard loads with data, its charts
// draw, the CSV download link downloads the subscriptions; the test-mode switch shows the
// test-mode account's figures instead of the live ones, and says so; a screenshot is kept in
// .data/test-artifacts/dashboard.png (and dashboard-test-mode.png).
func TestDashboardInChromium(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	end := time.Now().UTC().Truncate(time.Second)
	live := stripesim.New(stripesim.Config{Seed: 90, Customers: 150, Duration: 80 * 24 * time.Hour, End: end, Livemode: true})
	test := stripesim.New(stripesim.Config{Seed: 91, Customers: 60, Duration: 80 * 24 * time.Hour, End: end})
	const connected = "acct_1DashboardTest01"
	acct := stripesim.New(stripesim.Config{Seed: 92, Customers: 40, Duration: 80 * 24 * time.Hour, End: end, Livemode: true, Account: connected})
	db := testkit.New(t)
	var evs []domain.Event
	for _, sim := range []*stripesim.Sim{live, test, acct} {
		sim.Run(time.Time{})
		for _, ev := range sim.Events() {
			e, _ := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
			evs = append(evs, e)
		}
	}
	ctx := context.Background()
	if _, err := eventstore.New(db.Pool).Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO ledger.reconcile_runs (job, status, missing_found, repaired, finished_at)
		VALUES ('events', 'succeeded', 12, 12, now())`); err != nil {
		t.Fatal(err)
	}
	const token = "tok_dashboard_test"
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(token)}))
	mux.Handle("/", dashboard.New(dashboard.Config{Tokens: auth.MustParseEnv(token)}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	downloads := t.TempDir()
	// Chromium's helper processes may still be writing its profile when the test ends: the
	// profile is removed on a best-effort basis rather than by t.TempDir (which fails on that).
	profile, err := os.MkdirTemp("", "ledger-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		time.Sleep(200 * time.Millisecond)
		_ = os.RemoveAll(profile)
	}()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1400, 1800))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	// This cdproto predates the installed Chromium's newest event fields; what it cannot decode
	// is not what the test reads.
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 90*time.Second)
	defer cancelT()

	// The download's progress is reported to the page's session, which set the download behaviour
	// with events on (below); with AllowAndName the file is saved under its GUID, whole once the
	// state says completed.
	downloaded := make(chan string, 1)
	chromedp.ListenTarget(bctx, func(ev any) {
		if p, ok := ev.(*browser.EventDownloadProgress); ok && p.State == browser.DownloadProgressStateCompleted {
			select {
			case downloaded <- p.GUID:
			default:
			}
		}
	})

	var mrrPath, status, firstCard, liveBanner, testCard, testBanner, cur, unvalued string
	var defined int
	var bars, runRows, subRows int
	var nan bool
	var shot, testShot []byte
	err = chromedp.Run(bctx,
		browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllowAndName).WithDownloadPath(downloads).WithEventsEnabled(true),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery), // redirected to the login form
		chromedp.SendKeys(`#token`, token, chromedp.ByQuery),
		chromedp.Click(`#signin`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-shown="true/platform"]`, chromedp.ByQuery),
		chromedp.AttributeValue(`#chart-mrr path.line`, "d", &mrrPath, nil, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#chart-revenue rect').length`, &bars),
		chromedp.Evaluate(`document.querySelectorAll('#runs tbody tr').length`, &runRows),
		chromedp.Evaluate(`document.querySelectorAll('#subscriptions tbody tr').length`, &subRows),
		chromedp.Text(`#status`, &status, chromedp.ByQuery),
		chromedp.Evaluate(`document.body.innerHTML.includes('NaN') || document.body.innerHTML.includes('undefined')`, &nan),
		chromedp.Text(`#cards .card .value`, &firstCard, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll('#metric-tiles .card')].filter(c => c.querySelector('.def').textContent.length > 10).length`, &defined),
		chromedp.Text(`#unvalued`, &unvalued, chromedp.ByQuery),
		chromedp.Text(`#scope-banner`, &liveBanner, chromedp.ByQuery),
		chromedp.Value(`#currency`, &cur, chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100), // quality 100: PNG
		chromedp.Click(`#csv-subscriptions`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The MRR tile of each mode is that mode's subscriptions alone, in the currency shown.
	mrrOf := func(livemode bool, account, currency string) string {
		var v int64
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(mrr), 0)::bigint FROM ledger.subscriptions
			WHERE livemode = $1 AND account IS NOT DISTINCT FROM nullif($2, '') AND currency = $3`, livemode, account, currency).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return major(v, currency)
	}
	if want := mrrOf(true, "", cur); firstCard != want || !strings.HasPrefix(liveBanner, "Live mode") {
		t.Fatalf("live mode: MRR card %q, want %q (the live subscriptions' MRR in %s); banner %q", firstCard, want, cur, liveBanner)
	}
	err = chromedp.Run(bctx,
		chromedp.Click(`#testmode`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-shown="false/platform"]`, chromedp.ByQuery),
		chromedp.Text(`#cards .card .value`, &testCard, chromedp.ByQuery),
		chromedp.Text(`#scope-banner`, &testBanner, chromedp.ByQuery),
		chromedp.Value(`#currency`, &cur, chromedp.ByQuery),
		chromedp.FullScreenshot(&testShot, 100),
	)
	if err != nil {
		t.Fatal(err)
	}
	if want := mrrOf(false, "", cur); testCard != want || !strings.HasPrefix(testBanner, "Test mode") || testCard == firstCard {
		t.Fatalf("test mode: MRR card %q, want %q (the test subscriptions' MRR in %s; live showed %q); banner %q", testCard, want, cur, firstCard, testBanner)
	}
	// Back to live mode, then the connected account alone: its own MRR, and the banner names it.
	var acctCard, acctBanner string
	err = chromedp.Run(bctx,
		chromedp.Click(`#testmode`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-shown="true/platform"]`, chromedp.ByQuery),
		chromedp.SetValue(`#account`, connected, chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById('account').dispatchEvent(new Event('change'))`, nil),
		chromedp.WaitVisible(`body[data-shown="true/`+connected+`"]`, chromedp.ByQuery),
		chromedp.Text(`#cards .card .value`, &acctCard, chromedp.ByQuery),
		chromedp.Text(`#scope-banner`, &acctBanner, chromedp.ByQuery),
		chromedp.Value(`#currency`, &cur, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if want := mrrOf(true, connected, cur); acctCard != want || !strings.Contains(acctBanner, connected) {
		t.Fatalf("connected account: MRR card %q, want %q (%s's MRR in %s); banner %q", acctCard, want, connected, cur, acctBanner)
	}
	if nan {
		t.Fatal("the dashboard shows NaN or undefined")
	}
	// Each revenue-metric tile has its definition beside it, and the unvalued count is shown.
	if defined < 16 || !strings.Contains(unvalued, "Unvalued subscriptions") {
		t.Fatalf("revenue metrics: %d tiles with a definition, unvalued %q", defined, unvalued)
	}
	if strings.Count(mrrPath, "L") < 30 || bars < 10 || runRows != 1 || subRows == 0 || !strings.HasPrefix(status, "updated") || firstCard == "" {
		t.Fatalf("dashboard: MRR path with %d points, %d revenue bars, %d runs, %d subscriptions, status %q, MRR card %q",
			strings.Count(mrrPath, "L"), bars, runRows, subRows, status, firstCard)
	}
	art := filepath.Join(pgboot.RepoRoot(), ".data", "test-artifacts")
	if err := os.MkdirAll(art, 0o755); err == nil {
		if err := os.WriteFile(filepath.Join(art, "dashboard.png"), shot, 0o644); err == nil {
			t.Logf("screenshot: %s", filepath.Join(art, "dashboard.png"))
		}
		_ = os.WriteFile(filepath.Join(art, "dashboard-test-mode.png"), testShot, 0o644)
	}
	var guid string
	select {
	case guid = <-downloaded:
	case <-bctx.Done():
		t.Fatalf("the CSV download did not complete: %v", bctx.Err())
	}
	got, err := os.ReadFile(filepath.Join(downloads, guid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "id,customer,app_user_id,status,currency") || strings.Count(string(got), "\n") < 2 {
		t.Fatalf("the CSV download holds %.200s", got)
	}
}

// Without the token the dashboard sends the browser to the login form, and the form refuses a
// wrong token.
func TestDashboardNeedsTheToken(t *testing.T) {
	t.Parallel()
	audit := &records{}
	srv := httptest.NewServer(dashboard.New(dashboard.Config{Tokens: auth.MustParseEnv("fin:read:tok_right"), Audit: audit}))
	defer srv.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(srv.URL + "/")
	if err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("/ without a token: %v %v", resp, err)
	}
	resp, err = noFollow.PostForm(srv.URL+"/login", map[string][]string{"token": {"tok_wrong"}})
	if err != nil || resp.Header.Get("Location") != "/login?failed=1" || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %v %v", resp, err)
	}
	resp, err = noFollow.PostForm(srv.URL+"/login", map[string][]string{"token": {"tok_right"}})
	if err != nil || resp.Header.Get("Location") != "/" || len(resp.Cookies()) != 1 || !resp.Cookies()[0].HttpOnly {
		t.Fatalf("right token: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.AddCookie(resp.Cookies()[0])
	page, err := noFollow.Do(req)
	if err != nil || page.StatusCode != 200 {
		t.Fatalf("/ with the cookie: %v %v", page, err)
	}
	// The refused sign-in, the sign-in and the page, each audited; the refused one names no token.
	want := []auth.Record{{Route: "POST /login", Status: 401}, {Route: "POST /login", Token: "fin", Role: auth.Read, Status: 303},
		{Route: "GET /{$}", Token: "fin", Role: auth.Read, Status: 200}}
	if len(audit.list) != len(want) {
		t.Fatalf("audited %+v", audit.list)
	}
	for i, w := range want {
		if got := audit.list[i]; got.Route != w.Route || got.Token != w.Token || got.Role != w.Role || got.Status != w.Status || got.Client != "127.0.0.1" {
			t.Errorf("record %d: %+v, want %+v", i, got, w)
		}
	}
}

// major formats minor units as the dashboard does for a two-decimal currency: 1,234.56 USD.
func major(minor int64, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	whole := strconv.FormatInt(minor/100, 10)
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	return fmt.Sprintf("%s%s.%02d %s", sign, whole, minor%100, strings.ToUpper(currency))
}

type records struct {
	mu   sync.Mutex
	list []auth.Record
}

func (r *records) Record(_ context.Context, rec auth.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
}
