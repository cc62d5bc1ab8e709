package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// asOfSQL is the instant subscription s's mrr is as of: its latest event, or its customer's
// latest discount change when later. Its movements up to then add up to its mrr (those after
// are the ones rules time later, a discount's end say).
const asOfSQL = `greatest(s.event_created, (SELECT to_timestamp((c.discount_history->-1->>'at')::bigint) FROM ledger.customers c WHERE c.id = s.customer))`

// tables is every read-model table, from the declarations.
var tables = projections.Tables()

// load appends a simulated account's events to a fresh log in the given order.
func load(t *testing.T, events []*stripesim.Event) *testkit.DB { return loadB(t, events) }

func loadB(t testing.TB, events []*stripesim.Event) *testkit.DB {
	t.Helper()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	batch := make([]domain.Event, 0, 500)
	flush := func() {
		if _, err := store.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for _, ev := range events {
		e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	return db
}

// dump is every read-model row, as JSON, in a stable order.
func dump(t *testing.T, db *testkit.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range tables {
		var s *string
		err := db.Pool.QueryRow(context.Background(),
			`SELECT json_agg(r ORDER BY r::text)::text FROM ledger.`+name+` r`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		if s != nil {
			out[name] = *s
		}
	}
	return out
}

func TestRebuildIsTheSameWhateverTheOrder(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 61, Customers: 120, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()

	inOrder := load(t, events)
	st, err := projections.Rebuild(context.Background(), inOrder.Pool, projections.Config{BatchSize: 333})
	if err != nil {
		t.Fatal(err)
	}
	if st.Position != int64(len(events)) {
		t.Fatalf("rebuilt up to %d of %d", st.Position, len(events))
	}

	// The same events, delivered in another order with some twice, give the same rows.
	shuffled := append([]*stripesim.Event(nil), events...)
	rng := rand.New(rand.NewPCG(9, 9))
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	shuffled = append(shuffled, shuffled[:50]...)
	other := load(t, shuffled)
	if _, err := projections.Rebuild(context.Background(), other.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	a, b := dump(t, inOrder), dump(t, other)
	for _, name := range tables {
		if a[name] != b[name] {
			t.Fatalf("ledger.%s differs between arrival orders", name)
		}
	}

	// The rows are what the account says, table by table.
	truth := sim.Truth()
	for kind, raw := range truth.Objects {
		if kind == string(domain.KindBalanceTransactions) {
			continue // no event carries them: the balance reconcile job fetches them
		}
		var objs []json.RawMessage
		_ = json.Unmarshal(raw, &objs)
		if st.Rows[kind] != len(objs) {
			t.Errorf("ledger.%s has %d rows, the account %d objects", kind, st.Rows[kind], len(objs))
		}
	}
	var mismatched, mrr, moved int64
	err = inOrder.Pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM ledger.subscriptions s
		        JOIN jsonb_array_elements($1::jsonb) t ON t->>'id' = s.id
		        WHERE t->>'status' <> s.status OR (t->>'current_period_end')::bigint <> extract(epoch FROM s.current_period_end)),
		       (SELECT coalesce(sum(mrr), 0) FROM ledger.subscriptions),
		       (SELECT coalesce(sum(amount), 0) FROM ledger.subscription_movements m JOIN ledger.subscriptions s ON s.id = m.subscription
		        WHERE s.mrr IS NOT NULL AND m.at <= `+asOfSQL+`)`,
		string(truth.Objects["subscriptions"])).Scan(&mismatched, &mrr, &moved)
	if err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 || mrr != moved || mrr == 0 {
		t.Fatalf("%d subscriptions differ from the account; MRR %d, movements add to %d", mismatched, mrr, moved)
	}
	var state int64
	if err := inOrder.Pool.QueryRow(context.Background(), `SELECT position FROM ledger.projection_state WHERE name = $1`, projections.StateName).Scan(&state); err != nil || state != st.Position {
		t.Fatalf("projection_state %d %v", state, err)
	}
}

// Queries keep answering while the read models are rebuilt: none fails and none sees an empty
// or half-built table.
func TestRebuildWhileQueried(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 62, Customers: 100, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	ctx := context.Background()
	first, err := projections.Rebuild(ctx, db.Pool, projections.Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(first.Rows["subscriptions"])

	stop := make(chan struct{})
	var queries, bad atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n, charges int64
				err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger.subscriptions),
					(SELECT count(*) FROM ledger.charges c JOIN ledger.invoices i ON i.charge = c.id)`).Scan(&n, &charges)
				queries.Add(1)
				if err != nil || n != want || charges == 0 {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for range 5 {
		if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 || queries.Load() < 20 {
		t.Fatalf("%d of %d queries failed or saw a partial table (first error %v)", bad.Load(), queries.Load(), firstErr.Load())
	}
}

// Interrupted, a rebuild leaves the live tables as they were.
func TestRebuildInterrupted(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 63, Customers: 40, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	ctx, cancel := context.WithCancel(context.Background())
	_, err := projections.Rebuild(ctx, db.Pool, projections.Config{BatchSize: 100, Progress: func(p projections.Progress) {
		if p.Phase == "fold" && p.Done > p.Total/2 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("a cancelled rebuild reported success")
	}
	var n int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.subscriptions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("live table touched by an interrupted rebuild: %d %v", n, err)
	}
	if _, err := projections.Rebuild(context.Background(), db.Pool, projections.Config{}); err != nil {
		t.Fatalf("rebuild after an interrupted one: %v", err)
	}
}

// ledger.object_history lists every event of an object in log order, with what changed.
func TestObjectHistory(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 65, Customers: 30, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()
	db := load(t, events)
	want := map[string][]string{}
	for _, ev := range events {
		want[ev.ObjectID] = append(want[ev.ObjectID], ev.ID)
	}
	for objectID, ids := range want {
		rows, err := db.Pool.Query(context.Background(), `SELECT event_id FROM ledger.object_history WHERE object_id = $1 ORDER BY position`, objectID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
		}
		rows.Close()
		if len(got) != len(ids) {
			t.Fatalf("%s: %d events in the history, %d emitted", objectID, len(got), len(ids))
		}
		for i := range ids {
			if got[i] != ids[i] {
				t.Fatalf("%s: history out of order", objectID)
			}
		}
	}
	var withPrev int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.object_history WHERE previous_attributes IS NOT NULL`).Scan(&withPrev); err != nil || withPrev == 0 {
		t.Fatalf("no previous_attributes in the history (%v)", err)
	}
}

// customerEvent is a customer event whose object was created at objectCreated (Unix seconds).
func customerEvent(id, typ, customer string, created, objectCreated int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"type":%q,`+
		`"data":{"object":{"id":%q,"object":"customer","email":"b@example.com","name":"B","metadata":{},"created":%d}}}`,
		id, created, typ, customer, objectCreated)
}

// A row Postgres refuses does not stop a replay: the event whose snapshot the row holds is
// quarantined, its object folded without it, and the read models are the live runner's.
func TestReplayQuarantinesRowsPostgresRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bodies := [][]byte{
		validCharge("evt_1", "charge.succeeded", "ch_a", 1780000000, 500),
		hugeCustomer("evt_2", "cus_huge"),
		customerEvent("evt_3", "customer.created", "cus_b", 1780000000, 1700000000),
		customerEvent("evt_4", "customer.updated", "cus_b", 1780000100, -300000000000), // beyond timestamptz
		validCharge("evt_5", "charge.succeeded", "ch_b", 1780000002, 700),
	}
	replayed := testkit.New(t)
	appendRaw(t, replayed.Pool, bodies...)
	st, err := projections.Rebuild(ctx, replayed.Pool, projections.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Quarantined != 2 || st.Rows["customers"] != 1 || st.Rows["charges"] != 2 {
		t.Fatalf("replay %+v", st)
	}
	status, err := projections.ReadStatus(ctx, replayed.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(status.Quarantine) != 2 || status.Quarantine[0].EventID != "evt_2" || status.Quarantine[1].EventID != "evt_4" ||
		!strings.Contains(status.Quarantine[1].Error, "22008") {
		t.Fatalf("quarantine %+v", status.Quarantine)
	}
	var from string
	if err := replayed.Pool.QueryRow(ctx, `SELECT event_id FROM ledger.customers WHERE id = 'cus_b'`).Scan(&from); err != nil || from != "evt_3" {
		t.Fatalf("cus_b from %q (%v), want its first event", from, err)
	}

	live := testkit.New(t)
	appendRaw(t, live.Pool, bodies...)
	r := startRunner(t, live.Pool, projections.RunnerConfig{})
	caughtUp(t, r, live.Pool)
	if got, want := dump(t, replayed), dump(t, live); !reflect.DeepEqual(got, want) {
		t.Fatalf("replay and live differ:\nreplay %v\nlive   %v", got, want)
	}

	// Run again, the same: the quarantine stays as it is.
	if _, err := projections.Rebuild(ctx, replayed.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if again, _ := projections.ReadStatus(ctx, replayed.Pool); len(again.Quarantine) != 2 {
		t.Fatalf("second replay quarantine %+v", again.Quarantine)
	}
}

// Events appended while a replay reads the log are folded in before the swap: the rebuilt read
// models are at the head, and equal a replay of the whole log.
func TestReplayCatchesUpToTheHead(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 65, Customers: 40, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	events := sim.Events()
	late := events[len(events)-60:]
	db := load(t, events[:len(events)-60])
	ctx := context.Background()
	appended := false
	st, err := projections.Rebuild(ctx, db.Pool, projections.Config{Progress: func(p projections.Progress) {
		if p.Phase == "read" && p.Done == p.Total && !appended { // the read is over: the rebuild is between read and swap
			appended = true
			store := eventstore.New(db.Pool)
			for _, ev := range late {
				e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := store.Append(ctx, []domain.Event{e}); err != nil {
					t.Error(err)
				}
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	head, err := eventstore.New(db.Pool).Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !appended || st.CaughtUp != 60 || st.Position != head.Position || st.Events != head.Position-60 {
		t.Fatalf("replay %+v, head %d", st, head.Position)
	}
	caughtUp := dump(t, db)
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if whole := dump(t, db); !reflect.DeepEqual(caughtUp, whole) {
		t.Fatalf("caught-up replay differs from a replay of the whole log")
	}
}
