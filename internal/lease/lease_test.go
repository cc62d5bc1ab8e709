package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/testkit"
)

type testBundle struct {
	db *testkit.DB
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{db: testkit.New(t)}
}

// start runs a lease whose work blocks until its context ends, and stops it when the test ends.
func (b *testBundle) start(t *testing.T, name string) (*lease.Lease, context.CancelFunc) {
	t.Helper()
	l, err := lease.New(b.db.Pool, lease.Config{Name: name, RetryInterval: 20 * time.Millisecond, CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.Signals.Gained.Init(t)
	l.Signals.Lost.Init(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Run(ctx, func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		})
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return l, stop
}

func TestOneHolderAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first, stopFirst := b.start(t, "test")
	first.Signals.Gained.Wait()
	second, _ := b.start(t, "test")
	other, _ := b.start(t, "another")
	other.Signals.Gained.Wait() // a lease of another name is independent
	holder, err := lease.Holder(context.Background(), b.db.Pool, "test")
	if err != nil || holder == "" || !first.Held() || second.Held() {
		t.Fatalf("holder %q %v; first %v, second %v", holder, err, first.Held(), second.Held())
	}
	stopFirst()
	second.Signals.Gained.Wait()
	if !second.Held() || first.Held() {
		t.Fatalf("after the first stopped: first %v, second %v", first.Held(), second.Held())
	}
}

// When the holder's lock connection dies, its work's context is cancelled with the reason, and
// it takes the lease again once it can.
func TestLosingTheConnectionEndsTheWork(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l, _ := b.start(t, "test")
	l.Signals.Gained.Wait()
	if _, err := b.db.Pool.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name LIKE 'ledger test (%' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	if err := l.Signals.Lost.Wait(); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("lost with %v, want the connection's failure", err)
	}
	l.Signals.Gained.Wait()
}
