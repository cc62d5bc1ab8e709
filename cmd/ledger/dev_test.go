package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/internal/testkit"
)

// `ledger dev` (what `make run` starts) plays the simulated Stripe account, with its outage, into
// the ledger: the events Stripe gave up on are repaired by the scheduled reconciliation, so every
// event the simulator emitted ends up in the log; the read models follow, the chain verifies, and
// the dashboard's URL and token are printed and work.
func TestDevIsFedByTheSimulator(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	simPort := freePort(t) // the reconciler is pointed at the flag's address, so it must be known
	checkpoints := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	dev := startLedger(t, []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=whsec_dev_test", "LEDGER_API_TOKEN=tok_dev_test",
		"LEDGER_RECONCILE_SCHEDULE=events-fast=@every 2s", "LEDGER_CHECKPOINT_SINK=file:" + checkpoints},
		"dev", "--addr", "127.0.0.1:0", "--sim-addr", "127.0.0.1:"+simPort, "--sim-seconds", "0", "--log-level", "debug")
	addr := dev.listening(t)

	// dev prints a line when the simulator has played the account to its end, every delivery
	// answered or given up on.
	dev.stdout.waitFor(t, "that the simulator finished", func(l string) bool {
		return strings.HasPrefix(l, "Stripe simulator: ") && strings.Contains(l, " events played in ")
	})
	played := time.Now()
	var truth struct {
		Done       bool                  `json:"done"`
		Events     []struct{ ID string } `json:"events"`
		Deliveries struct {
			Events, Delivered int
			GaveUp            int `json:"gave_up"`
		} `json:"deliveries"`
	}
	resp, err := http.Get("http://127.0.0.1:" + simPort + "/sim/truth")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&truth)
	resp.Body.Close()
	if err != nil || !truth.Done || truth.Deliveries.Events == 0 || truth.Deliveries.Delivered+truth.Deliveries.GaveUp != truth.Deliveries.Events {
		t.Fatalf("the simulator said it finished, its truth says %+v (%v)", truth.Deliveries, err)
	}
	if truth.Deliveries.GaveUp == 0 {
		t.Fatal("the default scenario lost no events: there is nothing for reconciliation to show")
	}
	// A fast pass that began after that has appended every event Stripe gave up on.
	dev.reconciledSince(t, "events-fast", played)
	var inLog, reconciled int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE source = 'reconcile') FROM ledger.events`).Scan(&inLog, &reconciled); err != nil {
		t.Fatal(err)
	}
	if inLog != len(truth.Events) || reconciled == 0 {
		t.Fatalf("%d events in the log (%d reconciled), the simulator emitted %d", inLog, reconciled, len(truth.Events))
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/summary", nil)
	req.Header.Set("Authorization", "Bearer tok_dev_test")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the dashboard's API with the printed token: %v %v", resp, err)
	}
	if !strings.Contains(dev.stdout.String(), "dashboard  http://"+addr+"/   (token: tok_dev_test)") {
		t.Fatalf("dev did not print the dashboard and its token:\n%s", dev.stdout.String())
	}
	// The live projection folds them into the read models.
	dev.foldedThrough(t, inLog)
	var subs int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.subscriptions`).Scan(&subs); err != nil || subs <= 100 {
		t.Fatalf("read models not current: %d subscriptions (%v)", subs, err)
	}
	if r := ledger(t, []string{"DATABASE_URL=" + db.URL}, "verify"); r.code != 0 {
		t.Fatalf("verify: %+v", r)
	}
	// status names the running process as the projection's runner, caught up.
	r := ledger(t, []string{"DATABASE_URL=" + db.URL}, "projections", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "runner       ledger projection read_models") || !strings.Contains(r.stdout, "lag          0 events") {
		t.Fatalf("projections status while dev runs: %+v", r)
	}
	if !strings.Contains(dev.stdout.String(), "Stripe simulator (scenario outage-4d") {
		t.Fatalf("dev did not say the simulator feeds it:\n%s", dev.stdout.String())
	}
	if err := dev.stop(); err != nil {
		t.Fatalf("dev did not exit 0 on SIGTERM: %v", err)
	}
	// dev signs checkpoints with a key of its own under .data (one when it starts, then every
	// minute) and says how to check them.
	key := filepath.Join(pgboot.RepoRoot(), ".data", "dev-checkpoint.key")
	if !strings.Contains(dev.stdout.String(), "checkpoints "+checkpoints+"   (ledger verify --checkpoints "+checkpoints+" --public-key "+key+".pub)") {
		t.Fatalf("dev did not print where its checkpoints go:\n%s", dev.stdout.String())
	}
	r = ledger(t, []string{"DATABASE_URL=" + db.URL}, "verify", "--checkpoints", checkpoints, "--public-key", key+".pub")
	var proved, written int
	if _, err := fmt.Sscanf(strings.TrimSpace(r.stdout[strings.LastIndex(strings.TrimSpace(r.stdout), "\n")+1:]), "checkpoints: %d of %d verified", &proved, &written); r.code != 0 || err != nil || proved == 0 || proved != written {
		t.Fatalf("dev's checkpoints: %+v", r)
	}
}

