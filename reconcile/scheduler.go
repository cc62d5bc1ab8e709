package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/stripeledger/ledger/internal/clock"
	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/testsignal"
)

// DefaultSchedule is when serve runs each job without LEDGER_RECONCILE_SCHEDULE (UTC): the cheap
// delivery_success=false pass every 10 minutes, the full events pass every 6 hours (each one
// only checks what the previous ones have not proven), the object drift check and the endpoint
// health check daily and hourly, the balance transactions every 6 hours (Stripe pays out daily;
// a payout listed once paid is not listed again, so a run costs little).
const DefaultSchedule = "events-fast=*/10 * * * *; events=17 */6 * * *; objects=43 3 * * *; balance=29 */6 * * *; endpoints=5 * * * *"

// Schedule is a cron spec per job.
type Schedule map[Job]cron.Schedule

// ParseSchedule reads "job=spec; job=spec" (standard five-field cron specs, UTC, or descriptors
// such as @hourly and @every 10m). Jobs left out are not scheduled; "off" schedules nothing.
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

// Clock is the time a Scheduler decides on (package clock).
type Clock = clock.Clock

// SchedulerConfig configures a Scheduler beyond its schedule. Zero values take the documented
// defaults.
type SchedulerConfig struct {
	// Clock decides when a job is due. Default: real time. The runs themselves are recorded with
	// Postgres's clock (started_at), which the checks for a time already run compare with this
	// one: a fake clock should stand ahead of real time.
	Clock Clock
	// LeaseInterval is how often a standby process tries to become the scheduler, and how often
	// the scheduler checks the connection holding its lease. Default 1 s.
	LeaseInterval time.Duration
}

func (c *SchedulerConfig) setDefaults() {
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.LeaseInterval <= 0 {
		c.LeaseInterval = time.Second
	}
}

// ScheduledRun is a run the scheduler started (or skipped), as its signals report it.
type ScheduledRun struct {
	Job     Job
	Trigger string    // schedule or catch-up
	At      time.Time // by the scheduler's clock: the scheduled time, or when the catch-up began
	// Run and Err are set in RunFinished: the run as recorded (zero when none was: another
	// process ran the job for this time, ErrNotDue, or is running it, ErrAlreadyRunning) and why
	// it did not succeed, a recovered panic included.
	Run Run
	Err error
}

// SchedulerSignals are what a test can wait for (see package testsignal).
type SchedulerSignals struct {
	// Waiting is the time the scheduler waits for next on its clock (the earliest next run).
	Waiting testsignal.Signal[time.Time]
	// RunStarted and RunFinished bracket every run the scheduler starts.
	RunStarted  testsignal.Signal[ScheduledRun]
	RunFinished testsignal.Signal[ScheduledRun]
	// Skipped is a scheduled time that came while the job's previous run was still going.
	Skipped testsignal.Signal[ScheduledRun]
}

// Scheduler runs the jobs on their schedules inside `ledger serve`.
//
// Of all the processes running one, only the holder of the "reconcile scheduler" lease
// schedules; the others stand by and take over within LeaseInterval of its end, beginning, as a
// process starting does, by catching up each job whose last scheduled time passed without a run
// (or that never ran). Each run is still recorded under its job's lock (see begin), which is what
// keeps a CLI run and a scheduled one apart, resumes a run whose process died, and lets a run due
// at a time happen once when a lease changes hands at that time.
//
// robfig/cron v3 is used for what it does well — parsing the specs (five fields and descriptors)
// and Schedule.Next — but not its Cron runner: that reads time.Now and timers of its own, so no
// test could drive it without waiting on the wall clock, and it knows nothing of leases or
// catch-up. The loop here does what the runner and its chain did for the ledger: one
// goroutine per run, a panic recovered and logged (cron.Recover), a time skipped while the job's
// previous run is still going (cron.SkipIfStillRunning).
type Scheduler struct {
	r     *Reconciler
	sched Schedule
	specs map[Job]string
	cfg   SchedulerConfig
	log   *slog.Logger
	lease *lease.Lease
	// Signals are off unless a test initialises them.
	Signals SchedulerSignals
}

