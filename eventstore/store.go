// Package eventstore is the ledger's append-only log of Stripe events in Postgres (ledger.events).
//
// Appends are idempotent by event ID and batch-first: Append takes many events and answers each
// one. Every append transaction first locks the single row of ledger.log_head, then assigns the
// next positions and extends the hash chain, so positions are dense and in commit order: a reader
// that tails "position > N" sees every event exactly once and can never be overtaken by a smaller
// position committing later (the gap a bigserial leaves under concurrency). Throughput comes from
// putting many events in each transaction (see Appender), not from weakening that lock.
package eventstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
)

// Record is an event as stored in the log.
type Record struct {
	Position int64
	domain.Event
	PrevHash [32]byte
	Hash     [32]byte
}

// Result answers one appended event. Exactly one of these holds: Err != nil (the event was refused
// and nothing was written for it); Duplicate (the log already had this event ID at Position, the
// stored row is unchanged); or the event was appended at Position.
type Result struct {
	Position  int64
	Duplicate bool
	Err       error
}

// Head is the tip of the log. Positions are dense from 1, so Position is also the event count.
type Head struct {
	Position int64
	Hash     [32]byte
}

// Store reads and appends ledger.events.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// New returns a Store over pool. The schema must be migrated (see package migrations).
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, now: time.Now}
}

// Pool is the connection pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

const (
	// FOR UPDATE on the one head row is the log-wide lock: it is held to commit, so appenders
	// take positions strictly one transaction after another.
	lockHeadSQL = `SELECT position, hash FROM ledger.log_head FOR UPDATE`

	// Under the head lock no other appender can insert, so this lookup is exact.
	existingSQL = `SELECT event_id, position FROM ledger.events WHERE event_id = ANY($1)`

	advanceHeadSQL = `UPDATE ledger.log_head SET position = $1, hash = $2`

	headSQL = `SELECT position, hash FROM ledger.log_head`

	recordColumns = `position, event_id, type, api_version, extract(epoch from created)::bigint, livemode,
		account, object_type, object_id, source, received_at, payload, signature, prev_hash, hash`
)

