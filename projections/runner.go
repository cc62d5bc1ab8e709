package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/testsignal"
)

// RunnerConfig tunes a live runner. Zero values take the documented defaults.
type RunnerConfig struct {
	Identity domain.Identity // as for Rebuild; both must agree or live and replayed rows differ
	// MRR are the revenue metrics' rules. When the read models were computed under others, the
	// runner recomputes the movement log under these before it folds (Recompute).
	MRR domain.MRRSettings
	// Rebuild configures the rebuild the runner makes when the tables are not the ones the
	// declarations describe (a new binary, a fresh database); its Identity is the runner's.
	Rebuild Config
	// Store is the event store the webhooks append through: its appends wake the runner at once.
	// Default a store of its own (appends by other processes are seen within PollInterval).
	Store *eventstore.Store
	// PollInterval is how long the runner waits before looking again when it has caught up with
	// the log and nothing woke it; it bounds the lag of appends made by other processes.
	// Default 10ms.
	PollInterval time.Duration
	// BatchSize is the most events folded in one transaction. Default 500.
	BatchSize int
	// TakeoverInterval is how often a standby runner tries to take the projection over from the
	// active one (and how often the active one checks it still holds it). Default 1s.
	TakeoverInterval time.Duration
	// RetryInterval is the wait after a failed batch (database unreachable, ...). Default 1s.
	RetryInterval time.Duration
	Logger        *slog.Logger
	Metrics       *Metrics // optional
	// Folded, if set, is called after each committed batch with the log position the read models
	// now stand at (the live stream tells the dashboard to refresh). It runs on the runner's
	// goroutine between batches: it must return at once, never block.
	Folded func(position int64)
}

