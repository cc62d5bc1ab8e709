package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/clock"
	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/testsignal"
)

// The runner fills the outbox from the log. It is a consumer of eventstore's checkpointed tail
// (checkpoint "notify" in ledger.projection_state, beside the other consumers'): each batch's
// outbox rows are inserted in the batch's transaction and the checkpoint moves past the batch
// in that transaction, so a crash repeats a whole batch or none of it, and a repeated batch
// inserts nothing, as every row is keyed (rule, event) with ON CONFLICT DO NOTHING. A duplicate
// webhook is not in the log twice; an event reconciliation appends after its webhook was lost
// reaches the tail once; a replay of the read models (ledger replay, projections.Rebuild) moves
// only the read models' own checkpoint and never reads or writes the outbox.
//
// ledger.notify_state, which migration 016 made for the runner's checkpoint, is left unused:
// the store's checkpoint mechanism already gives the one-transaction guarantee, and a second
// way of keeping a position would have to agree with it by hand.
//
// One runner is active across replicas, under the lease "notify runner"; the others stand by.
//
// What it decides per event:
//   - held events (they disagree with the endpoint they came to: eventstore.Record.Held) do not
//     notify; when an operator releases one, the next sweep notifies it as if it had just
//     arrived — it was not in the read models either until then;
//   - a rule fires only for events after the log head at the time the rule was first seen
//     (ledger.notify_rules_seen); `ledger notify backfill` reaches further back;
//   - an event of source reconcile or snapshot appended more than LateDelay after Stripe created
//     it is late: marked "late (repaired)"; past LateHorizon it goes into a digest instead;
//   - quiet hours hold a notification until the window ends (not_before); a digest rule's
//     notifications wait for the period's end, when a sweep gathers them into one message.

