package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/projections"
)

func replayCmd() *cobra.Command {
	var projection, spillDir string
	var partitionEvents int
	var idf *identityFlags
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild the read models from the whole log, beside the live ones, and swap them in",
		Long: `replay folds every event of the log into new read-model tables (ledger.subscriptions,
ledger.charges, …) and swaps them in atomically: queries keep answering from the old tables until
the new ones replace them. Ctrl-C rolls it back; it is safe to run again at any time, also while
` + "`ledger serve`" + ` runs the live projection: the swap waits for the runner's current batch, and the
runner folds whatever was appended after the replay's starting point. Quarantined events are
tried again; those that still cannot be folded stay quarantined. Use the same --identity as serve; the MRR settings (LEDGER_MRR_*) are read from the
environment as serve reads them.`,
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
			mrr, err := domain.ParseMRRSettings(os.Getenv) // as serve reads them
			if err != nil {
				return err
			}
			pool, err := openMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			phase, phaseStart := "", time.Now()
			last := time.Time{}
			st, err := projections.Rebuild(ctx, pool, projections.Config{
				Identity:        identity,
				MRR:             mrr,
				PartitionEvents: partitionEvents,
				SpillDir:        spillDir,
				// Two passes: the log is read (and spilled by object), then folded a partition at
				// a time; each line says which, with its own rate and ETA.
				Progress: func(p projections.Progress) {
					if p.Phase != phase {
						if phase != "" {
							fmt.Fprintln(os.Stderr)
						}
						phase, phaseStart, last = p.Phase, time.Now(), time.Time{}
					}
					if time.Since(last) < time.Second && p.Done < p.Total {
						return
					}
					last = time.Now()
					rate := float64(p.Done) / max(time.Since(phaseStart).Seconds(), 1e-3)
					eta := time.Duration(float64(p.Total-p.Done)/max(rate, 1)) * time.Second
					verb := map[string]string{"read": "reading", "fold": "folding"}[p.Phase]
					fmt.Fprintf(os.Stderr, "\rreplay: %s %d/%d events (%.0f%%), %.0f events/s, ETA %s   ",
						verb, p.Done, p.Total, 100*float64(p.Done)/float64(max(p.Total, 1)), rate, eta.Round(time.Second))
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
			for _, m := range projections.Models {
				fmt.Printf(" %s %d,", m.Table, st.Rows[m.Table])
				for _, c := range m.Children {
					fmt.Printf(" %s %d,", c.Table, st.Rows[c.Table])
				}
			}
			fmt.Printf(" in %d partition(s)\n", st.Partitions)
			if st.Quarantined > 0 {
				return failed("%d event(s) could not be folded and are quarantined: ledger projections status", st.Quarantined)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&projection, "projection", projections.StateName, "the projection to rebuild")
	cmd.Flags().IntVar(&partitionEvents, "partition-events", 100_000, "events of the log per partition: bounds replay's memory (about 1.5 KB an event)")
	cmd.Flags().StringVar(&spillDir, "spill-dir", "", "where the decoded log is spilled while it is read (needs about the log's size free); default the system's temporary directory")
	idf = addIdentityFlags(cmd)
	return cmd
}
