package main

import (
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/eventstore"
)

func verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Walk the event log's hash chain; exit 1 at the first broken link",
		Long: `verify recomputes the SHA-256 hash chain of ledger.events from the first event to the
head. It prints the event count and head hash and exits 0 when every link holds, or names the
first row that was edited, removed or renumbered and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := resolveDB(ctx, dbOptions{})
			if err != nil {
				return err
			}
			pool, err := openPool(ctx, db.URL)
			if err != nil {
				return err
			}
			defer pool.Close()
			v, err := eventstore.New(pool).Verify(ctx)
			if err != nil {
				return err
			}
			if v.Broken != nil {
				return failed("%v (%d events verified before it)", v.Broken, v.Count)
			}
			fmt.Printf("ok: %d events, head hash %s\n", v.Count, hex.EncodeToString(v.HeadHash[:]))
			if v.V1UpTo > 0 {
				fmt.Printf("version-1 chain up to position %d also holds (%d links recomputed, the rest redacted)\n", v.V1UpTo, v.V1Checked)
			}
			if v.Redacted > 0 {
				fmt.Printf("%d redacted events checked against the digests their redactions recorded\n", v.Redacted)
			}
			return nil
		},
	}
}
