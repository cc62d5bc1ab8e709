package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/domain"
)

// Verification is what Verify found. Broken is nil when the whole chain holds.
type Verification struct {
	Count    int64    // events checked
	HeadHash [32]byte // hash of the last event (the genesis hash for an empty log)
	// Redacted counts the events whose payload a redaction changed: checked against the digest
	// their redaction event recorded rather than their original one.
	Redacted int64
	// Redactions counts the redaction records (ledger.redaction events) the walk met. Verify
	// checks each names the rows it changed with their payloads' digests; who wrote it, it cannot
	// tell (VerifyOptions.Redaction, and integrity.VerifyCheckpoints, authenticate them).
	Redactions int64
	// V1UpTo is the last position re-chained from version 1 (0: the log began at version 2);
	// V1Checked counts the rows up to there whose version-1 link was recomputed (all but the
	// redacted ones, whose original bytes are gone).
	V1UpTo    int64
	V1Checked int64
	Broken    *BrokenLink
}

// BrokenLink is the first row whose stored content no longer matches the chain.
type BrokenLink struct {
	Position int64
	EventID  string
	Reason   string
}

func (b *BrokenLink) Error() string {
	return fmt.Sprintf("hash chain broken at position %d (%s): %s", b.Position, b.EventID, b.Reason)
}

// Link is one row's place in the chain, as Verify checked it: what an external checkpoint
// (position, hash) is compared with. A checkpoint taken before the log was re-chained holds a
// version-1 hash, taken after a version-2 one.
type Link struct {
	Position int64
	EventID  string
	Hash     [32]byte  // version 2
	HashV1   *[32]byte // version 1, for rows re-chained by migration 011; nil after
	Redacted bool
}

// Matches says whether hash is this row's hash in either chain, and in which version.
func (l Link) Matches(hash [32]byte) (version int, ok bool) {
	switch {
	case hash == l.Hash:
		return 2, true
	case l.HashV1 != nil && hash == *l.HashV1:
		return 1, true
	}
	return 0, false
}

// VerifyOptions adds to what Verify does.
type VerifyOptions struct {
	// Each, if set, is called with every row's link once it has been checked, in position order
	// (a checkpoint check compares its positions on the way). An error stops the walk.
	Each func(Link) error
	// Redaction, if set, is called with every redaction record once the walk has checked it
	// against the rows it changed, with the event's ID and position: integrity.VerifyCheckpoints
	// authenticates its signature there. An error stops the walk.
	Redaction func(eventID string, position int64, rec domain.Redaction) error
}

// chainMigrationSQL is where the log moved to version 2 (migrations/011_chain_v2.sql).
const chainMigrationSQL = `SELECT up_to_position, v1_head_hash FROM ledger.chain_migrations WHERE version = 2`

// Verify walks the whole log in position order and recomputes every hash. It reports the first
// row that was edited, removed or re-ordered behind the triggers' back (a superuser can disable
// them), and checks the head row agrees with the last event. It reads in one streaming query, so
// memory stays flat whatever the log's size (but for the redacted rows awaiting their redaction
// event further on).
//
// Every row is checked on the version-2 chain: its payload against payload_digest (a redacted
// one against the digest its redaction event recorded, which must come later in the log and name
// it), and its link. Rows re-chained from version 1 are also checked on the old chain: each
// hash_v1 is recomputed from the previous one where the payload is as received, and the old chain
// must end at the head the migration recorded.
func (s *Store) Verify(ctx context.Context) (Verification, error) {
	return s.VerifyWith(ctx, VerifyOptions{})
}

