package webhook_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/webhook"
)

// The database goes away under a running server: webhooks answer 503 (Stripe retries), nothing
// half-written remains, and when the database is back the same server answers 200 again without
// a restart. Every event ever answered 200 is in the log.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	cluster := testkit.StartCluster(t)
	b := setupOn(t, cluster.DB, webhook.Config{})
	ctx := context.Background()

	acked := map[string]bool{}
	send := func(id string) answer {
		body := event(id)
		a := deliver(t, b.url, body, signed(body, secretA, time.Time{}))
		if a.Status == 200 {
			acked[id] = true
		}
		return a
	}
	for i := range 5 {
		if a := send(fmt.Sprintf("evt_before_%d", i)); a.Status != 200 {
			t.Fatalf("before outage: %+v", a)
		}
	}

	cluster.Stop(t)
	for i := range 5 {
		a := send(fmt.Sprintf("evt_during_%d", i))
		if a.Status != 503 || a.Reason != "database_unavailable" {
			t.Fatalf("during outage: %+v", a)
		}
	}

	cluster.Start(t)
	// Stripe retries what was answered 503; new events keep coming. Each retry that still meets
	// one of the pool's connections the shutdown cut costs the pool that connection, so after at
	// most as many 503s as the pool holds connections, a retry gets a new one.
	retries := int(b.db.Pool.Config().MaxConns)
	for i := range 5 {
		for attempt := 0; ; attempt++ {
			a := send(fmt.Sprintf("evt_during_%d", i))
			if a.Status == 200 {
				break
			}
			if attempt == retries {
				t.Fatalf("no recovery after the database came back (%d retries): %+v", attempt+1, a)
			}
		}
		if a := send(fmt.Sprintf("evt_after_%d", i)); a.Status != 200 {
			t.Fatalf("after outage: %+v", a)
		}
	}

	for id := range acked {
		if _, err := b.store.Get(ctx, id); err != nil {
			t.Fatalf("acknowledged %s missing: %v", id, err)
		}
	}
	if events, _ := b.logSize(t); events != 15 || len(acked) != 15 {
		t.Fatalf("%d events in the log, %d acknowledged", events, len(acked))
	}
	v, err := b.store.Verify(ctx)
	if err != nil || v.Broken != nil {
		t.Fatalf("verify after outage: %+v %v", v, err)
	}
}

// A database that answers but is too slow (here: another session holds the log's head lock) makes
// webhooks answer 503 after the append timeout instead of hanging; once it is fast again, the
// same delivery is appended.
func TestSlowDatabaseAnswers503(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	b := setupOn(t, db, webhook.Config{AppendTimeout: 500 * time.Millisecond})
	ctx := context.Background()

	blocker, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctx, "SELECT 1 FROM ledger.log_head FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	body := event("evt_slow")
	start := time.Now()
	a := deliver(t, b.url, body, signed(body, secretA, time.Time{}))
	if a.Status != 503 || a.Reason != "database_unavailable" {
		t.Fatalf("while the log is blocked: %+v", a)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("answered after %s, not at the 500ms bound", took)
	}
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The answer gave up waiting, the group commit did not: it commits once the lock is free, so
	// the event is in the log and Stripe's retry is a duplicate.
	if err := b.batches.Wait(); err != nil {
		t.Fatalf("the blocked group commit failed: %v", err)
	}
	if _, err := b.store.Get(ctx, "evt_slow"); err != nil {
		t.Fatal(err)
	}
	a = deliver(t, b.url, body, signed(body, secretA, time.Time{}))
	if a.Status != 200 || !a.Duplicate {
		t.Fatalf("after the block lifted: %+v", a)
	}
}
