package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"
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

// A platform scenario delivers to four endpoints, each signed with its own (generated) secret;
// the secrets appear only in --print-config's line on stdout, never on stderr.
func TestPlatformCommands(t *testing.T) {
	bin := build(t)
	type delivery struct {
		body   []byte
		header string
	}
	var mu sync.Mutex
	got := map[string][]delivery{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], delivery{body, r.Header.Get("Stripe-Signature")})
		mu.Unlock()
	}))
	defer sink.Close()
	args := []string{"run", "--scenario", "connect", "--seed", "2", "--print-config", "--webhook-url", sink.URL + "/all",
		"--connect-test-url", sink.URL + "/connect-test", "--platform-test-secret", "whsec_given_platform_test"}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "STRIPE_WEBHOOK_SECRET=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(&stdout)
	var config struct {
		Accounts  []string
		Endpoints map[string]struct {
			URL     string
			Secrets []string
		}
	}
	var result struct {
		Endpoints map[string]struct {
			Events, Delivered int
			GaveUp            int `json:"gave_up"`
		}
	}
	if err := dec.Decode(&config); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&result); err != nil {
		t.Fatal(err)
	}
	if len(config.Accounts) != 3 || len(config.Endpoints) != 4 || len(result.Endpoints) != 4 {
		t.Fatalf("config %+v, result %+v", config, result)
	}
	secrets := map[string]bool{}
	for name, ep := range config.Endpoints {
		if len(ep.Secrets) != 1 || secrets[ep.Secrets[0]] {
			t.Fatalf("%s: secrets %d, or shared with another endpoint", name, len(ep.Secrets))
		}
		secrets[ep.Secrets[0]] = true
		if strings.Contains(stderr.String(), ep.Secrets[0]) {
			t.Fatalf("%s's secret on stderr", name)
		}
		st := result.Endpoints[name]
		if st.Events == 0 || st.Delivered+st.GaveUp != st.Events || (name == "connect-live") != (st.GaveUp > 0) {
			t.Fatalf("%s: %+v", name, st)
		}
	}
	if config.Endpoints["platform-test"].Secrets[0] != "whsec_given_platform_test" || config.Endpoints["connect-test"].URL != sink.URL+"/connect-test" {
		t.Fatalf("flags not applied: %+v", config.Endpoints)
	}
	// Each delivery verifies with exactly one endpoint's secret: the one of the endpoint whose
	// events (mode, account) it carries.
	mu.Lock()
	defer mu.Unlock()
	verified := map[string]int{}
	for path, ds := range got {
		for _, d := range ds {
			var ev struct {
				Livemode bool
				Account  string
			}
			_ = json.Unmarshal(d.body, &ev)
			name := map[bool]string{true: "platform-live", false: "platform-test"}[ev.Livemode]
			if ev.Account != "" {
				name = map[bool]string{true: "connect-live", false: "connect-test"}[ev.Livemode]
			}
			if verified[name] >= 50 { // a sample of each endpoint's deliveries, wherever they come in the log
				continue
			}
			for other, ep := range config.Endpoints {
				err := stripewebhook.ValidatePayload(d.body, d.header, ep.Secrets[0])
				if (err == nil) != (other == name) {
					t.Fatalf("%s delivery at %s, secret of %s: %v", name, path, other, err)
				}
			}
			verified[name]++
		}
	}
	if len(verified) != 4 || len(got["/connect-test"]) == 0 {
		t.Fatalf("verified %v; paths %d", verified, len(got))
	}

	// truth picks one scope.
	out, err := exec.Command(bin, "truth", "--scenario", "connect", "--seed", "2", "--livemode=false", "--account", config.Accounts[1]).Output()
	var tr struct {
		Livemode bool
		Account  string
		Metrics  struct{ Counts map[string]int }
	}
	if err != nil || json.Unmarshal(out, &tr) != nil || tr.Livemode || tr.Account != config.Accounts[1] || tr.Metrics.Counts["customers"] == 0 {
		t.Fatalf("truth: %v %+v", err, tr)
	}
	if err := exec.Command(bin, "truth", "--scenario", "connect", "--account", "acct_nope").Run(); err == nil {
		t.Fatal("an unknown account's truth")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("unknown account: %v", err)
	}
}