// VerifyWith is Verify with options.
func (s *Store) VerifyWith(ctx context.Context, opts VerifyOptions) (Verification, error) {
	var v Verification
	// REPEATABLE READ: the head row and the events are read from one snapshot, so an append
	// committing mid-walk cannot make a sound log look broken.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return v, fmt.Errorf("could not begin verification: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only

	var head Head
	var headHash []byte
	if err := tx.QueryRow(ctx, headSQL).Scan(&head.Position, &headHash); err != nil {
		return v, fmt.Errorf("could not read the log head: %w", err)
	}
	copy(head.Hash[:], headHash)
	var v1Head [32]byte
	var v1HeadHash []byte
	if err := tx.QueryRow(ctx, chainMigrationSQL).Scan(&v.V1UpTo, &v1HeadHash); err != nil {
		return v, fmt.Errorf("could not read where the chain moved to version 2: %w", err)
	}
	copy(v1Head[:], v1HeadHash)

	rows, err := tx.Query(ctx, `SELECT `+recordColumns+` FROM ledger.events ORDER BY position`)
	if err != nil {
		return v, fmt.Errorf("could not read events: %w", err)
	}
	defer rows.Close()
	prev, prevV1 := GenesisHash, GenesisHash
	// Redacted rows waiting for their redaction event: redaction position -> row -> SHA-256 of
	// the payload as stored now.
	pending := map[int64]map[int64]redactedRow{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return v, fmt.Errorf("could not read event: %w", err)
		}
		broken := func(reason string) (Verification, error) {
			v.Broken = &BrokenLink{Position: r.Position, EventID: r.ID, Reason: reason}
			return v, nil
		}
		switch {
		case r.Position != v.Count+1:
			return broken(fmt.Sprintf("expected position %d: a row is missing or was renumbered", v.Count+1))
		case r.PrevHash != prev:
			return broken("prev_hash does not match the previous row's hash")
		case !r.Redacted() && sha256.Sum256(r.Payload) != r.PayloadDigest:
			return broken("payload does not match its digest: the payload was edited")
		case r.Redacted() && r.RedactedBy <= r.Position:
			return broken("redacted by an event that is not later in the log")
		case linkHash(prev, r.Position, contentDigest(&r)) != r.Hash:
			return broken("content does not match its hash: the row was edited")
		}
		if r.Redacted() {
			v.Redacted++
			if pending[r.RedactedBy] == nil {
				pending[r.RedactedBy] = map[int64]redactedRow{}
			}
			pending[r.RedactedBy][r.Position] = redactedRow{id: r.ID, sum: sha256.Sum256(r.Payload)}
		}
		if r.Position <= v.V1UpTo {
			if r.HashV1 == nil {
				return broken("no version-1 hash on a row the chain migration re-chained")
			}
			if !r.Redacted() {
				if linkHashV1(prevV1, r.Position, contentDigestV1(&r)) != *r.HashV1 {
					return broken("content does not match its version-1 hash: the row was edited")
				}
				v.V1Checked++
			}
			prevV1 = *r.HashV1
			if r.Position == v.V1UpTo && prevV1 != v1Head {
				return broken("the version-1 chain does not end at the head the chain migration recorded")
			}
		} else if r.HashV1 != nil {
			return broken("a version-1 hash on a row appended after the chain migration")
		}
		if r.Type == domain.RedactionType && r.Source == domain.SourceLedger {
			red, reason := checkRedaction(&r, pending[r.Position])
			if reason != "" {
				return broken(reason)
			}
			delete(pending, r.Position)
			v.Redactions++
			if opts.Redaction != nil {
				if err := opts.Redaction(r.ID, r.Position, red); err != nil {
					return v, err
				}
			}
		}
		prev = r.Hash
		v.Count++
		v.HeadHash = prev
		if opts.Each != nil {
			if err := opts.Each(Link{Position: r.Position, EventID: r.ID, Hash: r.Hash, HashV1: r.HashV1, Redacted: r.Redacted()}); err != nil {
				return v, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("could not read events: %w", err)
	}
	for by, rows := range pending {
		for pos, row := range rows {
			v.Broken = &BrokenLink{Position: pos, EventID: row.id,
				Reason: fmt.Sprintf("redacted by position %d, which is not a redaction event of the log", by)}
			return v, nil
		}
	}
	if v.Count < v.V1UpTo {
		v.Broken = &BrokenLink{Position: v.Count + 1, EventID: "ledger.chain_migrations",
			Reason: fmt.Sprintf("the chain migration re-chained up to position %d, the log ends at %d", v.V1UpTo, v.Count)}
		return v, nil
	}
	if head.Position != v.Count || head.Hash != prev {
		v.Broken = &BrokenLink{Position: head.Position, EventID: "ledger.log_head",
			Reason: fmt.Sprintf("head says position %d hash %s, the log ends at %d hash %s",
				head.Position, hex.EncodeToString(head.Hash[:8]), v.Count, hex.EncodeToString(prev[:8]))}
	}
	return v, nil
}

type redactedRow struct {
	id  string
	sum [32]byte
}

// checkRedaction checks a redaction event names every row that points at it, with the digest of
// the payload now stored; the reason is "" when it does.
func checkRedaction(r *Record, rows map[int64]redactedRow) (domain.Redaction, string) {
	red, err := domain.ParseRedaction(r.Payload)
	if err != nil {
		return red, "the redaction record cannot be read: " + err.Error()
	}
	listed := make(map[int64]string, len(red.Events))
	for _, e := range red.Events {
		listed[e.Position] = e.PayloadSHA256
	}
	for pos, row := range rows {
		sum, ok := listed[pos]
		if !ok {
			return red, fmt.Sprintf("position %d (%s) points at this redaction, which does not name it", pos, row.id)
		}
		want, err := hex.DecodeString(sum)
		if err != nil || !bytes.Equal(want, row.sum[:]) {
			return red, fmt.Sprintf("the payload at position %d (%s) is not the one this redaction left: it was edited", pos, row.id)
		}
	}
	return red, ""
}

// ErrNoPosition is returned by HashAt for a position the log does not hold.
var ErrNoPosition = errors.New("the log has no event at that position")

// HashAt is the chain at one position, without walking it (Verify does that): what a
// checkpoint's (position, hash) is compared with — Link.Matches says in which version.
func (s *Store) HashAt(ctx context.Context, position int64) (Link, error) {
	var l Link
	var hash, hashV1 []byte
	err := s.q.QueryRow(ctx, `SELECT position, event_id, hash, hash_v1, redacted_by_position IS NOT NULL
		FROM ledger.events WHERE position = $1`, position).Scan(&l.Position, &l.EventID, &hash, &hashV1, &l.Redacted)
	if errors.Is(err, pgx.ErrNoRows) {
		return Link{}, fmt.Errorf("%w: %d", ErrNoPosition, position)
	}
	if err != nil {
		return Link{}, fmt.Errorf("could not read the chain at %d: %w", position, err)
	}
	copy(l.Hash[:], hash)
	if hashV1 != nil {
		l.HashV1 = new([32]byte)
		copy(l.HashV1[:], hashV1)
	}
	return l, nil
}