// Append writes events to the log in one transaction and answers each in order. Events whose ID
// is already in the log (or earlier in the same call) are duplicates and answer the stored
// position. Invalid events answer their own Err and do not stop the others. The returned error is
// for the whole call (database unreachable, context done): then nothing was written.
//
// The transaction takes two round trips, so the head lock is held for as short a time as
// possible: a pipelined BEGIN + lock + duplicate lookup, then a pipelined INSERT + head update +
// COMMIT. While one transaction holds the lock, the next one's first round trip is already
// waiting on it.
func (s *Store) Append(ctx context.Context, events []domain.Event) ([]Result, error) {
	results := make([]Result, len(events))
	ids := make([]string, 0, len(events))
	for i := range events {
		if err := events[i].Validate(); err != nil {
			results[i].Err = err
			continue
		}
		ids = append(ids, events[i].ID)
	}
	if len(ids) == 0 {
		return results, nil
	}

	// Everything that does not depend on the log's tip is done before taking its lock.
	now := s.now().UTC().Truncate(time.Microsecond)
	pending := make([]Record, len(events))
	digests := make([][32]byte, len(events))
	for i := range events {
		if results[i].Err != nil {
			continue
		}
		r := &pending[i]
		r.Event = events[i]
		if r.ReceivedAt.IsZero() {
			r.ReceivedAt = now
		}
		r.ReceivedAt = r.ReceivedAt.UTC().Truncate(time.Microsecond)
		digests[i] = contentDigest(r)
	}

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("could not connect to append: %w", err)
	}
	defer conn.Release()
	open := false // a transaction block is open on conn
	defer func() {
		if open {
			// Covers every failure after BEGIN, including a COMMIT whose answer was lost; on a
			// broken connection pgx discards the connection instead.
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()

	var head Head
	var headHash []byte
	known := make(map[string]int64)
	lock := &pgx.Batch{}
	lock.Queue("BEGIN")
	// A cached generic plan for the duplicate lookup, made while the log was small, is a
	// sequential scan, and it stays cached until autovacuum analyses the table: a fresh ledger
	// under load would scan the whole log on every append. Custom plans see the real size.
	lock.Queue("SET LOCAL plan_cache_mode = force_custom_plan")
	lock.Queue(lockHeadSQL).QueryRow(func(row pgx.Row) error {
		return row.Scan(&head.Position, &headHash)
	})
	lock.Queue(existingSQL, ids).Query(func(rows pgx.Rows) error {
		var id string
		var pos int64
		_, err := pgx.ForEachRow(rows, []any{&id, &pos}, func() error {
			known[id] = pos
			return nil
		})
		return err
	})
	open = true
	if err := conn.SendBatch(ctx, lock).Close(); err != nil {
		return nil, fmt.Errorf("could not lock the log head: %w", err)
	}
	copy(head.Hash[:], headHash)

	var cols insertArrays
	next, prev := head.Position, head.Hash
	for i := range events {
		if results[i].Err != nil {
			continue
		}
		r := &pending[i]
		if pos, ok := known[r.ID]; ok {
			results[i] = Result{Position: pos, Duplicate: true}
			continue
		}
		next++
		r.Position, r.PrevHash = next, prev
		r.Hash = linkHash(prev, next, digests[i])
		prev = r.Hash
		known[r.ID] = next
		results[i] = Result{Position: next}
		cols.add(r)
	}
	if len(cols.position) == 0 {
		// All duplicates: nothing to write; the deferred ROLLBACK releases the lock.
		return results, nil
	}
	write := &pgx.Batch{}
	write.Queue(insertSQL, cols.args()...)
	write.Queue(advanceHeadSQL, next, prev[:])
	write.Queue("COMMIT")
	if err := conn.SendBatch(ctx, write).Close(); err != nil {
		return nil, fmt.Errorf("could not append events: %w", err)
	}
	open = false
	return results, nil
}

// insertSQL inserts a whole batch in one statement from parallel arrays, so it can be pipelined
// with the head update and COMMIT (COPY cannot be).
const insertSQL = `INSERT INTO ledger.events (position, event_id, type, api_version, created, livemode, account,
		object_type, object_id, source, received_at, payload, signature, prev_hash, hash)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::boolean[],
		$7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::bytea[], $13::text[],
		$14::bytea[], $15::bytea[])`

type insertArrays struct {
	position                                                []int64
	id, typ, apiVersion, account, objectType, objectID, src []string
	created, receivedAt                                     []time.Time
	livemode                                                []bool
	payload, prevHash, hash                                 [][]byte
	signature                                               []*string
}

func (a *insertArrays) add(r *Record) {
	a.position = append(a.position, r.Position)
	a.id = append(a.id, r.ID)
	a.typ = append(a.typ, r.Type)
	a.apiVersion = append(a.apiVersion, r.APIVersion)
	a.created = append(a.created, r.CreatedTime())
	a.livemode = append(a.livemode, r.Livemode)
	a.account = append(a.account, r.Account)
	a.objectType = append(a.objectType, r.ObjectType)
	a.objectID = append(a.objectID, r.ObjectID)
	a.src = append(a.src, string(r.Source))
	a.receivedAt = append(a.receivedAt, r.ReceivedAt)
	a.payload = append(a.payload, r.Payload)
	var sig *string
	if r.Signature != "" {
		sig = &r.Signature
	}
	a.signature = append(a.signature, sig)
	a.prevHash = append(a.prevHash, r.PrevHash[:])
	a.hash = append(a.hash, r.Hash[:])
}

func (a *insertArrays) args() []any {
	return []any{a.position, a.id, a.typ, a.apiVersion, a.created, a.livemode, a.account, a.objectType,
		a.objectID, a.src, a.receivedAt, a.payload, a.signature, a.prevHash, a.hash}
}

// Head returns the tip of the log.
func (s *Store) Head(ctx context.Context) (Head, error) {
	var h Head
	var hash []byte
	if err := s.pool.QueryRow(ctx, headSQL).Scan(&h.Position, &hash); err != nil {
		return Head{}, fmt.Errorf("could not read the log head: %w", err)
	}
	copy(h.Hash[:], hash)
	return h, nil
}

// Read returns up to limit events with positions after afterPosition, in position order. Tailing
// with the last position returned never skips an event (see the package comment).
func (s *Store) Read(ctx context.Context, afterPosition int64, limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.query(ctx, `SELECT `+recordColumns+` FROM ledger.events WHERE position > $1 ORDER BY position LIMIT $2`,
		afterPosition, limit)
}

// ReadObject returns every event about one Stripe object (data.object.id), in position order.
func (s *Store) ReadObject(ctx context.Context, objectID string) ([]Record, error) {
	return s.query(ctx, `SELECT `+recordColumns+` FROM ledger.events WHERE object_id = $1 ORDER BY position`, objectID)
}

// ErrNotFound is returned by Get when the log has no event with that ID.
var ErrNotFound = errors.New("event not found")

// Get returns one event by its Stripe event ID.
func (s *Store) Get(ctx context.Context, eventID string) (Record, error) {
	recs, err := s.query(ctx, `SELECT `+recordColumns+` FROM ledger.events WHERE event_id = $1`, eventID)
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, eventID)
	}
	return recs[0], nil
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]Record, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("could not read events: %w", err)
	}
	recs, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, fmt.Errorf("could not read events: %w", err)
	}
	return recs, nil
}

func scanRecord(row pgx.CollectableRow) (Record, error) {
	var r Record
	var source string
	var sig *string
	var prev, hash []byte
	err := row.Scan(&r.Position, &r.ID, &r.Type, &r.APIVersion, &r.Created, &r.Livemode, &r.Account,
		&r.ObjectType, &r.ObjectID, &source, &r.ReceivedAt, &r.Payload, &sig, &prev, &hash)
	if err != nil {
		return Record{}, err
	}
	r.Source = domain.Source(source)
	if sig != nil {
		r.Signature = *sig
	}
	r.ReceivedAt = r.ReceivedAt.UTC()
	copy(r.PrevHash[:], prev)
	copy(r.Hash[:], hash)
	return r, nil
}

// Quarantine keeps a body that carried a valid Stripe signature but is not an event. It is
// idempotent by the body's SHA-256: Stripe's retries of the same body add nothing.
func (s *Store) Quarantine(ctx context.Context, reason, detail, signature string, payload []byte) error {
	sum := sha256.Sum256(payload)
	_, err := s.pool.Exec(ctx, `INSERT INTO ledger.webhook_quarantine (reason, detail, signature, payload, sha256)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING`, reason, detail, signature, payload, sum[:])
	if err != nil {
		return fmt.Errorf("could not quarantine body: %w", err)
	}
	return nil
}
