package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/domain"
)

// AppendV1 appends events the way the ledger did before the chain's version 2: through the
// version-1 ledger.append_events of migrations/003 (on a database migrated only that far), with
// version-1 content digests. Tests build a real version-1 log with it.
func (s *Store) AppendV1(ctx context.Context, events []domain.Event) error {
	var a appendArrays
	var digests [][]byte
	for i := range events {
		r := Record{Event: events[i]}
		if r.ReceivedAt.IsZero() {
			r.ReceivedAt = s.now()
		}
		r.ReceivedAt = r.ReceivedAt.UTC().Truncate(time.Microsecond)
		a.add(&r, [32]byte{})
		d := contentDigestV1(&r)
		digests = append(digests, d[:])
	}
	args := a.args()
	args = append(args[:12], digests) // the version-1 function takes no payload digests
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `SELECT count(*) FROM ledger.append_events(
		$1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::boolean[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::timestamptz[], $11::bytea[], $12::text[], $13::bytea[])`, args...); err != nil {
		return fmt.Errorf("version-1 append: %w", err)
	}
	return tx.Commit(ctx)
}

// ChainGoAndSQL is every row's version-2 hash recomputed in Go from the stored columns, and the
// same computed by ledger.content_digest_v2 and ledger.chain_v2_link: a test compares them.
func ChainGoAndSQL(ctx context.Context, q Querier) (goHashes, sqlHashes map[int64][32]byte, err error) {
	rows, err := q.Query(ctx, `SELECT `+recordColumns+` FROM ledger.events ORDER BY position`)
	if err != nil {
		return nil, nil, err
	}
	recs, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, nil, err
	}
	goHashes, sqlHashes = map[int64][32]byte{}, map[int64][32]byte{}
	for i := range recs {
		goHashes[recs[i].Position] = linkHash(recs[i].PrevHash, recs[i].Position, contentDigest(&recs[i]))
	}
	rows, err = q.Query(ctx, `SELECT position,
		ledger.chain_v2_link(prev_hash, position, ledger.content_digest_v2(event_id, type, api_version, created,
			livemode, account, object_type, object_id, source, received_at, payload_digest, signature, hash_v1))
		FROM ledger.events`)
	if err != nil {
		return nil, nil, err
	}
	var pos int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&pos, &h}, func() error {
		sqlHashes[pos] = [32]byte(h)
		return nil
	})
	return goHashes, sqlHashes, err
}
