package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/internal/pgboot"
)

// devCmd is what `make run` starts: the ledger on its embedded default database, installing
// Postgres from the distribution if this machine has none.
func devCmd() *cobra.Command {
	o := serveOptions{db: dbOptions{install: true}}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the ledger on the embedded default database (what `make run` starts)",
		Long: `dev runs serve on the embedded default database. Without STRIPE_WEBHOOK_SECRET it uses a
signing secret of its own, kept in .data/dev-webhook-secret (mode 0600, never printed), so local
senders can sign webhooks with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secretNote := "STRIPE_WEBHOOK_SECRET"
			if os.Getenv("STRIPE_WEBHOOK_SECRET") == "" {
				path := filepath.Join(pgboot.RepoRoot(), ".data", "dev-webhook-secret")
				secret, err := devSecret(path)
				if err != nil {
					return err
				}
				o.secretsEnv = secret
				secretNote = path
			}
			o.ready = func(addr string) {
				base := "http://" + strings.Replace(strings.Replace(addr, "[::]", "localhost", 1), "0.0.0.0", "localhost", 1)
				fmt.Printf("\nledger is up:\n"+
					"  webhooks   POST %s/webhooks/stripe   (signing secret: %s)\n"+
					"  health     %s/healthz\n"+
					"  readiness  %s/readyz\n"+
					"  metrics    %s/metrics\n"+
					"  forward real test-mode events with: stripe listen --forward-to %s/webhooks/stripe\n\n"+
					"Ctrl-C stops it.\n\n", base, secretNote, base, base, base, strings.TrimPrefix(base, "http://"))
			}
			return serve(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.addr, "addr", envOr("LEDGER_ADDR", "127.0.0.1:8080"), "listen address (env LEDGER_ADDR)")
	addServeFlags(cmd, &o)
	return cmd
}

// devSecret reads the local development signing secret, creating it on first use.
func devSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	secret := "whsec_" + hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("could not create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("could not write the development signing secret: %w", err)
	}
	return secret, nil
}
