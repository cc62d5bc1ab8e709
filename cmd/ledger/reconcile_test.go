package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/stripesim"
)

// End to end through `ledger serve`: a simulated account with a four-day outage delivers its
// webhooks to the ledger; serve's scheduled reconciliation appends exactly the events Stripe gave
// up on; the log then holds every event of the account and the live read models equal its state.
// The CLI lists the runs and a dry run afterwards finds nothing.
func TestServeReconcilesAnOutage(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	port := freePort(t)
	hookURL := "http://127.0.0.1:" + port + "/webhooks/stripe"
	cfg, dc, err := stripesim.Setup("outage-4d", stripesim.Config{Seed: 11}, stripesim.DeliveryConfig{URL: hookURL, Secrets: []string{"whsec_e2e"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Customers = 80
	sim := stripesim.New(cfg)
	d := stripesim.NewDeliverer(sim, dc)
	api := httptest.NewServer(stripesim.NewServer(sim, d, stripesim.ServerConfig{}))
	defer api.Close()

	env := []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=whsec_e2e", "STRIPE_SECRET_KEY=sk_live_e2e_key_123456",
		"STRIPE_API_BASE=" + api.URL, "LEDGER_RECONCILE_SCHEDULE=events-fast=@every 1s; events=@every 2s", "LEDGER_API_TOKEN=tok_e2e_secret"}
	server := startLedger(t, env, "serve", "--addr", "127.0.0.1:"+port, "--log-level", "debug")
	defer func() {
		_ = server.stop()
		out := server.stdout.String() + server.stderr.String()
		if strings.Contains(out, "sk_live_e2e_key_123456") || strings.Contains(out, "whsec_e2e") || strings.Contains(out, "tok_e2e_secret") {
			t.Error("a secret appeared in serve's output")
		}
	}()
	server.listening(t)
	if err := (&stripesim.Runner{Sim: sim, Deliverer: d}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	played := time.Now() // every delivery has been answered or given up on
	if d.Stats().GaveUp == 0 {
		t.Fatal("the outage lost nothing")
	}
	want := map[string]bool{}
	for _, ev := range sim.Events() {
		want[ev.ID] = true
	}

	// A fast pass that began after the account played has appended every event Stripe gave up on.
	ctx := context.Background()
	server.reconciledSince(t, "events-fast", played)
	var inLog, reconciled int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE source = 'reconcile') FROM ledger.events`).Scan(&inLog, &reconciled); err != nil {
		t.Fatal(err)
	}
	// Reconciliation may append an event still in Stripe's retry schedule before its webhook
	// arrives (the webhook is then a duplicate), so it may repair more than Stripe gave up on.
	if inLog != len(want) || reconciled < d.Stats().GaveUp {
		t.Fatalf("%d of %d events in the log, %d reconciled of %d given up\n%s",
			inLog, len(want), reconciled, d.Stats().GaveUp, server.stderr.String())
	}
	// The live projection folds them.
	server.foldedThrough(t, inLog)
	// The live read models equal the account.
	truth := sim.Truth()
	var differ int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.subscriptions s JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = s.id
		WHERE o->>'status' <> s.status OR (o->>'current_period_end')::bigint <> extract(epoch FROM s.current_period_end)`,
		string(truth.Objects["subscriptions"])).Scan(&differ); err != nil || differ != 0 {
		t.Fatalf("%d subscriptions differ from the account (%v)", differ, err)
	}
	for kind, raw := range truth.Objects {
		if kind == "balance_transactions" {
			continue // no event carries them: the balance job fetches them, and this schedule has none
		}
		var objs []json.RawMessage
		_ = json.Unmarshal(raw, &objs)
		var n int
		_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.`+kind).Scan(&n)
		if n != len(objs) {
			t.Errorf("ledger.%s has %d rows, the account %d", kind, n, len(objs))
		}
	}

	r := ledger(t, env, "reconcile", "runs", "--json")
	var runs []struct {
		Job, Status, Trigger string
		Repaired             int
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || r.code != 0 || len(runs) < 2 {
		t.Fatalf("reconcile runs: %v %+v", err, r)
	}
	repaired := 0
	for _, run := range runs {
		repaired += run.Repaired
	}
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.events WHERE source = 'reconcile'`).Scan(&reconciled)
	if repaired != reconciled || reconciled < d.Stats().GaveUp {
		t.Fatalf("runs repaired %d events, %d in the log from reconcile, %d given up", repaired, reconciled, d.Stats().GaveUp)
	}
	// Every event Stripe gave up on came in through reconciliation.
	for _, ev := range sim.Events() {
		if ev.GaveUp {
			var source string
			if err := db.Pool.QueryRow(ctx, `SELECT source FROM ledger.events WHERE event_id = $1`, ev.ID).Scan(&source); err != nil || source != "reconcile" {
				t.Fatalf("given-up event %s: source %q (%v)", ev.ID, source, err)
			}
		}
	}
	// The same history over the API, behind the token.
	apiURL := "http://127.0.0.1:" + port + "/api/v1/reconcile/runs"
	if resp, err := http.Get(apiURL); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API without a token: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodGet, apiURL+"?limit=500", nil)
	req.Header.Set("Authorization", "Bearer tok_e2e_secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Data []json.RawMessage }
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(list.Data) < len(runs) {
		t.Fatalf("API runs: %d, %d runs (CLI saw %d)", resp.StatusCode, len(list.Data), len(runs))
	}
	r = ledger(t, env, "reconcile", "run", "--job", "events", "--since", "720h", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "succeeded (dry run)") {
		t.Fatalf("dry run after repair: %+v", r)
	}
}

// The reconcile commands' bad arguments and a missing key exit 2 with a message.
func TestReconcileCommandErrors(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"reconcile", "run"}, "STRIPE_SECRET_KEY"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x"}, []string{"reconcile", "run", "--job", "refunds"}, "unknown job"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x"}, []string{"reconcile", "run", "balances"}, "unknown job"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x"}, []string{"reconcile", "run", "--since", "soon"}, "--since"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x"}, []string{"reconcile", "run", "--from", "yesterday"}, "--from"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x", "STRIPE_API_BASE=http://127.0.0.1:1"}, []string{"reconcile", "run"}, "could not list events"},
		{nil, []string{"endpoints", "setup"}, "--url is required"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x,sk_test_x2"}, []string{"reconcile", "run"}, "STRIPE_SECRET_KEY: two test keys"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x", "STRIPE_SECRET_KEY_TEST=sk_test_x3"}, []string{"backfill"}, "both hold a test key"},
		{[]string{"STRIPE_SECRET_KEY=pk_test_x"}, []string{"reconcile", "run"}, "STRIPE_SECRET_KEY: entry 1"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x"}, []string{"reconcile", "run", "--livemode", "maybe"}, "--livemode"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x"}, []string{"backfill", "--account", "cus_1"}, "--account"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x", "STRIPE_CONNECT_ACCOUNTS=acct_1,cus_2"}, []string{"reconcile", "run"}, "STRIPE_CONNECT_ACCOUNTS"},
		{[]string{"STRIPE_SECRET_KEY=sk_test_x", "STRIPE_RATE_LIMIT_LIVE=fast"}, []string{"reconcile", "run"}, "STRIPE_RATE_LIMIT_LIVE"},
		{[]string{"STRIPE_WEBHOOK_SECRET=whsec_x", "STRIPE_SECRET_KEY=sk_live_x,sk_live_x4"}, []string{"serve", "--addr", "127.0.0.1:0"}, "two live keys"},
		{[]string{"STRIPE_WEBHOOK_SECRET=whsec_x", "LEDGER_RECONCILE_SCHEDULE=events=every now and then"}, []string{"serve", "--addr", "127.0.0.1:0"}, "--reconcile-schedule"},
	} {
		r := ledger(t, append(append([]string{}, env...), c.env...), c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "sk_test_x") {
			t.Errorf("%v: want exit 2 mentioning %q, got %+v", c.args, c.want, r)
		}
	}
}

