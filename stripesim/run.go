package stripesim

import (
	"context"
	"time"
)

// Runner plays sims on one simulated clock and delivers their events as simulated time passes.
// Sim and Deliverer are the single-account form; Sims and Deliverers add more (a Platform's
// scopes and its four endpoints: see Platform.Runner). Every action of every sim due by a step's
// end runs before any delivery of that step is sent.
type Runner struct {
	Sim        *Sim
	Deliverer  *Deliverer // nil: no webhooks
	Sims       []*Sim
	Deliverers []*Deliverer
	// Step is how much simulated time is played before the due deliveries are sent together;
	// default one minute.
	Step time.Duration
	// Speed is simulated seconds per real second; 0 plays as fast as the endpoints answer.
	Speed float64
}

func (r *Runner) all() ([]*Sim, []*Deliverer) {
	sims, ds := r.Sims, r.Deliverers
	if r.Sim != nil {
		sims = append([]*Sim{r.Sim}, sims...)
	}
	if r.Deliverer != nil {
		ds = append([]*Deliverer{r.Deliverer}, ds...)
	}
	return sims, ds
}

// Run plays until every sim's end and every delivery (with its retries) is done, or ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	sims, ds := r.all()
	if len(sims) == 0 {
		return nil
	}
	step := r.Step
	if step <= 0 {
		step = time.Minute
	}
	simStart := sims[0].Now()
	for _, s := range sims[1:] {
		if n := s.Now(); n.Before(simStart) {
			simStart = n
		}
	}
	wallStart := time.Now()
	for ctx.Err() == nil {
		var t time.Time
		ok := false
		earliest := func(at time.Time, has bool) {
			if has && (!ok || at.Before(t)) {
				t, ok = at, true
			}
		}
		for _, s := range sims {
			earliest(s.nextAt())
		}
		for _, d := range ds {
			earliest(d.next())
		}
		if !ok {
			for _, s := range sims {
				s.Run(time.Time{}) // nothing left to do: the clock moves to the account's end
			}
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
		for _, s := range sims {
			s.Run(end)
		}
		for _, d := range ds {
			d.deliverDue(ctx, end)
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
