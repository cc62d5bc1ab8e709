package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeliveryFilter selects rows of the delivery history. Zero values select everything.
type DeliveryFilter struct {
	Rule   string
	Status string    // pending, delivered, failed or digested
	Since  time.Time // enqueued at or after
	Limit  int       // default 100, at most 1000
}

// BadFilter is a filter or retry request that cannot be answered as asked.
type BadFilter struct{ Msg string }

func (e *BadFilter) Error() string { return e.Msg }

// Statuses are the outbox statuses, in the order of a row's life.
var Statuses = []string{StatusPending, StatusDelivered, StatusFailed, StatusDigested}

func (f *DeliveryFilter) validate() error {
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		return &BadFilter{fmt.Sprintf("unknown status %q: one of %s", f.Status, strings.Join(Statuses, ", "))}
	}
	switch {
	case f.Limit == 0:
		f.Limit = 100
	case f.Limit < 0 || f.Limit > 1000:
		return &BadFilter{fmt.Sprintf("limit %d: between 1 and 1000", f.Limit)}
	}
	return nil
}

// Delivery is one row of the history: the outbox row and its latency.
type Delivery struct {
	Row
	// LatencyMS is delivered_at − event_created in milliseconds; nil until delivered (or for a
	// row without an event time).
	LatencyMS *int64 `json:"latency_ms"`
}

// deliveriesSQL: newest first by id (the order rows were added); the filters are optional so
// that one statement serves every combination.
const deliveriesSQL = `SELECT ` + rowColumns + ` FROM ledger.notify_outbox
	WHERE ($1 = '' OR rule = $1) AND ($2 = '' OR status = $2) AND ($3::timestamptz IS NULL OR enqueued_at >= $3)
	ORDER BY id DESC LIMIT $4`

// Deliveries lists the history, newest first.
func Deliveries(ctx context.Context, q pgxQuerier, f DeliveryFilter) ([]Delivery, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	var since *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	rows, err := q.Query(ctx, deliveriesSQL, f.Rule, f.Status, since, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("could not list deliveries: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanRow)
	if err != nil {
		return nil, fmt.Errorf("could not list deliveries: %w", err)
	}
	out := make([]Delivery, len(list))
	for i, r := range list {
		out[i] = Delivery{Row: r}
		if r.DeliveredAt != nil && r.EventCreated != nil {
			ms := r.DeliveredAt.Sub(*r.EventCreated).Milliseconds()
			out[i].LatencyMS = &ms
		}
	}
	return out, nil
}

// RetryRequest names failed rows to send again, or all of them.
type RetryRequest struct {
	IDs       []int64
	AllFailed bool
}

// ErrNotFailed: a row named for retry is not failed (or does not exist); nothing was changed.
var ErrNotFailed = errors.New("not failed")

// NotFailedError lists the rows named for retry that are not failed.
type NotFailedError struct{ IDs []int64 }

func (e *NotFailedError) Error() string {
	return fmt.Sprintf("notifications %v are not failed (or do not exist): nothing retried", e.IDs)
}

func (e *NotFailedError) Unwrap() error { return ErrNotFailed }

type execQuerier interface {
	pgxQuerier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// retrySQL puts failed rows back to pending, due now, with their attempts counted afresh (the
// deliverer's MaxAttempts applies again); last_error stays until the next attempt replaces it.
const retrySQL = `UPDATE ledger.notify_outbox SET status = 'pending', attempts = 0, not_before = $2
	WHERE status = 'failed' AND ($3 OR id = ANY($1)) RETURNING id`

// Retry sends failed rows again: all named ones, or none when any named row is not failed.
// The deliverer picks them up at its next look at the outbox.
func Retry(ctx context.Context, db execQuerier, req RetryRequest, now time.Time) ([]int64, error) {
	if req.AllFailed == (len(req.IDs) > 0) {
		return nil, &BadFilter{"name the notifications to retry, or retry all failed ones, not both"}
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	rows, err := tx.Query(ctx, retrySQL, req.IDs, now, req.AllFailed)
	if err != nil {
		return nil, fmt.Errorf("could not retry notifications: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("could not retry notifications: %w", err)
	}
	if !req.AllFailed {
		var missing []int64
		for _, id := range req.IDs {
			if !slices.Contains(ids, id) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return nil, &NotFailedError{IDs: missing}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	if ids == nil {
		ids = []int64{}
	}
	return ids, nil
}
