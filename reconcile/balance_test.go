package reconcile_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
)

// faulty serves the simulator's API, answering fail's status instead for the requests it picks
// (0: pass the request on).
type faulty struct {
	next http.Handler
	mu   sync.Mutex
	fail func(r *http.Request) int
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	status := 0
	if f.fail != nil {
		status = f.fail(r)
	}
	f.mu.Unlock()
	switch status {
	case 0:
		f.next.ServeHTTP(w, r)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`))
	default:
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"Something went wrong on Stripe's end."}}`))
	}
}

func (f *faulty) set(fail func(r *http.Request) int) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

// playMoney is 90 days of a simulated account with daily payouts, its webhooks in the ledger
// and the read models built, served through a proxy that can inject faults.
func playMoney(t *testing.T, mismatch int64) (*account, *faulty) {
	t.Helper()
	a := play(t, "steady", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) {
		c.Customers = 60
		c.PayoutMismatch = mismatch
	}, stripesim.ServerConfig{RateLimit: -1})
	f := &faulty{next: a.server}
	proxy := httptest.NewServer(f)
	t.Cleanup(proxy.Close)
	a.api = proxy.URL
	if _, err := projections.Rebuild(context.Background(), a.db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	return a, f
}

// balanceAgrees rebuilds the read models and checks them against the simulator's truth: every
// payout's transactions are in the ledger and name it, and every succeeded charge has the fee,
// net and exchange rate of its balance transaction.
func balanceAgrees(t *testing.T, a *account) stripesim.MoneyTruth {
	t.Helper()
	ctx := context.Background()
	if _, err := projections.Rebuild(ctx, a.db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	truth := a.sim.MoneyTruth()
	if len(truth.Payouts) < 30 {
		t.Fatalf("only %d payouts in 90 days", len(truth.Payouts))
	}
	for _, po := range truth.Payouts {
		var n int
		var net int64
		err := a.db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(net) FILTER (WHERE id <> $2), 0)
			FROM ledger.balance_transactions WHERE payout = $1`, po.ID, po.BalanceTransaction).Scan(&n, &net)
		if err != nil {
			t.Fatal(err)
		}
		if n != po.Transactions || net != po.Net {
			t.Errorf("payout %s: the ledger has %d transactions netting %d, Stripe %d netting %d", po.ID, n, net, po.Transactions, po.Net)
		}
	}
	checked := 0
	for ch, want := range truth.Charges {
		var txn string
		var fee, net *int64
		var rate *string
		err := a.db.Pool.QueryRow(ctx, `SELECT c.balance_transaction, c.fee, c.net, b.exchange_rate::text
			FROM ledger.charges c LEFT JOIN ledger.balance_transactions b ON b.id = c.balance_transaction WHERE c.id = $1`, ch).
			Scan(&txn, &fee, &net, &rate)
		if err != nil {
			t.Fatalf("charge %s: %v", ch, err)
		}
		wantRate := (*string)(nil)
		if want.ExchangeRate != "" {
			wantRate = &want.ExchangeRate
		}
		if txn != want.BalanceTransaction || fee == nil || *fee != want.Fee || *net != want.Net || !sameDecimal(rate, wantRate) {
			t.Errorf("charge %s: %s fee %v net %v rate %v; Stripe %+v", ch, txn, deref(fee), deref(net), rate, want)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no charges checked")
	}
	return truth
}

// sameDecimal compares exact decimals as written, the trailing zeros Postgres keeps aside.
func sameDecimal(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	trim := func(s string) string {
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	}
	return trim(*a) == trim(*b)
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func eventCount(t *testing.T, a *account) int {
	t.Helper()
	var n int
	if err := a.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// After the balance job, every payout's transactions are in the ledger and name it, charges
// have the fee and net of Stripe's truth, and a second run appends nothing; payouts that add up
// make no finding.
func TestBalanceJobFetchesEveryPayoutsTransactions(t *testing.T) {
	t.Parallel()
	a, _ := playMoney(t, 0)
	ctx := context.Background()
	run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobBalance})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != "succeeded" || run.Repaired == 0 || run.Drift["payouts.mismatch"] != 0 || len(run.Scopes) != 1 {
		t.Fatalf("run: %+v", run)
	}
	balanceAgrees(t, a)
	var unlisted int
	_ = a.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.balance_transactions WHERE payout IS NULL`).Scan(&unlisted)
	if unlisted == 0 {
		t.Error("no transaction waits for a payout: the end of the window should have pending funds fetched by ID")
	}

	before := eventCount(t, a)
	again, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobBalance})
	if err != nil {
		t.Fatal(err)
	}
	if again.Repaired != 0 || again.MissingFound != 0 || eventCount(t, a) != before {
		t.Fatalf("a rerun appended %d (missing %d), log %d → %d", again.Repaired, again.MissingFound, before, eventCount(t, a))
	}
	t.Logf("first run: %d requests, %d transactions read, %d appended; rerun: %d requests, %d appended",
		run.Requests, run.ObjectsChecked, run.Repaired, again.Requests, again.Repaired)
	if again.Requests >= run.Requests/2 {
		t.Errorf("the rerun made %d requests, the first %d: settled payouts should be skipped", again.Requests, run.Requests)
	}
}

