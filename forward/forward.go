// Package forward publishes every appended event to NATS JetStream, so consumers on other
// machines can follow the log: one subject per event type under a prefix, the Stripe event ID as
// the message ID (JetStream drops a re-published ID within the stream's duplicate window), and
// a checkpoint in ledger.projection_state moved only after JetStream acknowledged the events.
//
// The forwarder is a consumer of eventstore's checkpointed tail: each batch is published inside
// the tail's transaction and the checkpoint moves in that transaction, so a checkpoint never
// passes an event JetStream has not acknowledged. What it cannot make atomic is the publish and
// the commit: a forwarder that dies between them re-publishes the batch, which the message IDs
// de-duplicate. Across processes one forwarder per stream is active, under a lease.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/testsignal"
)

// Config configures the forwarder. Zero values take the documented defaults.
type Config struct {
	URL     string // LEDGER_NATS_URL, e.g. nats://127.0.0.1:4222; required
	Stream  string // JetStream stream; default LEDGER_EVENTS
	Subject string // subject prefix; events go to <prefix>.<event type>; default ledger.events
	// DuplicateWindow is how long JetStream remembers message IDs: a forwarder that dies after
	// publishing and before its checkpoint re-publishes on restart, and the copies inside this
	// window are dropped. Default 24 h.
	DuplicateWindow time.Duration
	BatchSize       int           // events per checkpoint; default 500
	PollInterval    time.Duration // when caught up; default 50 ms
	// LeaseInterval is how often a standby tries to become the forwarder, and how often the
	// active one checks the connection holding its lease. Default 1 s.
	LeaseInterval time.Duration
	Logger        *slog.Logger
	// OnPublished, if set, runs after JetStream acknowledged a batch and before the checkpoint
	// moves past it; an error rolls the batch back (the checkpoint stays) and stops this turn of
	// the forwarder, which tries again after LeaseInterval. Tests use it to die at that point.
	OnPublished func(published int) error
}

// DefaultSubject is the subject prefix events are published under when none is configured
// (LEDGER_NATS_SUBJECT); checkpoints sent to NATS go under it too.
const DefaultSubject = "ledger.events"

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = "LEDGER_EVENTS"
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 24 * time.Hour
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.LeaseInterval <= 0 {
		c.LeaseInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	if c.URL == "" {
		return errors.New("no NATS URL (LEDGER_NATS_URL)")
	}
	return nil
}

// checkpointName is the forwarder's row in ledger.projection_state.
func checkpointName(stream string) string { return "nats:" + stream }

// Signals are what a test can wait for (see package testsignal).
type Signals struct {
	// Published is the last position of a batch JetStream acknowledged in full (and OnPublished
	// accepted), once the checkpoint past it has committed.
	Published testsignal.Signal[int64]
}

// Forwarder publishes the log to JetStream.
type Forwarder struct {
	cfg   Config
	store *eventstore.Store
	lease *lease.Lease
	// Signals are off unless a test initialises them.
	Signals Signals
}

