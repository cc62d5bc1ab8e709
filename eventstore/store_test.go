package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
)

type testBundle struct {
	db    *testkit.DB
	store *eventstore.Store
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := testkit.New(t)
	return &testBundle{db: db, store: eventstore.New(db.Pool)}
}

func ev(id, obj string, source domain.Source) domain.Event {
	return testkit.Event(id, "customer.subscription.updated", obj, 1700000000, 600, source)
}

func TestAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("positions, duplicates and per-event errors", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bad := ev("evt_bad", "sub_1", domain.SourceWebhook)
		bad.Signature = "" // webhook events must carry their signature
		res, err := b.store.Append(ctx, []domain.Event{
			ev("evt_1", "sub_1", domain.SourceWebhook),
			ev("evt_2", "sub_2", domain.SourceReconcile),
			bad,
			ev("evt_1", "sub_1", domain.SourceWebhook), // same call duplicate
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []eventstore.Result{{Position: 1}, {Position: 2}, {}, {Position: 1, Duplicate: true}}
		for i, w := range want {
			if i == 2 {
				if !errors.Is(res[i].Err, domain.ErrInvalidEvent) {
					t.Fatalf("result 2: want ErrInvalidEvent, got %+v", res[i])
				}
				continue
			}
			if res[i] != w {
				t.Fatalf("result %d: got %+v, want %+v", i, res[i], w)
			}
		}

		// A later delivery of a stored event is a no-op answering the original position, even
		// when its bytes differ (a webhook retry carries a new signature header).
		again := ev("evt_2", "sub_2", domain.SourceWebhook)
		res, err = b.store.Append(ctx, []domain.Event{again, ev("evt_3", "sub_1", domain.SourceImport)})
		if err != nil {
			t.Fatal(err)
		}
		if res[0] != (eventstore.Result{Position: 2, Duplicate: true}) || res[1] != (eventstore.Result{Position: 3}) {
			t.Fatalf("got %+v", res)
		}
		got, err := b.store.Get(ctx, "evt_2")
		if err != nil {
			t.Fatal(err)
		}
		if got.Source != domain.SourceReconcile || got.Signature != "" {
			t.Fatalf("duplicate changed the stored event: %+v", got.Event.Envelope)
		}

		head, err := b.store.Head(ctx)
		if err != nil || head.Position != 3 {
			t.Fatalf("head %+v, %v", head, err)
		}
		if _, err := b.store.Get(ctx, "evt_missing"); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})

	t.Run("stored bytes and fields round-trip exactly", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// Odd but legal JSON: whitespace, escapes, key order, non-ASCII. Stored as sent.
		raw := []byte("{ \"type\":\"charge.succeeded\",  \"id\":\"evt_raw\",\n\"created\":1700000001,\"livemode\":true," +
			"\"account\":\"acct_1\",\"api_version\":\"2020-08-27\",\"data\":{\"object\":{\"object\":\"charge\",\"id\":\"ch_1\"," +
			"\"description\":\"caf\\u00e9 — ünïcode\"}}}\n")
		e, err := domain.NewEvent(raw, domain.SourceWebhook, "t=1700000001,v1=abc,v0=def")
		if err != nil {
			t.Fatal(err)
		}
		e.ReceivedAt = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
		if _, err := b.store.Append(ctx, []domain.Event{e}); err != nil {
			t.Fatal(err)
		}
		got, err := b.store.Get(ctx, "evt_raw")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Payload, raw) {
			t.Fatalf("payload changed:\n%q\n%q", got.Payload, raw)
		}
		if got.Envelope != e.Envelope || got.Signature != e.Signature || got.Source != domain.SourceWebhook {
			t.Fatalf("got %+v", got.Event)
		}
		if !got.ReceivedAt.Equal(e.ReceivedAt.Truncate(time.Microsecond)) {
			t.Fatalf("received_at %v", got.ReceivedAt)
		}
		if got.PrevHash != eventstore.GenesisHash || got.Hash == eventstore.GenesisHash {
			t.Fatalf("chain not started: %x %x", got.PrevHash, got.Hash)
		}
	})

	t.Run("filtered reads", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var events []domain.Event
		for i := 1; i <= 10; i++ {
			src := domain.SourceImport
			if i%4 == 0 {
				src = domain.SourceReconcile
			}
			e := testkit.Event(fmt.Sprintf("evt_%02d", i), "customer.subscription.updated", fmt.Sprintf("sub_%d", i%3), 1700000000+int64(i), 600, src)
			if i == 9 {
				e.Account, e.Livemode = "acct_1", true
			}
			events = append(events, e)
		}
		events = append(events, testkit.Event("evt_11", "invoice.paid", "in_1", 1700000011, 600, domain.SourceImport))
		if _, err := b.store.Append(ctx, events); err != nil {
			t.Fatal(err)
		}
		ids := func(f eventstore.Filter) string {
			t.Helper()
			recs, err := b.store.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range recs {
				out = append(out, r.ID)
				if f.Payload != (len(r.Payload) > 0) {
					t.Fatalf("%s: payload %d bytes with Payload %v", r.ID, len(r.Payload), f.Payload)
				}
			}
			return strings.Join(out, " ")
		}
		platform, live := "", true
		for _, c := range []struct {
			name string
			f    eventstore.Filter
			want string
		}{
			{"after a position", eventstore.Filter{AfterPosition: 4, Limit: 3}, "evt_05 evt_06 evt_07"},
			{"past the head", eventstore.Filter{AfterPosition: 11}, ""},
			{"one object's history", eventstore.Filter{ObjectIDs: []string{"sub_1"}, Payload: true}, "evt_01 evt_04 evt_07 evt_10"},
			{"a type", eventstore.Filter{Types: []string{"invoice.paid"}}, "evt_11"},
			{"a source", eventstore.Filter{Source: domain.SourceReconcile}, "evt_04 evt_08"},
			{"the latest that match, in log order", eventstore.Filter{Types: []string{"customer.subscription.updated"}, Limit: 2, Latest: true}, "evt_09 evt_10"},
			{"created, both ends inclusive", eventstore.Filter{CreatedFrom: time.Unix(1700000003, 0), CreatedTo: time.Unix(1700000005, 0)}, "evt_03 evt_04 evt_05"},
			{"a connected account", eventstore.Filter{Account: ptr("acct_1")}, "evt_09"},
			{"the platform, live", eventstore.Filter{Account: &platform, Livemode: &live}, ""},
			{"up to a position", eventstore.Filter{UpToPosition: 2}, "evt_01 evt_02"},
		} {
			if got := ids(c.f); got != c.want {
				t.Errorf("%s: %q, want %q", c.name, got, c.want)
			}
		}
		hist, err := b.store.Histories(ctx, "subscription", []string{"sub_0", "sub_2"})
		if err != nil || len(hist) != 6 || len(hist[0].Payload) == 0 {
			t.Fatalf("histories: %d %v", len(hist), err)
		}
		known, err := b.store.Known(ctx, []string{"evt_01", "evt_missing", "evt_11"})
		if err != nil || len(known) != 2 {
			t.Fatalf("known %v %v", known, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// A tail hands every event to its handler once, in batches, each in a transaction that also
// moves the checkpoint; a failing handler's batch is rolled back and handed over again.
func TestTail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var evs []domain.Event
	for i := range 25 {
		evs = append(evs, ev(fmt.Sprintf("evt_t%02d", i), "sub_t", domain.SourceImport))
	}
	if _, err := b.store.Append(ctx, evs[:10]); err != nil {
		t.Fatal(err)
	}
	var got []int64
	fail := errors.New("handler failed")
	failed := false
	handle := func(ctx context.Context, tx pgx.Tx, batch eventstore.Batch) error {
		if !failed && batch.From == 4 {
			failed = true
			return fail
		}
		for _, r := range batch.Events {
			got = append(got, r.Position)
		}
		if batch.Last() == 25 {
			cancel()
		}
		return nil
	}
	cfg := eventstore.TailConfig{Checkpoint: "test", BatchSize: 4, PollInterval: time.Hour}
	if err := b.store.Tail(ctx, cfg, handle); !errors.Is(err, fail) {
		t.Fatalf("tail ended with %v, want the handler's error", err)
	}
	if cp, _ := b.store.Checkpoint(ctx, "test"); cp != 4 || fmt.Sprint(got) != "[1 2 3 4]" {
		t.Fatalf("after the failed batch: checkpoint %d, handled %v", cp, got)
	}
	// The next tail starts at the checkpoint; an append through the same store wakes it at once
	// (the poll interval is an hour).
	done := make(chan error, 1)
	go func() { done <- b.store.Tail(ctx, cfg, handle) }()
	if _, err := b.store.Append(context.Background(), evs[10:]); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, pos := range got {
		if pos != int64(i+1) {
			t.Fatalf("handled %v: want every position once, in order", got)
		}
	}
	if len(got) != 25 {
		t.Fatalf("handled %d of 25", len(got))
	}
}

// The contract projections rely on: under heavy concurrent appends (with duplicates), a reader
// tailing by position sees every distinct event exactly once and in order, and every delivery of
// an event ID is answered with the same position.
func TestConcurrentAppendTailingReader(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const (
		writers  = 32
		attempts = 20000
		distinct = attempts * 9 / 10 // 10% of deliveries are duplicates
	)
	app := eventstore.NewAppender(b.store, eventstore.AppenderConfig{})
	defer app.Close()

	// Each attempt is one delivery; the duplicate deliveries pick IDs at random, so some race the
	// original and some arrive long after it.
	deliveries := make([]int, 0, attempts)
	for i := range distinct {
		deliveries = append(deliveries, i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range attempts - distinct {
		deliveries = append(deliveries, rng.IntN(distinct))
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	type answer struct {
		pos int64
		dup bool
	}
	answers := make([][]answer, distinct)
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id := fmt.Sprintf("evt_c%06d", i)
				res, err := app.Append(ctx, []domain.Event{ev(id, fmt.Sprintf("sub_%d", i%97), domain.SourceReconcile)})
				if err == nil {
					err = res[0].Err
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				answers[i] = append(answers[i], answer{res[0].Position, res[0].Duplicate})
				mu.Unlock()
			}
		}()
	}

	// The tailing reader runs while the writers write.
	type seen struct {
		id  string
		pos int64
	}
	readerDone := make(chan []seen)
	go func() {
		var got []seen
		tailCtx, stop := context.WithCancel(ctx)
		defer stop()
		err := b.store.Tail(tailCtx, eventstore.TailConfig{Checkpoint: "reader", BatchSize: 700},
			func(_ context.Context, _ pgx.Tx, batch eventstore.Batch) error {
				for _, r := range batch.Events {
					got = append(got, seen{r.ID, r.Position})
				}
				if len(got) >= distinct {
					stop()
				}
				return nil
			})
		if err != nil {
			errs <- err
		}
		readerDone <- got
	}()

	for _, d := range deliveries {
		select {
		case work <- d:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	close(work)
	wg.Wait()
	got := <-readerDone
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	if len(got) != distinct {
		t.Fatalf("reader saw %d events, want %d", len(got), distinct)
	}
	byID := make(map[string]int64, distinct)
	for i, s := range got {
		if s.pos != int64(i+1) {
			t.Fatalf("reader saw position %d at index %d: positions must be dense and ordered", s.pos, i)
		}
		if _, ok := byID[s.id]; ok {
			t.Fatalf("reader saw %s twice", s.id)
		}
		byID[s.id] = s.pos
	}
	dups := 0
	for i, as := range answers {
		id := fmt.Sprintf("evt_c%06d", i)
		originals := 0
		for _, a := range as {
			if a.pos != byID[id] {
				t.Fatalf("%s answered position %d, stored at %d", id, a.pos, byID[id])
			}
			if a.dup {
				dups++
			} else {
				originals++
			}
		}
		if originals != 1 {
			t.Fatalf("%s appended %d times", id, originals)
		}
	}
	if dups != attempts-distinct {
		t.Fatalf("%d duplicate answers, want %d", dups, attempts-distinct)
	}
	v, err := b.store.Verify(ctx)
	if err != nil || v.Broken != nil || v.Count != distinct {
		t.Fatalf("verify: %+v %v", v, err)
	}
}

func TestLogIsImmutable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := b.store.Append(ctx, []domain.Event{ev("evt_1", "sub_1", domain.SourceImport), ev("evt_2", "sub_1", domain.SourceImport)}); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE ledger.events SET type = 'charge.refunded' WHERE event_id = 'evt_1'`,
		`DELETE FROM ledger.events WHERE event_id = 'evt_2'`,
		`TRUNCATE ledger.events`,
		`DELETE FROM ledger.log_head`,
		`UPDATE ledger.log_head SET position = 0`,
	} {
		_, err := b.db.Pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Fatalf("%s: want insufficient_privilege, got %v", sql, err)
		}
	}
	head, _ := b.store.Head(ctx)
	if head.Position != 2 {
		t.Fatalf("head moved: %+v", head)
	}
	v, err := b.store.Verify(ctx)
	if err != nil || v.Broken != nil || v.Count != 2 || v.HeadHash != head.Hash {
		t.Fatalf("verify %+v %v", v, err)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := map[string]struct {
		sql    string
		broken int64
	}{
		// A superuser can disable the triggers; the chain still tells.
		"edited payload": {`UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload,'UTF8'), '1999', '9'), 'UTF8') WHERE position = 3`, 3},
		"edited type":    {`UPDATE ledger.events SET type = 'charge.refunded' WHERE position = 2`, 2},
		"deleted row":    {`DELETE FROM ledger.events WHERE position = 4`, 5},
		"deleted tail":   {`DELETE FROM ledger.events WHERE position = 5`, 5},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			for i := 1; i <= 5; i++ {
				if _, err := b.store.Append(ctx, []domain.Event{ev(fmt.Sprintf("evt_%d", i), "sub_1", domain.SourceImport)}); err != nil {
					t.Fatal(err)
				}
			}
			testkit.Tamper(t, b.db, tc.sql)
			v, err := b.store.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v.Broken == nil || v.Broken.Position != tc.broken {
				t.Fatalf("want break at %d, got %+v", tc.broken, v.Broken)
			}
		})
	}
}

// An append whose COMMIT fails reports an error and leaves nothing behind: no event is answered
// as appended unless its transaction committed. (A deferred constraint trigger fails at commit
// time, after the append statement itself has returned its positions.)
func TestFailedCommitAppendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN IF NEW.event_id LIKE 'evt_fail%' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON ledger.events
		 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_at_commit()`,
	} {
		if _, err := b.db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	res, err := b.store.Append(ctx, []domain.Event{ev("evt_ok_1", "sub_1", domain.SourceImport), ev("evt_fail_1", "sub_1", domain.SourceImport)})
	if err == nil || !strings.Contains(err.Error(), "refused at commit") || res != nil {
		t.Fatalf("append with a failing commit: %v %v", res, err)
	}
	if _, err := b.store.Get(ctx, "evt_ok_1"); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("an event of the failed transaction is in the log: %v", err)
	}
	// The log and the pool are fine afterwards.
	for range 3 {
		res, err = b.store.Append(ctx, []domain.Event{ev("evt_ok_1", "sub_1", domain.SourceImport)})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
	}
	if res[0].Position != 1 || !res[0].Duplicate {
		t.Fatalf("%+v", res[0])
	}
	if v, err := b.store.Verify(ctx); err != nil || v.Broken != nil || v.Count != 1 {
		t.Fatalf("%+v %v", v, err)
	}
}