// `ledger dev --sim-scenario connect` plays a Connect platform — the platform's account and
// connected accounts, live and test mode at once — through its four endpoints, each signed with
// that endpoint's secret: nothing is held as mismatched, the Connect endpoint's outage is
// repaired by the per-account events job, and every scope's events and objects are the
// simulator's.
func TestDevPlaysTheConnectPlatform(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	simPort := freePort(t)
	dev := startLedger(t, []string{"DATABASE_URL=" + db.URL, "LEDGER_API_TOKEN=tok_dev_connect",
		"STRIPE_WEBHOOK_SECRET_LIVE=whsec_dev_live", "STRIPE_WEBHOOK_SECRET_TEST=whsec_dev_test",
		"STRIPE_WEBHOOK_SECRET_CONNECT_LIVE=whsec_dev_connect_live", "STRIPE_WEBHOOK_SECRET_CONNECT_TEST=whsec_dev_connect_test",
		"LEDGER_RECONCILE_SCHEDULE=events-fast=@every 2s", "LEDGER_CHECKPOINT_SINK=file:" + filepath.Join(t.TempDir(), "checkpoints.jsonl")},
		"dev", "--sim-scenario", "connect", "--addr", "127.0.0.1:0", "--sim-addr", "127.0.0.1:"+simPort, "--sim-seconds", "0", "--log-level", "debug")
	dev.listening(t)
	dev.stdout.waitFor(t, "that the simulator finished", func(l string) bool {
		return strings.HasPrefix(l, "Stripe simulator: ") && strings.Contains(l, " events played in ")
	})
	dev.reconciledSince(t, "events-fast", time.Now())
	ctx := context.Background()
	var events, held int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE hold_reason IS NOT NULL) FROM ledger.events`).Scan(&events, &held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Fatalf("%d of %d events held as mismatched: each endpoint signs with its own secret", held, events)
	}
	dev.foldedThrough(t, events)
	if !strings.Contains(dev.stdout.String(), "a Connect platform with 3 connected accounts") {
		t.Fatalf("dev did not say it plays the platform:\n%s", dev.stdout.String())
	}
	// Every scope the log holds — each mode of the platform's account and of every connected
	// account — has exactly the simulator's events of that scope, and its customers.
	rows, err := db.Pool.Query(ctx, `SELECT livemode, account, count(*) FROM ledger.events GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	type scope struct {
		live    bool
		account string
	}
	inLog := map[scope]int{}
	for rows.Next() {
		var sc scope
		var n int
		_ = rows.Scan(&sc.live, &sc.account, &n)
		inLog[sc] = n
	}
	rows.Close()
	scopes := len(inLog)
	for sc, n := range inLog {
		account := sc.account
		if account == "" {
			account = "platform"
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%s/sim/truth?livemode=%t&account=%s", simPort, sc.live, account))
		if err != nil {
			t.Fatal(err)
		}
		var truth struct {
			Events  []struct{ ID string } `json:"events"`
			Metrics struct {
				Counts map[string]int `json:"counts"`
			} `json:"metrics"`
		}
		err = json.NewDecoder(resp.Body).Decode(&truth)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var customers int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.customers WHERE livemode = $1 AND account IS NOT DISTINCT FROM nullif($2, '')`,
			sc.live, sc.account).Scan(&customers); err != nil {
			t.Fatal(err)
		}
		if n != len(truth.Events) || customers != truth.Metrics.Counts["customers"] {
			t.Errorf("livemode=%t account %s: %d events in the log, %d customers; the simulator has %d and %d",
				sc.live, account, n, customers, len(truth.Events), truth.Metrics.Counts["customers"])
		}
	}
	if scopes != 8 {
		t.Fatalf("the log holds %d scopes, want the platform and 3 connected accounts in each mode", scopes)
	}
}
