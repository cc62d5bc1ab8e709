package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/lease"
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
	// Schema is the fingerprint of the declarations the tables were built from; Declared that of
	// this binary's. They differ until the runner (or `ledger replay`) rebuilds the tables.
	Schema   *string `json:"schema"`
	Declared string  `json:"declared_schema"`
	// Runner is the process holding the live runner's lease (its Postgres application_name), ""
	// when no runner is active.
	Runner     string             `json:"runner"`
	Quarantine []QuarantinedEvent `json:"quarantine"` // unresolved, in log order
	// Ambiguous is how many same-second groups of events the ordering rule could not order by
	// their previous_attributes and ordered by event ID (ledger.ordering_ambiguities).
	Ambiguous int64 `json:"ambiguous_orderings"`
	// Thin is how the fetches of thin events' objects stand (ledger.thin_fetches).
	Thin ThinStatus `json:"thin_events"`
}

// ThinStatus counts thin events by how their object's fetch stands, and lists those whose fetch
// has failed (retrying or given up), oldest first, at most 100.
type ThinStatus struct {
	Pending     int         `json:"pending"` // to fetch, the retrying ones included
	Retrying    int         `json:"retrying"`
	Failed      int         `json:"failed"`
	Fetched     int         `json:"fetched"`
	Covered     int         `json:"covered"`
	Unsupported int         `json:"unsupported"`
	Failing     []ThinFetch `json:"failing"`
}

// ThinFetch is one thin event whose fetch failed.
type ThinFetch struct {
	EventID   string     `json:"event_id"`
	Type      string     `json:"type"`
	ObjectID  string     `json:"object_id"`
	Status    string     `json:"status"` // pending (to be tried again at NextAt) or failed
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error"`
	NextAt    *time.Time `json:"next_attempt_at"`
}

// QuarantinedEvent is an event kept out of the read models: it could not be folded, or it is
// held because it disagrees with the endpoint it came to (HoldReason set; Error says how).
type QuarantinedEvent struct {
	EventID       string    `json:"event_id"`
	Position      int64     `json:"position"`
	EventType     string    `json:"event_type"`
	ObjectID      string    `json:"object_id"`
	Error         string    `json:"error"`
	HoldReason    *string   `json:"hold_reason"` // null for an event that could not be folded
	Attempts      int       `json:"attempts"`
	QuarantinedAt time.Time `json:"quarantined_at"`
	LastAttemptAt time.Time `json:"last_attempt_at"`
}

// ReadStatus reads the read-model projection's status.
func ReadStatus(ctx context.Context, pool *pgxpool.Pool) (Status, error) {
	st := Status{Projection: StateName, Quarantine: []QuarantinedEvent{}, Declared: Fingerprint()}
	err := pool.QueryRow(ctx, `SELECT position, updated_at, rebuilt_at, schema FROM ledger.projection_state WHERE name = $1`,
		StateName).Scan(&st.Position, &st.UpdatedAt, &st.RebuiltAt, &st.Schema)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("could not read the projection's status: %w", err)
	}
	store := eventstore.New(pool)
	head, err := store.Head(ctx)
	if err != nil {
		return st, err
	}
	st.Head, st.Lag = head.Position, head.Position-st.Position
	if st.Lag > 0 {
		oldest, err := store.ReceivedAt(ctx, st.Position+1)
		if err != nil {
			return st, err
		}
		if !oldest.IsZero() {
			st.LagSeconds = time.Since(oldest).Seconds()
		}
	}
	if st.Runner, err = lease.Holder(ctx, pool, runnerLease); err != nil {
		return st, err
	}
	rows, err := pool.Query(ctx, `SELECT event_id, position, event_type, object_id, error, hold_reason, attempts, quarantined_at, last_attempt_at
		FROM ledger.projection_quarantine WHERE projection = $1 AND resolved_at IS NULL ORDER BY position`, StateName)
	if err != nil {
		return st, fmt.Errorf("could not read the quarantine: %w", err)
	}
	st.Quarantine, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (QuarantinedEvent, error) {
		var q QuarantinedEvent
		err := r.Scan(&q.EventID, &q.Position, &q.EventType, &q.ObjectID, &q.Error, &q.HoldReason, &q.Attempts, &q.QuarantinedAt, &q.LastAttemptAt)
		return q, err
	})
	if err != nil {
		return st, fmt.Errorf("could not read the quarantine: %w", err)
	}
	// Tables built before the engine declared this one have none: nothing counted yet.
	if err := pool.QueryRow(ctx, `SELECT CASE WHEN to_regclass('ledger.ordering_ambiguities') IS NULL THEN 0
		ELSE (SELECT count(*) FROM ledger.ordering_ambiguities) END`).Scan(&st.Ambiguous); err != nil {
		return st, fmt.Errorf("could not count the ambiguous orderings: %w", err)
	}
	if st.Thin, err = readThinStatus(ctx, pool); err != nil {
		return st, err
	}
	return st, nil
}

