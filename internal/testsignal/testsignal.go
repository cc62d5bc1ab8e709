// Package testsignal lets a test wait for something a component does in the background (it
// gained a lease, folded a batch, started a run) instead of polling for it with a deadline and
// sleeps.
//
// A component embeds Signals of its own, each a Signal[T] it calls Signal on at the moment in
// question. In production the signals are never initialised and Signal costs a nil check. A test
// calls Init on the ones it waits for, then Wait or WaitUntil.
//
// Unlike a bare buffered channel, a Signal never drops a value and never blocks the component:
// values queue until the test reads them, so a test that waits for "the runner reached position
// N" sees every step on the way there.
package testsignal

import (
	"sync"
	"time"
)

// TB is the part of testing.TB a Signal uses (so that production code need not import testing).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Timeout is how long Wait waits before failing the test. It is generous: a loaded two-core
// machine running every package's tests at once can stall a component for seconds, and a
// passing test never waits for it.
var Timeout = 2 * time.Minute

// Signal is one kind of thing a component reports to a test. Its zero value is off.
type Signal[T any] struct {
	mu     sync.Mutex
	tb     TB
	queue  []T
	notify chan struct{} // closed and replaced when a value is queued
}

// Init turns the signal on. Call it before starting the component.
func (s *Signal[T]) Init(tb TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tb = tb
	s.queue = nil
	s.notify = make(chan struct{})
}

// Signal records v for a test waiting on it; a no-op unless Init was called.
func (s *Signal[T]) Signal(v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notify == nil {
		return
	}
	s.queue = append(s.queue, v)
	close(s.notify)
	s.notify = make(chan struct{})
}

// Wait returns the next value signalled, failing the test after Timeout.
func (s *Signal[T]) Wait() T {
	s.mu.Lock()
	tb := s.tb
	s.mu.Unlock()
	if tb == nil {
		panic("testsignal: Wait on a signal that was not initialised")
	}
	tb.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			v := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return v
		}
		notify := s.notify
		s.mu.Unlock()
		select {
		case <-notify:
		case <-deadline.C:
			tb.Fatalf("timed out after %s waiting for a test signal", Timeout)
		}
	}
}

// WaitUntil reads values until one satisfies ok, and returns it.
func (s *Signal[T]) WaitUntil(ok func(T) bool) T {
	if s.tb != nil {
		s.tb.Helper()
	}
	for {
		if v := s.Wait(); ok(v) {
			return v
		}
	}
}
