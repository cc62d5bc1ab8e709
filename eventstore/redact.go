package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Redaction's part of the log: the one change ledger.events allows to a stored row
// (migrations/011_chain_v2.sql). Package redaction decides what to erase; these write it.

// RedactedPayload is the new payload of the event at Position.
type RedactedPayload struct {
	Position int64
	Payload  []byte
}

// Redact replaces the payloads in tx and marks each row as changed by the ledger.redaction event
// at position by, which must already be in the log (appended in tx with AppendIn). Every other
// column stays: payload_digest, and so the chain, are the original's. The database refuses any
// other change; so does Redact, all or nothing, when a position is not in the log.
func Redact(ctx context.Context, tx pgx.Tx, by int64, payloads []RedactedPayload) error {
	positions := make([]int64, len(payloads))
	bodies := make([][]byte, len(payloads))
	for i, p := range payloads {
		positions[i], bodies[i] = p.Position, p.Payload
	}
	tag, err := tx.Exec(ctx, `UPDATE ledger.events e SET payload = u.payload, redacted_by_position = $1
		FROM unnest($2::bigint[], $3::bytea[]) AS u(position, payload) WHERE e.position = u.position`, by, positions, bodies)
	if err != nil {
		return fmt.Errorf("could not redact %d events: %w", len(payloads), err)
	}
	if int(tag.RowsAffected()) != len(payloads) {
		return fmt.Errorf("could not redact %d events: %d of them are in the log", len(payloads), tag.RowsAffected())
	}
	// Their other renderings (ledger.event_renderings) carry the same personal data and are
	// copies outside the chain: they go.
	if _, err := tx.Exec(ctx, `DELETE FROM ledger.event_renderings r USING ledger.events e
		WHERE e.position = ANY($1::bigint[]) AND r.event_id = e.event_id`, positions); err != nil {
		return fmt.Errorf("could not erase the redacted events' other renderings: %w", err)
	}
	return nil
}

// LockHead takes the log's head lock in tx, as every append does, and returns the head: no event
// is appended until tx ends, so what tx reads of the log afterwards is all of it.
func LockHead(ctx context.Context, tx pgx.Tx) (Head, error) {
	var h Head
	var hash []byte
	if err := tx.QueryRow(ctx, headSQL+` FOR UPDATE`).Scan(&h.Position, &hash); err != nil {
		return Head{}, fmt.Errorf("could not lock the log head: %w", err)
	}
	copy(h.Hash[:], hash)
	return h, nil
}

// firstEditedSQL is ledger.guard_event_update's rule that a row be intact before a redaction
// changes it (migrations/011_chain_v2.sql), for many rows at once: its payload is the one
// payload_digest covers or, redacted before, the one its last redaction recorded.
const firstEditedSQL = `SELECT e.position, e.event_id
	FROM ledger.events e
	WHERE e.position = ANY($1::bigint[])
	  AND NOT CASE WHEN e.redacted_by_position IS NULL THEN sha256(e.payload) = e.payload_digest
	      ELSE EXISTS (SELECT 1
	                   FROM ledger.events r,
	                        jsonb_array_elements(convert_from(r.payload, 'UTF8')::jsonb -> 'data' -> 'object' -> 'events') AS x
	                   WHERE r.position = e.redacted_by_position AND r.type = 'ledger.redaction' AND r.source = 'ledger'
	                     AND x ->> 'position' = e.position::text
	                     AND x ->> 'payload_sha256' = encode(sha256(e.payload), 'hex'))
	      END
	ORDER BY e.position
	LIMIT 1`

// FirstEdited returns the first of positions whose payload was edited behind the triggers' back
// (ok false when every one is intact): what the database would refuse to redact.
func (s *Store) FirstEdited(ctx context.Context, positions []int64) (position int64, eventID string, ok bool, err error) {
	err = s.q.QueryRow(ctx, firstEditedSQL, positions).Scan(&position, &eventID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("could not check the payloads are intact: %w", err)
	}
	return position, eventID, true, nil
}
