// Package clock is the time a scheduled component decides on: real time in production; tests
// pass a fake one they move by hand (testkit.Clock), so that no test waits for a wall-clock
// schedule.
package clock

import "time"

// Clock tells the time and wakes a waiter when it has come.
type Clock interface {
	Now() time.Time
	// At returns a channel that receives once the clock has reached t — at once if it has.
	At(t time.Time) <-chan time.Time
}

// Real is time itself.
var Real Clock = real{}

type real struct{}

func (real) Now() time.Time                  { return time.Now() }
func (real) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }
