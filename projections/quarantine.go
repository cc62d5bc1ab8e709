package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stripeledger/ledger/eventstore"
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
		SET error = EXCLUDED.error, attempts = q.attempts + 1, last_attempt_at = now(), resolved_at = NULL, hold_reason = NULL`,
		[]any{projection, p.EventID, p.Position, p.EventType, p.ObjectID, p.Err.Error()}
}

// hold lists the held events among recs (eventstore.Record.Held: they disagree with the endpoint
// they came to and no operator released them) in the quarantine, with their hold's reason, so
// they show where operators look for events kept out of the read models. The fold itself leaves
// them out by their records (foldHistories), whether or not they are listed yet. Listing an
// event twice changes nothing; a row re-opened here had been resolved without a release (by
// hand), and is held again.
func hold(ctx context.Context, tx execer, projection string, recs []eventstore.Record) error {
	var ids, types, objects, errs, reasons []string
	var positions []int64
	for i := range recs {
		r := &recs[i]
		if !r.Held() {
			continue
		}
		ids, positions, types, objects = append(ids, r.ID), append(positions, r.Position), append(types, r.Type), append(objects, r.ObjectID)
		errs, reasons = append(errs, holdError(r)), append(reasons, r.HoldReason)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO ledger.projection_quarantine AS q (projection, event_id, position, event_type, object_id, error, hold_reason)
		SELECT $1, h.id, h.position, h.type, h.object, h.error, h.reason
		FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) AS h(id, position, type, object, error, reason)
		ON CONFLICT (projection, event_id) DO UPDATE
		SET error = EXCLUDED.error, hold_reason = EXCLUDED.hold_reason, resolved_at = NULL
		WHERE q.resolved_at IS NOT NULL`, projection, ids, positions, types, objects, errs, reasons)
	if err != nil {
		return fmt.Errorf("could not list %d held events in the quarantine: %w", len(ids), err)
	}
	return nil
}

// holdError is a held event's quarantine error: the reason first (a stable token), then what
// disagreed, then how to let it in.
func holdError(r *eventstore.Record) string {
	var what string
	switch r.HoldReason {
	case eventstore.HoldModeMismatch:
		what = fmt.Sprintf("a livemode=%t event came to the %s endpoint", r.Livemode, r.Endpoint)
	case eventstore.HoldAccountOnPlatform:
		what = fmt.Sprintf("an event of connected account %s came to the %s platform endpoint", r.Account, r.Endpoint)
	case eventstore.HoldNoAccountOnConnect:
		what = fmt.Sprintf("a platform event (no account) came to the %s endpoint", r.Endpoint)
	default:
		what = "it disagrees with the " + string(r.Endpoint) + " endpoint"
	}
	return fmt.Sprintf("%s: %s; held out of the read models until released with `ledger projections retry %s`", r.HoldReason, what, r.ID)
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
