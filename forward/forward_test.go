package forward_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/forward"
	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/natstest"
	"github.com/stripeledger/ledger/internal/testkit"
)

// The stream and subject the forwarder defaults to; every test has a NATS server of its own.
const (
	stream  = "LEDGER_EVENTS"
	subject = "ledger.events"
)

type testBundle struct {
	db    *testkit.DB
	store *eventstore.Store
	url   string // the test's own NATS server
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := testkit.New(t)
	return &testBundle{db: db, store: eventstore.New(db.Pool), url: natstest.Start(t)}
}

// forwarder makes a forwarder on the test's NATS server with its test signals on.
func (b *testBundle) forwarder(t *testing.T, cfg forward.Config) *forward.Forwarder {
	t.Helper()
	cfg.URL = b.url
	if cfg.LeaseInterval == 0 {
		cfg.LeaseInterval = 20 * time.Millisecond
	}
	f, err := forward.New(b.db.Pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Signals.Published.Init(t)
	f.Lease().Signals.Gained.Init(t)
	f.Lease().Signals.Lost.Init(t)
	return f
}

// run starts f and returns a function that stops it and waits for it to return (also called
// when the test ends).
func run(t *testing.T, f *forward.Forwarder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func (b *testBundle) append(t *testing.T, evs []domain.Event) int64 {
	t.Helper()
	if _, err := b.store.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	head, err := b.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return head.Position
}

// publishedThrough waits until f has published the log up to position.
func publishedThrough(f *forward.Forwarder, position int64) {
	f.Signals.Published.WaitUntil(func(last int64) bool { return last >= position })
}

func events(prefix, typ string, n int) []domain.Event {
	var evs []domain.Event
	for i := range n {
		evs = append(evs, testkit.Event(fmt.Sprintf("evt_%s_%04d", prefix, i), typ, fmt.Sprintf("obj_%d", i%40),
			1780000000+int64(i), 600, domain.SourceImport))
	}
	return evs
}

var errDied = errors.New("forwarder died after publishing, before its checkpoint")

// Every appended event reaches a durable JetStream consumer exactly once, in log order, with its
// event ID as the message ID — also when the forwarder dies after publishing a batch and before
// saving its checkpoint, and a new one re-publishes that batch.
func TestForwardExactlyOnceAcrossARestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	evs := events("fwd", "invoice.paid", 300)
	b.append(t, evs[:200])

	// The first forwarder publishes a batch of 100, then dies before its checkpoint.
	first := b.forwarder(t, forward.Config{BatchSize: 100, OnPublished: func(int) error { return errDied }})
	stopFirst := run(t, first)
	if err := first.Lease().Signals.Lost.Wait(); !errors.Is(err, errDied) {
		t.Fatalf("the first forwarder stopped with %v, want %v", err, errDied)
	}
	stopFirst()
	if pos, err := b.store.Checkpoint(context.Background(), "nats:"+stream); err != nil || pos != 0 {
		t.Fatalf("the checkpoint is at %d (%v) after the batch was refused, want 0", pos, err)
	}

	// The second starts from the saved checkpoint (0), re-publishes, and goes on with new events.
	second := b.forwarder(t, forward.Config{BatchSize: 100})
	run(t, second)
	head := b.append(t, evs[200:])
	publishedThrough(second, head)

	js := receiveInOrder(t, b.url, "ledger-test-consumer", evs)
	info, err := js.StreamInfo(stream)
	if err != nil || info.State.Msgs != uint64(len(evs)) {
		t.Fatalf("the stream holds %+v messages (%v), want %d", info.State, err, len(evs))
	}
}

// A forwarder whose lease connection is cut (Postgres restarted, the backend terminated) stops
// forwarding, takes the lease again on a new connection, and carries on from its checkpoint —
// the consumer still sees every event once, in order.
func TestForwarderLeadsOnlyWhileItHoldsTheLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	evs := events("lock", "charge.succeeded", 100)
	head := b.append(t, evs[:50])
	f := b.forwarder(t, forward.Config{BatchSize: 20})
	run(t, f)
	f.Lease().Signals.Gained.Wait()
	publishedThrough(f, head)

	holder, err := lease.Holder(ctx, b.db.Pool, f.Lease().Name())
	if err != nil || holder == "" {
		t.Fatalf("no holder of the forwarder's lease (%v)", err)
	}
	if _, err := b.db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, holder); err != nil {
		t.Fatal(err)
	}
	if err := f.Lease().Signals.Lost.Wait(); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("the forwarder gave its lease up with %v, want the lost connection", err)
	}
	f.Lease().Signals.Gained.Wait()
	head = b.append(t, evs[50:])
	publishedThrough(f, head)

	receiveInOrder(t, b.url, "ledger-lock-consumer", evs)
}

// Two processes forward the same stream: one forwards, the other stands by and takes over from
// the checkpoint when the first stops.
func TestOneForwarderAcrossProcesses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	evs := events("two", "customer.updated", 120)
	head := b.append(t, evs[:60])
	first := b.forwarder(t, forward.Config{BatchSize: 25})
	stopFirst := run(t, first)
	first.Lease().Signals.Gained.Wait()
	second := b.forwarder(t, forward.Config{BatchSize: 25})
	run(t, second)
	publishedThrough(first, head)
	if !first.Lease().Held() || second.Lease().Held() {
		t.Fatalf("first holds the lease: %v, second: %v", first.Lease().Held(), second.Lease().Held())
	}

	stopFirst()
	second.Lease().Signals.Gained.Wait()
	head = b.append(t, evs[60:])
	publishedThrough(second, head)

	js := receiveInOrder(t, b.url, "ledger-two-consumer", evs)
	info, err := js.StreamInfo(stream)
	if err != nil || info.State.Msgs != uint64(len(evs)) {
		t.Fatalf("the stream holds %+v messages (%v), want %d", info.State, err, len(evs))
	}
}

// receiveInOrder reads the stream with a durable pull consumer and checks that it holds every
// event once, in log order, and nothing more. Every event has been published when it is called,
// so each fetch is answered from the stream at once.
func receiveInOrder(t *testing.T, url, consumer string, evs []domain.Event) nats.JetStreamContext {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	sub, err := js.PullSubscribe(subject+".>", consumer, nats.BindStream(stream))
	if err != nil {
		t.Fatalf("durable consumer: %v", err)
	}
	var got []string
	for len(got) < len(evs) {
		msgs, err := sub.Fetch(len(evs)-len(got), nats.MaxWait(time.Minute))
		if err != nil {
			t.Fatalf("the consumer received %d of %d events: %v", len(got), len(evs), err)
		}
		for _, m := range msgs {
			got = append(got, m.Header.Get(nats.MsgIdHdr))
			if err := m.AckSync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Anything beyond the events would be a duplicate, and would be pending now.
	info, err := sub.ConsumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 0 {
		t.Fatalf("%d messages beyond the %d events: duplicates", info.NumPending, len(evs))
	}
	for i, id := range got {
		if id != evs[i].ID {
			t.Fatalf("message %d is %s, want %s (log order, once each)", i, id, evs[i].ID)
		}
	}
	return js
}
