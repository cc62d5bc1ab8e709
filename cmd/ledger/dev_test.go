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
