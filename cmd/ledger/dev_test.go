package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testkit"
)

// `ledger dev` (what `make run` starts) plays the simulated Stripe account into the ledger: every
// event the simulator emitted ends up in the log, and the chain verifies.
func TestDevIsFedByTheSimulator(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	port, simPort := freePort(t), freePort(t)
	cmd := exec.Command(ledgerBin, "dev", "--addr", "127.0.0.1:"+port, "--sim-addr", "127.0.0.1:"+simPort)
	cmd.Env = append(baseEnv(), "DATABASE_URL="+db.URL, "STRIPE_WEBHOOK_SECRET=whsec_dev_test")
	var out bytes.Buffer
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
			Events, Delivered, GaveUp int
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
		if truth.Done && truth.Deliveries.Events > 0 && truth.Deliveries.Delivered == truth.Deliveries.Events {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("simulator did not finish delivering: %+v\n%s", truth.Deliveries, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var inLog int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM ledger.events WHERE source = 'webhook'").Scan(&inLog); err != nil {
		t.Fatal(err)
	}
	if inLog != len(truth.Events) || inLog < 1000 {
		t.Fatalf("%d events in the log, the simulator emitted %d", inLog, len(truth.Events))
	}
	// Then the read models are rebuilt from the log.
	deadline = time.Now().Add(time.Minute)
	for {
		var position, subs int
		err := db.Pool.QueryRow(context.Background(), `SELECT coalesce((SELECT position FROM ledger.projection_state), 0),
			(SELECT count(*) FROM ledger.subscriptions)`).Scan(&position, &subs)
		if err == nil && position == inLog && subs > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models not rebuilt: position %d of %d, %d subscriptions (%v)", position, inLog, subs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := ledger(t, []string{"DATABASE_URL=" + db.URL}, "verify"); r.code != 0 {
		t.Fatalf("verify: %+v", r)
	}
	stop() // its output is read only once it has exited
	if !bytes.Contains(out.Bytes(), []byte("Stripe simulator (scenario steady")) {
		t.Fatalf("dev did not say the simulator feeds it:\n%s", out.String())
	}
}
