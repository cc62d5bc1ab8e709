package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/eventstore"
)

// Config configures the reconciler. Zero values take the documented defaults.
type Config struct {
	Stripe StripeConfig
	// Overlap is how far before the end of the last proven window an events run starts again:
	// Stripe's `created` is the creation time, and an event may become listable a little after
	// it. Default 1 hour.
	Overlap time.Duration
	// Now is the clock windows are computed from. Default time.Now; tests against the simulator
	// pass its simulated clock.
	Now    func() time.Time
	Logger *slog.Logger
	// PageSize is the objects per list request, at most Stripe's 100 (the default).
	PageSize int
	// WebhookURL is the ledger's public webhook URL; when set, the endpoints job checks only
	// endpoints pointing at it (an account may have endpoints for other systems).
	WebhookURL string
	// AfterPage, if set, is called in the run's goroutine each time a run has recorded a page's
	// progress (counters and cursor) in ledger.reconcile_runs, with the run as recorded. Tests
	// use it to act at a known point of a run: cancel it there, or start another beside it.
	AfterPage func(Run)
}

func (c *Config) setDefaults() {
	if c.Overlap <= 0 {
		c.Overlap = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PageSize <= 0 || c.PageSize > 100 {
		c.PageSize = 100
	}
}

// Options are one run's arguments.
type Options struct {
	Job      Job
	From, To time.Time // events jobs: the created window; zero for the default
	DryRun   bool      // report what would be repaired, write nothing but the run's row
	Trigger  string    // cli (default), schedule, catch-up, api
	// Started, if set, is called with the run as recorded once it has begun (it is in
	// ledger.reconcile_runs, running), before it does its work: the API answers with it.
	Started func(Run)

	// due, if set, is asked under the job's lock with the start of the job's last run; false
	// skips the run (ErrNotDue). The scheduler uses it so a time is run once across processes.
	due func(lastStarted *time.Time) bool
}

// Reconciler runs reconciliation jobs against one database and one Stripe account.
type Reconciler struct {
	pool  *pgxpool.Pool
	store *eventstore.Store
	cfg   Config
}

// New makes a reconciler.
func New(pool *pgxpool.Pool, cfg Config) *Reconciler {
	cfg.setDefaults()
	return &Reconciler{pool: pool, store: eventstore.New(pool), cfg: cfg}
}

// Run runs one job and records it in ledger.reconcile_runs. It returns the run as recorded; the
// error says why it did not succeed (ErrAlreadyRunning when another process is running the job).
func (r *Reconciler) Run(ctx context.Context, opts Options) (Run, error) {
	if opts.Trigger == "" {
		opts.Trigger = "cli"
	}
	if _, err := ParseJob(string(opts.Job)); err != nil {
		return Run{}, err
	}
	counters := &Counters{}
	api, err := newStripeAPI(r.cfg.Stripe, counters)
	if err != nil {
		return Run{}, err
	}
	run, resume, err := begin(ctx, r.pool, opts.Job, opts.DryRun, opts.Trigger, opts.due)
	if err != nil {
		return Run{}, err
	}
	if opts.Started != nil {
		opts.Started(run)
	}
	rec := &recorder{pool: r.pool, run: &run, counters: counters, afterPage: r.cfg.AfterPage}
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go rec.heartbeat(hbCtx)
	defer func() {
		// A panic is a bug, but the run it ends is recorded as failed rather than left running
		// with a live heartbeat until the process ends; the panic goes on to the caller.
		if p := recover(); p != nil {
			stopHB()
			_ = rec.finish(ctx, "failed", fmt.Errorf("panic: %v", p))
			panic(p)
		}
	}()
	start := time.Now()
	switch opts.Job {
	case JobEvents, JobEventsFast:
		err = r.runEvents(ctx, api, rec, opts.Job, opts, resume)
	case JobObjects:
		err = r.runObjects(ctx, api, rec, opts)
	case JobEndpoints:
		err = r.runEndpoints(ctx, api, rec)
	}
	stopHB()
	status := "succeeded"
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = "cancelled"
	case errors.Is(err, errPartial):
		status = "partial"
	case err != nil:
		status = "failed"
	}
	if ferr := rec.finish(ctx, status, err); ferr != nil && err == nil {
		err = ferr
	}
	r.cfg.Logger.Info("reconcile run finished", "run", run.ID, "job", opts.Job, "status", status, "dry_run", opts.DryRun,
		"events_seen", run.EventsSeen, "missing", run.MissingFound, "repaired", run.Repaired, "requests", run.Requests,
		"rate_limited", run.RateLimited, "took", time.Since(start).Round(time.Millisecond))
	final, gerr := GetRun(context.WithoutCancel(ctx), r.pool, run.ID)
	if gerr != nil {
		final = run
	}
	if err != nil {
		return final, fmt.Errorf("reconcile %s run %d %s: %w", opts.Job, run.ID, status, err)
	}
	return final, nil
}

// errPartial marks a run that did part of its work: some objects could not be checked.
var errPartial = errors.New("partly done")