// New makes a forwarder; Run starts it.
func New(pool *pgxpool.Pool, cfg Config) (*Forwarder, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	// The lease's name makes the holder appear as "ledger nats forwarder <stream> (host pid N)"
	// in pg_stat_activity.
	l, err := lease.New(pool, lease.Config{Name: "nats forwarder " + cfg.Stream,
		RetryInterval: cfg.LeaseInterval, CheckInterval: cfg.LeaseInterval, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	return &Forwarder{cfg: cfg, store: eventstore.New(pool), lease: l}, nil
}

// Lease is what makes this forwarder the only active one for its stream across processes: its
// Held says whether it is now, and its Signals let a test wait for it to take over or give up.
func (f *Forwarder) Lease() *lease.Lease { return f.lease }

// Run forwards until ctx ends. Only the holder of the stream's lease forwards; the others stand
// by and take over within LeaseInterval of the holder's end (process gone, lease connection
// lost), from the checkpoint. A failure (NATS unreachable, a publish refused) ends the turn and
// the forwarder tries again after LeaseInterval.
func (f *Forwarder) Run(ctx context.Context) error {
	return f.lease.Run(ctx, f.forward)
}

// forward publishes batches while this process holds the lease; ctx ends when it loses it.
// Two forwarders publishing at once would not lose or duplicate a message (JetStream drops
// copies by ID, and a checkpoint refuses to move from a position it is no longer at) but could
// interleave the order consumers see: that is what the lease prevents.
func (f *Forwarder) forward(ctx context.Context) error {
	pub, conn, err := f.publisher()
	if err != nil {
		return err
	}
	defer conn.Close()
	err = f.store.Tail(ctx, eventstore.TailConfig{
		Checkpoint:   checkpointName(f.cfg.Stream),
		BatchSize:    f.cfg.BatchSize,
		PollInterval: f.cfg.PollInterval,
		Payload:      true,
		Committed:    func(b eventstore.Batch) { f.Signals.Published.Signal(b.Last()) },
	}, func(ctx context.Context, _ pgx.Tx, b eventstore.Batch) error {
		return f.publish(ctx, pub, b)
	})
	if err != nil {
		return fmt.Errorf("NATS forwarder: %w", err)
	}
	return nil
}

// publish sends a batch in log order, each message acknowledged by JetStream before the next.
// It stops as soon as ctx ends: a forwarder that lost its lease must not go on publishing beside
// the one that took over.
func (f *Forwarder) publish(ctx context.Context, pub *wnats.Publisher, b eventstore.Batch) error {
	for _, ev := range b.Events {
		if err := ctx.Err(); err != nil {
			return err
		}
		msg := message.NewMessage(ev.ID, ev.Payload)
		msg.Metadata.Set("position", strconv.FormatInt(ev.Position, 10))
		msg.Metadata.Set("type", ev.Type)
		msg.Metadata.Set("object_id", ev.ObjectID)
		if err := pub.Publish(f.cfg.Subject+"."+ev.Type, msg); err != nil {
			return fmt.Errorf("could not publish event %s: %w", ev.ID, err)
		}
	}
	if f.cfg.OnPublished != nil {
		if err := f.cfg.OnPublished(len(b.Events)); err != nil {
			return err
		}
	}
	return nil
}

// publisher connects to NATS and makes sure the stream exists with the duplicate window.
func (f *Forwarder) publisher() (*wnats.Publisher, *nats.Conn, error) {
	conn, err := nats.Connect(f.cfg.URL, nats.Name("stripe ledger forwarder"))
	if err != nil {
		return nil, nil, fmt.Errorf("could not connect to NATS: %w", err)
	}
	js, err := conn.JetStream()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("could not use JetStream: %w", err)
	}
	sc := &nats.StreamConfig{Name: f.cfg.Stream, Subjects: []string{f.cfg.Subject + ".>"}, Storage: nats.FileStorage, Duplicates: f.cfg.DuplicateWindow}
	if _, err := js.StreamInfo(f.cfg.Stream); errors.Is(err, nats.ErrStreamNotFound) {
		if _, err := js.AddStream(sc); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("could not create stream %s: %w", f.cfg.Stream, err)
		}
	} else if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("could not read stream %s: %w", f.cfg.Stream, err)
	}
	pub, err := wnats.NewPublisherWithNatsConn(conn, wnats.PublisherPublishConfig{
		Marshaler:         &wnats.NATSMarshaler{},
		SubjectCalculator: wnats.DefaultSubjectCalculator,
		JetStream:         wnats.JetStreamConfig{TrackMsgId: true}, // Nats-Msg-Id = the event ID
	}, watermill.NewSlogLogger(f.cfg.Logger))
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("could not make the NATS publisher: %w", err)
	}
	return pub, conn, nil
}
