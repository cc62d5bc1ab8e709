package eventstore

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Verification is what Verify found. Broken is nil when the whole chain holds.
type Verification struct {
	Count    int64    // events checked
	HeadHash [32]byte // hash of the last event (the genesis hash for an empty log)
	Broken   *BrokenLink
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

// Verify walks the whole log in position order and recomputes every hash. It reports the first
// row that was edited, removed or re-ordered behind the triggers' back (a superuser can disable
// them), and checks the head row agrees with the last event. It reads in one streaming query, so
// memory stays flat whatever the log's size.
func (s *Store) Verify(ctx context.Context) (Verification, error) {
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

	rows, err := tx.Query(ctx, `SELECT `+recordColumns+` FROM ledger.events ORDER BY position`)
	if err != nil {
		return v, fmt.Errorf("could not read events: %w", err)
	}
	defer rows.Close()
	prev := GenesisHash
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
		case chainHash(prev, &r) != r.Hash:
			return broken("content does not match its hash: the row was edited")
		}
		prev = r.Hash
		v.Count++
		v.HeadHash = prev
	}
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("could not read events: %w", err)
	}
	if head.Position != v.Count || head.Hash != prev {
		v.Broken = &BrokenLink{Position: head.Position, EventID: "ledger.log_head",
			Reason: fmt.Sprintf("head says position %d hash %s, the log ends at %d hash %s",
				head.Position, hex.EncodeToString(head.Hash[:8]), v.Count, hex.EncodeToString(prev[:8]))}
	}
	return v, nil
}
