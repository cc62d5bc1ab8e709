package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultSchedule is when serve runs each job without LEDGER_RECONCILE_SCHEDULE (UTC): the cheap
// delivery_success=false pass every 10 minutes, the full events pass every 6 hours (each one
// only checks what the previous ones have not proven), the object drift check and the endpoint
// health check daily and hourly.
const DefaultSchedule = "events-fast=*/10 * * * *; events=17 */6 * * *; objects=43 3 * * *; endpoints=5 * * * *"

// Schedule is a cron spec per job.
type Schedule map[Job]cron.Schedule

// ParseSchedule reads "job=spec; job=spec" (standard five-field cron specs, UTC). Jobs left out
// are not scheduled; "off" schedules nothing.
func ParseSchedule(s string) (Schedule, map[Job]string, error) {
	out, specs := Schedule{}, map[Job]string{}
	if strings.TrimSpace(s) == "off" {
		return out, specs, nil
	}
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, spec, ok := strings.Cut(part, "=")
		if !ok {
			return nil, nil, fmt.Errorf("schedule %q: want job=cron-spec", part)
		}
		job, err := ParseJob(strings.TrimSpace(name))
		if err != nil {
			return nil, nil, fmt.Errorf("schedule: %w", err)
		}
		sched, err := parser.Parse(strings.TrimSpace(spec))
		if err != nil {
			return nil, nil, fmt.Errorf("schedule for %s: %w", job, err)
		}
		out[job], specs[job] = sched, strings.TrimSpace(spec)
	}
	return out, specs, nil
}

// Scheduler runs the jobs on their schedules inside `ledger serve`. robfig/cron keeps no state
// and coordinates nothing, so the ledger adds it: every process may schedule the jobs, and a run
// starts only where no live run of the job exists (see begin); a run missed while no process was
// up is caught up at start.
type Scheduler struct {
	r     *Reconciler
	sched Schedule
	specs map[Job]string
	log   *slog.Logger
	wg    sync.WaitGroup
}

// NewScheduler makes a scheduler.
func NewScheduler(r *Reconciler, spec string) (*Scheduler, error) {
	sched, specs, err := ParseSchedule(spec)
	if err != nil {
		return nil, err
	}
	return &Scheduler{r: r, sched: sched, specs: specs, log: r.cfg.Logger}, nil
}

// Run schedules the jobs until ctx ends, then waits for the runs in progress (which stop at once:
// they share ctx and are resumed by the next run).
func (s *Scheduler) Run(ctx context.Context) {
	if len(s.sched) == 0 {
		return
	}
	logger := cronLogger{s.log}
	c := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	for _, job := range Jobs {
		sched, ok := s.sched[job]
		if !ok {
			continue
		}
		c.Schedule(sched, cron.FuncJob(func() {
			// Every process fires at the scheduled time; the first to take the job's lock runs
			// it, and a run started since just before this tick means this time is done.
			tick := time.Now()
			slack := min(time.Second, sched.Next(tick).Sub(tick)/2)
			s.run(ctx, job, "schedule", func(last *time.Time) bool { return last == nil || last.Before(tick.Add(-slack)) })
		}))
		s.log.Info("reconcile job scheduled", "job", job, "spec", s.specs[job], "next", sched.Next(time.Now().UTC()))
	}
	c.Start()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.catchUp(ctx)
	}()
	<-ctx.Done()
	<-c.Stop().Done()
	s.wg.Wait()
}

// catchUp runs, once, each job whose last scheduled time passed without a run starting (or that
// never ran). The decision is taken under the job's lock, so processes starting together catch
// up once.
func (s *Scheduler) catchUp(ctx context.Context) {
	for _, job := range Jobs {
		sched, ok := s.sched[job]
		if !ok || ctx.Err() != nil {
			continue
		}
		s.run(ctx, job, "catch-up", func(last *time.Time) bool {
			return last == nil || !sched.Next(last.UTC()).After(time.Now().UTC())
		})
	}
}

func (s *Scheduler) run(ctx context.Context, job Job, trigger string, due func(*time.Time) bool) {
	run, err := s.r.Run(ctx, Options{Job: job, Trigger: trigger, due: due})
	switch {
	case errors.Is(err, ErrAlreadyRunning):
		s.log.Info("reconcile job already running elsewhere; skipped", "job", job)
	case errors.Is(err, ErrNotDue):
		s.log.Debug("reconcile job already ran for this time; skipped", "job", job, "trigger", trigger)
	case err != nil && ctx.Err() == nil:
		s.log.Error("reconcile run failed", "job", job, "run", run.ID, "error", err)
	}
}

// cronLogger adapts slog to cron's logger (used for recovered panics and skipped runs).
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "error", err)...)
}