func readThinStatus(ctx context.Context, pool *pgxpool.Pool) (ThinStatus, error) {
	ts := ThinStatus{Failing: []ThinFetch{}}
	err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'pending' AND attempts > 0),
		count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'fetched'),
		count(*) FILTER (WHERE status = 'covered'), count(*) FILTER (WHERE status = 'unsupported') FROM ledger.thin_fetches`).Scan(
		&ts.Pending, &ts.Retrying, &ts.Failed, &ts.Fetched, &ts.Covered, &ts.Unsupported)
	if err != nil {
		return ts, fmt.Errorf("could not count the thin events: %w", err)
	}
	rows, err := pool.Query(ctx, `SELECT event_id, type, object_id, status, attempts, coalesce(last_error, ''), next_attempt_at
		FROM ledger.thin_fetches WHERE (status = 'pending' AND attempts > 0) OR status = 'failed' ORDER BY position LIMIT 100`)
	if err != nil {
		return ts, fmt.Errorf("could not read the failing thin events: %w", err)
	}
	ts.Failing, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ThinFetch, error) {
		var f ThinFetch
		err := r.Scan(&f.EventID, &f.Type, &f.ObjectID, &f.Status, &f.Attempts, &f.LastError, &f.NextAt)
		return f, err
	})
	if err != nil {
		return ts, fmt.Errorf("could not read the failing thin events: %w", err)
	}
	return ts, nil
}

// RetryConfig says which quarantined events to fold again.
type RetryConfig struct {
	// EventIDs are the events to retry; a held one named here is released (let into the read
	// models for good). None: every event that could not be folded, but no held one — a hold is
	// lifted only by naming the event, after looking at it.
	EventIDs []string
	Identity domain.Identity // as the runner's
}

// RetryResult is what a retry did.
type RetryResult struct {
	Resolved int               // folded into the read models now
	Failed   int               // still cannot be folded; still quarantined
	Released int               // of the retried, held events released now (counted in Resolved or Failed too)
	Held     int               // with no EventIDs: held events left as they are (name them to release them)
	Errors   map[string]string // event ID -> why, for the failed ones
}

// ErrNotQuarantined is returned when a named event is not in the quarantine.
var ErrNotQuarantined = errors.New("event is not quarantined")

// Retry folds quarantined events again, each in its own transaction under the projection's
// batch lock (so it never interleaves with the live runner): the event is let back in and its
// object re-folded from the whole history; if it still cannot be folded it goes back into the
// quarantine with the new error and one more attempt counted. A held event named in EventIDs is
// released in the same transaction (eventstore.Release), so every later fold and replay takes
// it; it may be named before the live runner has listed it.
func Retry(ctx context.Context, pool *pgxpool.Pool, cfg RetryConfig) (RetryResult, error) {
	res := RetryResult{Errors: map[string]string{}}
	if err := cfg.Identity.Validate(); err != nil {
		return res, err
	}
	ids := cfg.EventIDs
	if len(ids) == 0 {
		rows, err := pool.Query(ctx, `SELECT event_id FROM ledger.projection_quarantine
			WHERE projection = $1 AND resolved_at IS NULL AND hold_reason IS NULL ORDER BY position`, StateName)
		if err == nil {
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err == nil {
			err = pool.QueryRow(ctx, `SELECT count(*) FROM ledger.projection_quarantine
				WHERE projection = $1 AND resolved_at IS NULL AND hold_reason IS NOT NULL`, StateName).Scan(&res.Held)
		}
		if err != nil {
			return res, fmt.Errorf("could not read the quarantine: %w", err)
		}
	}
	mrr, err := storedSettings(ctx, pool)
	if err != nil {
		return res, err
	}
	e := &engine{projection: StateName, env: env{identity: cfg.Identity, mrr: mrr}}
	for _, id := range ids {
		resolved, released, why, err := retryOne(ctx, pool, e, id)
		if err != nil {
			return res, err
		}
		if released {
			res.Released++
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

func retryOne(ctx context.Context, pool *pgxpool.Pool, e *engine, eventID string) (resolved, released bool, why string, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, false, "", fmt.Errorf("could not begin the retry: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := lockProjection(ctx, tx, StateName); err != nil {
		return false, false, "", err
	}
	if released, err = eventstore.Release(ctx, tx, eventID); err != nil {
		return false, false, "", err
	}
	tag, err := tx.Exec(ctx, `UPDATE ledger.projection_quarantine SET resolved_at = now(), last_attempt_at = now()
		WHERE projection = $1 AND event_id = $2 AND resolved_at IS NULL`, StateName, eventID)
	if err != nil {
		return false, false, "", fmt.Errorf("could not retry %s: %w", eventID, err)
	}
	if tag.RowsAffected() == 0 && !released {
		return false, false, "", fmt.Errorf("%s: %w", eventID, ErrNotQuarantined)
	}
	recs, err := eventstore.On(tx).List(ctx, eventstore.Filter{EventIDs: []string{eventID}})
	if err != nil {
		return false, false, "", err
	}
	if len(recs) == 1 {
		ev := recs[0]
		err := inSavepoint(ctx, tx, func(sp pgx.Tx) error {
			return e.foldChanges(ctx, sp, []change{{eventType: ev.Type, objectType: ev.ObjectType, objectID: ev.ObjectID}})
		})
		if err != nil {
			if !poisonous(tx, err) {
				return false, false, "", fmt.Errorf("could not retry %s: %w", eventID, err)
			}
			if err := quarantine(ctx, tx, StateName, Poison{EventID: ev.ID, Position: ev.Position, EventType: ev.Type, ObjectID: ev.ObjectID, Err: err}); err != nil {
				return false, false, "", err
			}
		}
	}
	// The fold may itself have put the event back (the reducer still cannot read it). A held
	// event released before the runner listed it has no row at all.
	var stillOpen bool
	err = tx.QueryRow(ctx, `SELECT resolved_at IS NULL, error FROM ledger.projection_quarantine WHERE projection = $1 AND event_id = $2`,
		StateName, eventID).Scan(&stillOpen, &why)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, false, "", fmt.Errorf("could not read back %s: %w", eventID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, false, "", fmt.Errorf("could not commit the retry of %s: %w", eventID, err)
	}
	return !stillOpen, released, why, nil
}
