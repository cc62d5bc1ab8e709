package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Job names a reconciliation job.
type Job string

const (
	// JobEvents lists every event in the window and appends those missing from the log.
	JobEvents Job = "events"
	// JobEventsFast does the same over events Stripe could not deliver (delivery_success=false).
	JobEventsFast Job = "events-fast"
	// JobObjects compares Stripe's objects with the read models and repairs unexplained drift.
	JobObjects Job = "objects"
	// JobEndpoints checks the webhook endpoints' health.
	JobEndpoints Job = "endpoints"
	// JobBalance fetches balance transactions (which have no events): each payout's, and those
	// of charges, refunds and disputes the ledger has none for.
	JobBalance Job = "balance"
)

// Jobs is every job, in the order `--job all` runs them: balance after objects, which brings
// the payouts, charges, refunds and disputes whose transactions it fetches.
var Jobs = []Job{JobEventsFast, JobEvents, JobObjects, JobBalance, JobEndpoints}

// ParseJob checks a job name.
func ParseJob(s string) (Job, error) {
	for _, j := range Jobs {
		if string(j) == s {
			return j, nil
		}
	}
	return "", fmt.Errorf("unknown job %q (want events, events-fast, objects, balance or endpoints)", s)
}

// Run is one row of ledger.reconcile_runs.
type Run struct {
	ID             int64           `json:"id"`
	Job            Job             `json:"job"`
	Status         string          `json:"status"` // running, succeeded, failed, partial, cancelled
	DryRun         bool            `json:"dry_run"`
	Trigger        string          `json:"trigger"` // cli, schedule, catch-up
	WindowFrom     *time.Time      `json:"window_from"`
	WindowTo       *time.Time      `json:"window_to"`
	StartedAt      time.Time       `json:"started_at"`
	HeartbeatAt    time.Time       `json:"heartbeat_at"`
	FinishedAt     *time.Time      `json:"finished_at"`
	Requests       int             `json:"requests"`
	RateLimited    int             `json:"rate_limited"`
	EventsSeen     int             `json:"events_seen"`
	MissingFound   int             `json:"missing_found"`
	Repaired       int             `json:"repaired"`
	ObjectsChecked int             `json:"objects_checked"`
	Drift          map[string]int  `json:"drift"`
	Findings       json.RawMessage `json:"findings"`
	Cursor         string          `json:"cursor"`
	ResumedFrom    *int64          `json:"resumed_from"`
	Runner         string          `json:"runner"`
	Error          string          `json:"error"`
	// Scopes are the modes and accounts the run covered, each with its own outcome, window,
	// cursor and counters (the columns above are their totals).
	Scopes []ScopeRun `json:"scopes"`
}

// Duration is how long the run took (so far).
func (r Run) Duration() time.Duration {
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return end.Sub(r.StartedAt)
}

const runColumns = `id, job, status, dry_run, trigger, window_from, window_to, started_at, heartbeat_at, finished_at,
	requests, rate_limited, events_seen, missing_found, repaired, objects_checked, drift, findings, cursor, resumed_from, runner, error, scopes`

func scanRun(row pgx.Row) (Run, error) {
	var r Run
	var findings []byte
	err := row.Scan(&r.ID, &r.Job, &r.Status, &r.DryRun, &r.Trigger, &r.WindowFrom, &r.WindowTo, &r.StartedAt, &r.HeartbeatAt,
		&r.FinishedAt, &r.Requests, &r.RateLimited, &r.EventsSeen, &r.MissingFound, &r.Repaired, &r.ObjectsChecked, &r.Drift,
		&findings, &r.Cursor, &r.ResumedFrom, &r.Runner, &r.Error, &r.Scopes)
	r.Findings = findings
	if r.Scopes == nil {
		r.Scopes = []ScopeRun{}
	}
	return r, err
}

