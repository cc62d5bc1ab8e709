package eventstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/migrations"
)

// v1Log builds a real version-1 log: a database migrated to 010 only, and n events appended
// through the version-1 ledger.append_events, of every shape the hash covers (signed and not,
// Connect accounts, live mode, no API version, non-ASCII text, microsecond receive times). It
// returns the pool and each position's version-1 hash.
func v1Log(t *testing.T, n int) (*testkit.DB, *pgxpool.Pool, map[int64][32]byte) {
	t.Helper()
	ctx := context.Background()
	db := testkit.NewEmpty(t)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, to, err := migrations.ApplyTo(ctx, conn, 10); err != nil || to != 10 {
		t.Fatalf("migrate to 10: %d %v", to, err)
	}
	conn.Close(ctx)
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.New(pool)
	base := time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)
	for b := 0; b < n; b += 7 {
		var batch []domain.Event
		for i := b; i < min(b+7, n); i++ {
			src := []domain.Source{domain.SourceWebhook, domain.SourceReconcile, domain.SourceImport, domain.SourceSnapshot}[i%4]
			e := testkit.Event(fmt.Sprintf("evt_v1_%03d", i), "customer.subscription.updated", fmt.Sprintf("sub_%d", i%5), 1740000000+int64(i), 300+40*i, src)
			if i%3 == 0 {
				e.Account = "acct_ünïcode"
				e.Livemode = true
			}
			if i%5 == 0 {
				e.APIVersion = ""
			}
			e.ReceivedAt = base.Add(time.Duration(i) * 1001 * time.Microsecond)
			batch = append(batch, e)
		}
		if err := store.AppendV1(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	v1 := map[int64][32]byte{}
	rows, _ := pool.Query(ctx, `SELECT position, hash FROM ledger.events`)
	var pos int64
	var h []byte
	if _, err := pgx.ForEachRow(rows, []any{&pos, &h}, func() error { v1[pos] = [32]byte(h); return nil }); err != nil || len(v1) != n {
		t.Fatalf("read the v1 chain: %d rows, %v", len(v1), err)
	}
	return db, pool, v1
}

func migrate(t *testing.T, db *testkit.DB) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if from, to, err := migrations.ApplyTo(ctx, conn, -1); err != nil || from != 10 || to < 11 {
		t.Fatalf("migrate %d -> %d: %v", from, to, err)
	}
}

// Migration 011 re-chains a version-1 log in place: verify then holds over the version-2 chain
// and the old one, every old hash is still found at its position (so old checkpoints hold), new
// appends extend the new chain, and the SQL that re-chained agrees with the Go code Verify runs.
func TestChainMigrationRechainsAV1Log(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, pool, v1 := v1Log(t, 40)
	store := eventstore.New(pool)
	oldHead, err := store.Head(ctx)
	if err != nil || oldHead.Position != 40 || oldHead.Hash != v1[40] {
		t.Fatalf("v1 head %+v %v", oldHead, err)
	}
	migrate(t, db)

	v, err := store.Verify(ctx)
	if err != nil || v.Broken != nil {
		t.Fatalf("verify after the migration: %+v %v", v, err)
	}
	if v.Count != 40 || v.V1UpTo != 40 || v.V1Checked != 40 || v.HeadHash == oldHead.Hash {
		t.Fatalf("verify: %+v", v)
	}
	for pos, h := range v1 {
		l, err := store.HashAt(ctx, pos)
		if err != nil {
			t.Fatal(err)
		}
		if ver, ok := l.Matches(h); !ok || ver != 1 || l.HashV1 == nil {
			t.Fatalf("position %d: the v1 hash is not found (%v %v)", pos, ver, ok)
		}
	}
	if _, err := store.HashAt(ctx, 41); err == nil {
		t.Fatal("HashAt past the head answered")
	}

	// New appends go on the version-2 chain.
	res, err := store.Append(ctx, []domain.Event{ev("evt_v2_1", "sub_1", domain.SourceWebhook), ev("evt_v2_2", "sub_9", domain.SourceImport)})
	if err != nil || res[1].Position != 42 {
		t.Fatalf("append after the migration: %+v %v", res, err)
	}
	v, err = store.Verify(ctx)
	if err != nil || v.Broken != nil || v.Count != 42 || v.V1UpTo != 40 {
		t.Fatalf("verify after appending: %+v %v", v, err)
	}
	l, _ := store.HashAt(ctx, 42)
	if ver, ok := l.Matches(v.HeadHash); !ok || ver != 2 || l.HashV1 != nil {
		t.Fatalf("the new head: %+v %v", l, ok)
	}

	// The SQL mirror (what re-chained the old rows) and Go agree on every row, old and new.
	goH, sqlH, err := eventstore.ChainGoAndSQL(ctx, pool)
	if err != nil || len(goH) != 42 {
		t.Fatalf("%d %v", len(goH), err)
	}
	for pos, h := range goH {
		if sqlH[pos] != h {
			t.Fatalf("position %d: ledger.content_digest_v2 drifted from eventstore's content digest", pos)
		}
	}
}

