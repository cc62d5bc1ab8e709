// Package eventstore is the ledger's append-only log of Stripe events in Postgres (ledger.events).
//
// Appends are idempotent by event ID and batch-first: Append takes many events and answers each
// one. Every append transaction (one call of ledger.append_events) first locks the single row of
// ledger.log_head, then assigns the next positions and extends the hash chain, so positions are
// dense and in commit order: a reader that tails "position > N" sees every event exactly once and
// can never be overtaken by a smaller position committing later (the gap a bigserial leaves under
// concurrency). Throughput comes from putting many events in each transaction (see Appender), not
// from weakening that lock.
package eventstore

import (
	"context"
	"crypto/sha256"
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
	// RedactedBy is the position of the ledger.redaction event that replaced personal values in
	// Payload; 0 while the payload is the exact bytes received. A redacted webhook payload no
	// longer matches its Stripe-Signature: a re-check reports it as redacted, not as failed.
	RedactedBy int64
	// Endpoint is the Stripe endpoint a webhook came to ("" for other sources, and for webhooks
	// appended before endpoints were told apart); HoldReason why the event disagrees with it
	// ("" when it agrees), and Released whether an operator has let it into the read models all
	// the same (Held). Endpoint and HoldReason are written at append and never change; they are
	// not in the chain (migrations/013 says why).
	Endpoint   Endpoint
	HoldReason string
	Released   bool
	// The chain (hash.go), read by Get and Verify only.
	PayloadDigest [32]byte  // SHA-256 of the payload as received: unchanged by a redaction
	HashV1        *[32]byte // the row's version-1 hash, for rows re-chained by migration 011
	PrevHash      [32]byte
	Hash          [32]byte
}

// Redacted says whether personal values were removed from the payload (see RedactedBy).
func (r *Record) Redacted() bool { return r.RedactedBy != 0 }

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

// Store reads and appends ledger.events. It is the log's only owner: no other package writes SQL
// against the table.
type Store struct {
	pool     *pgxpool.Pool
	q        Querier // what reads run on: the pool, or a caller's transaction (With)
	now      func() time.Time
	appended *broadcast // closed on every commit of an append through this store (tail.go)
}

// New returns a Store over pool. The schema must be migrated (see package migrations).
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, q: pool, now: time.Now, appended: newBroadcast()}
}

const (
	headSQL = `SELECT position, hash FROM ledger.log_head`

	recordColumns = readColumns + `, payload, signature, payload_digest, hash_v1, prev_hash, hash`
)

// Append writes events to the log in one transaction and answers each in order. Events whose ID
// is already in the log (or earlier in the same call) are duplicates and answer the stored
// position. Invalid events answer their own Err and do not stop the others. The returned error is
// for the whole call (database unreachable, context done, commit failed): then no event of the
// call may be treated as appended. Some may have been committed all the same (an answer lost on
// the way back); appending them again is safe, as appends are idempotent.
//
// Everything that does not need the log's tip (validation, hashing each event's content,
// encoding the batch) happens before the request leaves; the locked part — duplicate lookup,
// positions, chain links, insert, head update — is one statement on the server
// (ledger.append_events), so the head lock is held only for the server's own work and the next
// batch can already be waiting for it.
func (s *Store) Append(ctx context.Context, events []domain.Event) ([]Result, error) {
	return s.AppendDelivered(ctx, events, nil)
}

// AppendDelivered appends like Append, each webhook event with the endpoint it came to
// (endpoints[i] for events[i]; nil or "" for none). The endpoint and, when the event disagrees
// with it, the reason it is held out of the read models (Endpoint.HoldReason) are stored in the
// row, in the append's transaction. A duplicate keeps the attribution of the first delivery. An
// endpoint on an event that is not a webhook, or one that is not an Endpoint, is that event's Err.
func (s *Store) AppendDelivered(ctx context.Context, events []domain.Event, endpoints []Endpoint) ([]Result, error) {
	p := s.prepareAppend(events, endpoints)
	if len(p.cols.id) == 0 {
		return p.results, nil
	}
	// BEGIN, the append and COMMIT go in one round trip; the answers count only if COMMIT
	// succeeded, so nothing is reported appended that a failed commit lost. (On any error the
	// pool discards the connection rather than reuse one left inside a transaction.)
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	p.queue(batch)
	batch.Queue("COMMIT")
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("could not append events: %w", err)
	}
	s.appended.signal()
	return p.answer(), nil
}

