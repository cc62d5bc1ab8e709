package projections_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// startRunner runs a live runner until the test ends, with its signals on.
func startRunner(t *testing.T, pool *pgxpool.Pool, cfg projections.RunnerConfig) *projections.Runner {
	t.Helper()
	r := newRunner(t, pool, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func newRunner(t *testing.T, pool *pgxpool.Pool, cfg projections.RunnerConfig) *projections.Runner {
	t.Helper()
	r, err := projections.NewRunner(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Signals.FoldedBatch.Init(t)
	r.Signals.Rebuilt.Init(t)
	r.Signals.Recomputed.Init(t)
	r.Lease().Signals.Gained.Init(t)
	r.Lease().Signals.Lost.Init(t)
	return r
}

// caughtUp waits until the live runner has folded the whole log: for the batch that reaches the
// head, unless the checkpoint is there already.
func caughtUp(t *testing.T, r *projections.Runner, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	head, err := eventstore.New(pool).Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pos, err := eventstore.New(pool).Checkpoint(ctx, projections.StateName); err != nil {
		t.Fatal(err)
	} else if pos >= head.Position {
		return
	}
	r.Signals.FoldedBatch.WaitUntil(func(pos int64) bool { return pos >= head.Position })
}

// appendInBatches appends events in batches of random size, as webhooks would arrive.
func appendInBatches(t *testing.T, pool *pgxpool.Pool, events []*stripesim.Event, rng *rand.Rand) {
	t.Helper()
	store := eventstore.New(pool)
	for len(events) > 0 {
		n := min(len(events), 1+rng.IntN(40))
		batch := make([]domain.Event, 0, n)
		for _, ev := range events[:n] {
			e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, e)
		}
		if _, err := store.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
}

func diffDumps(t *testing.T, what string, a, b map[string]string) {
	t.Helper()
	for _, name := range tables {
		if a[name] != b[name] {
			t.Errorf("%s: ledger.%s differs", what, name)
		}
	}
}

// The live runner, fed a simulated account in several random orders with duplicates while it
// runs, ends with read models byte-identical to a replay of the same log and to a replay of the
// events in emission order; for every identity mode.
func TestLiveEqualsReplay(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 71, Customers: 80, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()

	for i, id := range []domain.Identity{{}, {Mode: domain.IdentityCustomer}, {Mode: domain.IdentityAnonymous}, {Mode: domain.IdentityMetadata, MetadataKey: "crm_id"}} {
		t.Run(fmt.Sprintf("order%d-%s", i, id.Mode), func(t *testing.T) {
			t.Parallel()
			reference := load(t, events)
			if _, err := projections.Rebuild(context.Background(), reference.Pool, projections.Config{Identity: id}); err != nil {
				t.Fatal(err)
			}
			want := dump(t, reference)

			rng := rand.New(rand.NewPCG(uint64(i), 71))
			order := append([]*stripesim.Event(nil), events...)
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			for range 60 { // retries and redeliveries
				order = append(order, order[rng.IntN(len(order))])
			}
			db := testkit.New(t)
			r := startRunner(t, db.Pool, projections.RunnerConfig{Identity: id, BatchSize: 1 + rng.IntN(64)})
			appendInBatches(t, db.Pool, order, rng)
			caughtUp(t, r, db.Pool)
			live := dump(t, db)
			diffDumps(t, "live vs replay in emission order", live, want)

			if _, err := projections.Rebuild(context.Background(), db.Pool, projections.Config{Identity: id}); err != nil {
				t.Fatal(err)
			}
			diffDumps(t, "live vs replay of the same log", live, dump(t, db))
		})
	}
}

// A replay swapping tables in while the live runner folds new events neither deadlocks nor loses
// an event's effect: after both, the rows equal a fresh replay's.
func TestReplayWhileLive(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 72, Customers: 80, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()
	db := testkit.New(t)
	r := startRunner(t, db.Pool, projections.RunnerConfig{BatchSize: 16})
	rng := rand.New(rand.NewPCG(7, 2))
	half := len(events) / 2
	appendInBatches(t, db.Pool, events[:half], rng)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		appendInBatches(t, db.Pool, events[half:], rng)
	}()
	for range 3 {
		if _, err := projections.Rebuild(context.Background(), db.Pool, projections.Config{}); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	caughtUp(t, r, db.Pool)
	live := dump(t, db)

	reference := load(t, events)
	if _, err := projections.Rebuild(context.Background(), reference.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	diffDumps(t, "live after concurrent replays vs replay", live, dump(t, reference))
}

// Two runners on one database: one is active, the other stands by and takes over when the
// first stops; events appended after the handover are folded by the new runner.
func TestRunnerTakeover(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 73, Customers: 30, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()
	db := testkit.New(t)
	cfg := projections.RunnerConfig{TakeoverInterval: 100 * time.Millisecond}

	first := newRunner(t, db.Pool, cfg)
	ctx1, stop1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() { defer close(done1); _ = first.Run(ctx1) }()
	first.Lease().Signals.Gained.Wait()
	second := startRunner(t, db.Pool, cfg)

	rng := rand.New(rand.NewPCG(3, 3))
	appendInBatches(t, db.Pool, events[:len(events)/2], rng)
	caughtUp(t, first, db.Pool)
	if !first.Active() || second.Active() {
		t.Fatalf("active: first %v, second %v; want only the first", first.Active(), second.Active())
	}
	stop1()
	<-done1
	second.Lease().Signals.Gained.Wait()
	appendInBatches(t, db.Pool, events[len(events)/2:], rng)
	caughtUp(t, second, db.Pool)

	reference := load(t, events)
	if _, err := projections.Rebuild(context.Background(), reference.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	diffDumps(t, "after takeover", dump(t, db), dump(t, reference))
}

// poisonCharge is a charge event whose amount is not a number: no reducer can fold it.
func poisonCharge(id, charge string, created int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"type":"charge.updated",`+
		`"data":{"object":{"id":%q,"object":"charge","amount":"twelve","currency":"usd","status":"succeeded","created":%d}}}`,
		id, created, charge, created)
}

func validCharge(id, typ, charge string, created, amount int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"type":%q,`+
		`"data":{"object":{"id":%q,"object":"charge","amount":%d,"amount_captured":%d,"currency":"usd","status":"succeeded","paid":true,"created":%d}}}`,
		id, created, typ, charge, amount, amount, created)
}

// hugeCustomer is a customer whose `created` is beyond what Postgres' timestamptz can hold: the
// reducer folds it, the database refuses the row.
func hugeCustomer(id, customer string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":1780000000,"livemode":false,"type":"customer.created",`+
		`"data":{"object":{"id":%q,"object":"customer","email":"a@example.com","name":"A","metadata":{},"created":-300000000000}}}`,
		id, customer)
}

func appendRaw(t *testing.T, pool *pgxpool.Pool, bodies ...[]byte) {
	t.Helper()
	var evs []domain.Event
	for _, b := range bodies {
		e, err := domain.NewEvent(b, domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	res, err := eventstore.New(pool).Append(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// One poison event is quarantined while everything after it proceeds; `retry` keeps it out while
// it still cannot be folded and folds it once it can; the database refusing a row (not the
// reducer) is quarantined the same way.
func TestPoisonQuarantined(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	r := startRunner(t, db.Pool, projections.RunnerConfig{})
	appendRaw(t, db.Pool,
		validCharge("evt_1", "charge.succeeded", "ch_a", 1780000000, 500),
		poisonCharge("evt_2", "ch_a", 1780000001),
		validCharge("evt_3", "charge.succeeded", "ch_b", 1780000002, 700),
		hugeCustomer("evt_4", "cus_huge"),
		validCharge("evt_5", "charge.succeeded", "ch_c", 1780000003, 900),
	)
	caughtUp(t, r, db.Pool)

	var amounts []int64
	rows, _ := db.Pool.Query(ctx, `SELECT amount FROM ledger.charges ORDER BY id`)
	for rows.Next() {
		var a int64
		_ = rows.Scan(&a)
		amounts = append(amounts, a)
	}
	rows.Close()
	if fmt.Sprint(amounts) != "[500 700 900]" {
		t.Fatalf("charges %v, want [500 700 900]: the poison event must not stop the others nor change ch_a", amounts)
	}
	st, err := projections.ReadStatus(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lag != 0 || len(st.Quarantine) != 2 || st.Quarantine[0].EventID != "evt_2" || st.Quarantine[1].EventID != "evt_4" {
		t.Fatalf("status %+v", st)
	}
	if !strings.Contains(st.Quarantine[0].Error, "amount") || !strings.Contains(st.Quarantine[1].Error, "22008") {
		t.Fatalf("quarantine errors %q / %q", st.Quarantine[0].Error, st.Quarantine[1].Error)
	}

	// Still poison: retry keeps it out and counts the attempt.
	res, err := projections.Retry(ctx, db.Pool, projections.RetryConfig{EventIDs: []string{"evt_2"}})
	if err != nil || res.Resolved != 0 || res.Failed != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	// A later, valid event for ch_a makes the bad one no longer the charge's latest state: a
	// retry then folds it.
	appendRaw(t, db.Pool, validCharge("evt_6", "charge.updated", "ch_a", 1780000010, 500))
	caughtUp(t, r, db.Pool)
	res, err = projections.Retry(ctx, db.Pool, projections.RetryConfig{})
	if err != nil || res.Resolved != 1 || res.Failed != 1 {
		t.Fatalf("retry all: %+v %v", res, err)
	}
	st, _ = projections.ReadStatus(ctx, db.Pool)
	if len(st.Quarantine) != 1 || st.Quarantine[0].EventID != "evt_4" || st.Quarantine[0].Attempts != 2 {
		t.Fatalf("after retry: %+v", st.Quarantine)
	}
}

// customerUpdate is a customer.updated event with the email it changed from.
func customerUpdate(id string, created int64, email, from string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"type":"customer.updated",`+
		`"data":{"object":{"id":"cus_toggle","object":"customer","email":%q,"name":"T","metadata":{},"created":1700000000},"previous_attributes":{"email":%q}}}`,
		id, created, email, from)
}

// Two updates that undo each other in one second, with nothing before them to anchor the chain,
// cannot be ordered from their previous_attributes: the fold falls back to event IDs and the
// case is counted in ledger.ordering_ambiguities, by the live runner and by a replay alike, and
// `projections status` shows it.
func TestAmbiguousOrderingsCounted(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	r := startRunner(t, db.Pool, projections.RunnerConfig{})
	appendRaw(t, db.Pool,
		customerUpdate("evt_t1", 1780000000, "typo@example.com", "a@example.com"),
		customerUpdate("evt_t2", 1780000000, "a@example.com", "typo@example.com"),
		validCharge("evt_t3", "charge.succeeded", "ch_t", 1780000001, 100),
	)
	caughtUp(t, r, db.Pool)
	st, err := projections.ReadStatus(ctx, db.Pool)
	if err != nil || st.Ambiguous != 1 {
		t.Fatalf("live: %d ambiguous orderings (%v), want 1", st.Ambiguous, err)
	}
	live := dump(t, db)
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	diffDumps(t, "live vs replay", live, dump(t, db))
	if st, _ := projections.ReadStatus(ctx, db.Pool); st.Ambiguous != 1 {
		t.Fatalf("replay: %d ambiguous orderings, want 1", st.Ambiguous)
	}
}

// A runner whose declarations are not the ones the tables were built from (an upgrade: the
// tables still have the old shape) rebuilds them from the log before it folds another batch,
// then carries on live; queries meanwhile answer from the old tables.
func TestRunnerRebuildsTablesOfOtherDeclarations(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 74, Customers: 40, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()
	db := load(t, events[:len(events)/2])
	ctx := context.Background()
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	// The shape an older binary left: a column the declarations do not have, another declared
	// nullable but NOT NULL, and the fingerprint of other declarations.
	for _, q := range []string{
		`ALTER TABLE ledger.charges ADD COLUMN legacy text NOT NULL DEFAULT ''`,
		`UPDATE ledger.charges SET failure_code = '' WHERE failure_code IS NULL`,
		`ALTER TABLE ledger.charges ALTER COLUMN failure_code SET NOT NULL`,
		`UPDATE ledger.projection_state SET schema = 'v0:older' WHERE name = 'read_models'`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := projections.ReadStatus(ctx, db.Pool); st.Schema == nil || *st.Schema == st.Declared {
		t.Fatalf("status should say the tables are not the declared ones: %+v", st)
	}
	r := startRunner(t, db.Pool, projections.RunnerConfig{})
	rebuilt := r.Signals.Rebuilt.Wait()
	if rebuilt.Events != int64(len(events)/2) {
		t.Fatalf("rebuilt %d events, the log has %d", rebuilt.Events, len(events)/2)
	}
	appendInBatches(t, db.Pool, events[len(events)/2:], rand.New(rand.NewPCG(4, 4)))
	caughtUp(t, r, db.Pool)
	var legacy bool
	var nullable string
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'ledger' AND table_name = 'charges' AND column_name = 'legacy'),
		(SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'ledger' AND table_name = 'charges' AND column_name = 'failure_code')`).Scan(&legacy, &nullable); err != nil {
		t.Fatal(err)
	}
	if legacy || nullable != "YES" {
		t.Fatalf("after the rebuild: legacy column %v, failure_code nullable %s", legacy, nullable)
	}
	if st, _ := projections.ReadStatus(ctx, db.Pool); st.Schema == nil || *st.Schema != st.Declared || st.Lag != 0 {
		t.Fatalf("status after the rebuild: %+v", st)
	}
	reference := load(t, events)
	if _, err := projections.Rebuild(ctx, reference.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	diffDumps(t, "rebuilt on start, then live, vs replay", dump(t, db), dump(t, reference))
}

// The runner re-folds the objects a redaction changed when it folds the redaction's event: read
// models folded from the old payloads without the redaction's own re-fold (a replay's catch-up
// that left the redaction to the runner, say) do not keep the erased values. Here the redaction
// is written without its re-fold.
func TestRunnerRefoldsWhatARedactionChanged(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	r := startRunner(t, db.Pool, projections.RunnerConfig{})
	body := []byte(`{"id":"evt_c1","object":"event","api_version":"2023-10-16","created":1770000000,"livemode":false,"type":"customer.created",` +
		`"data":{"object":{"id":"cus_R1","object":"customer","email":"rae@example.com","name":"Rae","metadata":{},"created":1770000000}}}`)
	appendRaw(t, db.Pool, body)
	caughtUp(t, r, db.Pool)
	email := func() string {
		var e *string
		if err := db.Pool.QueryRow(ctx, `SELECT email FROM ledger.customers WHERE id = 'cus_R1'`).Scan(&e); err != nil || e == nil {
			t.Fatalf("the customer's email: %v %v", e, err)
		}
		return *e
	}
	if got := email(); got != "rae@example.com" {
		t.Fatalf("before: %q", got)
	}

	out, _, err := domain.RedactPayload(body, domain.RedactRules{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out)
	rec, err := domain.NewRedactionEvent(domain.Redaction{ID: "red_1", Customer: "cus_R1", Reason: "r", By: "dpo", At: 1770000100,
		Events: []domain.RedactedEvent{{Position: 1, EventID: "evt_c1", PayloadSHA256: hex.EncodeToString(sum[:])}}}, false, "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	res, err := eventstore.New(db.Pool).AppendIn(ctx, tx, []domain.Event{rec})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if err := eventstore.Redact(ctx, tx, res[0].Position, []eventstore.RedactedPayload{{Position: 1, Payload: out}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, r, db.Pool)
	if got := email(); got != domain.RedactedMarker {
		t.Fatalf("after the runner folded the redaction: email %q, want %q", got, domain.RedactedMarker)
	}
}
