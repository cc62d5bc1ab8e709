package chaos_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/chaos"
	"github.com/stripeledger/ledger/internal/pgboot"
)

// The short version of `make chaos`: two processes behind the proxy, three SIGKILLs (two of the
// lock holder), one Postgres restart, over a smaller account played in 20 seconds. It fails when
// anything acknowledged is lost, a given-up event is not recovered, the chain breaks, the live read
// models differ from a replay or from the account, or a secret shows up in the output.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Postgres cluster and three ledger processes")
	}
	bin := filepath.Join(t.TempDir(), "ledger")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ledger")
	build.Dir = pgboot.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Not t.TempDir() (mode 0700 under a 0700 parent): when the tests run as root the cluster
	// runs as postgres, which must reach its directory wherever the repository was cloned.
	parent, err := os.MkdirTemp("", "ledger-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(parent) })
	dir := filepath.Join(parent, "run")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	report, err := chaos.Run(ctx, chaos.Config{
		LedgerBin: bin, DataDir: dir, Customers: 80, SimDays: 20, Duration: 20 * time.Second,
		Kills: 3, PostgresRestarts: 1, Seed: 7, Out: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK() {
		t.Fatalf("%d events lost; failures: %v", report.Lost, report.Failures)
	}
	if report.Kills != 3 || report.Takeovers != 2 || report.PostgresRestarts != 1 {
		t.Fatalf("faults not all injected: %+v", report)
	}
	if report.Checkpoints == 0 || report.CheckpointsProved != report.Checkpoints || !strings.Contains(report.SignaturesVerified, " 0 unverifiable, 0 failed") {
		t.Fatalf("integrity not proved: %+v", report)
	}
	if report.Acknowledged == 0 || report.Events == 0 || report.Retried == 0 {
		t.Fatalf("the run proved nothing: %+v", report)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
