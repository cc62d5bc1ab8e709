package main_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/internal/testsignal"
	"github.com/stripeledger/ledger/migrations"
)

var ledgerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ledger-bin-")
	if err != nil {
		panic(err)
	}
	ledgerBin = filepath.Join(dir, "ledger")
	// Tests get the race detector in the server too; benchmarks measure the real build.
	flag.Parse()
	args := []string{"build", "-race", "-o", ledgerBin, "."}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		args = []string{"build", "-o", ledgerBin, "."}
	}
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ledger:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// ledger runs the binary with env added to a clean environment (no DATABASE_URL leaks in).
func ledger(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ledgerBin, args...)
	cmd.Env = append(baseEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run ledger %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "TEST_DATABASE_URL=") &&
			!strings.HasPrefix(kv, "LEDGER_") {
			env = append(env, kv)
		}
	}
	return env
}

func TestMigrateTwoProcessesAtOnce(t *testing.T) {
	t.Parallel()
	db := testkit.NewEmpty(t)
	env := []string{"DATABASE_URL=" + db.URL}

	type out struct {
		res result
		err error
	}
	outs := make(chan out, 2)
	start := make(chan struct{})
	for range 2 {
		go func() {
			<-start
			cmd := exec.Command(ledgerBin, "migrate")
			cmd.Env = append(baseEnv(), env...)
			var o, e bytes.Buffer
			cmd.Stdout, cmd.Stderr = &o, &e
			err := cmd.Run()
			outs <- out{result{cmd.ProcessState.ExitCode(), o.String(), e.String()}, err}
		}()
	}
	close(start)
	var migrated, upToDate int
	latest, _ := migrations.Latest()
	for range 2 {
		o := <-outs
		if o.err != nil || o.res.code != 0 {
			t.Fatalf("migrate failed (%v): %s %s", o.err, o.res.stdout, o.res.stderr)
		}
		switch strings.TrimSpace(o.res.stdout) {
		case fmt.Sprintf("migrated schema from version 0 to %d", latest):
			migrated++
		case fmt.Sprintf("schema is up to date at version %d", latest):
			upToDate++
		default:
			t.Fatalf("unexpected output %q", o.res.stdout)
		}
		if !strings.Contains(o.res.stderr, "database: DATABASE_URL") {
			t.Fatalf("no line saying which database: %q", o.res.stderr)
		}
	}
	// Each migration ran once: one process applied them all, the other found them applied.
	if migrated != 1 || upToDate != 1 {
		t.Fatalf("migrated=%d upToDate=%d", migrated, upToDate)
	}
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	ctx := context.Background()

	r := ledger(t, env, "verify")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 0 events, head hash 0000") {
		t.Fatalf("empty log: %+v", r)
	}
	store := eventstore.New(db.Pool)
	for i := 1; i <= 4; i++ {
		e := testkit.Event(fmt.Sprintf("evt_v%d", i), "charge.succeeded", "ch_1", 1700000000+int64(i), 800, domain.SourceImport)
		if _, err := store.Append(ctx, []domain.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	head, _ := store.Head(ctx)
	r = ledger(t, env, "verify")
	if r.code != 0 || r.stdout != fmt.Sprintf("ok: 4 events, head hash %x\n", head.Hash) {
		t.Fatalf("sound log: %+v", r)
	}

	testkit.Tamper(t, db, `UPDATE ledger.events SET livemode = true WHERE position = 3`)
	r = ledger(t, env, "verify")
	if r.code != 1 || !strings.Contains(r.stderr, "hash chain broken at position 3 (evt_v3)") {
		t.Fatalf("tampered log: %+v", r)
	}
}

func TestVerifyUnreachableDatabase(t *testing.T) {
	t.Parallel()
	r := ledger(t, []string{"DATABASE_URL=postgres://ledger:s3cret@127.0.0.1:" + freePort(t) + "/ledger?connect_timeout=2"}, "verify")
	if r.code != 2 || !strings.Contains(r.stderr, "could not reach the database") {
		t.Fatalf("%+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, "s3cret") {
		t.Fatalf("password printed: %s", r.stderr)
	}
}

// With no DATABASE_URL and nothing on the probed port, the ledger starts a private cluster,
// migrates it, and `ledger db stop` stops it cleanly.
func TestPrivateClusterBootstrap(t *testing.T) {
	t.Parallel()
	dataDir := testkit.ClusterDir(t)
	env := []string{
		"LEDGER_PG_PROBE=127.0.0.1:" + freePort(t), // nothing listens there
		"LEDGER_PG_DATADIR=" + dataDir,
		"LEDGER_PG_PORT=" + freePort(t),
	}
	r := ledger(t, env, "migrate")
	if r.code != 0 || !strings.Contains(r.stderr, "private cluster") || !strings.Contains(r.stdout, "migrated schema from version 0") {
		t.Fatalf("migrate on private cluster: %+v", r)
	}
	r = ledger(t, env, "verify")
	if r.code != 0 || !strings.Contains(r.stderr, "reused") || !strings.HasPrefix(r.stdout, "ok: 0 events") {
		t.Fatalf("verify on private cluster: %+v", r)
	}
	r = ledger(t, env, "db", "stop", "--data-dir", dataDir)
	if r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cluster still running after stop: %v", err)
	}
}

// serve answers health and readiness, keeps its secret out of everything it prints and exports,
// and on SIGTERM lets in-flight webhooks finish (each answered 200 is in the log) and exits 0.
func TestServeGracefulStopUnderLoad(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	secret := "whsec_graceful_0123456789abcdef"
	server := startLedger(t, []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=" + secret}, "serve", "--addr", "127.0.0.1:0")
	base := "http://" + server.listening(t)
	if code := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz %d once listening", code)
	}
	if code := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
	// A forged request, so the rejection path logs too.
	forged, _ := http.NewRequest(http.MethodPost, base+"/webhooks/stripe", strings.NewReader(`{"id":"evt_forged"}`))
	forged.Header.Set("Stripe-Signature", "t=now,v1=forged")
	resp, err := http.DefaultClient.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	type outcome struct {
		id     string
		status int
	}
	outcomes := make(chan outcome, 10000)
	stop := make(chan struct{})
	// SIGTERM goes once the load is under way: after this many webhooks were answered 200.
	const underWay = 200
	var answered atomic.Int64
	loaded := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("evt_graceful_%02d_%05d", w, i)
				body := testkit.EventJSON(id, "invoice.paid", "in_1", time.Now().Unix(), 3000)
				sig := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: secret}).Header
				req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/stripe", bytes.NewReader(body))
				req.Header.Set("Stripe-Signature", sig)
				resp, err := client.Do(req)
				if err != nil {
					outcomes <- outcome{id, 0}
					return // the server is gone
				}
				resp.Body.Close()
				outcomes <- outcome{id, resp.StatusCode}
				if resp.StatusCode == http.StatusOK && answered.Add(1) == underWay {
					close(loaded)
				}
			}
		}()
	}
	select {
	case <-loaded:
	case <-server.exited:
		t.Fatalf("serve exited under load: %v\n%s", server.err, server.stderr.String())
	case <-time.After(testsignal.Timeout):
		t.Fatalf("fewer than %d webhooks answered 200 in %s", underWay, testsignal.Timeout)
	}
	metrics := getBody(t, "http://"+server.metricsAddr(t)+"/metrics")
	waitErr := server.stop()
	close(stop)
	wg.Wait()
	close(outcomes)
	if waitErr != nil {
		t.Fatalf("serve did not exit 0 on SIGTERM: %v\n%s", waitErr, server.stderr.String())
	}

	var acked []string
	for o := range outcomes {
		switch o.status {
		case http.StatusOK:
			acked = append(acked, o.id)
		case 0: // connection refused or closed once the listener was gone
		default:
			t.Fatalf("%s answered %d during shutdown", o.id, o.status)
		}
	}
	var present int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM ledger.events WHERE event_id = ANY($1)", acked).Scan(&present); err != nil {
		t.Fatal(err)
	}
	if len(acked) == 0 || present != len(acked) {
		t.Fatalf("%d answered 200, %d in the log", len(acked), present)
	}
	for _, out := range []string{server.stderr.String(), metrics} {
		if strings.Contains(out, secret) || strings.Contains(out, "whsec_") {
			t.Fatalf("a signing secret was printed or exported")
		}
	}
	for _, want := range []string{`"msg":"webhook rejected"`, `"reason":"malformed_signature_header"`, `"remote":"127.0.0.1:`, `"msg":"webhook","event_id":"evt_graceful_`} {
		if !strings.Contains(server.stderr.String(), want) {
			t.Fatalf("log lacks %s", want)
		}
	}
	for _, want := range []string{"ledger_webhooks_appended_total", `ledger_webhooks_rejected_total{reason="malformed_signature_header"} 1`, "ledger_append_batch_events_bucket", "ledger_webhook_duration_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func freePort(t *testing.T) string { return freePortB(t) }

func freePortB(t testing.TB) string { return strconv.Itoa(testkit.FreePort(t)) }
