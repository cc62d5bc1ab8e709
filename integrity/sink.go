package integrity

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/forward"
	"github.com/stripeledger/ledger/internal/clock"
	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/testsignal"
)

// A Sink keeps checkpoints somewhere the database's owner cannot rewrite them.
type Sink interface {
	Write(ctx context.Context, c Checkpoint) error
	String() string // what it is, for logs: never a credential
	Close() error
}

// FileSink appends checkpoint lines to a file, synced after each, and never truncates it. Ship
// the file somewhere append-only (WORM storage, another machine) for it to be evidence.
type FileSink struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenFileSink opens (creating) path for appending.
func OpenFileSink(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("checkpoint file: %w", err)
	}
	return &FileSink{path: path, f: f}, nil
}

func (s *FileSink) Write(_ context.Context, c Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(c.Line()); err != nil {
		return fmt.Errorf("checkpoint file %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("checkpoint file %s: %w", s.path, err)
	}
	return nil
}

func (s *FileSink) String() string { return "file:" + s.path }
func (s *FileSink) Close() error   { return s.f.Close() }

// WriterSink writes checkpoint lines to a stream (stdout, for a log shipper).
type WriterSink struct {
	name string
	mu   sync.Mutex
	w    io.Writer
}

// NewWriterSink writes to w, named name in logs.
func NewWriterSink(name string, w io.Writer) *WriterSink { return &WriterSink{name: name, w: w} }

func (s *WriterSink) Write(_ context.Context, c Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(c.Line())
	return err
}

func (s *WriterSink) String() string { return s.name }
func (s *WriterSink) Close() error   { return nil }

// NATSSink publishes checkpoints to JetStream, on the forwarder's stream: subject
// <prefix>.ledger.checkpoint (no Stripe event type begins with "ledger."), each acknowledged by
// the stream before Write returns, with a message ID that makes a re-publish a no-op.
type NATSSink struct {
	subject string
	conn    *nats.Conn
	js      nats.JetStreamContext
}

// CheckpointSubject is where a NATSSink publishes under the forwarder's subject prefix.
func CheckpointSubject(prefix string) string {
	if prefix == "" {
		prefix = forward.DefaultSubject
	}
	return prefix + ".ledger.checkpoint"
}

// OpenNATSSink connects to url. The stream that holds prefix.> must exist (the forwarder makes it).
// A server that is down does not stop the ledger: the connection is retried for ever in the
// background, and writes fail (and are counted) until it is back.
func OpenNATSSink(url, prefix string) (*NATSSink, error) {
	conn, err := nats.Connect(url, nats.Name("ledger checkpoints"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		// nats.go's error can quote the URL, credentials included.
		return nil, fmt.Errorf("checkpoints to NATS: could not connect to LEDGER_NATS_URL: %s", strings.ReplaceAll(err.Error(), url, "<LEDGER_NATS_URL>"))
	}
	js, err := conn.JetStream()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("checkpoints to NATS: %w", err)
	}
	return &NATSSink{subject: CheckpointSubject(prefix), conn: conn, js: js}, nil
}

func (s *NATSSink) Write(ctx context.Context, c Checkpoint) error {
	id := "checkpoint-" + strconv.FormatInt(c.Position, 10) + "-" + strconv.FormatInt(c.Time.UnixNano(), 10)
	if _, err := s.js.Publish(s.subject, c.Line(), nats.MsgId(id), nats.Context(ctx)); err != nil {
		return fmt.Errorf("checkpoint to NATS %s: %w", s.subject, err)
	}
	return nil
}

func (s *NATSSink) String() string { return "nats:" + s.subject }
func (s *NATSSink) Close() error   { s.conn.Close(); return nil }

// SinkConfig is how `ledger serve` and `ledger checkpoint` find their sinks.
type SinkConfig struct {
	Spec       string    // LEDGER_CHECKPOINT_SINK: comma-separated file:PATH, stdout, nats
	NATSURL    string    // LEDGER_NATS_URL, for nats
	NATSPrefix string    // LEDGER_NATS_SUBJECT
	Stdout     io.Writer // default os.Stdout
}

// OpenSinks opens every sink the spec names; an empty spec is stdout.
func OpenSinks(cfg SinkConfig) ([]Sink, error) {
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	spec := strings.TrimSpace(cfg.Spec)
	if spec == "" {
		spec = "stdout"
	}
	var out []Sink
	fail := func(err error) ([]Sink, error) {
		for _, s := range out {
			_ = s.Close()
		}
		return nil, err
	}
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "stdout":
			out = append(out, NewWriterSink("stdout", cfg.Stdout))
		case part == "nats":
			if cfg.NATSURL == "" {
				return fail(errors.New("LEDGER_CHECKPOINT_SINK names nats but LEDGER_NATS_URL is not set"))
			}
			s, err := OpenNATSSink(cfg.NATSURL, cfg.NATSPrefix)
			if err != nil {
				return fail(err)
			}
			out = append(out, s)
		case strings.HasPrefix(part, "file:") && len(part) > len("file:"):
			s, err := OpenFileSink(strings.TrimPrefix(part, "file:"))
			if err != nil {
				return fail(err)
			}
			out = append(out, s)
		default:
			return fail(fmt.Errorf("LEDGER_CHECKPOINT_SINK: %q is not a sink (want file:PATH, stdout or nats)", part))
		}
	}
	return out, nil
}

