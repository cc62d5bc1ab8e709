package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stripeledger/ledger/domain"
)

// The log's reads. Every reader of ledger.events — the live projection, replay, the forwarder,
// reconciliation, as-of answers, the API's event views and `ledger events` — goes through these,
// so the log has one owner and its indexes one set of queries to serve:
//
//   - List and Scan: events matching a Filter (type, object, source, time, account, mode,
//     position range), in log order or, for a full pass, in the table's physical order;
//   - Histories: every event of many objects at once;
//   - Tail (tail.go): a checkpointed batch tail in commit order, inside the caller's transaction.

// Querier is what a read runs on: the store's pool, or a caller's transaction (see With).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// On returns a Store that reads through q (a transaction, a connection) and cannot append: for a
// caller that only reads the log inside its own transaction.
func On(q Querier) *Store {
	return &Store{q: q, now: time.Now, appended: newBroadcast()}
}

// With returns a Store whose reads run on q — typically the caller's transaction, so that what
// it reads and what it writes from it commit together. Appends always use the pool.
func (s *Store) With(q Querier) *Store {
	c := *s
	c.q = q
	return &c
}

// Filter selects events. Zero fields select everything.
type Filter struct {
	Types      []string // any of these types
	ObjectType string   // data.object.object
	ObjectIDs  []string // any of these objects (data.object.id)
	EventIDs   []string // any of these events
	Source     domain.Source
	// CreatedFrom and CreatedTo bound Stripe's created, both inclusive.
	CreatedFrom, CreatedTo time.Time
	// ReceivedFrom bounds when the ledger accepted the event (inclusive).
	ReceivedFrom time.Time
	Account      *string // nil: any; "": the platform's own events; acct_…: that account's
	Livemode     *bool   // nil: both modes
	// AfterPosition and UpToPosition bound the position: after (exclusive), up to (inclusive; 0
	// means the head).
	AfterPosition, UpToPosition int64
	// AfterCheckpoint selects the events after a consumer's checkpoint (see Checkpoint), read in
	// the same statement.
	AfterCheckpoint string
	// Mentions selects the events whose payload holds any of these byte strings (a quoted
	// object ID, say). It reads every payload the other conditions leave: a full pass over the
	// log when alone, for the rare reader that must find everything about an object (redaction).
	Mentions []string
	// RedactedBy selects the events whose payload the redactions at these positions changed.
	RedactedBy []int64
	// Limit bounds how many are returned (0: all). With Latest, they are the last Limit events
	// that match (still returned in log order); otherwise the first.
	Limit  int
	Latest bool
	// Payload reads the payload and the signature too; without it they are left empty, which
	// saves reading (and detoasting) the largest column.
	Payload bool
	// Unordered lets Scan return events in the table's physical order: one sequential pass, for
	// readers that need the set of events rather than their order (replay). Ordering a large log
	// by position makes Postgres sort it, on disk once it outgrows work_mem, before the first row.
	Unordered bool
	// Borrow hands Scan's callback a Payload that points into the driver's read buffer, valid
	// only until the callback returns: no copy per event, for a reader that writes the bytes
	// elsewhere at once (replay's spill).
	Borrow bool
}

// readColumns are a record's columns without the hash chain, which only Verify reads. Whether a
// held event was released is looked up only for held events (CASE evaluates in order), so the
// other rows cost one NULL test.
const readColumns = `position, event_id, type, api_version, extract(epoch from created)::bigint, livemode,
	account, object_type, object_id, source, received_at, coalesce(redacted_by_position, 0),
	coalesce(endpoint, ''), coalesce(hold_reason, ''),
	CASE WHEN hold_reason IS NULL THEN false
	     ELSE EXISTS (SELECT 1 FROM ledger.event_releases x WHERE x.event_id = ledger.events.event_id) END`