// ListRuns is the most recent runs, newest first; job "" for every job.
func ListRuns(ctx context.Context, pool *pgxpool.Pool, job Job, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := pool.Query(ctx, `SELECT `+runColumns+` FROM ledger.reconcile_runs
		WHERE $1 = '' OR job = $1 ORDER BY started_at DESC, id DESC LIMIT $2`, string(job), limit)
	if err != nil {
		return nil, fmt.Errorf("could not read reconcile runs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
}

// GetRun reads one run.
func GetRun(ctx context.Context, pool *pgxpool.Pool, id int64) (Run, error) {
	return scanRun(pool.QueryRow(ctx, `SELECT `+runColumns+` FROM ledger.reconcile_runs WHERE id = $1`, id))
}

// ErrAlreadyRunning is returned when a live run of the same job exists (in any process).
var ErrAlreadyRunning = errors.New("a run of this job is already in progress")

// ErrNotDue is a scheduled or catch-up run skipped because another process already ran the job
// for that time.
var ErrNotDue = errors.New("the job already ran for this schedule")

// staleAfter is how old a running run's heartbeat may be before the run is taken for dead. Short,
// because a process killed mid-run blocks the job until then; a live run taken for dead by mistake
// (a stall longer than this) costs only a second run over the same window, which appends nothing
// twice (events by ID, snapshots by deterministic ID).
const staleAfter = 20 * time.Second

// heartbeatEvery is how often a run proves it is alive, whatever it is waiting for: four beats
// fit in staleAfter.
const heartbeatEvery = 5 * time.Second

func runnerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s pid %d", host, os.Getpid())
}

// begin records a new run of job, unless a live one exists. The check and the insert happen under
// a transaction-scoped advisory lock per job, so two processes starting the job at the same
// moment cannot both start it; the run's heartbeat then keeps others out while it works. A run of
// the same job that died (stale heartbeat) or failed with a cursor is returned as resumable.
func begin(ctx context.Context, pool *pgxpool.Pool, job Job, dryRun bool, trigger string, due func(lastStarted *time.Time) bool) (run Run, resumable *Run, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return Run{}, nil, fmt.Errorf("could not record the run: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ledger.reconcile:"+string(job)); err != nil {
		return Run{}, nil, fmt.Errorf("could not lock the job: %w", err)
	}
	var live int64
	err = tx.QueryRow(ctx, `SELECT id FROM ledger.reconcile_runs WHERE job = $1 AND status = 'running' AND heartbeat_at > now() - $2::interval
		ORDER BY id DESC LIMIT 1`, string(job), staleAfter.String()).Scan(&live)
	if err == nil {
		return Run{}, nil, fmt.Errorf("%w (run %d)", ErrAlreadyRunning, live)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Run{}, nil, fmt.Errorf("could not check for a running run: %w", err)
	}
	if due != nil {
		// Decided under the job's lock: of several processes woken for the same time, the
		// first runs the job and the others see its run.
		var last *time.Time
		if err := tx.QueryRow(ctx, `SELECT max(started_at) FROM ledger.reconcile_runs WHERE job = $1 AND NOT dry_run`, string(job)).Scan(&last); err != nil {
			return Run{}, nil, fmt.Errorf("could not read the last run: %w", err)
		}
		if !due(last) {
			return Run{}, nil, ErrNotDue
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE ledger.reconcile_runs SET status = 'failed', finished_at = heartbeat_at,
		error = 'the process running it stopped (no heartbeat since ' || heartbeat_at || ')'
		WHERE job = $1 AND status = 'running'`, string(job)); err != nil {
		return Run{}, nil, fmt.Errorf("could not close dead runs: %w", err)
	}
	prev, err := scanRun(tx.QueryRow(ctx, `SELECT `+runColumns+` FROM ledger.reconcile_runs r
		WHERE job = $1 AND dry_run = $2 AND status IN ('failed', 'cancelled') AND cursor <> ''
		  AND NOT EXISTS (SELECT 1 FROM ledger.reconcile_runs n WHERE n.resumed_from = r.id)
		  AND id = (SELECT max(id) FROM ledger.reconcile_runs WHERE job = $1 AND dry_run = $2)`, string(job), dryRun))
	if err == nil {
		resumable = &prev
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return Run{}, nil, fmt.Errorf("could not look for a run to resume: %w", err)
	}
	// clock_timestamp(), not now(): the transaction may have begun before the previous run
	// finished, and runs of a job must not appear to overlap.
	run, err = scanRun(tx.QueryRow(ctx, `INSERT INTO ledger.reconcile_runs (job, status, dry_run, trigger, runner, started_at, heartbeat_at)
		VALUES ($1, 'running', $2, $3, $4, clock_timestamp(), clock_timestamp()) RETURNING `+runColumns, string(job), dryRun, trigger, runnerName()))
	if err != nil {
		return Run{}, nil, fmt.Errorf("could not record the run: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Run{}, nil, fmt.Errorf("could not record the run: %w", err)
	}
	return run, resumable, nil
}

// recorder keeps a run's row current while it works.
type recorder struct {
	pool      *pgxpool.Pool
	run       *Run
	counters  *Counters
	findings  []json.RawMessage
	afterPage func(Run) // Config.AfterPage
	cur       *ScopeRun // the scope being worked on: an element of run.Scopes
	progress  *progressTracker
}

const maxFindings = 1000

func (rec *recorder) find(v any) {
	if len(rec.findings) >= maxFindings {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		rec.findings = append(rec.findings, b)
	}
}

// save writes the run's counters, cursor and heartbeat.
func (rec *recorder) save(ctx context.Context) error {
	rec.tally()
	r := rec.run
	r.Requests, r.RateLimited = int(rec.counters.Requests.Load()), int(rec.counters.RateLimited.Load())
	scopes := r.Scopes
	if scopes == nil {
		scopes = []ScopeRun{}
	}
	findings, _ := json.Marshal(rec.findings)
	if rec.findings == nil {
		findings = []byte("[]")
	}
	if r.Drift == nil {
		r.Drift = map[string]int{}
	}
	_, err := rec.pool.Exec(ctx, `UPDATE ledger.reconcile_runs SET heartbeat_at = now(), window_from = $2, window_to = $3,
		requests = $4, rate_limited = $5, events_seen = $6, missing_found = $7, repaired = $8, objects_checked = $9,
		drift = $10, findings = $11, cursor = $12, resumed_from = $13, scopes = $14 WHERE id = $1`,
		r.ID, r.WindowFrom, r.WindowTo, r.Requests, r.RateLimited, r.EventsSeen, r.MissingFound, r.Repaired, r.ObjectsChecked,
		r.Drift, findings, r.Cursor, r.ResumedFrom, scopes)
	if err != nil {
		return fmt.Errorf("could not record the run's progress: %w", err)
	}
	return nil
}

// page records the run's progress after a page.
func (rec *recorder) page(ctx context.Context) error {
	if err := rec.save(ctx); err != nil {
		return err
	}
	rec.progress.report(rec.run)
	if rec.afterPage != nil {
		rec.afterPage(*rec.run)
	}
	return nil
}

// finish records how the run ended.
func (rec *recorder) finish(ctx context.Context, status string, runErr error) error {
	ctx = context.WithoutCancel(ctx) // a cancelled run is still recorded as such
	if err := rec.save(ctx); err != nil {
		return err
	}
	msg := ""
	if runErr != nil {
		msg = runErr.Error()
	}
	rec.run.Status, rec.run.Error = status, msg
	_, err := rec.pool.Exec(ctx, `UPDATE ledger.reconcile_runs SET status = $2, error = $3, finished_at = clock_timestamp(), heartbeat_at = clock_timestamp()
		WHERE id = $1`, rec.run.ID, status, msg)
	if err != nil {
		return fmt.Errorf("could not record the end of the run: %w", err)
	}
	return nil
}

// heartbeat refreshes the run's heartbeat until ctx ends, so a run waiting on Stripe's rate limit
// is not taken for dead.
func (rec *recorder) heartbeat(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = rec.pool.Exec(ctx, `UPDATE ledger.reconcile_runs SET heartbeat_at = now() WHERE id = $1 AND status = 'running'`, rec.run.ID)
		}
	}
}
