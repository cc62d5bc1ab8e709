package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/internal/clock"
	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/testsignal"
)

// DeliverLease is the lease the deliverer runs on: one process across replicas sends.
const DeliverLease = "notify-deliver"

// DelivererConfig configures the deliverer. Zero values take the documented defaults.
type DelivererConfig struct {
	// Channels are the config's channels by name. Rows for a channel not here stay pending
	// (a channel removed from the config by mistake loses nothing). Required.
	Channels map[string]Channel
	// Clock decides when a row is due and when a paused channel is tried again. Default real time.
	Clock clock.Clock
	// Wake, when set, tells the deliverer a row was added (the runner's signal); without it
	// the deliverer finds new rows every PollInterval. Wake() does the same from this process.
	Wake <-chan struct{}
	// PollInterval is how often the outbox is looked at when nothing wakes the deliverer (rows
	// added by another replica's runner, `ledger notify retry` from another process). Default 1s.
	PollInterval time.Duration
	// BatchSize is how many due rows of one channel are read at once. Default 100.
	BatchSize int
	// Retry is the in-process retry of one row (watermill's middleware.Retry), before the row
	// goes back to the outbox with a later not_before.
	Retry RetryConfig
	// Backoff is the outbox's wait after a row's first failed attempt, doubling with every
	// attempt up to MaxBackoff. Defaults 1s and 15 min.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// MaxAttempts fails a row for good after this many attempts. Default 200: with the defaults,
	// about 16 hours of a channel being down (one round of Retry.MaxRetries+1 attempts every
	// MaxBackoff) before anything is given up. `ledger notify retry` starts a failed row over.
	MaxAttempts int
	Logger      *slog.Logger
	// Metrics, when set, counts sends, failures and retries per rule and channel.
	Metrics *DeliveryMetrics
	// LeaseRetry is how often a standby replica tries to take the lease. Default 1s.
	LeaseRetry time.Duration
}

// RetryConfig is watermill's middleware.Retry for one row: exponential back-off with a cap, in
// process. What it does not settle goes back to the outbox, which survives a crash.
type RetryConfig struct {
	MaxRetries      int           // default 2 (three attempts in a round); -1: none
	InitialInterval time.Duration // default 250ms
	MaxInterval     time.Duration // default 2s
}

