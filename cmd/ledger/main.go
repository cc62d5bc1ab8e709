// Command ledger is the event-sourced Stripe ledger: one binary for the webhook server, the
// migrations, the log's integrity check and the jobs around them.
//
// Exit codes: 0 success; 1 the command ran and found a problem (e.g. `verify` found a broken
// chain); 2 the command could not run (bad flags, database unreachable, migration failed).
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failed marks a command that ran and found a problem (exit 1).
func failed(format string, args ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, args...)}
}

func main() {
	root := &cobra.Command{
		Use:           "ledger",
		Short:         "Event-sourced ledger for Stripe data",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(migrateCmd(), verifyCmd(), serveCmd(), devCmd(), dbCmd(), replayCmd(), projectionsCmd(), reconcileCmd(), backfillCmd(), endpointsCmd(), queryCmd(), eventsCmd(), tokensCmd(), auditCmd(), checkpointCmd(), redactCmd(), notifyCmd(), closeCmd(), fxCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ledger:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(2)
	}
}

func newLogger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
