package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/reconcile"
)

func backfillCmd() *cobra.Command {
	var livemode, account string
	var pageSize int
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Load every object and the last 30 days of events from Stripe into the ledger",
		Long: `backfill brings a ledger that started late (or never had webhooks) level with Stripe. It runs
the objects job over every scope — each configured mode and each account, the platform's own and
its connected accounts (see ledger reconcile run --help) — which first appends the events Stripe
still keeps (30 days) and then lists every customer, subscription, invoice, charge, refund,
dispute and Checkout session, appending a ledger.snapshot.* event for each object the log does not
already show as Stripe has it. Afterwards the read models equal the account.

It is safe to run again: events keep Stripe's IDs, and a snapshot's ID is derived from the
object's bytes, so nothing is appended twice. Ctrl-C (or a crash) leaves the run cancelled with
its cursors — per scope, the kinds listed in full and the page reached in the current one — and
the next backfill (or objects run) resumes from them.

Requests are rate-limited per key (STRIPE_RATE_LIMIT_LIVE, default 90 a second, and
STRIPE_RATE_LIMIT_TEST, default 22: at least 90 % of Stripe's 100 and 25 and under them); 429s
are retried with back-off.

A progress line on stderr shows the scope and kind being listed, objects compared, objects per
second and an estimate of the time left. Stripe's lists give no totals, so the estimate is of
time walked back: lists come newest first, and the share of a kind done is how far back in
created the listing has reached between its newest object and the account's creation (a
connected account's, from GET /v1/accounts) or, for the platform's own account, its oldest
customer's (customers are listed first). Every scope and every kind weighs the same.

Exit code 0 when every scope was backfilled, 1 when some scope failed (the run is partial: see
ledger reconcile runs), 2 when it could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scopes, cfg, pool, err := openReconcile(cmd.Context(), livemode, account)
			if err != nil {
				return err
			}
			defer pool.Close()
			r := reconcile.New(pool, reconcile.Config{Stripe: cfg, PageSize: pageSize, Logger: newLogger(slog.LevelWarn)})
			var last time.Time
			progress := func(p reconcile.Progress) {
				if time.Since(last) < time.Second && p.Done < 1 {
					return
				}
				last = time.Now()
				eta := "unknown"
				if d, ok := p.ETA(); ok {
					eta = d.Round(time.Second).String()
				}
				kind := string(p.Kind)
				if kind == "" {
					kind = "events"
				}
				fmt.Fprintf(os.Stderr, "\rbackfill %s %-17s scope %d/%d  %d objects  %d appended  %.0f/s  %3.0f%%  ETA %s   ",
					p.Scope, kind, min(p.ScopesDone+1, p.Scopes), p.Scopes, p.Objects, p.Repaired, p.Rate(), 100*p.Done, eta)
			}
			res, err := r.Run(cmd.Context(), reconcile.Options{Job: reconcile.JobObjects, Trigger: "backfill", Scopes: scopes, Progress: progress})
			fmt.Fprintln(os.Stderr)
			if res.ID != 0 {
				printRuns([]reconcile.Run{res})
			}
			if err != nil && res.Status == "partial" {
				return failed("backfill run %d is partial: %s", res.ID, res.Error)
			}
			if err != nil {
				if res.Status == "cancelled" {
					return fmt.Errorf("%w; run ledger backfill again to resume", err)
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&livemode, "livemode", "all", "only this mode: true (live), false (test) or all")
	cmd.Flags().StringVar(&account, "account", "all", "only this account: acct_…, platform (the platform's own) or all")
	cmd.Flags().IntVar(&pageSize, "page-size", 100, "objects per list request (at most 100)")
	return cmd
}