// A row of the version-1 part edited after the migration is still found, even by someone who
// recomputes its payload digest and the whole version-2 chain after the edit: the old chain,
// recomputed from the row's bytes, no longer reaches its stored hash.
func TestChainMigrationStillFindsTamperingInTheV1Part(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rechain := `;
		WITH c AS (SELECT position, ledger.chain_v2(position, ledger.content_digest_v2(event_id, type, api_version, created,
		           livemode, account, object_type, object_id, source, received_at, payload_digest, signature, hash_v1))
		           OVER (ORDER BY position) AS h FROM ledger.events),
		     l AS (SELECT position, h, coalesce(lag(h) OVER (ORDER BY position), decode(repeat('00', 32), 'hex')) AS prev FROM c)
		UPDATE ledger.events e SET hash = l.h, prev_hash = l.prev FROM l WHERE e.position = l.position;
		UPDATE ledger.log_head SET hash = (SELECT hash FROM ledger.events ORDER BY position DESC LIMIT 1)`
	edit := `UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '1999', '9'), 'UTF8') WHERE position = 7`
	cases := map[string]struct {
		sql    string
		broken int64
		reason string
	}{
		"payload edited":              {edit, 7, "payload does not match its digest: the payload was edited"},
		"payload and digest edited":   {edit + `; UPDATE ledger.events SET payload_digest = sha256(payload) WHERE position = 7`, 7, "content does not match its hash: the row was edited"},
		"edited and re-chained in v2": {edit + `; UPDATE ledger.events SET payload_digest = sha256(payload) WHERE position = 7` + rechain, 7, "content does not match its version-1 hash: the row was edited"},
		"old hash edited":             {`UPDATE ledger.events SET hash_v1 = sha256(hash_v1) WHERE position = 12`, 12, "content does not match its hash: the row was edited"},
		"old hash edited, re-chained": {`UPDATE ledger.events SET hash_v1 = sha256(hash_v1) WHERE position = 12` + rechain, 12, "content does not match its version-1 hash: the row was edited"},
		"recorded old head edited":    {`UPDATE ledger.chain_migrations SET v1_head_hash = sha256(v1_head_hash)`, 20, "the version-1 chain does not end at the head the chain migration recorded"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db, pool, _ := v1Log(t, 20)
			migrate(t, db)
			testkit.Tamper(t, db, tc.sql)
			v, err := eventstore.New(pool).Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v.Broken == nil || v.Broken.Position != tc.broken || v.Broken.Reason != tc.reason {
				t.Fatalf("want a break at %d (%s), got %+v", tc.broken, tc.reason, v.Broken)
			}
		})
	}
}

// Migrating an empty log records the move at position 0; the log is then version 2 throughout.
func TestChainMigrationOfAnEmptyLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	v, err := b.store.Verify(ctx)
	if err != nil || v.Broken != nil || v.Count != 0 || v.V1UpTo != 0 || v.HeadHash != eventstore.GenesisHash {
		t.Fatalf("%+v %v", v, err)
	}
}

// Migration 011 refuses to re-chain a version-1 log whose old chain does not hold: re-chaining
// hashes whatever bytes are there into payload_digest, so an edit made before the migration
// would come out of it with a digest and a chain that agree with it. It names the first broken
// row, changes nothing, and the log stays at version 10.
func TestChainMigrationRefusesABrokenV1Chain(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		sql    string
		broken string
	}{
		"payload edited":   {`UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '1999', '9'), 'UTF8') WHERE position = 7`, "position 7 (evt_v1_006): content does not match its hash"},
		"envelope edited":  {`UPDATE ledger.events SET object_id = 'sub_X' WHERE position = 3`, "position 3 (evt_v1_002): content does not match its hash"},
		"row removed":      {`DELETE FROM ledger.events WHERE position = 5`, "position 6 (evt_v1_005): expected position 5"},
		"prev_hash edited": {`UPDATE ledger.events SET prev_hash = sha256(prev_hash) WHERE position = 9`, "position 9 (evt_v1_008): prev_hash does not match"},
		"head edited":      {`UPDATE ledger.log_head SET position = 19`, "broken at the head: it says position 19, the log ends at 20"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, pool, _ := v1Log(t, 20)
			testkit.Tamper(t, db, tc.sql)
			conn, err := pgx.Connect(ctx, db.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			_, to, err := migrations.ApplyTo(ctx, conn, -1)
			if err == nil || !strings.Contains(err.Error(), "version-1 hash chain is broken") || !strings.Contains(err.Error(), tc.broken) {
				t.Fatalf("want the migration refused naming %q, got to=%d %v", tc.broken, to, err)
			}
			var version int32
			if err := pool.QueryRow(ctx, `SELECT version FROM ledger.schema_version`).Scan(&version); err != nil || version != 10 {
				t.Fatalf("schema version %d %v: the refused migration changed the database", version, err)
			}
		})
	}
}
