package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
)

// RunnerConfig tunes a live runner. Zero values take the documented defaults.
type RunnerConfig struct {
	Identity domain.Identity // as for Rebuild; both must agree or live and replayed rows differ
	// PollInterval is how long the runner waits before looking again when it has caught up with
	// the log; it bounds the lag an idle runner adds. Default 10ms.
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

// Runner keeps the read models current: it tails the log in position order with watermill's SQL
// subscriber and folds each event in the subscriber's transaction, which also moves the
// checkpoint, so every event's effect lands exactly once however often a batch is retried.
//
// Only one runner per projection is active across all processes: each holds a session-level
// advisory lock on a connection of its own while it runs; the others wait as standbys and one
// takes over within TakeoverInterval when the holder's connection ends (process killed, machine
// gone once TCP gives up, database restarted).
type Runner struct {
	pool    *pgxpool.Pool
	cfg     RunnerConfig
	applier applier
	active  atomic.Bool
	batch   []pending // the subscriber's current batch; only the consume goroutine touches it
}

// NewRunner makes a runner for the read models (projection StateName).
func NewRunner(pool *pgxpool.Pool, cfg RunnerConfig) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Identity.Validate(); err != nil {
		return nil, err
	}
	return &Runner{pool: pool, cfg: cfg, applier: applier{projection: StateName, identity: cfg.Identity}}, nil
}

// Active says whether this runner currently holds the projection.
func (r *Runner) Active() bool { return r.active.Load() }

// Run blocks until ctx ends, as the active runner or as a standby ready to take over.
func (r *Runner) Run(ctx context.Context) error {
	for {
		if err := r.lead(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("projection runner stopped; will try again", "projection", StateName, "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.cfg.TakeoverInterval):
		}
	}
}

// lead takes the projection's runner lock if it is free and runs the projection while it holds
// it. It returns at once when another process holds the lock.
func (r *Runner) lead(ctx context.Context) error {
	cc := r.pool.Config().ConnConfig.Copy()
	host, _ := os.Hostname()
	cc.RuntimeParams["application_name"] = fmt.Sprintf("ledger projection %s (%s pid %d)", StateName, host, os.Getpid())
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("could not connect for the runner lock: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, runnerLockKey(StateName)).Scan(&got); err != nil {
		return fmt.Errorf("could not try the runner lock: %w", err)
	}
	if !got {
		return nil // another process runs it; stand by
	}
	r.active.Store(true)
	r.cfg.Metrics.setActive(true)
	defer func() {
		r.active.Store(false)
		r.cfg.Metrics.setActive(false)
	}()
	r.cfg.Logger.Info("projection runner active", "projection", StateName)

	runCtx, cancel := context.WithCancelCause(ctx)
	watchdog := make(chan struct{})
	defer func() {
		cancel(nil)
		<-watchdog // the connection is closed (deferred above) only once nothing else uses it
	}()
	go func() {
		defer close(watchdog)
		// The lock lives as long as its connection: if that connection fails, another process
		// may already have taken over, so stop folding.
		t := time.NewTicker(r.cfg.TakeoverInterval)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(runCtx); err != nil && runCtx.Err() == nil {
					cancel(fmt.Errorf("lost the runner lock's connection: %w", err))
					return
				}
			}
		}
	}()
	err = r.consume(runCtx)
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// consume runs watermill's subscriber over the log until ctx ends or a batch fails.
//
// The subscriber hands each message with its transaction and, once the message is acknowledged,
// goes on to use that transaction itself (the next message, the checkpoint, the commit). It also
// stops waiting for the acknowledgement as soon as its own context ends. So the subscriber's
// context is not ctx: it is cancelled only between messages, never while a message is being
// folded, and no acknowledgement deadline is set (a fold is bounded by the batch size). A batch
// whose fold fails is abandoned the same way: the subscriber rolls its transaction back and the
// next subscription reads the batch again.
func (r *Runner) consume(ctx context.Context) error {
	noDeadline := time.Duration(0)
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(r.pool), wsql.SubscriberConfig{
		ConsumerGroup:  StateName,
		PollInterval:   r.cfg.PollInterval,
		RetryInterval:  r.cfg.RetryInterval,
		ResendInterval: 50 * time.Millisecond,
		AckDeadline:    &noDeadline,
		SchemaAdapter:  logSchema{batchSize: r.cfg.BatchSize},
		OffsetsAdapter: stateOffsets{},
	}, watermill.NewSlogLoggerWithLevelMapping(r.cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return err
	}
	defer sub.Close()
	subCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	msgs, err := sub.Subscribe(subCtx, logTopic)
	if err != nil {
		return fmt.Errorf("could not subscribe to the log: %w", err)
	}
	// abandon stops the subscriber while no message is being folded and waits for it to finish.
	abandon := func() {
		stop()
		for range msgs { //nolint:revive // drained unacknowledged: the subscriber gives them up
		}
	}
	for {
		select {
		case <-ctx.Done():
			abandon()
			return ctx.Err()
		case msg, ok := <-msgs:
			if !ok {
				return errors.New("the log subscription ended")
			}
			if err := r.handle(msg); err != nil {
				abandon()
				return fmt.Errorf("could not fold the batch ending at event %s: %w", msg.UUID, err)
			}
			msg.Ack()
		}
	}
}

