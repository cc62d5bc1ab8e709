package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
)

// Status is where a projection stands: what `ledger projections status` prints.
type Status struct {
	Projection string     `json:"projection"`
	Position   int64      `json:"position"`    // last log position folded in
	Head       int64      `json:"head"`        // last log position appended
	Lag        int64      `json:"lag_events"`  // head - position
	LagSeconds float64    `json:"lag_seconds"` // age of the oldest event not yet folded; 0 when caught up
	UpdatedAt  *time.Time `json:"updated_at"`  // when the position last moved; nil if never run
	RebuiltAt  *time.Time `json:"rebuilt_at"`  // last `ledger replay` swap; nil if never
	// Runner is the process holding the live runner's lock (its Postgres application_name), ""
	// when no runner is active.
	Runner     string             `json:"runner"`
	Quarantine []QuarantinedEvent `json:"quarantine"` // unresolved, in log order
}

// QuarantinedEvent is an event kept out of the read models because it could not be folded.
type QuarantinedEvent struct {
	EventID       string    `json:"event_id"`
	Position      int64     `json:"position"`
	EventType     string    `json:"event_type"`
	ObjectID      string    `json:"object_id"`
	Error         string    `json:"error"`
	Attempts      int       `json:"attempts"`
	QuarantinedAt time.Time `json:"quarantined_at"`
	LastAttemptAt time.Time `json:"last_attempt_at"`
}

// ReadStatus reads the read-model projection's status.
func ReadStatus(ctx context.Context, pool *pgxpool.Pool) (Status, error) {
	st := Status{Projection: StateName, Quarantine: []QuarantinedEvent{}}
	err := pool.QueryRow(ctx, `
		WITH st AS (SELECT position, updated_at, rebuilt_at FROM ledger.projection_state WHERE name = $1),
		     k AS (SELECT hashtextextended($2, 0) AS key)
		SELECT coalesce((SELECT position FROM st), 0),
		       (SELECT position FROM ledger.log_head),
		       (SELECT updated_at FROM st), (SELECT rebuilt_at FROM st),
		       coalesce(extract(epoch FROM now() - (SELECT e.received_at FROM ledger.events e
		           WHERE e.position = coalesce((SELECT position FROM st), 0) + 1)), 0)::float8,
		       coalesce((SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, k
		           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		             AND l.classid = ((k.key >> 32) & 4294967295)::oid AND l.objid = (k.key & 4294967295)::oid
		           LIMIT 1), '')`,
		StateName, runnerLockKey(StateName)).Scan(&st.Position, &st.Head, &st.UpdatedAt, &st.RebuiltAt, &st.LagSeconds, &st.Runner)
	if err != nil {
		return st, fmt.Errorf("could not read the projection's status: %w", err)
	}
	st.Lag = st.Head - st.Position
	rows, err := pool.Query(ctx, `SELECT event_id, position, event_type, object_id, error, attempts, quarantined_at, last_attempt_at
		FROM ledger.projection_quarantine WHERE projection = $1 AND resolved_at IS NULL ORDER BY position`, StateName)
	if err != nil {
		return st, fmt.Errorf("could not read the quarantine: %w", err)
	}
	st.Quarantine, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (QuarantinedEvent, error) {
		var q QuarantinedEvent
		err := r.Scan(&q.EventID, &q.Position, &q.EventType, &q.ObjectID, &q.Error, &q.Attempts, &q.QuarantinedAt, &q.LastAttemptAt)
		return q, err
	})
	if err != nil {
		return st, fmt.Errorf("could not read the quarantine: %w", err)
	}
	return st, nil
}

// RetryConfig says which quarantined events to fold again.
type RetryConfig struct {
	EventIDs []string        // none: every unresolved one
	Identity domain.Identity // as the runner's
}

// RetryResult is what a retry did.
type RetryResult struct {
	Resolved int               // folded into the read models now
	Failed   int               // still cannot be folded; still quarantined
	Errors   map[string]string // event ID -> why, for the failed ones
}

// ErrNotQuarantined is returned when a named event is not in the quarantine.
var ErrNotQuarantined = errors.New("event is not quarantined")

// Retry folds quarantined events again, each in its own transaction under the projection's
// batch lock (so it never interleaves with the live runner): the event is let back in and its
// object re-folded from the whole history; if it still cannot be folded it goes back into the
// quarantine with the new error and one more attempt counted.
func Retry(ctx context.Context, pool *pgxpool.Pool, cfg RetryConfig) (RetryResult, error) {
	res := RetryResult{Errors: map[string]string{}}
	if err := cfg.Identity.Validate(); err != nil {
		return res, err
	}
	ids := cfg.EventIDs
	if len(ids) == 0 {
		rows, err := pool.Query(ctx, `SELECT event_id FROM ledger.projection_quarantine
			WHERE projection = $1 AND resolved_at IS NULL ORDER BY position`, StateName)
		if err == nil {
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return res, fmt.Errorf("could not read the quarantine: %w", err)
		}
	}
	a := applier{projection: StateName, identity: cfg.Identity}
	for _, id := range ids {
		resolved, why, err := retryOne(ctx, pool, a, id)
		if err != nil {
			return res, err
		}
		if resolved {
			res.Resolved++
		} else {
			res.Failed++
			res.Errors[id] = why
		}
	}
	return res, nil
}

func retryOne(ctx context.Context, pool *pgxpool.Pool, a applier, eventID string) (resolved bool, why string, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, "", fmt.Errorf("could not begin the retry: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := lockProjection(ctx, tx, StateName); err != nil {
		return false, "", err
	}
	var typ, objectID string
	err = tx.QueryRow(ctx, `UPDATE ledger.projection_quarantine SET resolved_at = now(), last_attempt_at = now()
		WHERE projection = $1 AND event_id = $2 AND resolved_at IS NULL RETURNING event_type, object_id`, StateName, eventID).Scan(&typ, &objectID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", fmt.Errorf("%s: %w", eventID, ErrNotQuarantined)
	}
	if err != nil {
		return false, "", fmt.Errorf("could not retry %s: %w", eventID, err)
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, "", err
	}
	if aerr := a.fold(ctx, sp, []change{{typ, objectID}}); aerr != nil {
		_ = sp.Rollback(ctx)
		if !poisonous(tx, aerr) {
			return false, "", fmt.Errorf("could not retry %s: %w", eventID, aerr)
		}
		if err := quarantine(ctx, tx, StateName, Poison{EventID: eventID, Err: aerr}); err != nil {
			return false, "", err
		}
	} else if err := sp.Commit(ctx); err != nil {
		return false, "", err
	}
	// The fold may itself have put the event back (the reducer still cannot read it).
	var stillOpen bool
	if err := tx.QueryRow(ctx, `SELECT resolved_at IS NULL, error FROM ledger.projection_quarantine WHERE projection = $1 AND event_id = $2`,
		StateName, eventID).Scan(&stillOpen, &why); err != nil {
		return false, "", fmt.Errorf("could not read back %s: %w", eventID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, "", fmt.Errorf("could not commit the retry of %s: %w", eventID, err)
	}
	return !stillOpen, why, nil
}
