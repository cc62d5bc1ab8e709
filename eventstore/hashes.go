package eventstore

import (
	"context"
	"fmt"
)

// ChainTag names the chain's encoding (hash.go): what a checkpoint of this log says it signed.
const ChainTag = "ledger.events/v1"

// HashesAt returns the stored chain hash at each of the given positions that exists (position 0
// is the genesis hash); a position past the head is absent from the answer. An external
// checkpoint of (position, hash) is checked against it, after Verify has shown the chain holds
// from the genesis to the head.
func (s *Store) HashesAt(ctx context.Context, positions []int64) (map[int64][32]byte, error) {
	out := make(map[int64][32]byte, len(positions))
	var want []int64
	for _, p := range positions {
		if p == 0 {
			out[0] = GenesisHash
			continue
		}
		want = append(want, p)
	}
	if len(want) == 0 {
		return out, nil
	}
	rows, err := s.q.Query(ctx, `SELECT position, hash FROM ledger.events WHERE position = ANY($1)`, want)
	if err != nil {
		return nil, fmt.Errorf("could not read the log's hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p int64
		var h []byte
		if err := rows.Scan(&p, &h); err != nil {
			return nil, fmt.Errorf("could not read the log's hashes: %w", err)
		}
		var hh [32]byte
		copy(hh[:], h)
		out[p] = hh
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("could not read the log's hashes: %w", err)
	}
	return out, nil
}

// ChainHash is a row's hash given the previous row's, by the encoding in hash.go: what an
// external verifier recomputes, and what a tampering test uses to rewrite a chain the way a
// superuser could.
func ChainHash(prev [32]byte, r *Record) [32]byte { return chainHash(prev, r) }

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
