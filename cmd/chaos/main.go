// Command chaos is `make chaos`: the fault harness of internal/chaos with its full defaults. It
// exits 0 when nothing acknowledged was lost and every check held, 1 when a check failed, 2 when
// the harness itself could not run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stripeledger/ledger/internal/chaos"
)

func main() {
	var cfg chaos.Config
	flag.StringVar(&cfg.LedgerBin, "ledger", "bin/ledger", "the ledger binary to run")
	flag.StringVar(&cfg.DataDir, "data-dir", ".data/chaos", "where the private Postgres cluster and logs live (emptied first)")
	flag.IntVar(&cfg.Customers, "customers", 250, "customers in the simulated account")
	flag.IntVar(&cfg.SimDays, "sim-days", 25, "simulated days the account spans (at most 29: reconciliation reaches 30 days back)")
	flag.DurationVar(&cfg.Duration, "duration", time.Minute, "real time the account takes to play")
	flag.IntVar(&cfg.Kills, "kills", 6, "SIGKILLs of a ledger process (every other one hits the projection lock holder)")
	flag.IntVar(&cfg.PostgresRestarts, "pg-restarts", 1, "Postgres restarts mid-load (-1 for none)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the account and the fault times")
	flag.BoolVar(&cfg.Keep, "keep", false, "leave the cluster running and the data directory in place")
	flag.Parse()
	if cfg.SimDays > 29 {
		fmt.Fprintln(os.Stderr, "chaos: --sim-days must be at most 29: events older than 30 days are out of the Events API's reach")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if !report.OK() {
		os.Exit(1)
	}
}