// AppendIn appends events like Append, but inside the caller's transaction tx: they commit, and
// take their positions, with whatever else tx does (a redaction appends its record in the
// transaction that redacts). The log's head stays locked from this call until tx ends, so every
// other append waits for it: keep what follows short. Appends through this store are woken only
// by the next Append; a tail sees these within its PollInterval.
func (s *Store) AppendIn(ctx context.Context, tx pgx.Tx, events []domain.Event) ([]Result, error) {
	p := s.prepareAppend(events, nil)
	if len(p.cols.id) == 0 {
		return p.results, nil
	}
	batch := &pgx.Batch{}
	p.queue(batch)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("could not append events: %w", err)
	}
	return p.answer(), nil
}

// pendingAppend is a batch made ready to send: validated, folded, hashed and encoded.
type pendingAppend struct {
	results []Result
	cols    appendArrays
	sent    []int // event index -> index in cols, -1 when invalid
	answers []Result
	// renderings are repeats within the call at another API version than the first copy (two
	// endpoints' deliveries of one event, batched together): kept as renderings once the first
	// is in the log (renderingsSQL).
	renderings []*Record
}

// prepareAppend does everything that does not need the log's tip: validation, folding repeats,
// hashing each event's payload and content, encoding the batch.
func (s *Store) prepareAppend(events []domain.Event, endpoints []Endpoint) *pendingAppend {
	p := &pendingAppend{results: make([]Result, len(events)), sent: make([]int, len(events))}
	now := s.now().UTC().Truncate(time.Microsecond)
	first := make(map[string]int, len(events)) // event ID -> index in cols
	for i := range events {
		p.sent[i] = -1
		if err := events[i].Validate(); err != nil {
			p.results[i].Err = err
			continue
		}
		var ep Endpoint
		if i < len(endpoints) {
			ep = endpoints[i]
		}
		if ep != "" && (!ep.Valid() || events[i].Source != domain.SourceWebhook) {
			p.results[i].Err = fmt.Errorf("endpoint %q: want one of %v, on a webhook event", ep, Endpoints)
			continue
		}
		if k, ok := first[events[i].ID]; ok {
			p.sent[i] = k // a repeat within the call: answered like the first
			if events[i].APIVersion != p.cols.apiVersion[k] {
				r := &Record{Event: events[i], Endpoint: ep}
				if r.ReceivedAt.IsZero() {
					r.ReceivedAt = now
				}
				p.renderings = append(p.renderings, r)
			}
			continue
		}
		r := Record{Event: events[i], Endpoint: ep, HoldReason: ep.HoldReason(events[i].Livemode, events[i].Account)}
		if r.ReceivedAt.IsZero() {
			r.ReceivedAt = now
		}
		r.ReceivedAt = r.ReceivedAt.UTC().Truncate(time.Microsecond)
		r.PayloadDigest = sha256.Sum256(r.Payload)
		first[r.ID] = len(p.cols.id)
		p.sent[i] = len(p.cols.id)
		p.cols.add(&r, contentDigest(&r))
	}
	p.answers = make([]Result, len(p.cols.id))
	return p
}

// renderingsSQL keeps renderings of events at other API versions than the log holds them at, as
// ledger.append_events does for a duplicate of a stored event (migrations/024), for the repeats
// of one call: queued after the append, so the first copy is in the log. Never for a redacted
// event, whose personal data an unredacted copy would bring back.
const renderingsSQL = `INSERT INTO ledger.event_renderings (event_id, api_version, payload, source, received_at, endpoint)
	SELECT u.id, u.version, u.payload, u.source, u.received_at, nullif(u.endpoint, '')
	FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::timestamptz[], $6::text[]) AS u(id, version, payload, source, received_at, endpoint)
	JOIN ledger.events e ON e.event_id = u.id
	WHERE e.api_version <> u.version AND e.redacted_by_position IS NULL
	ON CONFLICT (event_id, api_version) DO NOTHING`

