package eventstore

import (
	"context"
	"fmt"
)

// ChainTag names the chain's encoding (hash.go): what a checkpoint of this log says it signed.
// ChainTagV1 is the encoding before migration 011; checkpoints signed over it are checked
// against the version-1 hashes the migration kept.
const (
	ChainTag   = "ledger.events/v2"
	ChainTagV1 = "ledger.events/v1"
)

// ChainHash is a row's version-2 hash given the previous row's, by the encoding in hash.go
// (r.PayloadDigest and r.HashV1 as stored): what an external verifier recomputes, and what a
// tampering test uses to rewrite a chain the way a superuser could.
func ChainHash(prev [32]byte, r *Record) [32]byte {
	return linkHash(prev, r.Position, contentDigest(r))
}

// IDsAt returns the event ID at each of the given positions that exists.
func (s *Store) IDsAt(ctx context.Context, positions []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(positions))
	if len(positions) == 0 {
		return out, nil
	}
	rows, err := s.q.Query(ctx, `SELECT position, event_id FROM ledger.events WHERE position = ANY($1)`, positions)
	if err != nil {
		return nil, fmt.Errorf("could not read the log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p int64
		var id string
		if err := rows.Scan(&p, &id); err != nil {
			return nil, fmt.Errorf("could not read the log: %w", err)
		}
		out[p] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("could not read the log: %w", err)
	}
	return out, nil
}
