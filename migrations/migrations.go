// Package migrations holds the ledger's versioned SQL and applies it.
//
// The SQL files are embedded in the binary, so `ledger migrate` and `ledger serve` need nothing
// beside the executable. They are applied with jackc/tern (the migration library written by pgx's
// author, speaking pgx natively), which records the version in ledger.schema_version and holds a
// Postgres advisory lock while it migrates: two processes starting together both succeed and each
// migration runs exactly once.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed *.sql
var Files embed.FS

// VersionTable records the applied version (tern's format: one row, one int).
const VersionTable = "ledger.schema_version"

// bootstrapLock serialises the CREATE SCHEMA that must precede tern's own version table: two
// concurrent "CREATE SCHEMA IF NOT EXISTS" can still collide on the catalog's unique index.
const bootstrapLock = int64(0x6c65646765720001) // "ledger" + 1

// Latest is the version the embedded migrations bring a database to.
func Latest() (int32, error) {
	names, err := migrate.FindMigrations(Files)
	if err != nil {
		return 0, fmt.Errorf("could not list migrations: %w", err)
	}
	return int32(len(names)), nil
}

// Apply brings the database behind conn to the latest version. It is safe to call from several
// processes at once.
func Apply(ctx context.Context, conn *pgx.Conn) (from, to int32, err error) {
	return ApplyTo(ctx, conn, -1)
}

// ApplyTo brings the database behind conn to version target (-1: the latest). A test builds a
// log the way an older version wrote it with this, then migrates it the rest of the way.
func ApplyTo(ctx context.Context, conn *pgx.Conn, target int32) (from, to int32, err error) {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", bootstrapLock); err != nil {
		return 0, 0, fmt.Errorf("could not take the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", bootstrapLock) //nolint:errcheck // the session ends soon anyway

	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS ledger"); err != nil {
		return 0, 0, fmt.Errorf("could not create schema ledger: %w", err)
	}
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return 0, 0, fmt.Errorf("could not prepare migrator: %w", err)
	}
	if err := m.LoadMigrations(Files); err != nil {
		return 0, 0, fmt.Errorf("could not load migrations: %w", err)
	}
	from, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("could not read schema version: %w", err)
	}
	if target < 0 {
		err = m.Migrate(ctx)
	} else {
		err = m.MigrateTo(ctx, target)
	}
	if err != nil {
		return from, 0, fmt.Errorf("could not migrate from version %d: %w", from, err)
	}
	to, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return from, 0, fmt.Errorf("could not read schema version: %w", err)
	}
	return from, to, nil
}

// Current reports the applied version, 0 when the ledger schema has never been migrated.
func Current(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int32, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", VersionTable).Scan(&exists); err != nil {
		return 0, fmt.Errorf("could not look up %s: %w", VersionTable, err)
	}
	if !exists {
		return 0, nil
	}
	var v int32
	if err := q.QueryRow(ctx, "SELECT version FROM "+VersionTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("could not read schema version: %w", err)
	}
	return v, nil
}
