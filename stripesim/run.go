package stripesim

import (
	"context"
	"time"
)

// Runner plays a Sim and delivers its events as simulated time passes.
type Runner struct {
	Sim       *Sim
	Deliverer *Deliverer // nil: no webhooks
	// Step is how much simulated time is played before the due deliveries are sent together;
	// default one minute.
	Step time.Duration
	// Speed is simulated seconds per real second; 0 plays as fast as the endpoint answers.
	Speed float64
}

// Run plays until the account's end and every delivery (with its retries) is done, or ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	step := r.Step
	if step <= 0 {
		step = time.Minute
	}
	wallStart, simStart := time.Now(), r.Sim.Now()
	for ctx.Err() == nil {
		t, ok := r.Sim.nextAt()
		if r.Deliverer != nil {
			if d, dok := r.Deliverer.next(); dok && (!ok || d.Before(t)) {
				t, ok = d, true
			}
		}
		if !ok {
			r.Sim.Run(time.Time{}) // nothing left to do: the clock moves to the account's end
			return nil
		}
		end := t.Add(step)
		if r.Speed > 0 {
			due := wallStart.Add(time.Duration(float64(end.Sub(simStart)) / r.Speed))
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		r.Sim.Run(end)
		if r.Deliverer != nil {
			r.Deliverer.deliverDue(ctx, end)
		}
	}
	return ctx.Err()
}

// nextAt is the time of the next action before the account's end.
func (s *Sim) nextAt() (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.queue.next()
	if !ok || t.After(s.cfg.End) {
		return time.Time{}, false
	}
	return t, true
}
