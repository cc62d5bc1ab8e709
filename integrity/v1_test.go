package integrity_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/migrations"
)

// digestV1 is the version-1 content digest (the chain before migration 011), written here from
// its documentation rather than taken from eventstore: every column length-prefixed, the
// payload's bytes themselves.
func digestV1(e domain.Event) []byte {
	h := sha256.New()
	n := func(v int64) { h.Write(binary.BigEndian.AppendUint64(nil, uint64(v))) }
	b := func(p []byte) { n(int64(len(p))); h.Write(p) }
	s := func(v string) { b([]byte(v)) }
	flag := func(v bool) {
		if v {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	s(e.ID)
	s(e.Type)
	s(e.APIVersion)
	n(e.Created)
	flag(e.Livemode)
	s(e.Account)
	s(e.ObjectType)
	s(e.ObjectID)
	s(string(e.Source))
	n(e.ReceivedAt.UnixMicro())
	b(e.Payload)
	flag(e.Signature != "")
	s(e.Signature)
	return h.Sum(nil)
}

// appendV1 appends through the version-1 ledger.append_events of migrations/003.
func appendV1(t *testing.T, pool *pgxpool.Pool, evs []domain.Event) {
	t.Helper()
	var ids, types, versions, accounts, objTypes, objIDs, sources, sigs []string
	var created, received []time.Time
	var live []bool
	var payloads, digests [][]byte
	for _, e := range evs {
		ids, types, versions, accounts = append(ids, e.ID), append(types, e.Type), append(versions, e.APIVersion), append(accounts, e.Account)
		objTypes, objIDs, sources, sigs = append(objTypes, e.ObjectType), append(objIDs, e.ObjectID), append(sources, string(e.Source)), append(sigs, e.Signature)
		created, received, live = append(created, time.Unix(e.Created, 0)), append(received, e.ReceivedAt), append(live, e.Livemode)
		payloads, digests = append(payloads, e.Payload), append(digests, digestV1(e))
	}
	nullSigs := make([]*string, len(sigs))
	for i := range sigs {
		if sigs[i] != "" {
			nullSigs[i] = &sigs[i]
		}
	}
	if _, err := pool.Exec(context.Background(), `SELECT count(*) FROM ledger.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		ids, types, versions, created, live, accounts, objTypes, objIDs, sources, received, payloads, nullSigs, digests); err != nil {
		t.Fatalf("version-1 append: %v", err)
	}
}

// Checkpoints signed over the version-1 chain still prove the log after migration 011 re-chained
// it in place, beside checkpoints of the version-2 chain; an edit in the version-1 part fails
// them, whatever the editor recomputes of the version-2 chain.
func TestCheckpointsAcrossTheChainMigration(t *testing.T) {
	ctx := context.Background()
	db := testkit.NewEmpty(t)
	migrateTo := func(v int32) {
		conn, err := pgx.Connect(ctx, db.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, _, err := migrations.ApplyTo(ctx, conn, v); err != nil {
			t.Fatal(err)
		}
	}
	migrateTo(10)
	pool := db.OpenPool(t, 4)
	db.Pool = pool // what rechain reads through
	store := eventstore.New(pool)
	pub, key := newKey(t)
	head := func() eventstore.Head {
		h, err := store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var evs []domain.Event
	for i := range 6 {
		evs = append(evs, signed(t, fmt.Sprintf("evt_v1_%d", i), int64(1000+i), i%2 == 0, "", secretNow))
	}
	appendV1(t, pool, evs[:3])
	cp3 := integrity.Sign(key, head(), eventstore.ChainTagV1, time.Unix(1003, 0))
	appendV1(t, pool, evs[3:])
	cp6 := integrity.Sign(key, head(), eventstore.ChainTagV1, time.Unix(1006, 0))

	migrateTo(-1)
	appendAll(t, store, signed(t, "evt_v2_1", 2000, false, "", secretNow), signed(t, "evt_v2_2", 2001, false, "", secretNow))
	cp8 := checkpointNow(t, store, key, time.Unix(2002, 0))
	cps := []integrity.Checkpoint{cp3, cp6, cp8}
	rep, err := integrity.VerifyCheckpoints(ctx, store, cps, pub)
	if err != nil || !rep.OK() || rep.Checked != 3 || rep.Chain.V1UpTo != 6 {
		t.Fatalf("across the migration: %v %v (chain %+v)", reasons(rep), err, rep.Chain)
	}
	// The signatures of the version-1 part still verify too.
	srep, err := integrity.VerifySignatures(ctx, store, integrity.Secrets{Current: []string{secretNow}}, integrity.SignatureOptions{})
	if err != nil || srep.Verified != 8 || !srep.OK() {
		t.Fatalf("signatures across the migration: %+v %v", srep, err)
	}

	// Row 2's body edited, its digest and the whole version-2 chain recomputed.
	testkit.Tamper(t, db, `UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '1999', '1'), 'UTF8') WHERE position = 2`)
	rechain(t, db, 2, false)
	rep, err = integrity.VerifyCheckpoints(ctx, store, cps, pub)
	if err != nil || rep.OK() || rep.Checked != 0 || len(rep.Problems) != 3 {
		t.Fatalf("an edit in the version-1 part: %v %v (chain %v)", reasons(rep), err, rep.Chain.Broken)
	}
	for _, p := range rep.Problems {
		if !strings.Contains(p.Reason, "broken at position 2") {
			t.Fatalf("an edit in the version-1 part: %v", reasons(rep))
		}
	}
}
