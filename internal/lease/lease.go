// Package lease is the one way the ledger makes sure only one process does something at a time
// (runs the live projection, forwards the log to NATS, schedules reconciliation): a Postgres
// session advisory lock held on a connection of its own, plus a watchdog on that connection.
//
// The lock lives exactly as long as its connection. When the holder dies (SIGKILL, machine gone
// once TCP gives up, Postgres restarted) Postgres releases it and a standby takes it within
// RetryInterval. When the holder's own connection fails, another process may already hold the
// lock, so the watchdog ends the holder's work at once: the context handed to the work is
// cancelled. Work done under a lease must therefore stop promptly when its context ends, and
// should still be safe if a stale holder finishes one last step (the projection's checkpoint
// refuses to move from a position it no longer holds).
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/internal/testsignal"
)

// Config configures a lease. Zero values take the documented defaults.
type Config struct {
	// Name identifies what the lease is for; processes with the same Name exclude each other.
	// Required.
	Name string
	// Holder is how the holding process appears in pg_stat_activity.application_name (and in
	// Holder's answer); default "ledger <Name> (<host> pid <pid>)".
	Holder string
	// RetryInterval is how often a standby tries to take the lease. Default 1s.
	RetryInterval time.Duration
	// CheckInterval is how often the holder checks its lock connection is alive. Default 1s.
	CheckInterval time.Duration
	Logger        *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Holder == "" {
		host, _ := os.Hostname()
		c.Holder = fmt.Sprintf("ledger %s (%s pid %d)", c.Name, host, os.Getpid())
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	if c.Name == "" {
		return errors.New("lease: no name")
	}
	return nil
}

// Signals are what a test can wait for (see package testsignal).
type Signals struct {
	Gained testsignal.Signal[struct{}] // this process took the lease
	Lost   testsignal.Signal[error]    // it gave it up: nil when its work returned or ctx ended
}

// Lease runs work while this process holds the named lock.
type Lease struct {
	pool *pgxpool.Pool
	cfg  Config
	held atomic.Bool
	// Signals are off unless a test initialises them.
	Signals Signals
}

// New makes a lease; Run takes it.
func New(pool *pgxpool.Pool, cfg Config) (*Lease, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Lease{pool: pool, cfg: cfg}, nil
}

// Held says whether this process holds the lease now.
func (l *Lease) Held() bool { return l.held.Load() }

// Name is the lease's name.
func (l *Lease) Name() string { return l.cfg.Name }

// Run blocks until ctx ends. Whenever this process holds the lease it calls work with a context
// that ends when the lease is lost or ctx ends; between turns (another process holds it, or
// work returned an error) it stands by and tries again every RetryInterval. An error from work
// is logged and work is called again on the next turn.
func (l *Lease) Run(ctx context.Context, work func(ctx context.Context) error) error {
	for {
		err := l.turn(ctx, work)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			l.cfg.Logger.Warn("lease holder stopped; will try again", "lease", l.cfg.Name, "error", err)
		}
		t := time.NewTimer(l.cfg.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// turn takes the lock if it is free and runs work while holding it. It returns at once when
// another process holds the lock.
func (l *Lease) turn(ctx context.Context, work func(context.Context) error) error {
	cc := l.pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = l.cfg.Holder
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("could not connect for the %s lock: %w", l.cfg.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key(l.cfg.Name)).Scan(&got); err != nil {
		return fmt.Errorf("could not try the %s lock: %w", l.cfg.Name, err)
	}
	if !got {
		return nil
	}
	l.held.Store(true)
	l.cfg.Logger.Info("lease taken", "lease", l.cfg.Name)
	l.Signals.Gained.Signal(struct{}{})

	workCtx, cancel := context.WithCancelCause(ctx)
	watchdog := make(chan struct{})
	defer func() {
		cancel(nil)
		<-watchdog // the connection is closed (deferred above) only once nothing else uses it
	}()
	go func() {
		defer close(watchdog)
		t := time.NewTicker(l.cfg.CheckInterval)
		defer t.Stop()
		for {
			select {
			case <-workCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(workCtx); err != nil && workCtx.Err() == nil {
					cancel(fmt.Errorf("lost the %s lock's connection: %w", l.cfg.Name, err))
					return
				}
			}
		}
	}()
	err = work(workCtx)
	if cause := context.Cause(workCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	l.held.Store(false)
	l.Signals.Lost.Signal(err)
	return err
}

// key is the advisory lock's key text (hashed with hashtextextended).
func key(name string) string { return "ledger.lease:" + name }

// Holder is the application_name of the process holding the named lease, "" when none does.
func Holder(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (string, error) {
	var holder string
	err := q.QueryRow(ctx, `WITH k AS (SELECT hashtextextended($1, 0) AS key)
		SELECT coalesce((SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, k
			WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			  AND l.classid = ((k.key >> 32) & 4294967295)::oid AND l.objid = (k.key & 4294967295)::oid
			LIMIT 1), '')`, key(name)).Scan(&holder)
	if err != nil {
		return "", fmt.Errorf("could not read who holds %s: %w", name, err)
	}
	return holder, nil
}
