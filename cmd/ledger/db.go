package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/migrations"
	"github.com/stripeledger/ledger/projections"
)

// dbOptions are the database flags every command shares.
type dbOptions struct {
	install bool // may install Debian's postgresql when no server and no binaries are found
}

// resolveDB picks the database: DATABASE_URL, else a server on 127.0.0.1:5432, else the private
// cluster under ./.data/pg (started if needed). It prints one line saying which.
// LEDGER_PG_PROBE (address to probe, "-" for none), LEDGER_PG_DATADIR and LEDGER_PG_PORT move the
// last two, e.g. to keep a second checkout's cluster apart.
func resolveDB(ctx context.Context, o dbOptions) (*pgboot.DB, error) {
	port, err := envInt("LEDGER_PG_PORT")
	if err != nil {
		return nil, err
	}
	db, err := pgboot.Ensure(ctx, pgboot.Options{
		EnvVars:  []string{"DATABASE_URL"},
		Probe:    os.Getenv("LEDGER_PG_PROBE"),
		DataDir:  os.Getenv("LEDGER_PG_DATADIR"),
		Port:     port,
		Database: "ledger",
		Install:  o.install,
		Log:      os.Stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("no database: %w", err)
	}
	return db, nil
}

func envInt(name string) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port number", name, v)
	}
	return n, nil
}

// migrateURL applies the embedded migrations on a connection of its own.
// migrateURL applies the migrations and, on a ledger whose log is still empty, creates the read
// models' tables from their declarations (with events in the log, the projection runner
// rebuilds them when it starts).
func migrateURL(ctx context.Context, url string) (from, to int32, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, 0, fmt.Errorf("could not connect to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if from, to, err = migrations.Apply(ctx, conn); err != nil {
		return from, to, err
	}
	pool, err := openPool(ctx, url)
	if err != nil {
		return from, to, err
	}
	defer pool.Close()
	if err := projections.Prepare(ctx, pool); err != nil {
		return from, to, fmt.Errorf("could not create the read models: %w", err)
	}
	return from, to, nil
}

func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("bad database URL %s: %w", pgboot.Redact(url), err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("could not open the database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("could not reach the database: %w", err)
	}
	return pool, nil
}

func dbCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Show, start or stop the database the ledger uses when DATABASE_URL is unset",
	}
	var o dbOptions
	var dataDir string
	url := &cobra.Command{
		Use:   "url",
		Short: "Print the database URL (starting the private cluster if that is the one used)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := resolveDB(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Println(db.URL)
			return nil
		},
	}
	url.Flags().BoolVar(&o.install, "install", false, "install Debian's postgresql package if no Postgres binaries are found")
	stop := &cobra.Command{
		Use:   "stop",
		Short: "Stop the private cluster under ./.data/pg, if it runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return pgboot.StopCluster(cmd.Context(), dataDir)
		},
	}
	stop.Flags().StringVar(&dataDir, "data-dir", envOr("LEDGER_PG_DATADIR", filepath.Join(pgboot.RepoRoot(), ".data", "pg")), "the private cluster's data directory")
	cmd.AddCommand(url, stop)
	return cmd
}

func migrateCmd() *cobra.Command {
	var o dbOptions
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded schema migrations (safe to run from several processes at once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := resolveDB(cmd.Context(), o)
			if err != nil {
				return err
			}
			from, to, err := migrateURL(cmd.Context(), db.URL)
			if err != nil {
				return err
			}
			if from == to {
				fmt.Printf("schema is up to date at version %d\n", to)
			} else {
				fmt.Printf("migrated schema from version %d to %d\n", from, to)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.install, "install", false, "install Debian's postgresql package if no Postgres binaries are found")
	return cmd
}