// pending is an event of the current batch, acknowledged but not yet folded.
type pending struct {
	eventID  string
	change   change
	position int64
	received time.Time
}

// handle collects the batch's events and folds them all when the last one arrives, in the
// subscriber's transaction (see stateOffsets.AckMessageQuery for why acknowledging the others
// early commits nothing prematurely).
func (r *Runner) handle(msg *message.Message) error {
	ctx := msg.Context()
	wtx, ok := wsql.TxFromContext(ctx)
	if !ok {
		return errors.New("no transaction in the message context")
	}
	// The pgx adapter's transaction; pipelines and savepoints need pgx's own API.
	ptx, ok := wtx.(*wsql.PgxTx)
	if !ok {
		return fmt.Errorf("unexpected transaction type %T", wtx)
	}
	md := msg.Metadata
	index, _ := strconv.Atoi(md.Get(metaBatchIndex))
	size, _ := strconv.Atoi(md.Get(metaBatchSize))
	pos, _ := strconv.ParseInt(md.Get(metaPosition), 10, 64)
	received, _ := time.Parse(time.RFC3339Nano, md.Get(metaReceivedAt))
	if index == 0 {
		r.batch = r.batch[:0]
	}
	if n := len(r.batch); n == 0 || r.batch[n-1].position != pos { // a re-sent last event is not added twice
		r.batch = append(r.batch, pending{msg.UUID, change{md.Get(metaType), md.Get(metaObjectID)}, pos, received})
	}
	if index < size-1 {
		return nil
	}
	if err := r.flush(ctx, ptx.Tx); err != nil {
		return err
	}
	for _, p := range r.batch {
		r.cfg.Metrics.applied(p.position, p.received)
	}
	return nil
}

// flush folds the batch set-wise. If the database refuses the result (bad data, not a failing
// database), it falls back to one event at a time to find the culprit, quarantines it and folds
// the rest; then it records the position the read models are written through.
func (r *Runner) flush(ctx context.Context, tx pgx.Tx) error {
	changes := make([]change, len(r.batch))
	for i, p := range r.batch {
		changes[i] = p.change
	}
	err := inSavepoint(ctx, tx, func(sp pgx.Tx) error { return r.applier.fold(ctx, sp, changes) })
	if err != nil && !poisonous(tx, err) {
		return err
	}
	if err != nil {
		for _, p := range r.batch {
			if err := r.foldOne(ctx, tx, p); err != nil {
				return err
			}
		}
	}
	last := r.batch[len(r.batch)-1].position
	if _, err := tx.Exec(ctx, `SELECT set_config('`+flushedSetting+`', $1, true)`, strconv.FormatInt(last, 10)); err != nil {
		return err
	}
	return nil
}

// foldOne folds one event in a savepoint. If the database refuses a row, the event whose
// snapshot the row holds is quarantined — the one replay quarantines, which need not be the event
// being folded (an update that arrived first, say) — and the fold is tried again without it.
func (r *Runner) foldOne(ctx context.Context, tx pgx.Tx, p pending) error {
	one := []change{p.change}
	blamed := map[string]bool{}
	for {
		err := inSavepoint(ctx, tx, func(sp pgx.Tx) error { return r.applier.fold(ctx, sp, one) })
		if err == nil {
			return nil
		}
		if !poisonous(tx, err) {
			return err
		}
		culprit := p.eventID
		var refused *refusedRow
		if errors.As(err, &refused) {
			culprit = refused.eventID
		}
		if blamed[culprit] {
			return err // quarantining it did not help: not that event's fault after all
		}
		blamed[culprit] = true
		r.cfg.Metrics.quarantined()
		r.cfg.Logger.Warn("quarantined an event the read models cannot hold", "event", culprit, "folding", p.eventID, "error", err)
		if err := quarantine(ctx, tx, StateName, Poison{EventID: culprit, Err: err}); err != nil {
			return err
		}
	}
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
