package eventstore

import (
	"context"
	"fmt"
	"time"
)

// positionAtSQL binary-searches the log for the last position accepted at or before $1, one
// primary-key lookup per step (about 20 for a million events) in one round trip. Positions are
// dense and follow commit order; received_at is stamped as the ledger accepts an event, just
// before the append that takes the log's lock, so it follows the positions (to within the wait
// of appends that overlap, where the position decides).
const positionAtSQL = `WITH RECURSIVE s(lo, hi) AS (
	SELECT 0::bigint, (SELECT position FROM ledger.log_head)
	UNION ALL
	SELECT CASE WHEN e.received_at <= $1 THEN x.m ELSE s.lo END,
	       CASE WHEN e.received_at <= $1 THEN s.hi ELSE x.m - 1 END
	FROM s CROSS JOIN LATERAL (SELECT (s.lo + s.hi + 1) / 2 AS m) x JOIN ledger.events e ON e.position = x.m
	WHERE s.lo < s.hi
)
SELECT lo FROM s WHERE lo = hi`

// PositionAt is the log position the ledger had reached at t: the last event it had accepted
// by then (0 when none). It is what known_at=<time> cuts the log at.
func (s *Store) PositionAt(ctx context.Context, t time.Time) (int64, error) {
	var p int64
	if err := s.q.QueryRow(ctx, positionAtSQL, t).Scan(&p); err != nil {
		return 0, fmt.Errorf("could not find the log's position at %s: %w", t.Format(time.RFC3339), err)
	}
	return p, nil
}
