package reconcile

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"

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
	Trigger  string    // cli (default), schedule, catch-up, api, backfill
	// Scopes limits the run to some modes and accounts; the zero value is every configured one.
	Scopes ScopeFilter
	// Started, if set, is called with the run as recorded once it has begun (it is in
	// ledger.reconcile_runs, running), before it does its work: the API answers with it.
	Started func(Run)
	// Progress, if set, is called after each page with what the run has done so far (the
	// objects job's listing: see Progress).
	Progress func(Progress)

	// due, if set, is asked under the job's lock with the start of the job's last run; false
	// skips the run (ErrNotDue). The scheduler uses it so a time is run once across processes.
	due func(lastStarted *time.Time) bool
}

// Reconciler runs reconciliation jobs against one database and one Stripe platform: a key per
// mode, the platform's own account and its connected accounts.
type Reconciler struct {
	pool  *pgxpool.Pool
	store *eventstore.Store
	cfg   Config
	// limiters are per mode, so per key: every run and every connected account read with a key
	// spends from its one limiter.
	limiters map[bool]*rate.Limiter
}

// New makes a reconciler. Its keys are checked when it runs (StripeConfig.Keys).
func New(pool *pgxpool.Pool, cfg Config) *Reconciler {
	cfg.setDefaults()
	r := &Reconciler{pool: pool, store: eventstore.New(pool), cfg: cfg, limiters: map[bool]*rate.Limiter{}}
	keys, _ := cfg.Stripe.Keys() // checked again, with the error, when a run starts
	for _, live := range []bool{true, false} {
		r.limiters[live] = sharedLimiter(cfg.Stripe, keys[live], live)
	}
	return r
}

// limiters are the process's, per key (and API base and rate): the scheduler's reconciler and
// the API's, each made with New, spend from the same one.
var (
	limitersMu sync.Mutex
	limiters   = map[string]*rate.Limiter{}
)

func sharedLimiter(cfg StripeConfig, key string, live bool) *rate.Limiter {
	l := newLimiter(cfg, live)
	sum := sha256.Sum256([]byte(key))
	id := fmt.Sprintf("%s\x00%x\x00%g", cfg.APIBase, sum[:8], float64(l.Limit()))
	limitersMu.Lock()
	defer limitersMu.Unlock()
	if have, ok := limiters[id]; ok {
		return have
	}
	limiters[id] = l
	return l
}

// Run runs one job over every scope the options select and records it in
// ledger.reconcile_runs: one row for the run, its totals in the row's columns and each scope's
// share in `scopes`. A scope that fails (Stripe refuses the account, say) is recorded as failed
// and the run goes on with the others, ending partial. It returns the run as recorded; the error
// says why it did not succeed (ErrAlreadyRunning when another process is running the job).
func (r *Reconciler) Run(ctx context.Context, opts Options) (Run, error) {
	if opts.Trigger == "" {
		opts.Trigger = "cli"
	}
	if _, err := ParseJob(string(opts.Job)); err != nil {
		return Run{}, err
	}
	if _, err := ParseAccountFilter(opts.Scopes.Account); err != nil {
		return Run{}, err
	}
	keys, err := r.cfg.Stripe.Keys()
	if err != nil {
		return Run{}, err
	}
	counters := &Counters{}
	apis := map[bool]*stripeAPI{}
	for live, key := range keys {
		apis[live] = newStripeAPI(r.cfg.Stripe, key, r.limiters[live], counters)
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
	err = r.runScopes(ctx, apis, rec, opts, resume)
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
		"scopes", len(run.Scopes), "events_seen", run.EventsSeen, "missing", run.MissingFound, "repaired", run.Repaired,
		"requests", run.Requests, "rate_limited", run.RateLimited, "took", time.Since(start).Round(time.Millisecond))
	final, gerr := GetRun(context.WithoutCancel(ctx), r.pool, run.ID)
	if gerr != nil {
		final = run
	}
	if err != nil {
		return final, fmt.Errorf("reconcile %s run %d %s: %w", opts.Job, run.ID, status, err)
	}
	return final, nil
}

// runScopes runs the job in each scope in turn. A scope that the run it resumes finished is
// skipped; one it left half done resumes from its cursor.
func (r *Reconciler) runScopes(ctx context.Context, apis map[bool]*stripeAPI, rec *recorder, opts Options, resume *Run) error {
	scopes, created, listErr := r.scopesFor(ctx, rec, opts.Job, apis, opts.Scopes)
	if scopes == nil {
		return listErr
	}
	explicit := !opts.From.IsZero() || !opts.To.IsZero()
	prev := map[Scope]*ScopeRun{}
	// A run resumes the one before it only when both check the default window: resuming a
	// narrow window asked for by hand would record it as proven coverage and leave unchecked what
	// lies between the last coverage and it. A run recorded before runs had scopes is not
	// resumed either (which key's scope it was is not known): the new run checks its window in
	// full.
	if resume != nil && !explicit && len(resume.Scopes) > 0 && !slices.ContainsFunc(resume.Scopes, func(s ScopeRun) bool { return s.Explicit }) {
		id := resume.ID
		rec.run.ResumedFrom = &id
		for i := range resume.Scopes {
			prev[resume.Scopes[i].Scope()] = &resume.Scopes[i]
		}
	}
	rec.run.Scopes = make([]ScopeRun, len(scopes))
	for i, sc := range scopes {
		rec.run.Scopes[i] = ScopeRun{Livemode: sc.Livemode, Account: sc.account(), Status: "pending", Explicit: explicit}
	}
	if rec.run.Drift == nil {
		rec.run.Drift = map[string]int{}
	}
	rec.progress = newProgressTracker(opts.Progress, len(scopes), opts.Job)
	var failed []string
	for i, sc := range scopes {
		sr := &rec.run.Scopes[i]
		rec.beginScope(sr)
		p := prev[sc]
		if p != nil && p.done() {
			sr.Status = "skipped"
			sr.Error = fmt.Sprintf("finished by run %d", *rec.run.ResumedFrom)
			rec.progress.scopeDone()
			continue
		}
		if p != nil && p.Status == "failed" && len(resume.Scopes) > 0 {
			p = nil // a scope that failed starts again
		}
		rec.progress.scope(sc, created[sc])
		var err error
		switch opts.Job {
		case JobEvents, JobEventsFast:
			err = r.runEvents(ctx, apis[sc.Livemode], rec, opts.Job, opts, sc, p)
		case JobObjects:
			err = r.runObjects(ctx, apis[sc.Livemode], rec, opts, sc, p)
		case JobEndpoints:
			err = r.runEndpoints(ctx, apis[sc.Livemode], rec, sc)
		case JobBalance:
			err = r.runBalance(ctx, apis[sc.Livemode], rec, opts, sc, p)
		}
		rec.tally()
		rec.progress.scopeDone()
		if err != nil && ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			sr.Status = "cancelled"
			_ = rec.save(context.WithoutCancel(ctx))
			return err
		}
		if err != nil {
			sr.Status, sr.Error = "failed", err.Error()
			failed = append(failed, sc.String()+": "+err.Error())
			r.cfg.Logger.Warn("reconcile scope failed; going on with the others", "run", rec.run.ID, "job", opts.Job, "scope", sc.String(), "error", err)
		} else {
			sr.Status = "succeeded"
		}
		if err := rec.save(ctx); err != nil {
			return err
		}
	}
	rec.cur = nil
	rec.progress.report(rec.run)
	switch {
	case len(failed) == len(scopes):
		return errors.New(strings.Join(failed, "; "))
	case len(failed) > 0:
		return fmt.Errorf("%w: %d of %d scopes failed: %s", errPartial, len(failed), len(scopes), strings.Join(failed, "; "))
	case listErr != nil:
		return fmt.Errorf("%w: %v", errPartial, listErr)
	}
	return nil
}

// errPartial marks a run that did part of its work: some scopes or objects could not be checked.
var errPartial = errors.New("partly done")
