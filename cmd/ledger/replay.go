package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/projections"
)

func replayCmd() *cobra.Command {
	var projection string
	var idf *identityFlags
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild the read models from the whole log, beside the live ones, and swap them in",
		Long: `replay folds every event of the log into new read-model tables (ledger.subscriptions,
ledger.charges, …) and swaps them in atomically: queries keep answering from the old tables until
the new ones replace them. Ctrl-C rolls it back; it is safe to run again at any time, also while
` + "`ledger serve`" + ` runs the live projection: the swap waits for the runner's current batch, and the
runner folds whatever was appended after the replay's starting point. Quarantined events are
tried again; those that still cannot be folded stay quarantined. Use the same --identity as serve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := checkProjection(projection); err != nil {
				return err
			}
			identity, err := idf.identity()
			if err != nil {
				return err
			}
			pool, err := openMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			start := time.Now()
			last := time.Time{}
			st, err := projections.Rebuild(ctx, pool, projections.Config{
				Identity: identity,
				Progress: func(done, total int64) {
					if time.Since(last) < time.Second && done < total {
						return
					}
					last = time.Now()
					rate := float64(done) / time.Since(start).Seconds()
					eta := time.Duration(float64(total-done)/rate) * time.Second
					fmt.Fprintf(os.Stderr, "\rreplay: %d/%d events (%.0f%%), %.0f events/s, ETA %s   ",
						done, total, 100*float64(done)/float64(max(total, 1)), rate, eta.Round(time.Second))
				},
			})
			fmt.Fprintln(os.Stderr)
			if err != nil {
				return err
			}
			fmt.Printf("replayed %d events in %s (%.0f events/s)", st.Events, st.Took.Round(time.Millisecond), float64(st.Events)/st.Took.Seconds())
			if st.CaughtUp > 0 {
				fmt.Printf(", and %d appended meanwhile,", st.CaughtUp)
			}
			fmt.Printf(" up to position %d:", st.Position)
			for _, name := range []string{"customers", "subscriptions", "subscription_movements", "invoices", "charges", "refunds", "disputes", "checkout_sessions"} {
				fmt.Printf(" %s %d,", name, st.Rows[name])
			}
			fmt.Println()
			if st.Quarantined > 0 {
				return failed("%d event(s) could not be folded and are quarantined: ledger projections status", st.Quarantined)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&projection, "projection", projections.StateName, "the projection to rebuild")
	idf = addIdentityFlags(cmd)
	return cmd
}
