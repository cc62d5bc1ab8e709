package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testkit"
)

// `ledger dev` (what `make run` starts) plays the simulated Stripe account, with its outage, into
// the ledger: the events Stripe gave up on are repaired by the scheduled reconciliation, so every
// event the simulator emitted ends up in the log; the read models follow, the chain verifies, and
// the dashboard's URL and token are printed and work.
func TestDevIsFedByTheSimulator(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	port, simPort := freePort(t), freePort(t)
	cmd := exec.Command(ledgerBin, "dev", "--addr", "127.0.0.1:"+port, "--sim-addr", "127.0.0.1:"+simPort, "--sim-seconds", "0")
	cmd.Env = append(baseEnv(), "DATABASE_URL="+db.URL, "STRIPE_WEBHOOK_SECRET=whsec_dev_test", "LEDGER_API_TOKEN=tok_dev_test",
		"LEDGER_RECONCILE_SCHEDULE=events-fast=@every 2s")
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	}
	defer stop()
	waitFor(t, "http://127.0.0.1:"+port+"/readyz", http.StatusOK)

	var truth struct {
		Done       bool                  `json:"done"`
		Events     []struct{ ID string } `json:"events"`
		Deliveries struct {
			Events, Delivered int
			GaveUp            int `json:"gave_up"`
		} `json:"deliveries"`
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://127.0.0.1:" + simPort + "/sim/truth")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&truth)
			resp.Body.Close()
		}
		// Done: the account has played to its end (until then more events keep coming).
		if truth.Done && truth.Deliveries.Events > 0 && truth.Deliveries.Delivered+truth.Deliveries.GaveUp == truth.Deliveries.Events {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("simulator did not finish delivering: %+v\n%s", truth.Deliveries, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if truth.Deliveries.GaveUp == 0 {
		t.Fatal("the default scenario lost no events: there is nothing for reconciliation to show")
	}
	var inLog, reconciled int
	for deadline := time.Now().Add(time.Minute); ; {
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE source = 'reconcile') FROM ledger.events`).Scan(&inLog, &reconciled); err != nil {
			t.Fatal(err)
		}
		if inLog == len(truth.Events) && reconciled > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events in the log (%d reconciled), the simulator emitted %d", inLog, reconciled, len(truth.Events))
		}
		time.Sleep(200 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+"/api/v1/summary", nil)
	req.Header.Set("Authorization", "Bearer tok_dev_test")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the dashboard's API with the printed token: %v %v", resp, err)
	}
	if !strings.Contains(out.String(), "dashboard  http://127.0.0.1:"+port+"/   (token: tok_dev_test)") {
		t.Fatalf("dev did not print the dashboard and its token:\n%s", out.String())
	}
	// The live projection folds them into the read models, and they match a replay.
	deadline = time.Now().Add(time.Minute)
	for {
		var position, subs int
		err := db.Pool.QueryRow(context.Background(), `SELECT coalesce((SELECT position FROM ledger.projection_state), 0),
			(SELECT count(*) FROM ledger.subscriptions)`).Scan(&position, &subs)
		if err == nil && position == inLog && subs > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models not current: position %d of %d, %d subscriptions (%v)", position, inLog, subs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := ledger(t, []string{"DATABASE_URL=" + db.URL}, "verify"); r.code != 0 {
		t.Fatalf("verify: %+v", r)
	}
	// status names the running process as the projection's runner, caught up.
	r := ledger(t, []string{"DATABASE_URL=" + db.URL}, "projections", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "runner       ledger projection read_models") || !strings.Contains(r.stdout, "lag          0 events") {
		t.Fatalf("projections status while dev runs: %+v", r)
	}
	stop() // its output is read only once it has exited
	if !strings.Contains(out.String(), "Stripe simulator (scenario outage-4d") {
		t.Fatalf("dev did not say the simulator feeds it:\n%s", out.String())
	}
}
