package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// execer is what the projection's writes need from a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// quarantine records (or re-records) an event the projection could not fold. A quarantined event
// is left out of every fold until it is resolved; the log itself is not touched.
func quarantine(ctx context.Context, tx execer, projection string, p Poison) error {
	sql, args := quarantineSQL(projection, p)
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("could not quarantine event %v: %w", args[1], err)
	}
	return nil
}

func quarantineSQL(projection string, p Poison) (string, []any) {
	return `INSERT INTO ledger.projection_quarantine AS q (projection, event_id, position, event_type, object_id, error)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (projection, event_id) DO UPDATE
		SET error = EXCLUDED.error, attempts = q.attempts + 1, last_attempt_at = now(), resolved_at = NULL`,
		[]any{projection, p.EventID, p.Position, p.EventType, p.ObjectID, p.Err.Error()}
}

// lockProjection takes the projection's transaction lock: a live runner holds it for each batch
// and a replay for its swap, so the two never interleave.
func lockProjection(ctx context.Context, tx pgx.Tx, projection string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, txLockKey(projection)); err != nil {
		return fmt.Errorf("could not lock projection %s: %w", projection, err)
	}
	return nil
}

func txLockKey(projection string) string { return "ledger.projection.batch:" + projection }

// OpenQuarantine is which of the events of the given objects are quarantined for the read
// models (kept out of every fold until resolved), by event ID: what a reader that folds the log
// itself (reconciliation comparing with Stripe) must leave out to agree with the read models.
func OpenQuarantine(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, objectIDs []string) (map[string]bool, error) {
	rows, err := q.Query(ctx, `SELECT event_id FROM ledger.projection_quarantine
		WHERE projection = $1 AND resolved_at IS NULL AND object_id = ANY($2)`, StateName, objectIDs)
	if err != nil {
		return nil, fmt.Errorf("could not read the quarantine: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("could not read the quarantine: %w", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