// CheckpointerConfig configures the periodic checkpoints of `ledger serve`.
type CheckpointerConfig struct {
	Key      ed25519.PrivateKey
	Sinks    []Sink
	Interval time.Duration // default 15 minutes
	Clock    clock.Clock   // default time itself
	Logger   *slog.Logger
	// Registerer, if set, gets the checkpoint metrics: an alert on their failures or on the
	// last checkpoint's age is what tells an operator the proof has stopped growing.
	Registerer prometheus.Registerer
}

type checkpointMetrics struct {
	written  prometheus.Counter
	failed   *prometheus.CounterVec // by sink
	position prometheus.Gauge
	at       prometheus.Gauge
	diverged prometheus.Counter
}

func newCheckpointMetrics(reg prometheus.Registerer) *checkpointMetrics {
	m := &checkpointMetrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_checkpoints_written_total",
			Help: "Checkpoints this process signed and wrote to every sink."}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledger_checkpoint_sink_failures_total",
			Help: "Checkpoint writes a sink refused, by sink."}, []string{"sink"}),
		position: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_checkpoint_position",
			Help: "Log position of the last checkpoint this process wrote."}),
		at: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_checkpoint_timestamp_seconds",
			Help: "When this process last wrote a checkpoint to every sink (Unix seconds)."}),
		diverged: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_checkpoint_divergence_total",
			Help: "Checkpoints not signed because the log no longer extends the last one: a row before it changed."}),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.failed, m.position, m.at, m.diverged)
	}
	return m
}

// CheckpointerSignals are what a test can wait for.
type CheckpointerSignals struct {
	Written testsignal.Signal[Checkpoint] // a checkpoint reached every sink
}

// Checkpointer signs the log's head every Interval, under a lease: across replicas one writes.
type Checkpointer struct {
	store   *eventstore.Store
	cfg     CheckpointerConfig
	lease   *lease.Lease
	metrics *checkpointMetrics
	last    *Checkpoint // the last one this process wrote to every sink
	Signals CheckpointerSignals
}

