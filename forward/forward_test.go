package forward_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/forward"
	"github.com/stripeledger/ledger/internal/testkit"
)

// natsURL is the NATS server on this machine (127.0.0.1:4222), or one started for the test from
// Debian's nats-server when nothing answers there.
func natsURL(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("LEDGER_TEST_NATS_URL"); url != "" {
		return url
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:4222", time.Second); err == nil {
		c.Close()
		return "nats://127.0.0.1:4222"
	}
	bin := "/usr/sbin/nats-server"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no NATS server answers on 127.0.0.1:4222 and %s is missing: apt-get install nats-server", bin)
	}
	port := testkit.FreePort(t)
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "nats://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatal("nats-server did not start")
		}
	}
}

var errDied = errors.New("forwarder died after publishing, before its checkpoint")

// Every appended event reaches a durable JetStream consumer exactly once, in log order, with its
// event ID as the message ID — also when the forwarder dies after publishing a batch and before
// saving its checkpoint, and a new one re-publishes that batch.
func TestForwardExactlyOnceAcrossARestart(t *testing.T) {
	t.Parallel()
	url := natsURL(t)
	db := testkit.New(t)
	ctx := context.Background()
	stream, subject := testStream()

	var evs []domain.Event
	for i := range 300 {
		evs = append(evs, testkit.Event(fmt.Sprintf("evt_fwd_%04d", i), "invoice.paid", fmt.Sprintf("in_%d", i%40), 1780000000+int64(i), 600, domain.SourceImport))
	}
	store := eventstore.New(db.Pool)
	if _, err := store.Append(ctx, evs[:200]); err != nil {
		t.Fatal(err)
	}

	// The first forwarder publishes a batch of 100, then dies before its checkpoint.
	first, err := forward.New(db.Pool, forward.Config{URL: url, Stream: stream, Subject: subject, BatchSize: 100,
		OnPublished: func(int) error { return errDied }})
	if err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithTimeout(ctx, 3*time.Second)
	_ = first.Run(ctx1)
	cancel1()

	// The second starts from the saved checkpoint (0), re-publishes, and goes on with new events.
	second, _ := forward.New(db.Pool, forward.Config{URL: url, Stream: stream, Subject: subject, BatchSize: 100})
	ctx2, cancel2 := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = second.Run(ctx2) }()
	defer func() { cancel2(); <-done }()
	if _, err := store.Append(ctx, evs[200:]); err != nil {
		t.Fatal(err)
	}

	js := receiveInOrder(t, url, stream, subject, "ledger-test-consumer", evs)
	info, err := js.StreamInfo(stream)
	if err != nil || info.State.Msgs != uint64(len(evs)) {
		t.Fatalf("the stream holds %v messages (%v), want %d", info, err, len(evs))
	}
}

// A forwarder whose lock connection is cut (Postgres restarted, the backend terminated) no longer
// leads: it stops publishing, takes the lock again on a new connection, and carries on from its
// checkpoint — the consumer still sees every event once, in order.
func TestForwarderLeadsOnlyWhileItHoldsTheLock(t *testing.T) {
	t.Parallel()
	url := natsURL(t)
	db := testkit.New(t)
	ctx := context.Background()
	stream, subject := testStream()
	var evs []domain.Event
	for i := range 100 {
		evs = append(evs, testkit.Event(fmt.Sprintf("evt_lock_%04d", i), "charge.succeeded", fmt.Sprintf("ch_%d", i), 1780000000+int64(i), 400, domain.SourceImport))
	}
	store := eventstore.New(db.Pool)
	if _, err := store.Append(ctx, evs[:50]); err != nil {
		t.Fatal(err)
	}
	f, _ := forward.New(db.Pool, forward.Config{URL: url, Stream: stream, Subject: subject, BatchSize: 20})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	lockBackend := func() int {
		var pid int
		_ = db.Pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'ledger nats forwarder ' || $1::text || ' %'`, stream).Scan(&pid)
		return pid
	}
	var first int
	for deadline := time.Now().Add(10 * time.Second); first == 0; time.Sleep(20 * time.Millisecond) {
		if first = lockBackend(); first == 0 && time.Now().After(deadline) {
			t.Fatal("the forwarder never took its lock")
		}
	}
	if _, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, first); err != nil {
		t.Fatal(err)
	}
	var second int
	for deadline := time.Now().Add(10 * time.Second); second == 0 || second == first; time.Sleep(20 * time.Millisecond) {
		if second = lockBackend(); (second == 0 || second == first) && time.Now().After(deadline) {
			t.Fatal("the forwarder went on without its lock connection instead of taking the lock again")
		}
	}
	if _, err := store.Append(ctx, evs[50:]); err != nil {
		t.Fatal(err)
	}

	receiveInOrder(t, url, stream, subject, "ledger-lock-consumer", evs)
}

// receiveInOrder reads the stream with a durable pull consumer and checks that it holds every
// event once, in log order, and nothing more; the stream is deleted when the test ends.
func receiveInOrder(t *testing.T, url, stream, subject, consumer string, evs []domain.Event) nats.JetStreamContext {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := nc.JetStream()
	t.Cleanup(func() { _ = js.DeleteStream(stream) })
	var sub *nats.Subscription
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if sub, err = js.PullSubscribe(subject+".>", consumer, nats.BindStream(stream)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("durable consumer: %v", err)
		}
	}
	var got []string
	for deadline := time.Now().Add(20 * time.Second); len(got) < len(evs) && time.Now().Before(deadline); {
		msgs, _ := sub.Fetch(100, nats.MaxWait(500*time.Millisecond))
		for _, m := range msgs {
			got = append(got, m.Header.Get(nats.MsgIdHdr))
			_ = m.Ack()
		}
	}
	// Anything beyond the events would be a duplicate: give it a moment to show up.
	if extra, _ := sub.Fetch(10, nats.MaxWait(500*time.Millisecond)); len(extra) > 0 {
		t.Fatalf("%d messages beyond the %d events: duplicates", len(extra), len(evs))
	}
	if len(got) != len(evs) {
		t.Fatalf("the consumer received %d of %d events", len(got), len(evs))
	}
	for i, id := range got {
		if id != evs[i].ID {
			t.Fatalf("message %d is %s, want %s (log order, once each)", i, id, evs[i].ID)
		}
	}
	return js
}

// testStream is a stream and subject of the test's own on the shared NATS server.
func testStream() (stream, subject string) {
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	return "LEDGER_TEST_" + suffix, "ledger_test_" + suffix
}