func (c *RunnerConfig) setDefaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = 10 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.TakeoverInterval <= 0 {
		c.TakeoverInterval = time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// RunnerSignals are what a test can wait for (see internal/testsignal).
type RunnerSignals struct {
	// FoldedBatch is the log position a committed batch brought the read models to.
	FoldedBatch testsignal.Signal[int64]
	// Rebuilt is a rebuild the runner made before folding (the tables had another shape).
	Rebuilt testsignal.Signal[Stats]
	// Recomputed is a recompute of the movement log the runner made before folding (the
	// tables were computed under other MRR settings).
	Recomputed testsignal.Signal[RecomputeStats]
}

// Runner keeps the read models current: it tails the log in commit order (eventstore.Tail) and
// folds each batch in the batch's transaction, which also moves the checkpoint, so every event's
// effect lands exactly once however often a batch is retried.
//
// Only one runner per projection is active across all processes (internal/lease); the others
// stand by and one takes over within TakeoverInterval when the holder's connection ends.
// Before folding, the active runner checks that the tables are the ones its declarations
// describe (their fingerprint, stored with the checkpoint) and rebuilds them by replay when they
// are not, so a new binary's read models are rebuilt on its first start while queries keep
// answering from the old tables.
type Runner struct {
	pool    *pgxpool.Pool
	store   *eventstore.Store
	cfg     RunnerConfig
	lease   *lease.Lease
	engine  *engine
	failed  int // rebuilds that failed in a row (disk full, database down): each waits longer
	Signals RunnerSignals
}

// runnerLease is the name of the runner's lease.
const runnerLease = "projection " + StateName

// NewRunner makes a runner for the read models (projection StateName).
func NewRunner(pool *pgxpool.Pool, cfg RunnerConfig) (*Runner, error) {
	cfg.setDefaults()
	cfg.Rebuild.Identity, cfg.Rebuild.MRR = cfg.Identity, cfg.MRR
	if err := cfg.Identity.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.MRR.Validate(); err != nil {
		return nil, err
	}
	l, err := lease.New(pool, lease.Config{Name: runnerLease, RetryInterval: cfg.TakeoverInterval,
		CheckInterval: cfg.TakeoverInterval, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	store := cfg.Store
	if store == nil {
		store = eventstore.New(pool)
	}
	return &Runner{pool: pool, store: store, cfg: cfg, lease: l,
		engine: &engine{projection: StateName, env: env{identity: cfg.Identity, mrr: cfg.MRR.WithDefaults()}}}, nil
}

// Active says whether this runner currently holds the projection.
func (r *Runner) Active() bool { return r.lease.Held() }

// Lease is the runner's lease (a test waits on its signals).
func (r *Runner) Lease() *lease.Lease { return r.lease }

// Run blocks until ctx ends, as the active runner or as a standby ready to take over.
func (r *Runner) Run(ctx context.Context) error {
	return r.lease.Run(ctx, func(ctx context.Context) error {
		r.cfg.Metrics.setActive(true)
		defer r.cfg.Metrics.setActive(false)
		if err := r.ensureSchema(ctx); err != nil {
			// A rebuild reads the whole log: one that fails is not tried again at once.
			r.failed++
			wait := min(time.Duration(1<<min(r.failed, 9))*time.Second, 5*time.Minute)
			r.cfg.Logger.Error("could not bring the read models to the declared shape; will try again", "error", err, "in", wait)
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			return err
		}
		r.failed = 0
		err := r.store.Tail(ctx, eventstore.TailConfig{
			Checkpoint:    StateName,
			BatchSize:     r.cfg.BatchSize,
			PollInterval:  r.cfg.PollInterval,
			RetryInterval: r.cfg.RetryInterval,
			Lock:          r.lockAndCheck,
			Committed:     r.committed,
		}, r.handle)
		if err != nil {
			return fmt.Errorf("projection %s: %w", StateName, err)
		}
		return nil
	})
}

// errSchemaChanged stops a batch whose tables were rebuilt from other declarations meanwhile.
var errSchemaChanged = errors.New("the read models' tables are not the ones this binary declares")

// lockAndCheck is lockAndCheckShape, and checks that the tables were computed under the
// runner's MRR settings.
func (r *Runner) lockAndCheck(ctx context.Context, tx pgx.Tx) error {
	if err := lockAndCheckShape(ctx, tx); err != nil {
		return err
	}
	stored, err := storedSettings(ctx, tx)
	if err != nil {
		return err
	}
	if stored.String() != r.cfg.MRR.String() {
		return errSchemaChanged
	}
	return nil
}

// lockAndCheckShape takes the projection's transaction lock for the batch (a replay's swap takes it
// too) and checks, under it, that the tables are still the declared ones.
func lockAndCheckShape(ctx context.Context, tx pgx.Tx) error {
	var schema *string
	err := tx.QueryRow(ctx, `SELECT (SELECT schema FROM ledger.projection_state WHERE name = $2)
		FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) lock`, txLockKey(StateName), StateName).Scan(&schema)
	if err != nil {
		return fmt.Errorf("could not lock projection %s: %w", StateName, err)
	}
	if schema == nil || *schema != Fingerprint() {
		return errSchemaChanged
	}
	return nil
}

// ensureSchema rebuilds the read models when their tables were not built from these
// declarations, and brings the catalog's comments up to date otherwise.
func (r *Runner) ensureSchema(ctx context.Context) error {
	var schema *string
	err := r.pool.QueryRow(ctx, `SELECT schema FROM ledger.projection_state WHERE name = $1`, StateName).Scan(&schema)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("could not read the projection's state: %w", err)
	}
	if schema != nil && *schema == Fingerprint() {
		stored, err := storedSettings(ctx, r.pool)
		if err != nil {
			return err
		}
		if stored.String() != r.cfg.MRR.String() {
			r.cfg.Logger.Info("read models were computed under other MRR settings: recomputing the movement log",
				"projection", StateName, "stored", stored.String(), "configured", r.cfg.MRR.String())
			st, err := Recompute(ctx, r.pool, RecomputeConfig{MRR: r.cfg.MRR})
			if err != nil {
				return fmt.Errorf("could not recompute the movement log: %w", err)
			}
			r.cfg.Logger.Info("movement log recomputed", "subscriptions", st.Subscriptions, "movements", st.Movements,
				"revalued", st.Revalued, "versions", st.Versions, "refolded", st.Refolded, "took", st.Took, "phases", PhaseList(st.Phases))
			r.Signals.Recomputed.Signal(st)
		}
		var ddl []string
		for _, t := range allTables() {
			ddl = append(ddl, t.commentSQL(t.name)...)
		}
		if _, err := r.pool.Exec(ctx, strings.Join(ddl, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("could not describe the read models: %w", err)
		}
		return nil
	}
	r.cfg.Logger.Info("read models were built from other declarations: rebuilding them from the log",
		"projection", StateName, "schema", schema, "declared", Fingerprint())
	st, err := Rebuild(ctx, r.pool, r.cfg.Rebuild)
	if err != nil {
		return fmt.Errorf("could not rebuild the read models: %w", err)
	}
	r.cfg.Logger.Info("read models rebuilt", "projection", StateName, "events", st.Events, "took", st.Took)
	r.Signals.Rebuilt.Signal(st)
	return nil
}

// handle folds a batch set-wise. If the database refuses the result (bad data, not a failing
// database), it falls back to one event at a time to find the culprit, quarantines it and folds
// the rest.
//
// A redaction event in the batch re-folds the objects whose events it redacted, from their
// redacted payloads. The redaction re-folds them itself, in its own transaction; this is for
// whatever folded them from the old payloads without that re-fold — a replay whose catch-up
// left the redaction to the runner, a redaction written by hand — so the read models never keep
// erased values once the runner has passed the redaction.
func (r *Runner) handle(ctx context.Context, tx pgx.Tx, b eventstore.Batch) error {
	if err := hold(ctx, tx, StateName, b.Events); err != nil {
		return err
	}
	changes, err := withRedacted(ctx, tx, b.Events)
	if err != nil {
		return fmt.Errorf("could not read the events the batch's redactions changed: %w", err)
	}
	err = inSavepoint(ctx, tx, func(sp pgx.Tx) error { return r.engine.foldChanges(ctx, sp, changes) })
	if err == nil {
		return nil
	}
	if !poisonous(tx, err) {
		return err
	}
	for i := range b.Events {
		if err := r.foldOne(ctx, tx, &b.Events[i]); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) committed(b eventstore.Batch) {
	for _, ev := range b.Events {
		r.cfg.Metrics.applied(ev.Position, ev.ReceivedAt)
		r.cfg.Metrics.version(ev.APIVersion)
	}
	r.cfg.Logger.Debug("projection batch folded", "projection", StateName, "position", b.Last(), "events", len(b.Events))
	r.Signals.FoldedBatch.Signal(b.Last())
	if r.cfg.Folded != nil {
		r.cfg.Folded(b.Last())
	}
}

// foldOne folds one event in a savepoint. If the database refuses a row, the event whose
// snapshot the row holds is quarantined — the one replay quarantines, which need not be the event
// being folded (an update that arrived first, say) — and the fold is tried again without it.
func (r *Runner) foldOne(ctx context.Context, tx pgx.Tx, ev *eventstore.Record) error {
	one, err := withRedacted(ctx, tx, []eventstore.Record{*ev})
	if err != nil {
		return fmt.Errorf("could not read the events redaction %s changed: %w", ev.ID, err)
	}
	blamed := map[string]bool{}
	for {
		err := inSavepoint(ctx, tx, func(sp pgx.Tx) error { return r.engine.foldChanges(ctx, sp, one) })
		if err == nil {
			return nil
		}
		if !poisonous(tx, err) {
			return err
		}
		culprit := ev.ID
		var refused *refusedRow
		if errors.As(err, &refused) {
			culprit = refused.eventID
		}
		if blamed[culprit] {
			return err // quarantining it did not help: not that event's fault after all
		}
		blamed[culprit] = true
		r.cfg.Metrics.quarantined()
		r.cfg.Logger.Warn("quarantined an event the read models cannot hold", "event", culprit, "folding", ev.ID, "error", err)
		p, err2 := poisonFor(ctx, tx, culprit, err)
		if err2 != nil {
			return err2
		}
		if err := quarantine(ctx, tx, StateName, p); err != nil {
			return err
		}
	}
}

// poisonFor is the quarantine entry of an event, looked up in the log.
func poisonFor(ctx context.Context, tx pgx.Tx, eventID string, why error) (Poison, error) {
	recs, err := eventstore.On(tx).List(ctx, eventstore.Filter{EventIDs: []string{eventID}})
	if err != nil {
		return Poison{}, err
	}
	if len(recs) == 0 {
		return Poison{}, fmt.Errorf("event %s is not in the log", eventID)
	}
	return Poison{EventID: eventID, Position: recs[0].Position, EventType: recs[0].Type, ObjectID: recs[0].ObjectID, Err: why}, nil
}

func inSavepoint(ctx context.Context, tx pgx.Tx, fn func(pgx.Tx) error) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(sp); err != nil {
		_ = sp.Rollback(ctx)
		return err
	}
	return sp.Commit(ctx)
}

// poisonous says whether a failed fold is the event's fault rather than the database's: the
// server refused the data (SQL classes 22 data exception, 23 integrity) or pgx could not encode
// it, on a connection that is still up. Anything else is retried.
func poisonous(tx pgx.Tx, err error) bool {
	if tx.Conn().IsClosed() || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return len(pgErr.Code) == 5 && (pgErr.Code[:2] == "22" || pgErr.Code[:2] == "23")
	}
	return !pgconn.SafeToRetry(err) && !pgconn.Timeout(err) && !isNetErr(err)
}

func isNetErr(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// Prepare gives a ledger whose log is empty read models of the declared shape at once (a
// rebuild of nothing), so a fresh database has its tables before any runner starts. With events
// in the log it leaves them to the runner, which rebuilds them on start (that takes a replay).
func Prepare(ctx context.Context, pool *pgxpool.Pool) error {
	head, err := eventstore.New(pool).Head(ctx)
	if err != nil {
		return err
	}
	var schema *string
	err = pool.QueryRow(ctx, `SELECT schema FROM ledger.projection_state WHERE name = $1`, StateName).Scan(&schema)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("could not read the projection's state: %w", err)
	}
	if head.Position > 0 || (schema != nil && *schema == Fingerprint()) {
		return nil
	}
	_, err = Rebuild(ctx, pool, Config{})
	return err
}