// A payout whose parts do not add up is a finding of the run, with the payout's ID, and the run
// still succeeds and fetches everything else.
func TestBalanceJobFindsAPayoutThatDoesNotAddUp(t *testing.T) {
	t.Parallel()
	a, _ := playMoney(t, 700)
	run, err := a.reconciler(0).Run(context.Background(), reconcile.Options{Job: reconcile.JobBalance})
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, po := range a.sim.MoneyTruth().Payouts {
		if !po.Reconciled {
			bad = append(bad, po.ID)
		}
	}
	var findings []reconcile.PayoutMismatch
	_ = json.Unmarshal(run.Findings, &findings)
	if len(bad) != 1 || run.Status != "succeeded" || run.Drift["payouts.mismatch"] != 1 || len(findings) != 1 ||
		findings[0].Payout != bad[0] || findings[0].Amount-findings[0].Parts != 700 {
		t.Fatalf("mismatched %v; run %s drift %v findings %s", bad, run.Status, run.Drift, run.Findings)
	}
	balanceAgrees(t, a)

	// It stays a finding, run after run, and costs a listing of its own.
	again, err := a.reconciler(0).Run(context.Background(), reconcile.Options{Job: reconcile.JobBalance})
	if err != nil || again.Drift["payouts.mismatch"] != 1 || again.Repaired != 0 {
		t.Fatalf("rerun: %v drift %v repaired %d", err, again.Drift, again.Repaired)
	}
}

// Stripe's 429s and 500s: a passing one is retried and recorded; one that outlasts the retries
// fails the run with the error recorded, and the next run resumes from its cursor and loses
// nothing.
func TestBalanceJobSurvivesStripeErrors(t *testing.T) {
	t.Parallel()
	a, f := playMoney(t, 0)
	ctx := context.Background()
	payouts := a.sim.MoneyTruth().Payouts
	broken := payouts[len(payouts)/2].ID
	var n int
	f.set(func(r *http.Request) int {
		if !strings.HasPrefix(r.URL.Path, "/v1/balance_transactions") {
			return 0
		}
		n++
		switch {
		case r.URL.Query().Get("payout") == broken:
			return http.StatusInternalServerError // every time: beyond the retries
		case n%7 == 1:
			return http.StatusTooManyRequests // retried after Retry-After
		}
		return 0
	})
	failed, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobBalance})
	if err == nil || failed.Status != "failed" || !strings.Contains(failed.Error, broken) || !strings.Contains(failed.Error, "500") {
		t.Fatalf("run with a broken payout: %v; %s %q", err, failed.Status, failed.Error)
	}
	if failed.RateLimited == 0 || failed.Repaired == 0 || !strings.Contains(failed.Cursor, "payouts:") {
		t.Fatalf("the failed run: rate limited %d, repaired %d, cursor %q", failed.RateLimited, failed.Repaired, failed.Cursor)
	}

	f.set(nil)
	resumed, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobBalance})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.ResumedFrom == nil || *resumed.ResumedFrom != failed.ID || resumed.Repaired == 0 {
		t.Fatalf("resumed run: %+v", resumed)
	}
	balanceAgrees(t, a)
}

// The balance job is a job like the others: named, and on the default schedule.
func TestBalanceJobName(t *testing.T) {
	t.Parallel()
	if _, err := reconcile.ParseJob("balance"); err != nil {
		t.Fatal(err)
	}
	if _, err := reconcile.ParseJob("balances"); err == nil || !strings.Contains(err.Error(), "balance") {
		t.Fatalf("ParseJob(balances) = %v", err)
	}
	if _, _, err := reconcile.ParseSchedule(reconcile.DefaultSchedule); err != nil {
		t.Fatal(err)
	}
	sched, _, _ := reconcile.ParseSchedule(reconcile.DefaultSchedule)
	if sched[reconcile.JobBalance] == nil {
		t.Fatal("the default schedule does not run the balance job")
	}
}

// A balance run cancelled part-way is resumed from its cursor, the last payout it listed in
// full: the next run lists only the payouts after it, and between them nothing is lost.
func TestBalanceRunResumesFromItsCursor(t *testing.T) {
	t.Parallel()
	a, _ := playMoney(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payoutsDone := 0
	stop := func(r reconcile.Run) {
		if strings.Contains(r.Cursor, "payouts:") {
			if payoutsDone++; payoutsDone == 10 {
				cancel()
			}
		}
	}
	first, err := a.reconcilerWith(0, reconcile.Config{AfterPage: stop}).Run(ctx, reconcile.Options{Job: reconcile.JobBalance})
	if err == nil || first.Status != "cancelled" || !strings.Contains(first.Cursor, "payouts:po_") {
		t.Fatalf("first run: %v %s cursor %q", err, first.Status, first.Cursor)
	}
	second, err := a.reconciler(0).Run(context.Background(), reconcile.Options{Job: reconcile.JobBalance})
	if err != nil || second.ResumedFrom == nil || *second.ResumedFrom != first.ID {
		t.Fatalf("second run: %+v %v", second, err)
	}
	var listed, byFirst int
	if err := a.db.Pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE run_id = $1) FROM ledger.balance_listings`,
		first.ID).Scan(&listed, &byFirst); err != nil {
		t.Fatal(err)
	}
	if byFirst < 10 || listed != len(a.sim.MoneyTruth().Payouts) {
		t.Fatalf("%d payouts listed, %d by the first run; Stripe has %d", listed, byFirst, len(a.sim.MoneyTruth().Payouts))
	}
	balanceAgrees(t, a)
}
