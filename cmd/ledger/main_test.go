package main_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
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

func TestServeReadinessAndGracefulStop(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	port := freePort(t)
	cmd := exec.Command(ledgerBin, "serve", "--addr", "127.0.0.1:"+port)
	cmd.Env = append(baseEnv(), "DATABASE_URL="+db.URL, "STRIPE_WEBHOOK_SECRET=whsec_test_serve")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + port
	waitFor(t, base+"/readyz", http.StatusOK)
	if code := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve did not exit 0 on SIGTERM: %v\n%s", err, errb.String())
	}
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

func waitFor(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if get(t, url) == status {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered %d", url, status)
}

func freePort(t *testing.T) string { return freePortB(t) }

func freePortB(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