// The same event ID at another API version is another rendering of the stored event: the first
// stays the event (its payload, position and chain unchanged), the later one is kept beside it,
// once per version. (A redaction erases it: redaction's tests.)
func TestRenderingsKeptBeside(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	body := func(version, extra string) domain.Event {
		raw := fmt.Sprintf(`{"id":"evt_r1","object":"event","api_version":%q,"created":1700000000,"livemode":false,"type":"invoice.paid","data":{"object":{"id":"in_1","object":"invoice"%s}}}`, version, extra)
		e, err := domain.NewEvent([]byte(raw), domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := body("2023-10-16", `,"subscription":"sub_1"`)
	if _, err := b.store.Append(ctx, []domain.Event{first}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []domain.Event{body("2026-08-26.dahlia", `,"parent":{"type":"subscription_details"}`), body("2026-08-26.dahlia", `,"other":1`), body("2023-10-16", `,"x":2`)} {
		res, err := b.store.Append(ctx, []domain.Event{e})
		if err != nil || !res[0].Duplicate || res[0].Position != 1 {
			t.Fatalf("%+v %v", res, err)
		}
	}
	stored, err := b.store.Get(ctx, "evt_r1")
	if err != nil || !bytes.Equal(stored.Payload, first.Payload) {
		t.Fatalf("the stored event changed: %s %v", stored.Payload, err)
	}
	rs, err := b.store.Renderings(ctx, "evt_r1")
	if err != nil || len(rs) != 1 || rs[0].APIVersion != "2026-08-26.dahlia" || !bytes.Contains(rs[0].Payload, []byte(`"parent"`)) || rs[0].Source != "import" {
		t.Fatalf("renderings %+v %v", rs, err)
	}
	// Two endpoints' deliveries batched into one call: a new event and its other rendering, and
	// two more renderings of a stored one.
	other := func(id, version string) domain.Event {
		e := body(version, "")
		raw := strings.Replace(string(e.Payload), `"evt_r1"`, `"`+id+`"`, 1)
		e, err := domain.NewEvent([]byte(raw), domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	res, err := b.store.Append(ctx, []domain.Event{other("evt_r2", "2023-10-16"), other("evt_r2", "2026-08-26.dahlia"),
		body("2025-03-31.basil", ""), body("2025-09-30.clover", "")})
	if err != nil || res[0].Duplicate || res[0].Position != 2 || !res[1].Duplicate || res[1].Position != 2 || !res[2].Duplicate || !res[3].Duplicate {
		t.Fatalf("batched renderings: %+v %v", res, err)
	}
	for id, want := range map[string][]string{"evt_r1": {"2025-03-31.basil", "2025-09-30.clover", "2026-08-26.dahlia"}, "evt_r2": {"2026-08-26.dahlia"}} {
		rs, err := b.store.Renderings(ctx, id)
		var got []string
		for _, r := range rs {
			got = append(got, r.APIVersion)
		}
		if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: renderings %v, want %v (%v)", id, got, want, err)
		}
	}
	if v, err := b.store.Verify(ctx); err != nil || v.Broken != nil || v.Count != 2 {
		t.Fatalf("verify: %+v %v", v, err)
	}
}