// NewCheckpointer makes a checkpointer over the log in pool.
func NewCheckpointer(pool *pgxpool.Pool, cfg CheckpointerConfig) (*Checkpointer, error) {
	if cfg.Key == nil {
		return nil, errors.New("checkpoints: no key")
	}
	if len(cfg.Sinks) == 0 {
		return nil, errors.New("checkpoints: no sink")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := lease.New(pool, lease.Config{Name: "checkpoints", Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Checkpointer{store: eventstore.New(pool), cfg: cfg, lease: l, metrics: newCheckpointMetrics(cfg.Registerer)}, nil
}

// Lease is the checkpointer's lease (tests wait on its signals).
func (c *Checkpointer) Lease() *lease.Lease { return c.lease }

// Run writes a checkpoint at once on taking the lease, then every Interval, until ctx ends. A
// sink that fails is logged and tried again at the next interval; the others still get theirs.
func (c *Checkpointer) Run(ctx context.Context) error {
	return c.lease.Run(ctx, func(ctx context.Context) error {
		// The schedule is fixed when the lease is taken, not after each write: a slow sink
		// does not push the next checkpoint later.
		next := c.cfg.Clock.Now()
		for {
			if _, err := c.Once(ctx); err != nil && ctx.Err() == nil {
				c.cfg.Logger.Error("checkpoint not written", "error", err)
			}
			next = next.Add(c.cfg.Interval)
			select {
			case <-ctx.Done():
				return nil
			case <-c.cfg.Clock.At(next):
			}
		}
	})
}

// SinkTimeout bounds one sink's write: a stalled sink (a NATS server that does not answer)
// must not hold up the others or the next checkpoint.
const SinkTimeout = 10 * time.Second

// Once signs the head now and writes it to every sink. It returns the checkpoint and the sinks'
// errors joined.
func (c *Checkpointer) Once(ctx context.Context) (Checkpoint, error) {
	// Before signing a new head, the log must still extend the last checkpoint this process
	// signed: if a row before it was rewritten, a new checkpoint would vouch for the rewrite.
	if c.last != nil && c.last.Position > 0 {
		l, err := c.store.HashAt(ctx, c.last.Position)
		if err != nil && !errors.Is(err, eventstore.ErrNoPosition) {
			return Checkpoint{}, err
		}
		if err != nil || hex.EncodeToString(l.Hash[:]) != c.last.Head {
			c.metrics.diverged.Inc()
			return Checkpoint{}, fmt.Errorf("the log no longer extends the checkpoint at position %d signed %s: not signing its head (run ledger verify --checkpoints)",
				c.last.Position, c.last.Time.Format(time.RFC3339))
		}
	}
	cp, failed, err := writeCheckpoint(ctx, c.store, c.cfg.Key, c.cfg.Sinks, c.cfg.Clock.Now())
	for _, s := range failed {
		c.metrics.failed.WithLabelValues(s.String()).Inc()
	}
	if err != nil {
		return cp, err
	}
	c.last = &cp
	c.metrics.written.Inc()
	c.metrics.position.Set(float64(cp.Position))
	c.metrics.at.Set(float64(cp.Time.Unix()))
	c.cfg.Logger.Info("checkpoint written", "position", cp.Position, "head", cp.Head, "key", cp.Key)
	c.Signals.Written.Signal(cp)
	return cp, nil
}

// WriteCheckpoint signs the log's head at now and writes it to every sink.
func WriteCheckpoint(ctx context.Context, store *eventstore.Store, key ed25519.PrivateKey, sinks []Sink, now time.Time) (Checkpoint, error) {
	cp, _, err := writeCheckpoint(ctx, store, key, sinks, now)
	return cp, err
}

// writeCheckpoint also returns the sinks that refused it.
func writeCheckpoint(ctx context.Context, store *eventstore.Store, key ed25519.PrivateKey, sinks []Sink, now time.Time) (Checkpoint, []Sink, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	cp := Sign(key, head, ChainTag, now)
	var errs []error
	var failed []Sink
	for _, s := range sinks {
		wctx, cancel := context.WithTimeout(ctx, SinkTimeout)
		err := s.Write(wctx, cp)
		cancel()
		if err != nil {
			errs = append(errs, err)
			failed = append(failed, s)
		}
	}
	return cp, failed, errors.Join(errs...)
}
