package projections

import (
	"context"
	"testing"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/stripeledger/ledger/internal/testkit"
)

// The checkpoint moves only through a position the runner recorded as written in the same
// transaction: a batch cut short before its rows were written commits no checkpoint.
func TestAckMovesOnlyAFlushedCheckpoint(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO ledger.projection_state (name, position) VALUES ($1, 10)`, StateName); err != nil {
		t.Fatal(err)
	}
	ack := func(first, offset int64, flushed string) int64 {
		t.Helper()
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if flushed != "" {
			if _, err := tx.Exec(ctx, `SELECT set_config('`+flushedSetting+`', $1, true)`, flushed); err != nil {
				t.Fatal(err)
			}
		}
		q, _ := stateOffsets{}.AckMessageQuery(wsql.AckMessageQueryParams{ConsumerGroup: StateName, LastRow: wsql.Row{Offset: offset},
			Rows: []wsql.Row{{Offset: first}, {Offset: offset}}})
		if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		var pos int64
		if err := db.Pool.QueryRow(ctx, `SELECT position FROM ledger.projection_state WHERE name = $1`, StateName).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		return pos
	}
	if got := ack(11, 15, ""); got != 10 {
		t.Fatalf("nothing flushed: checkpoint moved to %d", got)
	}
	if got := ack(11, 15, "20"); got != 10 {
		t.Fatalf("acknowledging 15 of a batch flushed through 20 (cut short): checkpoint moved to %d", got)
	}
	if got := ack(11, 20, "20"); got != 20 {
		t.Fatalf("flushed through 20: checkpoint at %d", got)
	}
	if got := ack(11, 12, "12"); got != 20 {
		t.Fatalf("a stale batch moved the checkpoint back to %d", got)
	}
	// A replay set the checkpoint back to 5 while a batch read from a snapshot that still saw 20:
	// acknowledging that batch (21..30) must leave 5, so 6..20 are folded again.
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger.projection_state SET position = 5 WHERE name = $1`, StateName); err != nil {
		t.Fatal(err)
	}
	if got := ack(21, 30, "30"); got != 5 {
		t.Fatalf("a batch read before a replay's swap moved the checkpoint past the replay's: %d", got)
	}
}