func (c *DelivererConfig) setDefaults() {
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.Retry.MaxRetries == 0 {
		c.Retry.MaxRetries = 2
	}
	if c.Retry.MaxRetries < 0 {
		c.Retry.MaxRetries = 0
	}
	if c.Retry.InitialInterval <= 0 {
		c.Retry.InitialInterval = 250 * time.Millisecond
	}
	if c.Retry.MaxInterval <= 0 {
		c.Retry.MaxInterval = 2 * time.Second
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 15 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 200
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.LeaseRetry <= 0 {
		c.LeaseRetry = time.Second
	}
}

func (c *DelivererConfig) validate() error {
	if len(c.Channels) == 0 {
		return errors.New("notify deliverer: no channels")
	}
	if c.MaxBackoff < c.Backoff {
		return fmt.Errorf("notify deliverer: MaxBackoff %s is shorter than Backoff %s", c.MaxBackoff, c.Backoff)
	}
	return nil
}

// Attempt is one send's outcome, as a test sees it.
type Attempt struct {
	ID        int64
	Channel   string
	Attempts  int    // the row's attempts after this one
	Status    string // the row's status after this one
	NotBefore time.Time
	Err       error
}

// Idle says a channel found nothing due at Now.
type Idle struct {
	Channel string
	Now     time.Time
}

// DelivererSignals are what a test can wait for (package testsignal).
type DelivererSignals struct {
	Attempted testsignal.Signal[Attempt] // after each attempt's outcome is recorded
	Idle      testsignal.Signal[Idle]    // a channel read the outbox and found nothing due
	Started   testsignal.Signal[struct{}]
}

// Deliverer sends the outbox's due rows through watermill's Router, one feeder and one handler
// per channel.
//
// Why a lease and not FOR UPDATE SKIP LOCKED: a row lock lives as long as its transaction, and a
// delivery waits on the outside world (a channel down for an hour), so rows would be held by open
// transactions for as long; and several replicas taking rows of one channel would lose that
// channel's order. Under the lease (internal/lease, as the other runners) one process sends,
// each channel's rows go in id order, and a standby takes over within a second of the holder's
// death — resending at most the one row whose answer the dead process had not recorded.
//
// Each channel is fed on its own, so one channel down (or slow) never holds up another, and
// nothing here is on the ingestion path: the runner only inserts rows.
type Deliverer struct {
	pool  *pgxpool.Pool
	cfg   DelivererConfig
	lease *lease.Lease
	names []string

	mu    sync.Mutex
	wakes []chan struct{}

	Signals DelivererSignals
}

// NewDeliverer checks the config; Run sends.
func NewDeliverer(pool *pgxpool.Pool, cfg DelivererConfig) (*Deliverer, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l, err := lease.New(pool, lease.Config{Name: DeliverLease, RetryInterval: cfg.LeaseRetry, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	d := &Deliverer{pool: pool, cfg: cfg, lease: l}
	for name := range cfg.Channels {
		d.names = append(d.names, name)
	}
	slices.Sort(d.names)
	return d, nil
}

// Wake tells every channel's feeder to look at the outbox now. It never blocks.
func (d *Deliverer) Wake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Lease is the deliverer's lease (a test can wait on its signals).
func (d *Deliverer) Lease() *lease.Lease { return d.lease }

// Run sends until ctx ends, whenever this process holds the lease.
func (d *Deliverer) Run(ctx context.Context) error {
	return d.lease.Run(ctx, d.deliver)
}

const poisonTopic = "notify.poison"

func topic(channel string) string { return "notify.channel." + channel }

// deliver runs the router and the feeders while the lease is held.
func (d *Deliverer) deliver(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wlog := watermill.NewSlogLogger(d.cfg.Logger.With("component", "notify-router"))
	// BlockPublishUntilSubscriberAck: a feeder's Publish returns once the row is settled, so a
	// channel's rows go one at a time and in order; the outbox, not the pubsub, is durable.
	pubsub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, wlog)
	defer pubsub.Close()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return err
	}
	poison, err := middleware.PoisonQueueWithFilter(pubsub, poisonTopic, isFinal)
	if err != nil {
		return err
	}
	feeders := make([]*feeder, 0, len(d.names))
	for _, name := range d.names {
		f := &feeder{d: d, name: name, ch: d.cfg.Channels[name], wake: make(chan struct{}, 1), pub: pubsub}
		feeders = append(feeders, f)
		retry := middleware.Retry{
			MaxRetries:      d.cfg.Retry.MaxRetries,
			InitialInterval: d.cfg.Retry.InitialInterval,
			MaxInterval:     d.cfg.Retry.MaxInterval,
			Multiplier:      2,
			// A permanent failure, or a row out of attempts, is not tried again.
			ShouldRetry: func(p middleware.RetryParams) bool { return !isFinal(p.Err) && !isStopped(p.Err) && ctx.Err() == nil },
		}
		h := f.settle(poison(retry.Middleware(f.attempt(ctx))))
		router.AddConsumerHandler("notify-"+name, topic(name), pubsub, func(msg *message.Message) error {
			_, err := h(msg)
			return err
		})
	}
	// What failed for good, as the poison queue hands it on: logged once, with the reason.
	router.AddConsumerHandler("notify-poison", poisonTopic, pubsub, func(msg *message.Message) error {
		d.cfg.Logger.Warn("notification failed for good", "id", msg.Metadata.Get("row_id"),
			"rule", msg.Metadata.Get("rule"), "channel", msg.Metadata.Get("channel"),
			"error", msg.Metadata.Get(middleware.ReasonForPoisonedKey))
		return nil
	})
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	select {
	case <-router.Running():
	case err := <-routerDone:
		return fmt.Errorf("notify router: %w", err)
	}
	d.mu.Lock()
	d.wakes = d.wakes[:0]
	for _, f := range feeders {
		d.wakes = append(d.wakes, f.wake)
	}
	d.mu.Unlock()
	d.cfg.Logger.Info("notify deliverer started", "channels", d.names)
	d.Signals.Started.Signal(struct{}{})

	var wg sync.WaitGroup
	for _, f := range feeders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.run(ctx)
		}()
	}
	if d.cfg.Wake != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-d.cfg.Wake:
					d.Wake()
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	_ = router.Close()
	<-routerDone
	return nil
}