// NewScheduler parses spec (see ParseSchedule) into a scheduler of r's jobs; cfg, at most one,
// is optional.
func NewScheduler(r *Reconciler, spec string, cfg ...SchedulerConfig) (*Scheduler, error) {
	sched, specs, err := ParseSchedule(spec)
	if err != nil {
		return nil, err
	}
	var c SchedulerConfig
	switch len(cfg) {
	case 0:
	case 1:
		c = cfg[0]
	default:
		return nil, errors.New("scheduler: more than one SchedulerConfig")
	}
	c.setDefaults()
	l, err := lease.New(r.pool, lease.Config{Name: "reconcile scheduler",
		RetryInterval: c.LeaseInterval, CheckInterval: c.LeaseInterval, Logger: r.cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return &Scheduler{r: r, sched: sched, specs: specs, cfg: c, log: r.cfg.Logger, lease: l}, nil
}

// Lease is what makes this process the one that schedules: its Held says whether it does now,
// and its Signals let a test wait for it to take over or give up.
func (s *Scheduler) Lease() *lease.Lease { return s.lease }

// Run schedules the jobs until ctx ends, whenever this process holds the scheduler's lease, then
// waits for the runs in progress. Runs stop when the lease is lost or ctx ends (they share its
// context) and are resumed from their cursor by the job's next run.
func (s *Scheduler) Run(ctx context.Context) {
	if len(s.sched) == 0 {
		return
	}
	_ = s.lease.Run(ctx, s.lead)
}

// lead schedules while this process holds the lease; ctx ends when it loses it.
func (s *Scheduler) lead(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	busy := map[Job]bool{} // jobs with a run going (or a catch-up to come) in this process
	release := func(job Job) {
		mu.Lock()
		defer mu.Unlock()
		delete(busy, job)
	}
	start := func(job Job, trigger string, at time.Time, due func(*time.Time) bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := s.run(ctx, job, trigger, at, due)
			release(job)
			s.Signals.RunFinished.Signal(done)
		}()
	}

	now := s.cfg.Clock.Now()
	next := map[Job]time.Time{}
	for _, job := range Jobs {
		if sched, ok := s.sched[job]; ok {
			next[job] = sched.Next(now.UTC())
			busy[job] = true // until its catch-up is done
			s.log.Info("reconcile job scheduled", "job", job, "spec", s.specs[job], "next", next[job])
		}
	}
	// Catch-up runs the jobs one after another: all at once, they would only compete for
	// Stripe's rate limit. A scheduled time that comes meanwhile is skipped for the jobs not yet
	// caught up, whose catch-up then runs it. A job is due when its last run (in any process)
	// started before its last scheduled time, or it never ran.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, job := range Jobs {
			sched, ok := s.sched[job]
			if !ok {
				continue
			}
			if ctx.Err() != nil {
				release(job)
				continue
			}
			done := s.run(ctx, job, "catch-up", s.cfg.Clock.Now(), func(last *time.Time) bool {
				return last == nil || !sched.Next(last.UTC()).After(s.cfg.Clock.Now().UTC())
			})
			release(job)
			s.Signals.RunFinished.Signal(done)
		}
	}()

	for {
		var earliest time.Time
		for _, at := range next {
			if earliest.IsZero() || at.Before(earliest) {
				earliest = at
			}
		}
		s.Signals.Waiting.Signal(earliest)
		select {
		case <-ctx.Done():
			return nil
		case <-s.cfg.Clock.At(earliest):
		}
		now := s.cfg.Clock.Now()
		for _, job := range Jobs {
			at, ok := next[job]
			if !ok || at.After(now) {
				continue
			}
			sched := s.sched[job]
			next[job] = sched.Next(now.UTC())
			mu.Lock()
			running := busy[job]
			busy[job] = true
			mu.Unlock()
			if running {
				s.log.Info("reconcile job still running; this time skipped", "job", job, "at", at)
				s.Signals.Skipped.Signal(ScheduledRun{Job: job, Trigger: "schedule", At: at})
				continue
			}
			// A process that held the lease until just before this time (or a CLI run) may have
			// run the job for it: a run started since just before the time means it is done.
			slack := min(time.Second, sched.Next(at.UTC()).Sub(at)/2)
			start(job, "schedule", at, func(last *time.Time) bool { return last == nil || last.Before(at.Add(-slack)) })
		}
	}
}

// run runs one job, recovering a panic as the run's error.
func (s *Scheduler) run(ctx context.Context, job Job, trigger string, at time.Time, due func(*time.Time) bool) (done ScheduledRun) {
	done = ScheduledRun{Job: job, Trigger: trigger, At: at}
	s.Signals.RunStarted.Signal(done)
	defer func() {
		if p := recover(); p != nil {
			done.Err = fmt.Errorf("reconcile %s run panicked: %v", job, p)
			s.log.Error("reconcile run panicked", "job", job, "trigger", trigger, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	run, err := s.r.Run(ctx, Options{Job: job, Trigger: trigger, due: due})
	done.Run, done.Err = run, err
	switch {
	case errors.Is(err, ErrAlreadyRunning):
		s.log.Info("reconcile job already running elsewhere; skipped", "job", job)
	case errors.Is(err, ErrNotDue):
		s.log.Debug("reconcile job already ran for this time; skipped", "job", job, "trigger", trigger)
	case err != nil && ctx.Err() == nil:
		s.log.Error("reconcile run failed", "job", job, "run", run.ID, "error", err)
	}
	return done
}
