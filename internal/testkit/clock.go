package testkit

import (
	"sync"
	"time"
)

// Clock is a fake clock that moves only when the test moves it, so a component waiting for a
// time on it (a scheduler's next run) wakes exactly when the test says, however loaded the
// machine. It has the method set of clock.Clock.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock makes a clock standing at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At returns a channel that receives the clock's time once it has reached t: at once when it
// already has, otherwise when Set or Advance moves it there.
func (c *Clock) At(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !c.now.Before(t) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{at: t, ch: ch})
	return ch
}

// Set moves the clock to t and wakes everything waiting for a time up to t. A clock never goes
// back: t before the clock's time panics (a test bug).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(t)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(c.now.Add(d))
}

func (c *Clock) set(t time.Time) {
	if t.Before(c.now) {
		panic("testkit.Clock: set back from " + c.now.String() + " to " + t.String())
	}
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		w.ch <- t
	}
	c.waiters = kept
}