// queue puts the append statement on b; its answers land in p.answers when b's results are read.
func (p *pendingAppend) queue(b *pgx.Batch) {
	defer p.queueRenderings(b)
	b.Queue(appendSQL, p.cols.args()...).Query(func(rows pgx.Rows) error {
		var idx int32
		var pos int64
		var dup bool
		_, err := pgx.ForEachRow(rows, []any{&idx, &pos, &dup}, func() error {
			if idx < 1 || int(idx) > len(p.answers) {
				return fmt.Errorf("append answered for event %d of %d", idx, len(p.answers))
			}
			p.answers[idx-1] = Result{Position: pos, Duplicate: dup}
			return nil
		})
		return err
	})
}

// queueRenderings puts the insert of the call's repeats at other API versions on b.
func (p *pendingAppend) queueRenderings(b *pgx.Batch) {
	if len(p.renderings) == 0 {
		return
	}
	n := len(p.renderings)
	ids, versions, sources, endpoints := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, received := make([][]byte, n), make([]time.Time, n)
	for i, r := range p.renderings {
		ids[i], versions[i], payloads[i], sources[i], received[i], endpoints[i] = r.ID, r.APIVersion, r.Payload, string(r.Source), r.ReceivedAt, string(r.Endpoint)
	}
	b.Queue(renderingsSQL, ids, versions, payloads, sources, received, endpoints)
}

// answer maps the statement's answers back to the events of the call.
func (p *pendingAppend) answer() []Result {
	seen := make([]bool, len(p.answers))
	for i, k := range p.sent {
		if k < 0 {
			continue
		}
		p.results[i] = p.answers[k]
		if seen[k] {
			p.results[i].Duplicate = true
		}
		seen[k] = true
	}
	return p.results
}

// appendSQL's lock on the log head is released at COMMIT.
const appendSQL = `SELECT idx, event_position, duplicate FROM ledger.append_events(
	$1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::boolean[], $6::text[], $7::text[],
	$8::text[], $9::text[], $10::timestamptz[], $11::bytea[], $12::text[], $13::bytea[], $14::bytea[],
	$15::text[], $16::text[])`

// appendArrays are the batch as parallel columns, the shape ledger.append_events takes.
type appendArrays struct {
	id, typ, apiVersion, account, objectType, objectID, src []string
	created, receivedAt                                     []time.Time
	livemode                                                []bool
	payload, payloadDigest, digest                          [][]byte
	signature, endpoint, holdReason                         []*string
}

func (a *appendArrays) add(r *Record, digest [32]byte) {
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
	a.endpoint = append(a.endpoint, nullString(string(r.Endpoint)))
	a.holdReason = append(a.holdReason, nullString(r.HoldReason))
	a.payloadDigest = append(a.payloadDigest, r.PayloadDigest[:])
	a.digest = append(a.digest, digest[:])
}

func (a *appendArrays) args() []any {
	return []any{a.id, a.typ, a.apiVersion, a.created, a.livemode, a.account, a.objectType,
		a.objectID, a.src, a.receivedAt, a.payload, a.signature, a.payloadDigest, a.digest, a.endpoint, a.holdReason}
}

// nullString is s, or NULL for "".
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func scanRecord(row pgx.CollectableRow) (Record, error) {
	var r Record
	var source string
	var sig *string
	var digest, hashV1, prev, hash []byte
	err := row.Scan(&r.Position, &r.ID, &r.Type, &r.APIVersion, &r.Created, &r.Livemode, &r.Account,
		&r.ObjectType, &r.ObjectID, &source, &r.ReceivedAt, &r.RedactedBy, &r.Endpoint, &r.HoldReason, &r.Released,
		&r.Payload, &sig, &digest, &hashV1, &prev, &hash)
	if err != nil {
		return Record{}, err
	}
	copy(r.PayloadDigest[:], digest)
	if hashV1 != nil {
		r.HashV1 = new([32]byte)
		copy(r.HashV1[:], hashV1)
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