// feeder reads one channel's due rows in id order and hands them to the router one at a time.
type feeder struct {
	d    *Deliverer
	name string
	ch   Channel
	wake chan struct{}
	pub  message.Publisher

	mu sync.Mutex
	// pausedUntil: the channel failed a row that will be tried again then; until then none of
	// its rows is sent, so that they go in order once it is back.
	pausedUntil time.Time
	// interrupted: the row just handled was left for later, so the rest of the batch waits and
	// the outbox is read again, that row first, once the pause is over.
	interrupted bool
}

func (f *feeder) takeInterrupted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.interrupted
	f.interrupted = false
	return i
}

func (f *feeder) paused(now time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pausedUntil, now.Before(f.pausedUntil)
}

func (f *feeder) run(ctx context.Context) {
	d := f.d
	for ctx.Err() == nil {
		now := d.cfg.Clock.Now()
		next := now.Add(d.cfg.PollInterval)
		if until, ok := f.paused(now); ok {
			next = until
		} else {
			rows, err := dueRows(ctx, d.pool, f.name, now, d.cfg.BatchSize)
			if err != nil {
				if ctx.Err() == nil {
					d.cfg.Logger.Warn("could not read the outbox", "channel", f.name, "error", err)
				}
			}
			for _, r := range rows {
				if ctx.Err() != nil {
					return
				}
				if err := f.publish(r); err != nil {
					d.cfg.Logger.Warn("could not hand a row to the router", "channel", f.name, "error", err)
					break
				}
				if f.takeInterrupted() {
					break
				}
			}
			if err == nil && len(rows) == d.cfg.BatchSize {
				continue // more may be due
			}
			if err == nil && len(rows) > 0 {
				continue // read again: the batch may have been cut short by a pause, or rows added
			}
			if err == nil {
				d.Signals.Idle.Signal(Idle{Channel: f.name, Now: now})
				if t, ok, err := nextDue(ctx, d.pool, f.name); err == nil && ok && t.Before(next) {
					next = t
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-d.cfg.Clock.At(next):
		}
	}
}

func (f *feeder) publish(r Row) error {
	payload, err := json.Marshal(r)
	if err != nil {
		return err
	}
	msg := message.NewMessage(watermill.NewUUID(), payload)
	msg.Metadata.Set("row_id", fmt.Sprint(r.ID))
	msg.Metadata.Set("rule", r.Rule)
	msg.Metadata.Set("channel", r.Channel)
	return f.pub.Publish(topic(f.name), msg)
}

// finalError is a row marked failed for good: the Retry middleware stops, the poison queue
// takes it.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

func isFinal(err error) bool {
	var fe *finalError
	return errors.As(err, &fe)
}

// stopped is an attempt cut short by shutdown or a lost lease, or a send whose answer could not
// be recorded: the row stays pending, untouched, for the next holder.
type stopped struct{ err error }

func (e *stopped) Error() string { return e.err.Error() }
func (e *stopped) Unwrap() error { return e.err }

func isStopped(err error) bool {
	var s *stopped
	return errors.As(err, &s)
}

// retryLater is a retryable failure, recorded with the row's next not_before.
type retryLater struct {
	err       error
	notBefore time.Time
}

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

// settle is the outermost layer: whatever happened, the message is acknowledged — the outbox
// row holds the outcome — and a row left for later pauses its channel until then.
func (f *feeder) settle(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		_, err := h(msg)
		var rl *retryLater
		if errors.As(err, &rl) {
			f.mu.Lock()
			f.pausedUntil = rl.notBefore
			f.interrupted = true
			f.mu.Unlock()
		}
		return nil, nil
	}
}

// attempt sends the row once and records the outcome; it is what middleware.Retry repeats.
func (f *feeder) attempt(ctx context.Context) message.HandlerFunc {
	d := f.d
	return func(msg *message.Message) ([]*message.Message, error) {
		var r Row
		if err := json.Unmarshal(msg.Payload, &r); err != nil {
			return nil, &finalError{fmt.Errorf("undecodable router message: %w", err)}
		}
		sendErr := f.ch.Send(ctx, r)
		now := d.cfg.Clock.Now()
		if sendErr == nil {
			a, err := d.markDelivered(ctx, r, now)
			d.Signals.Attempted.Signal(a)
			if err != nil {
				// Sent but not recorded (the database is gone, or the lease with it): the
				// row stays pending and goes once more later, with the same key.
				return nil, &stopped{err}
			}
			return nil, nil
		}
		if ctx.Err() != nil {
			// Shutting down mid-send: the attempt says nothing about the channel.
			return nil, &stopped{ctx.Err()}
		}
		final := IsPermanent(sendErr) || r.Attempts+1 >= d.cfg.MaxAttempts
		a, err := d.markFailed(ctx, r, now, sendErr, final)
		d.Signals.Attempted.Signal(a)
		if err != nil {
			d.cfg.Logger.Warn("could not record a failed attempt", "id", r.ID, "error", err)
			return nil, &stopped{sendErr}
		}
		r.Attempts = a.Attempts
		msg.Payload, _ = json.Marshal(r) // the next try in this round counts from here
		if a.Status == StatusFailed {
			return nil, &finalError{sendErr}
		}
		return nil, &retryLater{err: sendErr, notBefore: a.NotBefore}
	}
}

// backoff is the outbox's wait after the n-th failed attempt.
func (d *Deliverer) backoff(n int) time.Duration {
	b := d.cfg.Backoff
	for i := 1; i < n && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.cfg.MaxBackoff)
}