// `ledger reconcile run balance` fetches the payouts' balance transactions of a simulated account
// into the log and exits 1 for the payout that does not add up, naming it; its transactions are
// in the log as snapshots naming the payout.
func TestReconcileRunBalance(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	cfg, _, err := stripesim.Setup("steady", stripesim.Config{Seed: 12, Customers: 40, PayoutMismatch: 700}, stripesim.DeliveryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sim := stripesim.New(cfg)
	sim.Run(time.Time{})
	api := httptest.NewServer(stripesim.NewServer(sim, nil, stripesim.ServerConfig{RateLimit: -1}))
	defer api.Close()
	var bad string
	for _, po := range sim.MoneyTruth().Payouts {
		if !po.Reconciled {
			bad = po.ID
		}
	}
	if bad == "" {
		t.Fatal("no payout mismatched")
	}
	env := []string{"DATABASE_URL=" + db.URL, "STRIPE_SECRET_KEY=sk_test_balance_cli", "STRIPE_API_BASE=" + api.URL,
		"STRIPE_CONNECT_ACCOUNTS=none"}
	from := cfg.Start.Format("2006-01-02")
	r := ledger(t, env, "reconcile", "run", "balance", "--from", from)
	if r.code != 1 || !strings.Contains(r.stdout, "payout_mismatch") || !strings.Contains(r.stdout, bad) ||
		!strings.Contains(r.stderr, "balance") || strings.Contains(r.stdout+r.stderr, "sk_test_balance_cli") {
		t.Fatalf("balance run: %+v", r)
	}
	var listed int
	err = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.events
		WHERE type = 'ledger.snapshot.balance_transaction' AND convert_from(payload, 'UTF8')::jsonb->>'ledger_listed_by' = $1`, bad).Scan(&listed)
	if err != nil || listed == 0 {
		t.Fatalf("%d snapshots name %s (%v)", listed, bad, err)
	}
	if r := ledger(t, env, "reconcile", "run", "balance", "--job", "events"); r.code != 2 || !strings.Contains(r.stderr, "name one") {
		t.Fatalf("a job twice: %+v", r)
	}
}