// sql builds the filter's query. Every value is a parameter.
func (f Filter) sql() (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(f.Types) > 0 {
		where = append(where, "type = ANY("+arg(f.Types)+")")
	}
	if f.ObjectType != "" {
		where = append(where, "object_type = "+arg(f.ObjectType))
	}
	if f.ObjectIDs != nil {
		where = append(where, "object_id = ANY("+arg(f.ObjectIDs)+")")
	}
	if f.EventIDs != nil {
		where = append(where, "event_id = ANY("+arg(f.EventIDs)+")")
	}
	if f.Source != "" {
		where = append(where, "source = "+arg(string(f.Source)))
	}
	if !f.CreatedFrom.IsZero() {
		where = append(where, "created >= "+arg(f.CreatedFrom))
	}
	if !f.CreatedTo.IsZero() {
		where = append(where, "created <= "+arg(f.CreatedTo))
	}
	if !f.ReceivedFrom.IsZero() {
		where = append(where, "received_at >= "+arg(f.ReceivedFrom))
	}
	if f.Account != nil {
		where = append(where, "account = "+arg(*f.Account))
	}
	if f.Livemode != nil {
		where = append(where, "livemode = "+arg(*f.Livemode))
	}
	if f.AfterPosition > 0 {
		where = append(where, "position > "+arg(f.AfterPosition))
	}
	if f.UpToPosition > 0 {
		where = append(where, "position <= "+arg(f.UpToPosition))
	}
	if f.AfterCheckpoint != "" {
		where = append(where, "position > coalesce((SELECT c.position FROM ledger.projection_state c WHERE c.name = "+arg(f.AfterCheckpoint)+"), 0)")
	}
	if f.Mentions != nil {
		needles := make([][]byte, len(f.Mentions))
		for i, m := range f.Mentions {
			needles[i] = []byte(m)
		}
		where = append(where, "EXISTS (SELECT 1 FROM unnest("+arg(needles)+"::bytea[]) AS m(b) WHERE position(m.b IN payload) > 0)")
	}
	if f.RedactedBy != nil {
		where = append(where, "redacted_by_position = ANY("+arg(f.RedactedBy)+")")
	}
	cols := readColumns
	if f.Payload {
		cols += ", payload, signature"
	}
	q := "SELECT " + cols + " FROM ledger.events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	switch {
	case f.Latest && f.Limit > 0:
		// The last Limit by position, turned back into log order.
		q = "SELECT * FROM (" + q + " ORDER BY position DESC LIMIT " + arg(f.Limit) + ") e ORDER BY 1"
	case f.Unordered:
		if f.Limit > 0 {
			q += " LIMIT " + arg(f.Limit)
		}
	default:
		q += " ORDER BY position"
		if f.Limit > 0 {
			q += " LIMIT " + arg(f.Limit)
		}
	}
	return q, args
}

// List returns the events the filter selects, in log order (see Filter.Unordered).
func (s *Store) List(ctx context.Context, f Filter) ([]Record, error) {
	var out []Record
	err := s.Scan(ctx, f, func(r *Record) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}

// QueueList queues the filter's query on b, to run in the caller's pipeline (pgx.Batch): the
// events are appended to out when the batch's results are read. A caller folding a batch of
// objects reads their histories and what else it needs in one round trip this way.
func QueueList(b *pgx.Batch, f Filter, out *[]Record) {
	q, args := f.sql()
	b.Queue(q, args...).Query(func(rows pgx.Rows) error {
		return scanRows(rows, f.Payload, false, func(r *Record) error {
			*out = append(*out, *r)
			return nil
		})
	})
}

// Scan streams the events the filter selects to fn, without holding them: memory stays flat
// however many match. The Record passed to fn is reused for the next event; its Payload is fn's
// to keep.
func (s *Store) Scan(ctx context.Context, f Filter, fn func(*Record) error) error {
	q, args := f.sql()
	rows, err := s.q.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("could not read events: %w", err)
	}
	return scanRows(rows, f.Payload, f.Borrow, fn)
}

func scanRows(rows pgx.Rows, payload, borrow bool, fn func(*Record) error) error {
	defer rows.Close()
	var r Record
	var source string
	var sig *string
	var borrowed pgtype.DriverBytes
	dest := []any{&r.Position, &r.ID, &r.Type, &r.APIVersion, &r.Created, &r.Livemode, &r.Account,
		&r.ObjectType, &r.ObjectID, &source, &r.ReceivedAt, &r.RedactedBy, &r.Endpoint, &r.HoldReason, &r.Released}
	switch {
	case payload && borrow:
		dest = append(dest, &borrowed, &sig)
	case payload:
		dest = append(dest, &r.Payload, &sig)
	}
	for rows.Next() {
		r.Payload, sig = nil, nil
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("could not read event: %w", err)
		}
		if borrow {
			r.Payload = borrowed
		}
		r.Source = domain.Source(source)
		r.Signature = ""
		if sig != nil {
			r.Signature = *sig
		}
		r.ReceivedAt = r.ReceivedAt.UTC()
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("could not read events: %w", err)
	}
	return nil
}

// Histories returns every event of the given objects of one object type (data.object.object), in
// log order, payloads included: what a projection folds an object from. One query serves any
// number of objects (the (object_type, object_id, position) index).
func (s *Store) Histories(ctx context.Context, objectType string, objectIDs []string) ([]Record, error) {
	if len(objectIDs) == 0 {
		return nil, nil
	}
	return s.List(ctx, Filter{ObjectType: objectType, ObjectIDs: objectIDs, Payload: true})
}

// ErrNotFound is returned by Get when the log has no event with that ID.
var ErrNotFound = errors.New("event not found")

// Get returns one event by its Stripe event ID: every stored column, the hash chain included.
func (s *Store) Get(ctx context.Context, eventID string) (Record, error) {
	rows, err := s.q.Query(ctx, `SELECT `+recordColumns+` FROM ledger.events WHERE event_id = $1`, eventID)
	if err != nil {
		return Record{}, fmt.Errorf("could not read event %s: %w", eventID, err)
	}
	recs, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return Record{}, fmt.Errorf("could not read event %s: %w", eventID, err)
	}
	if len(recs) == 0 {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, eventID)
	}
	return recs[0], nil
}

