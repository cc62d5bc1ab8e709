package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stripesim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func TestCommands(t *testing.T) {
	bin := build(t)
	runCmd := func(args ...string) ([]byte, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "STRIPE_WEBHOOK_SECRET=")
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return out.Bytes(), code
	}

	// truth is deterministic by seed.
	args := []string{"truth", "--scenario", "steady", "--seed", "3", "--end", "2026-06-01T00:00:00Z"}
	a, code := runCmd(args...)
	b, _ := runCmd(args...)
	if code != 0 || !bytes.Equal(a, b) {
		t.Fatalf("truth differs between runs of one seed (exit %d)", code)
	}
	var truth struct {
		Events  []struct{ ID string } `json:"events"`
		Objects map[string]json.RawMessage
	}
	if err := json.Unmarshal(a, &truth); err != nil || len(truth.Events) < 1000 || len(truth.Objects["subscriptions"]) < 100 {
		t.Fatalf("truth: %d events (%v)", len(truth.Events), err)
	}

	// run delivers a scenario and prints its stats.
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Stripe-Signature") == "" {
			w.WriteHeader(400)
		}
	}))
	defer sink.Close()
	out, code := runCmd("run", "--scenario", "secret-roll", "--webhook-url", sink.URL, "--secret", "whsec_1", "--secret", "whsec_2")
	var res struct {
		Deliveries struct{ Events, Delivered int }
	}
	if code != 0 || json.Unmarshal(out, &res) != nil || res.Deliveries.Delivered != res.Deliveries.Events || res.Deliveries.Events == 0 {
		t.Fatalf("run: exit %d\n%s", code, out)
	}

	// Bad input gets exit 2.
	if _, code := runCmd("run", "--scenario", "nope", "--webhook-url", sink.URL, "--secret", "x"); code != 2 {
		t.Fatalf("unknown scenario: exit %d", code)
	}
	if _, code := runCmd("run", "--scenario", "steady", "--webhook-url", sink.URL); code != 2 {
		t.Fatalf("no secret: exit %d", code)
	}
	if _, code := runCmd("bogus"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
