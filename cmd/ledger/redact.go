package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/redaction"
)

func redactCmd() *cobra.Command {
	var customer, reason, by, keyPath string
	var asJSON bool
	var idf *identityFlags
	cmd := &cobra.Command{
		Use:   "redact --customer cus_… --reason \"…\" [--by NAME]",
		Short: "Erase a customer's personal data from the log and the read models, keeping every figure and the hash chain",
		Long: `redact replaces the personal values (email, name, phone, address, shipping, billing_details,
customer_details, card last4 and fingerprint, …, and the metadata keys listed in
LEDGER_REDACT_METADATA_KEYS) of every event about the customer — its own, and those of its charges,
invoices, subscriptions, Checkout sessions, payment methods and their refunds and disputes — with
"[redacted]", appends a ledger.redaction event recording who, when and why (never the erased
values), and re-folds the read models, all in one transaction. Money, IDs, statuses and timestamps
are kept, so every figure stays; each payload's stored SHA-256 stays, so ` + "`ledger verify`" + ` and
checkpoints still hold. Exit 1 when the log knows no such customer, or when one of its events was
edited behind the log's back (run ` + "`ledger verify`" + `): nothing changes.

The record is signed with the checkpoint key (--key, default LEDGER_CHECKPOINT_KEY): the database
lets a payload be replaced under any record, so the signature, by a key the database never holds,
is what shows the change was an operator's (` + "`ledger verify --checkpoints … --public-key …`" + `
checks every record). Use the same --identity as serve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if by == "" {
				if u, err := user.Current(); err == nil {
					by = u.Username
				}
			}
			identity, err := idf.identity()
			if err != nil {
				return err
			}
			req := redaction.Request{Customer: customer, Reason: reason, By: by,
				MetadataKeys: redaction.MetadataKeysFromEnv(), Identity: identity}
			if keyPath != "" {
				if req.Key, err = integrity.LoadPrivateKey(keyPath); err != nil {
					return err
				}
			}
			if err := req.Validate(); err != nil {
				if flagOf(err) == "key" {
					return errors.New(redaction.NoKeyMessage)
				}
				return fmt.Errorf("--%s: %w", flagOf(err), err)
			}
			pool, err := openMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			sum, err := redaction.Run(ctx, pool, req)
			var tampered *redaction.TamperedError
			if errors.Is(err, redaction.ErrUnknownCustomer) || errors.As(err, &tampered) {
				return failed("%v; nothing was changed", err)
			}
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(sum)
			}
			if sum.Redacted == 0 {
				fmt.Printf("nothing to redact: the %d events of %s (%d objects) hold no personal data any more; nothing was appended\n",
					sum.InScope, sum.Customer, sum.Objects)
				return nil
			}
			pos := make([]string, len(sum.Positions))
			for i, p := range sum.Positions {
				pos[i] = fmt.Sprint(p)
			}
			fmt.Printf("redacted %d of the %d events of %s (%d objects) at positions %s\nrecorded as %s at position %d, by %s; the read models were re-folded\n",
				sum.Redacted, sum.InScope, sum.Customer, sum.Objects, strings.Join(pos, ","), sum.EventID, sum.Position, sum.By)
			return nil
		},
	}
	cmd.Flags().StringVar(&customer, "customer", "", "the Stripe customer ID (cus_…) to erase")
	cmd.Flags().StringVar(&reason, "reason", "", "why (a ticket, the legal basis): recorded in the log, so it must not hold personal data itself")
	cmd.Flags().StringVar(&by, "by", "", "who asks for it, recorded with the redaction (default the operating-system user)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	cmd.Flags().StringVar(&keyPath, "key", os.Getenv("LEDGER_CHECKPOINT_KEY"), "the checkpoint key's private half, which signs the redaction's record (env LEDGER_CHECKPOINT_KEY)")
	idf = addIdentityFlags(cmd)
	return cmd
}

// flagOf is the flag a request error is about.
func flagOf(err error) string {
	var ir *redaction.InvalidRequest
	if errors.As(err, &ir) {
		return ir.Field
	}
	return "customer"
}
