package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/webhook"
)

func verifyCmd() *cobra.Command {
	var signatures, allowUnverifiable bool
	var tolerance time.Duration
	var checkpoints string
	var publicKeys []string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Walk the event log's hash chain (and re-check signatures, checkpoints); exit 1 on a problem",
		Long: `verify recomputes the SHA-256 hash chain of ledger.events from the first event to the
head. It prints the event count and head hash and exits 0 when every link holds, or names the
first row that was edited, removed or renumbered and exits 1.

--signatures also re-checks the Stripe signature of every stored webhook body against its stored
Stripe-Signature header, with the secrets serve takes (STRIPE_WEBHOOK_SECRET_LIVE, _TEST,
_CONNECT_LIVE, _CONNECT_TEST and STRIPE_WEBHOOK_SECRET) and STRIPE_WEBHOOK_SECRET_RETIRED
(comma-separated). Each webhook event is verified, unverifiable (no
known secret can be shown to have signed for it: its era's secret was not kept) or failed (what
the log holds cannot be what arrived: the body, the header or a column was changed); events
reconciliation or an import fetched from Stripe's API carry no signature and are counted by
source. Failed and unverifiable events are listed and make the exit status 1; with
--allow-unverifiable only failed ones do (for a log whose early secrets are known to be lost).

--checkpoints FILE --public-key K proves the log still extends every checkpoint in FILE (lines
written by ` + "`ledger checkpoint`" + ` or by serve's checkpointer): each is signed by K, and the hash at its
position is the one it signed. A row changed at or before a checkpoint fails this even when the
chain after it was recomputed. Give --public-key once per key that signed checkpoints in FILE
(after a key rotation, the old and the new). It also authenticates every redaction record: each
must be signed by one of the keys, or the payloads it replaced may be a rewrite of history (the
database accepts a record from anyone who can append). Plain verify checks a redacted payload
against its record's digest, not who wrote the record.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var secrets integrity.Secrets
			var cps []integrity.Checkpoint
			if allowUnverifiable && !signatures {
				return fmt.Errorf("--allow-unverifiable goes with --signatures")
			}
			var pubs []ed25519.PublicKey
			if signatures {
				var err error
				current, err := webhook.ReadSecrets(os.Getenv)
				if err != nil {
					return err
				}
				secrets.Current = current.All()
				if secrets.Retired, err = webhook.ParseSecretList("STRIPE_WEBHOOK_SECRET_RETIRED", os.Getenv("STRIPE_WEBHOOK_SECRET_RETIRED")); err != nil {
					return err
				}
				if len(secrets.Current)+len(secrets.Retired) == 0 {
					return integrity.ErrNoSecrets
				}
			}
			if (checkpoints == "") != (len(publicKeys) == 0) {
				return fmt.Errorf("--checkpoints and --public-key go together")
			}
			if checkpoints != "" {
				for _, k := range publicKeys {
					pub, err := integrity.LoadPublicKey(k)
					if err != nil {
						return err
					}
					pubs = append(pubs, pub)
				}
				f, err := os.Open(checkpoints)
				if err != nil {
					return fmt.Errorf("--checkpoints: %w", err)
				}
				cps, err = integrity.ReadCheckpoints(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("--checkpoints %s: %w", checkpoints, err)
				}
				if len(cps) == 0 {
					return failed("--checkpoints %s: no checkpoint in the file (has the checkpointer ever written one?)", checkpoints)
				}
			}

			pool, err := openResolved(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			store := eventstore.New(pool)
			out := cmd.OutOrStdout()

			var problems []string
			if cps != nil {
				rep, err := integrity.VerifyCheckpoints(ctx, store, cps, pubs...)
				if err != nil {
					return err
				}
				if rep.Chain.Broken != nil {
					problems = append(problems, fmt.Sprintf("%v (%d events verified before it)", rep.Chain.Broken, rep.Chain.Count))
				} else {
					printChain(out, rep.Chain)
				}
				for _, p := range rep.Problems {
					problems = append(problems, p.String())
				}
				fmt.Fprintf(out, "checkpoints: %d of %d verified\n", rep.Checked, len(cps))
				if rep.Redactions > 0 {
					fmt.Fprintf(out, "redactions: %d of %d signed by a given key\n", rep.Redactions-len(rep.RedactionProblems), rep.Redactions)
				}
				for _, p := range rep.RedactionProblems {
					fmt.Fprintf(out, "unauthenticated: %s\n", p)
					problems = append(problems, p.String())
				}
			} else {
				v, err := store.Verify(ctx)
				if err != nil {
					return err
				}
				if v.Broken != nil {
					problems = append(problems, fmt.Sprintf("%v (%d events verified before it)", v.Broken, v.Count))
				} else {
					printChain(out, v)
				}
				if v.Redactions > 0 {
					fmt.Fprintf(out, "%d redaction records seen; who wrote them is not checked: --checkpoints FILE --public-key K authenticates them\n", v.Redactions)
				}
			}
			if signatures {
				progress := func(done, total int64) {
					fmt.Fprintf(cmd.ErrOrStderr(), "signatures: %d/%d events\n", done, total)
				}
				rep, err := integrity.VerifySignatures(ctx, store, secrets, integrity.SignatureOptions{Tolerance: tolerance, Progress: progress})
				if err != nil {
					return err
				}
				printSignatures(out, rep)
				if rep.Failed > 0 {
					problems = append(problems, fmt.Sprintf("%d webhook events fail their signature check", rep.Failed))
				}
				if !allowUnverifiable && rep.Unverifiable > 0 {
					problems = append(problems, fmt.Sprintf("%d webhook events are unverifiable (--allow-unverifiable accepts them)", rep.Unverifiable))
				}
			}
			if len(problems) > 0 {
				return failed("%s", strings.Join(problems, "; "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&signatures, "signatures", false, "re-check every webhook body's Stripe signature (secrets from STRIPE_WEBHOOK_SECRET*, as serve's, and STRIPE_WEBHOOK_SECRET_RETIRED)")
	f.BoolVar(&allowUnverifiable, "allow-unverifiable", false, "with --signatures: exit 0 although some events are unverifiable (their secret was not kept)")
	f.DurationVar(&tolerance, "signature-tolerance", 10*time.Minute, "with --signatures: how far a webhook's signed time may be from when it was received")
	f.StringVar(&checkpoints, "checkpoints", "", "a file of checkpoint lines the log must still extend")
	f.StringArrayVar(&publicKeys, "public-key", nil, "with --checkpoints: a checkpoint key's public half (PEM file, or the raw key in base64); repeat for several keys")
	return cmd
}

func printChain(w io.Writer, v eventstore.Verification) {
	fmt.Fprintf(w, "ok: %d events, head hash %s\n", v.Count, hex.EncodeToString(v.HeadHash[:]))
	if v.V1UpTo > 0 {
		fmt.Fprintf(w, "version-1 chain up to position %d also holds (%d links recomputed, the rest redacted)\n", v.V1UpTo, v.V1Checked)
	}
	if v.Redacted > 0 {
		fmt.Fprintf(w, "%d redacted events checked against the digests their redactions recorded\n", v.Redacted)
	}
}

func printSignatures(w io.Writer, r integrity.SignatureReport) {
	fmt.Fprintf(w, "signatures: %d verified, %d unverifiable, %d failed", r.Verified, r.Unverifiable, r.Failed)
	if r.Redacted > 0 {
		fmt.Fprintf(w, ", %d redacted", r.Redacted)
	}
	for _, s := range r.Sources() {
		fmt.Fprintf(w, ", %d fetched by API (%s)", r.Fetched[s], s)
	}
	fmt.Fprintln(w)
	for _, f := range r.FailedEvents {
		fmt.Fprintf(w, "failed: %s (position %d): %s\n", f.ID, f.Position, f.Reason)
	}
	for _, f := range r.UnverifiableEvents {
		fmt.Fprintf(w, "unverifiable: %s (position %d)\n", f.ID, f.Position)
	}
	if n := r.Unverifiable - int64(len(r.UnverifiableEvents)); n > 0 {
		fmt.Fprintf(w, "unverifiable: … and %d more\n", n)
	}
}