// Marking a row: "AND status = 'pending'" so that a row someone marked failed or delivered in the
// meantime (ledger notify retry, a stale holder's last step) is not overwritten.
const (
	markDeliveredSQL = `UPDATE ledger.notify_outbox
		SET status = 'delivered', attempts = attempts + 1, delivered_at = $2, last_error = NULL
		WHERE id = $1 AND status = 'pending'
		RETURNING attempts, status, not_before`
	markFailedSQL = `UPDATE ledger.notify_outbox
		SET attempts = attempts + 1, last_error = $2, not_before = $3,
		    status = CASE WHEN $4 THEN 'failed' ELSE status END
		WHERE id = $1 AND status = 'pending'
		RETURNING attempts, status, not_before`
)

func (d *Deliverer) markDelivered(ctx context.Context, r Row, now time.Time) (Attempt, error) {
	a := Attempt{ID: r.ID, Channel: r.Channel}
	// The send happened: record it even if ctx is ending (a shutdown mid-round).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// One statement, so one transaction of its own: the row's status, attempts and delivered_at
	// change together or not at all.
	err := d.pool.QueryRow(ctx, markDeliveredSQL, r.ID, now).Scan(&a.Attempts, &a.Status, &a.NotBefore)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil // settled elsewhere meanwhile
		a.Status = StatusDelivered
	}
	if err != nil {
		a.Err = err
		return a, fmt.Errorf("could not mark notification %d delivered: %w", r.ID, err)
	}
	d.cfg.Logger.Debug("notification delivered", "id", r.ID, "rule", r.Rule, "channel", r.Channel, "attempts", a.Attempts)
	if m := d.cfg.Metrics; m != nil {
		m.Sent.WithLabelValues(r.Rule, r.Channel).Inc()
		if r.EventCreated != nil {
			m.Latency.WithLabelValues(r.Rule, r.Channel).Observe(now.Sub(*r.EventCreated).Seconds())
		}
	}
	return a, nil
}

