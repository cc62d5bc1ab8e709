package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
)

func checkpointCmd() *cobra.Command {
	var keyPath, sinkSpec string
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign the log's head with the checkpoint key and write it to the checkpoint sinks",
		Long: `checkpoint signs (position, head hash, time) with the Ed25519 key in LEDGER_CHECKPOINT_KEY
(a file the database never holds) and writes the checkpoint, one JSON line, to every sink in
LEDGER_CHECKPOINT_SINK: file:PATH (appended and synced), stdout, nats (the forwarder's stream, at
LEDGER_NATS_URL). ` + "`ledger serve`" + ` does the same every LEDGER_CHECKPOINT_INTERVAL when the key is set.
` + "`ledger verify --checkpoints FILE --public-key K`" + ` later proves the log still extends them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if keyPath == "" {
				return fmt.Errorf("no checkpoint key: set LEDGER_CHECKPOINT_KEY or --key (make one with `ledger checkpoint keygen --out FILE`)")
			}
			key, err := integrity.LoadPrivateKey(keyPath)
			if err != nil {
				return err
			}
			sinks, err := integrity.OpenSinks(checkpointSinkConfig(sinkSpec, cmd))
			if err != nil {
				return err
			}
			defer closeSinks(sinks)
			pool, err := openResolved(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			cp, err := integrity.WriteCheckpoint(ctx, eventstore.New(pool), key, sinks, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "checkpoint: position %d, head %s, key %s\n", cp.Position, cp.Head, cp.Key)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", os.Getenv("LEDGER_CHECKPOINT_KEY"), "the Ed25519 private key file (env LEDGER_CHECKPOINT_KEY)")
	cmd.Flags().StringVar(&sinkSpec, "sink", os.Getenv("LEDGER_CHECKPOINT_SINK"), "where to write: comma-separated file:PATH, stdout, nats (env LEDGER_CHECKPOINT_SINK; default stdout)")
	cmd.AddCommand(keygenCmd())
	return cmd
}

func keygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Make a checkpoint key: the private key in --out (mode 0600), the public key in --out.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			pub, err := integrity.GenerateKey(out)
			if err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "private key: %s (keep it off the database's machine)\npublic key:  %s.pub (%s)\nkey id:      %s\n",
				out, out, base64.StdEncoding.EncodeToString(pub), integrity.KeyID(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the private key file to create (refuses to overwrite)")
	return cmd
}

func checkpointSinkConfig(spec string, cmd *cobra.Command) integrity.SinkConfig {
	return integrity.SinkConfig{Spec: spec, NATSURL: os.Getenv("LEDGER_NATS_URL"),
		NATSPrefix: os.Getenv("LEDGER_NATS_SUBJECT"), Stdout: cmd.OutOrStdout()}
}

func closeSinks(sinks []integrity.Sink) {
	for _, s := range sinks {
		_ = s.Close()
	}
}