// RunnerConfig configures the runner. Zero values take the documented defaults.
type RunnerConfig struct {
	// Config is the loaded config file. Required.
	Config *Config
	// Store is the log; default a new one over the pool. Give the webhooks' store, and an
	// append through it wakes the runner at once.
	Store *eventstore.Store
	// BatchSize is the most events matched in one transaction. Default 5,000: each batch costs
	// a few round trips and a commit whatever its size, and at 2,000 those were about a tenth
	// of a catch-up over the log (BenchmarkNotifyFill); a batch of 5,000 holds its
	// transaction for a few hundred milliseconds.
	BatchSize int
	// PollInterval bounds the lag behind appends by other processes. Default 50 ms.
	PollInterval time.Duration
	// SweepInterval is how often the ledger-side sources, released events and due digests are
	// looked at. Default 10 s.
	SweepInterval time.Duration
	// LeaseInterval is how often a standby tries to take over. Default 1 s.
	LeaseInterval time.Duration
	// Clock decides quiet hours and digest periods. Default the real clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

func (c *RunnerConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 5000
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 10 * time.Second
	}
	if c.LeaseInterval <= 0 {
		c.LeaseInterval = time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *RunnerConfig) validate() error {
	if c.Config == nil || len(c.Config.Rules) == 0 {
		return errors.New("notify runner: no rules")
	}
	return nil
}

// CheckpointName is the runner's row in ledger.projection_state.
const CheckpointName = "notify"

// LeaseName is the runner's lease.
const LeaseName = "notify runner"

// Signals are what a test can wait for (see package testsignal).
type Signals struct {
	// Filled is the last position of a batch whose outbox rows (and checkpoint) committed.
	Filled testsignal.Signal[int64]
	// Swept is the number of rows a sweep added (ledger-side, released, digests).
	Swept testsignal.Signal[int]
}

// Runner fills ledger.notify_outbox from the log.
type Runner struct {
	cfg    RunnerConfig
	pool   *pgxpool.Pool
	store  *eventstore.Store
	lease  *lease.Lease
	byType map[string][]*Rule // Stripe rules by event type
	// sweptTo is where the last sweep looked up to (database time); zero before the first.
	sweptTo time.Time
	// thinSweptTo is where the last sweep of fetched thin events looked up to, by the runner's
	// clock (the thin fetcher dates its rows by its own); zero before the first.
	thinSweptTo time.Time
	// Signals are off unless a test initialises them.
	Signals Signals
}

// NewRunner makes a runner; Run starts it.
func NewRunner(pool *pgxpool.Pool, cfg RunnerConfig) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l, err := lease.New(pool, lease.Config{Name: LeaseName, RetryInterval: cfg.LeaseInterval,
		CheckInterval: cfg.LeaseInterval, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("notify runner: %w", err)
	}
	if cfg.Store == nil {
		cfg.Store = eventstore.New(pool)
	}
	r := &Runner{cfg: cfg, pool: pool, store: cfg.Store, lease: l, byType: map[string][]*Rule{}}
	for _, rule := range cfg.Config.Rules {
		if rule.Source != SourceStripe {
			continue
		}
		for _, t := range rule.Events {
			r.byType[t] = append(r.byType[t], rule)
		}
	}
	return r, nil
}

// Lease makes this runner the only active one across processes (tests wait on its signals).
func (r *Runner) Lease() *lease.Lease { return r.lease }

// Run fills the outbox until ctx ends, while this process holds the lease.
func (r *Runner) Run(ctx context.Context) error {
	return r.lease.Run(ctx, r.work)
}

func (r *Runner) work(ctx context.Context) error {
	seen, err := r.Register(ctx)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		t := time.NewTicker(r.cfg.SweepInterval)
		defer t.Stop()
		for {
			if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("notify sweep failed; will try again", "error", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	g.Go(func() error {
		err := r.store.Tail(ctx, eventstore.TailConfig{
			Checkpoint: CheckpointName, BatchSize: r.cfg.BatchSize, PollInterval: r.cfg.PollInterval,
			Committed: func(b eventstore.Batch) { r.Signals.Filled.Signal(b.Last()) },
		}, func(ctx context.Context, tx pgx.Tx, b eventstore.Batch) error {
			events, err := r.withPayloads(ctx, tx, b.Events, seen)
			if err != nil {
				return err
			}
			_, err = r.fill(ctx, tx, events, seen, false)
			return err
		})
		if err != nil {
			return fmt.Errorf("notify runner: %w", err)
		}
		return nil
	})
	return g.Wait()
}

// RuleSeen is when a rule was first seen: it fires for events after FirstPosition.
type RuleSeen struct {
	Rule          string
	FirstPosition int64
	FirstSeenAt   time.Time
}

// Register records the rules not seen before at the log's head, and moves the runner's
// checkpoint up to the earliest of the rules' first positions, so that a first start (or a
// config whose rules are all new) does not read the history it would not notify of.
func (r *Runner) Register(ctx context.Context) (map[string]RuleSeen, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("could not register the rules: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	seen, err := registerRules(ctx, tx, r.cfg.Config)
	if err != nil {
		return nil, err
	}
	from := int64(-1)
	for _, rule := range r.cfg.Config.Rules {
		if s := seen[rule.Name]; rule.Source == SourceStripe && (from < 0 || s.FirstPosition < from) {
			from = s.FirstPosition
		}
	}
	var at int64
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT position FROM ledger.projection_state WHERE name = $1), 0)`, CheckpointName).Scan(&at); err != nil {
		return nil, fmt.Errorf("could not read the notify checkpoint: %w", err)
	}
	if from > at {
		if err := eventstore.SetCheckpoint(ctx, tx, CheckpointName, from); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("could not register the rules: %w", err)
	}
	return seen, nil
}

// registerRules inserts the config's new rules at the log head and reads every rule's first
// sight. The head is read under the log's head lock (FOR SHARE), so no append commits between
// reading it and recording it.
func registerRules(ctx context.Context, tx pgx.Tx, cfg *Config) (map[string]RuleSeen, error) {
	names := make([]string, len(cfg.Rules))
	for i, rule := range cfg.Rules {
		names[i] = rule.Name
	}
	rows, err := tx.Query(ctx, `WITH head AS (SELECT position FROM ledger.log_head FOR SHARE),
		ins AS (INSERT INTO ledger.notify_rules_seen (rule, first_position)
			SELECT n, (SELECT position FROM head) FROM unnest($1::text[]) AS n
			ON CONFLICT (rule) DO NOTHING RETURNING rule, first_position, first_seen_at)
		SELECT rule, first_position, first_seen_at FROM ins
		UNION ALL
		SELECT rule, first_position, first_seen_at FROM ledger.notify_rules_seen WHERE rule = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("could not register the rules: %w", err)
	}
	seen := map[string]RuleSeen{}
	var s RuleSeen
	_, err = pgx.ForEachRow(rows, []any{&s.Rule, &s.FirstPosition, &s.FirstSeenAt}, func() error {
		seen[s.Rule] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("could not register the rules: %w", err)
	}
	return seen, nil
}

// RulesSeen reads when each rule was first seen (rules never seen are absent).
func RulesSeen(ctx context.Context, pool *pgxpool.Pool) (map[string]RuleSeen, error) {
	rows, err := pool.Query(ctx, `SELECT rule, first_position, first_seen_at FROM ledger.notify_rules_seen`)
	if err != nil {
		return nil, fmt.Errorf("could not read the rules seen: %w", err)
	}
	seen := map[string]RuleSeen{}
	var s RuleSeen
	_, err = pgx.ForEachRow(rows, []any{&s.Rule, &s.FirstPosition, &s.FirstSeenAt}, func() error {
		seen[s.Rule] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("could not read the rules seen: %w", err)
	}
	return seen, nil
}

// fillChunk is how many events one render job takes. Rendering (decoding the payload's fields,
// executing the templates, encoding the message) is most of the runner's own CPU, and the
// database waits while it runs: fill renders chunks on every core and inserts each chunk's rows
// as soon as it and the chunks before it are ready, so the inserts overlap the rendering of
// what follows.
const fillChunk = 128

// fill matches events against the Stripe rules, inserts their rows in tx and answers how many
// it added. Held events are skipped (released ones are not held); each rule sees only events
// after its first position, unless backfill. Rows are inserted in the events' order, chunk
// after chunk, all in tx.
func (r *Runner) fill(ctx context.Context, tx pgx.Tx, events []eventstore.Record, seen map[string]RuleSeen, backfill bool) (int, error) {
	now := r.cfg.Clock.Now()
	// Only the events some rule may fire for are rendered: most of a batch matches none.
	var todo []*eventstore.Record
	for i := range events {
		if ev := &events[i]; len(r.byType[ev.Type]) > 0 && !ev.Held() {
			todo = append(todo, ev)
		}
	}
	if len(todo) <= fillChunk {
		var out outboxRows
		for _, ev := range todo {
			if err := r.render(&out, ev, seen, now, backfill); err != nil {
				return 0, err
			}
		}
		return out.insert(ctx, tx)
	}
	type job struct {
		events []*eventstore.Record
		out    outboxRows
		err    error
		done   chan struct{}
	}
	jobs := make([]*job, 0, (len(todo)+fillChunk-1)/fillChunk)
	for len(todo) > 0 {
		n := min(fillChunk, len(todo))
		jobs = append(jobs, &job{events: todo[:n], done: make(chan struct{})})
		todo = todo[n:]
	}
	// Workers take jobs in order; stop ends them early when an insert fails.
	next := make(chan *job, len(jobs))
	for _, j := range jobs {
		next <- j
	}
	close(next)
	stop := make(chan struct{})
	defer close(stop)
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		go func() {
			for j := range next {
				select {
				case <-stop:
					j.err = context.Canceled
				default:
					for _, ev := range j.events {
						if j.err = r.render(&j.out, ev, seen, now, backfill); j.err != nil {
							break
						}
					}
				}
				close(j.done)
			}
		}()
	}
	added := 0
	for _, j := range jobs {
		select {
		case <-j.done:
		case <-ctx.Done():
			return added, ctx.Err()
		}
		if j.err != nil {
			return added, j.err
		}
		n, err := j.out.insert(ctx, tx)
		added += n
		if err != nil {
			return added, err
		}
	}
	return added, nil
}

// render adds ev's rows to out: one per rule that fires for it.
func (r *Runner) render(out *outboxRows, ev *eventstore.Record, seen map[string]RuleSeen, now time.Time, backfill bool) error {
	var fields Fields
	var md map[string]string
	for _, rule := range r.byType[ev.Type] {
		if s, ok := seen[rule.Name]; !backfill && (!ok || ev.Position <= s.FirstPosition) {
			continue
		}
		if fields == nil {
			var err error
			if fields, md, err = eventFields(ev, r.cfg.Config.Dashboard); err != nil {
				// A payload the ledger stored but cannot read for these fields notifies
				// nobody, and must not stop the others.
				r.cfg.Logger.Warn("notify: event unreadable, skipped", "event", ev.ID, "error", err)
				return nil
			}
			fields["late"] = r.late(ev)
			fields["backfill"] = backfill
		}
		if !rule.Matches(fields, md) {
			continue
		}
		pos := ev.Position
		created := time.Unix(ev.Created, 0).UTC()
		pastHorizon := fields["late"] == true && ev.ReceivedAt.Sub(created) > r.cfg.Config.LateHorizon
		if err := out.add(rule, ev.ID, &pos, created, fields, now, pastHorizon, backfill); err != nil {
			return err
		}
	}
	return nil
}

// withPayloads reads, in tx, the payloads of the batch's events some rule may fire for: the
// tail reads the log without them, as most events match no rule and the payload is by far the
// largest column.
func (r *Runner) withPayloads(ctx context.Context, tx pgx.Tx, events []eventstore.Record, seen map[string]RuleSeen) ([]eventstore.Record, error) {
	var ids []string
	for i := range events {
		ev := &events[i]
		if ev.Held() {
			continue
		}
		for _, rule := range r.byType[ev.Type] {
			if s, ok := seen[rule.Name]; ok && ev.Position > s.FirstPosition {
				ids = append(ids, ev.ID)
				break
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return eventstore.On(tx).List(ctx, eventstore.Filter{EventIDs: ids, AfterPosition: events[0].Position - 1,
		UpToPosition: events[len(events)-1].Position, Payload: true})
}

// late says whether reconciliation (or a snapshot) appended ev more than LateDelay after
// Stripe created it.
func (r *Runner) late(ev *eventstore.Record) bool {
	if ev.Source != "reconcile" && ev.Source != "snapshot" {
		return false
	}
	return ev.ReceivedAt.Sub(time.Unix(ev.Created, 0)) > r.cfg.Config.LateDelay
}

// outboxRows are rows to insert, column by column.
type outboxRows struct {
	rule, eventID, channel, key, message []string
	position                             []*int64
	late, digest, backfill               []bool
	notBefore, created                   []*time.Time
}

// add renders one (rule, event) and schedules it: a digest rule's at its period's end (as is a
// late event past the horizon, in the rule's digest or a daily one), otherwise at once or at the
// end of the quiet hours it falls in.
func (o *outboxRows) add(rule *Rule, eventID string, position *int64, created time.Time, fields Fields, now time.Time, pastHorizon, backfill bool) error {
	f := maps.Clone(fields)
	f["rule"] = rule.Name
	msg, err := rule.Render(f)
	if err != nil {
		return err
	}
	js, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("rule %s: could not encode the message: %w", rule.Name, err)
	}
	period := rule.Digest
	if pastHorizon && period == "" {
		period = defaultDigest
	}
	var notBefore *time.Time
	if period != "" {
		t := rule.QuietHours.Release(PeriodEnd(period, now, rule.digestLocation()))
		notBefore = &t
	} else if t := rule.QuietHours.Release(now); !t.Equal(now) {
		notBefore = &t
	}
	c := created
	o.rule = append(o.rule, rule.Name)
	o.eventID = append(o.eventID, eventID)
	o.channel = append(o.channel, rule.Channel)
	o.key = append(o.key, IdempotencyKey(rule.Name, eventID))
	o.message = append(o.message, string(js))
	o.position = append(o.position, position)
	o.late = append(o.late, msg.Late)
	o.digest = append(o.digest, period != "")
	o.backfill = append(o.backfill, backfill)
	o.notBefore = append(o.notBefore, notBefore)
	o.created = append(o.created, &c)
	return nil
}

// insertOutboxSQL adds rows, keeping the one already there for a (rule, event): that is what
// makes a repeated batch, a duplicate or a backfill over notified events add nothing. A row
// with no not_before is due now (the database's now, as the deliverer reads it).
const insertOutboxSQL = `INSERT INTO ledger.notify_outbox
	(rule, event_id, position, channel, idempotency_key, message, late, digest, backfill, not_before, event_created)
	SELECT r, e, p, c, k, m::jsonb, l, d, b, coalesce(nb, now()), ec
	FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::bool[],
	            $9::bool[], $10::timestamptz[], $11::timestamptz[]) AS x(r, e, p, c, k, m, l, d, b, nb, ec)
	ON CONFLICT (rule, event_id) DO NOTHING`

func (o *outboxRows) insert(ctx context.Context, tx pgx.Tx) (int, error) {
	if len(o.rule) == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, insertOutboxSQL, o.rule, o.eventID, o.position, o.channel, o.key, o.message,
		o.late, o.digest, o.backfill, o.notBefore, o.created)
	if err != nil {
		return 0, fmt.Errorf("could not add %d notifications to the outbox: %w", len(o.rule), err)
	}
	return int(tag.RowsAffected()), nil
}

// Backfill enqueues the rule's matches among the events Stripe created from since on, marked
// backfill, and answers how many rows it added. It is idempotent: a (rule, event) already in
// the outbox, sent live or by an earlier backfill, is left as it is. Held events are skipped as
// the runner skips them. It reads the log a page at a time and needs no lease.
func Backfill(ctx context.Context, pool *pgxpool.Pool, cfg *Config, ruleName string, since time.Time) (int, error) {
	rule := cfg.Rule(ruleName)
	if rule == nil {
		return 0, fmt.Errorf("no rule %q in %s", ruleName, cfg.Path)
	}
	if rule.Source != SourceStripe {
		return 0, fmt.Errorf("rule %s is a ledger-side rule: only Stripe rules can be backfilled", ruleName)
	}
	r, err := NewRunner(pool, RunnerConfig{Config: &Config{Rules: []*Rule{rule}, Channels: cfg.Channels,
		LateDelay: cfg.LateDelay, LateHorizon: cfg.LateHorizon, Dashboard: cfg.Dashboard, Path: cfg.Path}})
	if err != nil {
		return 0, err
	}
	store := eventstore.New(pool)
	total := 0
	var after int64
	for {
		events, err := store.List(ctx, eventstore.Filter{Types: rule.Events, CreatedFrom: since, AfterPosition: after, Limit: 1000, Payload: true})
		if err != nil {
			return total, err
		}
		if len(events) == 0 {
			return total, nil
		}
		n, err := r.fillIn(ctx, events, nil, true)
		total += n
		if err != nil {
			return total, err
		}
		after = events[len(events)-1].Position
	}
}

// fillIn runs fill in a transaction of its own and answers how many rows it added.
func (r *Runner) fillIn(ctx context.Context, events []eventstore.Record, seen map[string]RuleSeen, backfill bool) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("could not begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	n, err := r.fill(ctx, tx, events, seen, backfill)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("could not commit: %w", err)
	}
	return n, nil
}
