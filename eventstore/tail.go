package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Checkpoints and the tail. A consumer of the log (the live projection, the NATS forwarder)
// records the last position it has handled in ledger.projection_state under its name, in the same
// transaction as what it did with the events, so an event's effect and the checkpoint past it
// commit together or not at all. Positions are dense and in commit order (the append takes the
// head lock), so "after the checkpoint" never skips an event that commits late, and no time-out
// based gap skipping is needed.

// ErrCheckpointMoved is returned when a checkpoint is no longer where the batch began: another
// consumer of the same name moved it (it lost its lease, or a replay reset it).
var ErrCheckpointMoved = errors.New("the checkpoint moved under this batch")

// Checkpoint is the named consumer's position: the last event it has handled (0 when none).
func (s *Store) Checkpoint(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.q.QueryRow(ctx, `SELECT position FROM ledger.projection_state WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("could not read checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// MoveCheckpoint moves the named checkpoint from one position to another in tx. It fails with
// ErrCheckpointMoved, changing nothing, when the checkpoint is not at from any more.
func MoveCheckpoint(ctx context.Context, tx pgx.Tx, name string, from, to int64) error {
	tag, err := tx.Exec(ctx, `UPDATE ledger.projection_state SET position = $3, updated_at = now()
		WHERE name = $1 AND position = $2`, name, from, to)
	if err != nil {
		return fmt.Errorf("could not move checkpoint %s: %w", name, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if from != 0 {
		return fmt.Errorf("checkpoint %s from %d to %d: %w", name, from, to, ErrCheckpointMoved)
	}
	// A consumer that never ran has no row yet: position 0.
	tag, err = tx.Exec(ctx, `INSERT INTO ledger.projection_state (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, to)
	if err != nil {
		return fmt.Errorf("could not create checkpoint %s: %w", name, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("checkpoint %s from 0 to %d: %w", name, to, ErrCheckpointMoved)
	}
	return nil
}

// SetCheckpoint puts the named checkpoint at position, wherever it was (a replay that rebuilt
// the read models up to there).
func SetCheckpoint(ctx context.Context, tx pgx.Tx, name string, position int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO ledger.projection_state (name, position) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`, name, position)
	if err != nil {
		return fmt.Errorf("could not set checkpoint %s: %w", name, err)
	}
	return nil
}

// TailConfig configures Tail. Zero values take the documented defaults.
type TailConfig struct {
	// Checkpoint names the consumer's row in ledger.projection_state. Required.
	Checkpoint string
	// BatchSize is the most events handed over in one transaction. Default 500.
	BatchSize int
	// PollInterval is how long a caught-up tail waits before looking again. An append through
	// the same Store wakes it at once; this bounds the lag for appends by other processes.
	// Default 10ms.
	PollInterval time.Duration
	// Payload hands the events' payloads and signatures over too.
	Payload bool
	// Lock, if set, runs first in every batch's transaction, before the checkpoint is read: a
	// projection takes its lock there, so a replay's swap and a batch never interleave.
	Lock func(ctx context.Context, tx pgx.Tx) error
	// RetryInterval is the wait after a batch failed for a reason other than its handler (the
	// database unreachable). Default 1s.
	RetryInterval time.Duration
	// Committed, if set, is called after each batch has committed.
	Committed func(Batch)
}

func (c *TailConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 10 * time.Millisecond
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
}

func (c *TailConfig) validate() error {
	if c.Checkpoint == "" {
		return errors.New("tail: no checkpoint name")
	}
	return nil
}

// Batch is what Tail hands over: events after the checkpoint, in commit order.
type Batch struct {
	Events []Record
	// From is the checkpoint the batch starts after; Events[len-1].Position is where it moves.
	From int64
}

// Last is the position of the batch's last event.
func (b Batch) Last() int64 { return b.Events[len(b.Events)-1].Position }

// HandlerError marks a failure of the handler itself, as opposed to reading the log or moving
// the checkpoint: Tail returns it instead of retrying.
type HandlerError struct{ Err error }

func (e *HandlerError) Error() string { return e.Err.Error() }
func (e *HandlerError) Unwrap() error { return e.Err }

// Tail hands the events after the checkpoint to handle, a batch at a time, each in its own
// transaction in which handle does its work and the checkpoint then moves past the batch; the
// transaction commits only if both succeed. It runs until ctx ends (returning nil) or handle or
// Lock fails (returning its error, wrapped in *HandlerError, with the batch rolled back). A
// failure to read the log or to commit is retried after RetryInterval.
//
// When it has caught up, Tail waits for an append through this Store or PollInterval, then
// compares the head with the checkpoint before opening a transaction, so an idle tail costs one
// small query per interval and writes nothing.
func (s *Store) Tail(ctx context.Context, cfg TailConfig, handle func(ctx context.Context, tx pgx.Tx, b Batch) error) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	known := int64(-1) // the checkpoint as last seen; -1 until read
	for ctx.Err() == nil {
		woken := s.appended.wait()
		if known >= 0 {
			head, err := s.Head(ctx)
			if err == nil && head.Position <= known {
				sleep(ctx, cfg.PollInterval, woken)
				continue
			}
		}
		n, at, err := s.tailOnce(ctx, cfg, handle)
		var he *HandlerError
		switch {
		case errors.As(err, &he):
			return err
		case err != nil && ctx.Err() == nil:
			known = -1
			sleep(ctx, cfg.RetryInterval, nil)
		case err == nil:
			known = at
			if n == 0 {
				sleep(ctx, cfg.PollInterval, woken)
			}
		}
	}
	return nil
}

// CatchUp is Tail until the checkpoint reaches the head as it finds it, then it returns: for a
// consumer that works in passes of its own (the thin fetcher). Any failure is returned, the
// batch it happened in rolled back.
func (s *Store) CatchUp(ctx context.Context, cfg TailConfig, handle func(ctx context.Context, tx pgx.Tx, b Batch) error) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	for {
		n, _, err := s.tailOnce(ctx, cfg, handle)
		if err != nil || n == 0 {
			return err
		}
	}
}

// tailOnce handles one batch: how many events it had and the checkpoint after it.
func (s *Store) tailOnce(ctx context.Context, cfg TailConfig, handle func(context.Context, pgx.Tx, Batch) error) (int, int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("could not begin a batch: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if cfg.Lock != nil {
		if err := cfg.Lock(ctx, tx); err != nil {
			return 0, 0, &HandlerError{Err: err}
		}
	}
	// The checkpoint and the events after it, in one round trip: the events' query reads the
	// checkpoint itself (positions are dense, so they start right after it).
	var from int64
	var events []Record
	pb := &pgx.Batch{}
	pb.Queue(`SELECT coalesce((SELECT position FROM ledger.projection_state WHERE name = $1), 0)`, cfg.Checkpoint).QueryRow(func(row pgx.Row) error {
		return row.Scan(&from)
	})
	QueueList(pb, Filter{AfterCheckpoint: cfg.Checkpoint, Limit: cfg.BatchSize, Payload: cfg.Payload}, &events)
	if err := tx.SendBatch(ctx, pb).Close(); err != nil {
		return 0, 0, fmt.Errorf("could not read checkpoint %s and the events after it: %w", cfg.Checkpoint, err)
	}
	if len(events) == 0 {
		return 0, from, nil
	}
	b := Batch{Events: events, From: from}
	if err := handle(ctx, tx, b); err != nil {
		return 0, 0, &HandlerError{Err: err}
	}
	if err := MoveCheckpoint(ctx, tx, cfg.Checkpoint, from, b.Last()); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("could not commit a batch: %w", err)
	}
	if cfg.Committed != nil {
		cfg.Committed(b)
	}
	return len(events), b.Last(), nil
}

// Appended returns a channel closed by the next commit of an append through this Store: a
// consumer in the same process (the live stream's hub) waits on it instead of polling the log.
// Take a new channel after each wake-up, before reading what woke it, or a commit in between is
// missed.
func (s *Store) Appended() <-chan struct{} { return s.appended.wait() }

func sleep(ctx context.Context, d time.Duration, woken <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-woken:
	}
}

// broadcast wakes every waiter at once: wait returns a channel that the next signal closes.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}
