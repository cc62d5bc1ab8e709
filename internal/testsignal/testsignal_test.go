package testsignal_test

import (
	"sync"
	"testing"

	"github.com/stripeledger/ledger/internal/testsignal"
)

// An uninitialised signal costs nothing and records nothing; an initialised one keeps every value
// in order, however many arrive before the test reads them, and from any goroutine.
func TestSignal(t *testing.T) {
	t.Parallel()
	var off testsignal.Signal[int]
	off.Signal(1) // no-op

	var s testsignal.Signal[int]
	s.Init(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 1000 {
			s.Signal(i)
		}
	}()
	for i := range 10 {
		if got := s.Wait(); got != i {
			t.Fatalf("value %d: got %d", i, got)
		}
	}
	if got := s.WaitUntil(func(v int) bool { return v >= 999 }); got != 999 {
		t.Fatalf("WaitUntil: %d", got)
	}
	wg.Wait()
}