// Rendering is another rendering of a stored event, at another API version
// (ledger.event_renderings): kept for audit, never folded.
type Rendering struct {
	APIVersion string    `json:"api_version"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
	Endpoint   *string   `json:"endpoint"`
	Payload    []byte    `json:"-"`
}

// Renderings are the other renderings of event eventID, by API version.
func (s *Store) Renderings(ctx context.Context, eventID string) ([]Rendering, error) {
	rows, err := s.q.Query(ctx, `SELECT api_version, source, received_at, endpoint, payload FROM ledger.event_renderings
		WHERE event_id = $1 ORDER BY api_version`, eventID)
	if err != nil {
		return nil, fmt.Errorf("could not read the renderings of event %s: %w", eventID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rendering, error) {
		var r Rendering
		err := row.Scan(&r.APIVersion, &r.Source, &r.ReceivedAt, &r.Endpoint, &r.Payload)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("could not read the renderings of event %s: %w", eventID, err)
	}
	return out, nil
}

// Versions returns, for each of the given event IDs the log holds, the API versions it holds it
// at: the stored event's and its other renderings' (ledger.event_renderings).
func (s *Store) Versions(ctx context.Context, eventIDs []string) (map[string][]string, error) {
	rows, err := s.q.Query(ctx, `SELECT event_id, api_version FROM ledger.events WHERE event_id = ANY($1)
		UNION ALL SELECT event_id, api_version FROM ledger.event_renderings WHERE event_id = ANY($1)`, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("could not look events up in the log: %w", err)
	}
	out := map[string][]string{}
	var id, version string
	if _, err := pgx.ForEachRow(rows, []any{&id, &version}, func() error {
		out[id] = append(out[id], version)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("could not look events up in the log: %w", err)
	}
	return out, nil
}

// Known returns which of the given event IDs the log holds, in no particular order.
func (s *Store) Known(ctx context.Context, eventIDs []string) ([]string, error) {
	rows, err := s.q.Query(ctx, `SELECT event_id FROM ledger.events WHERE event_id = ANY($1)`, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("could not look events up in the log: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("could not look events up in the log: %w", err)
	}
	return ids, nil
}

// Undeleted are the IDs of the objects of objectType in one mode and account that the log has
// events of (held ones not counted until released) and no *.deleted event for, in ID order:
// what the ledger believes still exists, for reconciliation to look for in Stripe.
func (s *Store) Undeleted(ctx context.Context, livemode bool, account, objectType string) ([]string, error) {
	rows, err := s.q.Query(ctx, `SELECT DISTINCT e.object_id FROM ledger.events e
		WHERE e.livemode = $1 AND e.account = $2 AND e.object_type = $3 AND e.object_id <> ''
		  AND (e.hold_reason IS NULL OR e.event_id IN (SELECT event_id FROM ledger.event_releases))
		  AND NOT EXISTS (SELECT 1 FROM ledger.events d WHERE d.object_id = e.object_id AND d.type LIKE '%.deleted')
		ORDER BY 1`, livemode, account, objectType)
	if err != nil {
		return nil, fmt.Errorf("could not read the log's objects: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("could not read the log's objects: %w", err)
	}
	return ids, nil
}

// Head returns the tip of the log.
func (s *Store) Head(ctx context.Context) (Head, error) {
	var h Head
	var hash []byte
	if err := s.q.QueryRow(ctx, headSQL).Scan(&h.Position, &hash); err != nil {
		return Head{}, fmt.Errorf("could not read the log head: %w", err)
	}
	copy(h.Hash[:], hash)
	return h, nil
}

// ReceivedAt is when the event at position was accepted; the zero time when there is none.
func (s *Store) ReceivedAt(ctx context.Context, position int64) (time.Time, error) {
	var t time.Time
	err := s.q.QueryRow(ctx, `SELECT received_at FROM ledger.events WHERE position = $1`, position).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("could not read the log: %w", err)
	}
	return t.UTC(), nil
}

// Minute is how many events the log accepted in one minute.
type Minute struct {
	Minute time.Time `json:"minute"`
	Count  int64     `json:"count"`
}

// AppendedPerMinute counts the events accepted in each minute since from, oldest first. It reads
// at most the last 200,000 positions, so it stays cheap however long the log is.
func (s *Store) AppendedPerMinute(ctx context.Context, from time.Time) ([]Minute, error) {
	rows, err := s.q.Query(ctx, `SELECT date_trunc('minute', received_at), count(*) FROM ledger.events
		WHERE position > (SELECT position FROM ledger.log_head) - 200000 AND received_at >= $1
		GROUP BY 1 ORDER BY 1`, from)
	if err != nil {
		return nil, fmt.Errorf("could not read the log: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Minute])
	if err != nil {
		return nil, fmt.Errorf("could not read the log: %w", err)
	}
	return out, nil
}
