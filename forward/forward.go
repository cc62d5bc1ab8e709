// Package forward publishes every appended event to NATS JetStream, so consumers on other
// machines can follow the log: one subject per event type under a prefix, the Stripe event ID as
// the message ID (JetStream drops a re-published ID within the stream's duplicate window), and
// a checkpoint in ledger.projection_state moved only after JetStream acknowledged the events.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
)

// Config configures the forwarder. Zero values take the documented defaults.
type Config struct {
	URL     string // LEDGER_NATS_URL, e.g. nats://127.0.0.1:4222
	Stream  string // JetStream stream; default LEDGER_EVENTS
	Subject string // subject prefix; events go to <prefix>.<event type>; default ledger.events
	// DuplicateWindow is how long JetStream remembers message IDs: a forwarder that dies after
	// publishing and before its checkpoint re-publishes on restart, and the copies inside this
	// window are dropped. Default 24 h.
	DuplicateWindow time.Duration
	BatchSize       int           // events per checkpoint; default 500
	PollInterval    time.Duration // when caught up; default 50 ms
	Logger          *slog.Logger
	// OnPublished, if set, runs after a batch is acknowledged by JetStream and before the
	// checkpoint moves; an error stops the forwarder there (tests use it to die at that point).
	OnPublished func(published int) error
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = "LEDGER_EVENTS"
	}
	if c.Subject == "" {
		c.Subject = "ledger.events"
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// checkpointName is the forwarder's row in ledger.projection_state.
func checkpointName(stream string) string { return "nats:" + stream }

// Forwarder publishes the log to JetStream.
type Forwarder struct {
	pool *pgxpool.Pool
	cfg  Config
}

// New makes a forwarder.
func New(pool *pgxpool.Pool, cfg Config) (*Forwarder, error) {
	cfg.setDefaults()
	if cfg.URL == "" {
		return nil, errors.New("no NATS URL (LEDGER_NATS_URL)")
	}
	return &Forwarder{pool: pool, cfg: cfg}, nil
}

// Run forwards until ctx ends. Across processes one forwarder per stream is active (a session
// advisory lock on its own connection); the others wait and take over within a second.
func (f *Forwarder) Run(ctx context.Context) error {
	for {
		err := f.lead(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			f.cfg.Logger.Warn("NATS forwarder stopped; will try again", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (f *Forwarder) lead(ctx context.Context) error {
	cc := f.pool.Config().ConnConfig.Copy()
	host, _ := os.Hostname()
	cc.RuntimeParams["application_name"] = fmt.Sprintf("ledger nats forwarder %s (%s pid %d)", f.cfg.Stream, host, os.Getpid())
	lock, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	defer lock.Close(context.WithoutCancel(ctx))
	var got bool
	if err := lock.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, "ledger.forward:"+f.cfg.Stream).Scan(&got); err != nil || !got {
		return err
	}
	return f.forward(ctx, lock)
}

// Publisher connects to NATS and makes sure the stream exists with the duplicate window.
func (f *Forwarder) publisher() (*wnats.Publisher, *nats.Conn, error) {
	conn, err := nats.Connect(f.cfg.URL, nats.Name("stripe ledger forwarder"))
	if err != nil {
		return nil, nil, fmt.Errorf("could not connect to NATS: %w", err)
	}
	js, err := conn.JetStream()
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	sc := &nats.StreamConfig{Name: f.cfg.Stream, Subjects: []string{f.cfg.Subject + ".>"}, Storage: nats.FileStorage, Duplicates: f.cfg.DuplicateWindow}
	if _, err := js.StreamInfo(f.cfg.Stream); errors.Is(err, nats.ErrStreamNotFound) {
		_, err = js.AddStream(sc)
		if err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("could not create stream %s: %w", f.cfg.Stream, err)
		}
	} else if err != nil {
		conn.Close()
		return nil, nil, err
	}
	pub, err := wnats.NewPublisherWithNatsConn(conn, wnats.PublisherPublishConfig{
		Marshaler:         &wnats.NATSMarshaler{},
		SubjectCalculator: wnats.DefaultSubjectCalculator,
		JetStream:         wnats.JetStreamConfig{TrackMsgId: true}, // Nats-Msg-Id = the event ID
	}, watermill.NewSlogLogger(f.cfg.Logger))
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return pub, conn, nil
}

// forward publishes batches while lock (the connection holding the advisory lock) is alive. The
// lock goes with its connection: once the connection is gone (Postgres restarted, network cut)
// another process may lead, so each batch starts by checking it, and a dead one ends the lead —
// two forwarders publishing at once would not lose or duplicate a message (JetStream drops
// copies by ID) but could interleave the order consumers see.
func (f *Forwarder) forward(ctx context.Context, lock *pgx.Conn) error {
	pub, conn, err := f.publisher()
	if err != nil {
		return err
	}
	defer conn.Close()
	name := checkpointName(f.cfg.Stream)
	if _, err := f.pool.Exec(ctx, `INSERT INTO ledger.projection_state (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING`, name); err != nil {
		return err
	}
	for {
		if err := lock.Ping(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("lost the connection holding the forwarder's lock: %w", err)
		}
		var after int64
		if err := f.pool.QueryRow(ctx, `SELECT position FROM ledger.projection_state WHERE name = $1`, name).Scan(&after); err != nil {
			return err
		}
		rows, err := f.pool.Query(ctx, `SELECT position, event_id, type, object_id, payload FROM ledger.events
			WHERE position > $1 ORDER BY position LIMIT $2`, after, f.cfg.BatchSize)
		if err != nil {
			return err
		}
		var last int64
		n := 0
		for rows.Next() {
			var pos int64
			var id, typ, object string
			var payload []byte
			if err := rows.Scan(&pos, &id, &typ, &object, &payload); err != nil {
				rows.Close()
				return err
			}
			msg := message.NewMessage(id, payload)
			msg.Metadata.Set("position", strconv.FormatInt(pos, 10))
			msg.Metadata.Set("type", typ)
			msg.Metadata.Set("object_id", object)
			// Publish waits for JetStream's acknowledgement of each message.
			if err := pub.Publish(f.cfg.Subject+"."+typ, msg); err != nil {
				rows.Close()
				return fmt.Errorf("could not publish event %s: %w", id, err)
			}
			last, n = pos, n+1
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(f.cfg.PollInterval):
			}
			continue
		}
		if f.cfg.OnPublished != nil {
			if err := f.cfg.OnPublished(n); err != nil {
				return err
			}
		}
		if _, err := f.pool.Exec(ctx, `UPDATE ledger.projection_state SET position = GREATEST(position, $2), updated_at = now() WHERE name = $1`, name, last); err != nil {
			return err
		}
	}
}