func (d *Deliverer) markFailed(ctx context.Context, r Row, now time.Time, sendErr error, final bool) (Attempt, error) {
	a := Attempt{ID: r.ID, Channel: r.Channel, Err: sendErr}
	notBefore := now.Add(d.backoff(r.Attempts + 1))
	err := d.pool.QueryRow(ctx, markFailedSQL, r.ID, sendErr.Error(), notBefore, final).Scan(&a.Attempts, &a.Status, &a.NotBefore)
	if err != nil {
		return a, err
	}
	if m := d.cfg.Metrics; m != nil {
		if a.Status == StatusFailed {
			m.Failed.WithLabelValues(r.Rule, r.Channel).Inc()
		} else {
			m.Retried.WithLabelValues(r.Rule, r.Channel).Inc()
		}
	}
	if a.Status == StatusFailed {
		d.cfg.Logger.Warn("notification failed", "id", r.ID, "rule", r.Rule, "channel", r.Channel,
			"attempts", a.Attempts, "error", sendErr)
	} else {
		d.cfg.Logger.Info("notification will be retried", "id", r.ID, "rule", r.Rule, "channel", r.Channel,
			"attempts", a.Attempts, "not_before", a.NotBefore, "error", sendErr)
	}
	return a, nil
}

const rowColumns = `id, rule, event_id, position, channel, idempotency_key, message, late, digest, backfill, digest_of,
	status, attempts, not_before, last_error, event_created, enqueued_at, delivered_at`

// dueRowsSQL: a channel's due rows in id order. Digest members (digest) wait for their digest
// row, which is an ordinary row of its own; the partial index notify_outbox_due_idx covers it.
const dueRowsSQL = `SELECT ` + rowColumns + ` FROM ledger.notify_outbox
	WHERE status = 'pending' AND NOT digest AND channel = $1 AND not_before <= $2
	ORDER BY id LIMIT $3`

const nextDueSQL = `SELECT min(not_before) FROM ledger.notify_outbox
	WHERE status = 'pending' AND NOT digest AND channel = $1`

func dueRows(ctx context.Context, q pgxQuerier, channel string, now time.Time, limit int) ([]Row, error) {
	rows, err := q.Query(ctx, dueRowsSQL, channel, now, limit)
	if err != nil {
		return nil, fmt.Errorf("could not read due notifications: %w", err)
	}
	return pgx.CollectRows(rows, scanRow)
}

func nextDue(ctx context.Context, q pgxQuerier, channel string) (time.Time, bool, error) {
	var t *time.Time
	if err := q.QueryRow(ctx, nextDueSQL, channel).Scan(&t); err != nil {
		return time.Time{}, false, err
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

type pgxQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func scanRow(row pgx.CollectableRow) (Row, error) {
	var r Row
	var msg []byte
	err := row.Scan(&r.ID, &r.Rule, &r.EventID, &r.Position, &r.Channel, &r.IdempotencyKey, &msg, &r.Late,
		&r.Digest, &r.Backfill, &r.DigestOf, &r.Status, &r.Attempts, &r.NotBefore, &r.LastError, &r.EventCreated,
		&r.EnqueuedAt, &r.DeliveredAt)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(msg, &r.Message); err != nil {
		return r, fmt.Errorf("notification %d: undecodable message: %w", r.ID, err)
	}
	return r, nil
}

// DeliveryMetrics are the deliverer's Prometheus metrics, per rule and channel (both bounded by
// the config file).
type DeliveryMetrics struct {
	Sent    *prometheus.CounterVec
	Failed  *prometheus.CounterVec
	Retried *prometheus.CounterVec
	Latency *prometheus.HistogramVec
}

// NewDeliveryMetrics registers the deliverer's metrics on reg.
func NewDeliveryMetrics(reg prometheus.Registerer) *DeliveryMetrics {
	labels := []string{"rule", "channel"}
	m := &DeliveryMetrics{
		Sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledger_notify_sent_total",
			Help: "Notifications a channel accepted (2xx, or the SMTP server's acceptance), by rule and channel."}, labels),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledger_notify_failed_total",
			Help: "Notifications that failed for good (a permanent answer or out of attempts), by rule and channel."}, labels),
		Retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledger_notify_retried_total",
			Help: "Attempts that failed and will be tried again, by rule and channel."}, labels),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ledger_notify_latency_seconds",
			Help:    "From the event's creation to the channel's acceptance, by rule and channel.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400}}, labels),
	}
	reg.MustRegister(m.Sent, m.Failed, m.Retried, m.Latency)
	return m
}
