package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/clock"
	"github.com/stripeledger/ledger/internal/lease"
	"github.com/stripeledger/ledger/internal/testsignal"
)

// The thin fetcher. A thin event (domain.IsThin) names an object and carries none of it; the log
// keeps it as it came. The fetcher reads each thin event from the log into ledger.thin_fetches
// (past its checkpoint, ThinCheckpoint), then fetches, for each object with thin events due, the
// object (GET /v1/…, at the ledger's pinned API version, through stripe-go) and the latest thin
// event's v2 Event (GET /v2/core/events/{id}, raw HTTP: stripe-go v76 has no v2 client) for its
// changes, and appends what it fetched as a thin snapshot (domain.NewThinSnapshot).
//
// Ordering. A fetch returns the object as it is now: its state at the thin event or later. So
// one fetch answers every thin event of the object up to the one it is made for, and those are
// marked covered; and a thin event that comes after a later thin event of its object was
// fetched is covered at once (that fetch came after it). Thin events are ordered by (created,
// the rank of their type within the second, ID), as the read models order the snapshots
// (Fact.ThinType), so among an object's snapshots the last in that order was fetched last, and
// shows the newest state.
//
// Failures. A fetch that fails (404 while Stripe's reads catch up, 429, 5xx, a timeout, an
// account whose access was revoked) is recorded on the rows it was for — attempts, last error,
// next attempt — and tried again after an exponential back-off; after MaxAttempts they are
// failed, for an operator. A failure holds up only its own object's thin events: the rest of the
// pass goes on, and the log, the webhooks and the projections never wait for a fetch.

// ThinCheckpoint is the tail's checkpoint in ledger.projection_state.
const ThinCheckpoint = "thin_fetches"

// V2APIVersion is the Stripe-Version sent with v2 requests: the version thin events for v1
// resources became generally available in.
const V2APIVersion = "2026-09-30.endive"

// ThinConfig configures the thin fetcher. Zero values take the documented defaults.
type ThinConfig struct {
	Stripe StripeConfig
	// Store is the log (default eventstore.New(pool)); pass the webhooks' own, so that an
	// appended thin event wakes the fetcher at once.
	Store *eventstore.Store
	// Clock decides when a failed fetch is due again. Default the real one.
	Clock  clock.Clock
	Logger *slog.Logger
	// BatchSize is the most thin events one pass takes. Default 200.
	BatchSize int
	// MaxAttempts is how many failed fetches make a thin event failed. Default 10.
	MaxAttempts int
	// FirstBackoff is the wait after the first failure; it doubles after each, up to MaxBackoff.
	// Defaults 30 s and 1 h.
	FirstBackoff, MaxBackoff time.Duration
	// PollInterval is how often the fetcher looks for thin events appended by other processes.
	// Default 1 s.
	PollInterval time.Duration
	// MinInterval is the least time between two passes woken by appends, so a burst of webhooks
	// costs one pass per interval, not one per event. Default 100 ms.
	MinInterval time.Duration
	// Registerer, if set, takes the fetcher's metrics: ledger_thin_events_total{outcome} and
	// ledger_thin_events_pending.
	Registerer prometheus.Registerer
	// FetchTimeout bounds one object's fetch (the object and its v2 Event, retries included);
	// past it the fetch has failed and is tried again later. Default 30 s.
	FetchTimeout time.Duration
}

// ThinSignals are for tests (package testsignal).
type ThinSignals struct {
	Passed testsignal.Signal[ThinPass] // a pass has ended
}

func (c *ThinConfig) setDefaults(pool *pgxpool.Pool) {
	if c.Store == nil {
		c.Store = eventstore.New(pool)
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 200
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.FirstBackoff <= 0 {
		c.FirstBackoff = 30 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Hour
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 100 * time.Millisecond
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 30 * time.Second
	}
	// The fetcher keeps its own back-off, recorded and visible: its client retries once.
	if c.Stripe.MaxRetries <= 0 {
		c.Stripe.MaxRetries = 1
	}
}

// ThinFetcher fetches the objects thin events name.
type ThinFetcher struct {
	pool  *pgxpool.Pool
	cfg   ThinConfig
	apis  map[bool]*stripeAPI // by mode; a mode without a key has none
	lease *lease.Lease
	// outcomes counts thin events by what a pass did with them; pending is the queue after it.
	outcomes *prometheus.CounterVec
	pending  prometheus.Gauge
	// Signals are for tests: Init them before Run.
	Signals ThinSignals
}

// NewThinFetcher makes the fetcher. Its keys must be valid (StripeConfig.Keys).
func NewThinFetcher(pool *pgxpool.Pool, cfg ThinConfig) (*ThinFetcher, error) {
	cfg.setDefaults(pool)
	keys, err := cfg.Stripe.Keys()
	if err != nil {
		return nil, err
	}
	f := &ThinFetcher{pool: pool, cfg: cfg, apis: map[bool]*stripeAPI{},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledger_thin_events_total",
			Help: "Thin events the fetcher has dealt with, by outcome: fetched (a snapshot appended), covered (answered by a " +
				"fetch for a later one), retrying (a fetch failed; tried again later) and failed (given up)."}, []string{"outcome"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_thin_events_pending",
			Help: "Thin events waiting for their object's fetch after the fetcher's last pass, the retrying ones included."}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(f.outcomes); err != nil {
			return nil, err
		}
		if err := cfg.Registerer.Register(f.pending); err != nil {
			return nil, err
		}
	}
	for live, key := range keys {
		f.apis[live] = newStripeAPI(cfg.Stripe, key, sharedLimiter(cfg.Stripe, key, live), &Counters{})
	}
	f.lease, err = lease.New(pool, lease.Config{Name: "thin fetcher", Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Run queues and fetches until ctx ends, in one process across replicas (a lease): a pass at
// each append through the Store, at each PollInterval (appends by other processes), and when
// the earliest failed fetch is due again.
func (f *ThinFetcher) Run(ctx context.Context) error {
	return f.lease.Run(ctx, func(ctx context.Context) error {
		for {
			appended := f.cfg.Store.Appended()
			p, err := f.Pass(ctx)
			if err != nil && ctx.Err() == nil {
				f.cfg.Logger.Warn("thin fetch pass failed; will try again", "error", err)
			}
			poll := time.NewTimer(f.cfg.PollInterval)
			var due <-chan time.Time
			if !p.Next.IsZero() {
				due = f.cfg.Clock.At(p.Next)
			}
			select {
			case <-ctx.Done():
				poll.Stop()
				return nil
			case <-appended:
				calm := time.NewTimer(f.cfg.MinInterval)
				select {
				case <-ctx.Done():
				case <-calm.C:
				}
				calm.Stop()
			case <-poll.C:
			case <-due:
			}
			poll.Stop()
		}
	})
}

// queue records the thin events appended since the last pass in ledger.thin_fetches, through
// the log's tail (checkpoint ThinCheckpoint, moved in the same transaction), so none is skipped
// or queued twice. A thin event about an object no read model holds is recorded unsupported; one
// held because it disagrees with its endpoint, held until it is released (release).
func (f *ThinFetcher) queue(ctx context.Context) error {
	now := f.cfg.Clock.Now()
	err := f.cfg.Store.CatchUp(ctx, eventstore.TailConfig{Checkpoint: ThinCheckpoint}, func(ctx context.Context, tx pgx.Tx, b eventstore.Batch) error {
		var ids, types, accounts, objectTypes, objectIDs, statuses []string
		var positions []int64
		var created []time.Time
		var livemodes, held []bool
		for _, e := range b.Events {
			if !domain.IsThin(e.Type) {
				continue
			}
			status := "unsupported"
			if _, ok := domain.ThinKind(e.ObjectType); ok && e.ObjectID != "" {
				status = "pending"
			}
			ids, types, accounts, objectTypes, objectIDs = append(ids, e.ID), append(types, e.Type), append(accounts, e.Account),
				append(objectTypes, e.ObjectType), append(objectIDs, e.ObjectID)
			statuses, positions, created = append(statuses, status), append(positions, e.Position), append(created, e.CreatedTime())
			livemodes, held = append(livemodes, e.Livemode), append(held, e.HoldReason != "" && !e.Released)
		}
		if len(ids) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO ledger.thin_fetches
			(event_id, position, type, created, livemode, account, object_type, object_id, status, held, next_attempt_at, done_at)
			SELECT id, position, type, created, livemode, account, object_type, object_id, status, held,
				CASE WHEN status = 'pending' THEN $11::timestamptz END, CASE WHEN status <> 'pending' THEN $11::timestamptz END
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::boolean[], $6::text[], $7::text[], $8::text[],
				$9::text[], $10::boolean[]) AS q(id, position, type, created, livemode, account, object_type, object_id, status, held)
			ON CONFLICT (event_id) DO NOTHING`,
			ids, positions, types, created, livemodes, accounts, objectTypes, objectIDs, statuses, held, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("could not queue the thin events: %w", err)
	}
	return nil
}

// release lets the held thin events an operator has released since be fetched.
func (f *ThinFetcher) release(ctx context.Context) error {
	rows, err := f.pool.Query(ctx, `SELECT event_id FROM ledger.thin_fetches WHERE status = 'pending' AND held`)
	if err != nil {
		return fmt.Errorf("could not read the held thin events: %w", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(held) == 0 {
		return err
	}
	released, err := f.cfg.Store.Released(ctx, held)
	if err != nil || len(released) == 0 {
		return err
	}
	if _, err := f.pool.Exec(ctx, `UPDATE ledger.thin_fetches SET held = false WHERE event_id = ANY($1)`, released); err != nil {
		return fmt.Errorf("could not release thin events: %w", err)
	}
	return nil
}

// ThinPass is what one pass did.
type ThinPass struct {
	Fetched  int       // snapshots appended (or found already appended)
	Covered  int       // thin events answered by a fetch for a later one
	Retrying int       // thin events whose fetch failed and will be tried again
	Failed   int       // thin events whose last attempt failed
	Next     time.Time // when the earliest pending thin event is due; zero when none is
}

// thinRow is one pending thin event.
type thinRow struct {
	env      domain.Envelope
	attempts int
}

// key orders thin events as the read models order their snapshots.
func (r thinRow) key() thinKey {
	return thinKey{r.env.Created, domain.ThinRank(r.env.Type), r.env.ID}
}

type thinKey struct {
	created int64
	rank    int
	id      string
}

func (a thinKey) compare(b thinKey) int {
	return cmp.Or(cmp.Compare(a.created, b.created), cmp.Compare(a.rank, b.rank), cmp.Compare(a.id, b.id))
}

// waitingThin selects the thin events (t) waiting for a fetch. Held thin events (they disagree
// with their endpoint) wait for their release: fetching would bring their object in by the back
// door.
const waitingThin = `t.status = 'pending' AND NOT t.held`

// dueThin selects those due at $1.
const dueThin = waitingThin + ` AND t.next_attempt_at <= $1`

// Pass queues the thin events appended since the last, then fetches for every thin event due
// now (up to BatchSize), object by object.
func (f *ThinFetcher) Pass(ctx context.Context) (ThinPass, error) {
	var p ThinPass
	if err := f.queue(ctx); err != nil {
		return p, err
	}
	if err := f.release(ctx); err != nil {
		return p, err
	}
	now := f.cfg.Clock.Now()
	rows, err := f.pool.Query(ctx, `SELECT t.event_id, t.type, extract(epoch FROM t.created)::bigint, t.livemode, t.account,
			t.object_type, t.object_id, t.attempts
		FROM ledger.thin_fetches t
		WHERE `+dueThin+`
		ORDER BY t.next_attempt_at, t.position LIMIT $2`, now, f.cfg.BatchSize)
	if err != nil {
		return p, fmt.Errorf("could not read the thin events due: %w", err)
	}
	type objectKey struct {
		livemode    bool
		account, id string
		objectType  string
	}
	groups := map[objectKey][]thinRow{}
	var order []objectKey
	for rows.Next() {
		var r thinRow
		e := &r.env
		if err := rows.Scan(&e.ID, &e.Type, &e.Created, &e.Livemode, &e.Account, &e.ObjectType, &e.ObjectID, &r.attempts); err != nil {
			rows.Close()
			return p, err
		}
		k := objectKey{e.Livemode, e.Account, e.ObjectID, e.ObjectType}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("could not read the thin events due: %w", err)
	}
	for _, k := range order {
		// Every thin event of the object due now, not only the batch's: a backlog split over
		// batches would otherwise fetch the newest state for an early thin event, dating it
		// there (a discount that starts later would seem known before it starts).
		group, err := f.due(ctx, groups[k][0].env, now)
		if err != nil {
			return p, err
		}
		if err := f.object(ctx, group, &p); err != nil {
			return p, err
		}
	}
	var next *time.Time
	var pending int
	if err := f.pool.QueryRow(ctx, `SELECT min(t.next_attempt_at), count(*) FROM ledger.thin_fetches t
		WHERE `+waitingThin).Scan(&next, &pending); err != nil {
		return p, fmt.Errorf("could not read when the next thin event is due: %w", err)
	}
	if next != nil {
		p.Next = *next
	}
	for outcome, n := range map[string]int{"fetched": p.Fetched, "covered": p.Covered, "retrying": p.Retrying, "failed": p.Failed} {
		f.outcomes.WithLabelValues(outcome).Add(float64(n))
	}
	f.pending.Set(float64(pending))
	f.Signals.Passed.Signal(p)
	return p, nil
}

// due is every pending thin event of e's object due at now.
func (f *ThinFetcher) due(ctx context.Context, e domain.Envelope, now time.Time) ([]thinRow, error) {
	rows, err := f.pool.Query(ctx, `SELECT t.event_id, t.type, extract(epoch FROM t.created)::bigint, t.attempts
		FROM ledger.thin_fetches t
		WHERE `+dueThin+` AND t.object_id = $2 AND t.livemode = $3 AND t.account = $4 AND t.object_type = $5`,
		now, e.ObjectID, e.Livemode, e.Account, e.ObjectType)
	if err != nil {
		return nil, fmt.Errorf("could not read the thin events of %s: %w", e.ObjectID, err)
	}
	defer rows.Close()
	var out []thinRow
	for rows.Next() {
		r := thinRow{env: e}
		if err := rows.Scan(&r.env.ID, &r.env.Type, &r.env.Created, &r.attempts); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// thinSkew is how far ahead of Stripe's the ledger's clock may be, in seconds: a fetch answers a
// thin event only when it was made more than this after the event's created second.
const thinSkew = 5

// object fetches for one object's due thin events, once, unless the object's last fetch
// answers them already: it was made for a thin event at least as late in the read models' order,
// and after they happened. Otherwise the fetch is made for the latest thin event known of the
// object — the newest due one, or the one last fetched when that one ranks later (a thin event
// of its second that ranks below it can still happen after its fetch) — so that the new
// snapshot is ordered after every earlier one.
func (f *ThinFetcher) object(ctx context.Context, group []thinRow, p *ThinPass) error {
	slices.SortFunc(group, func(a, b thinRow) int { return a.key().compare(b.key()) })
	e := group[0].env
	latest, fetchedAt, err := f.lastFetch(ctx, e)
	if err != nil {
		return err
	}
	var covered []string
	var rest []thinRow
	for _, r := range group {
		if latest != nil && r.key().compare(latest.key()) <= 0 && r.env.Created+thinSkew < fetchedAt {
			covered = append(covered, r.env.ID)
		} else {
			rest = append(rest, r)
		}
	}
	if len(covered) > 0 {
		if err := f.cover(ctx, covered, latest.env.ID); err != nil {
			return err
		}
		p.Covered += len(covered)
	}
	if len(rest) == 0 {
		return nil
	}
	target := rest[len(rest)-1].env
	if latest != nil && latest.key().compare(rest[len(rest)-1].key()) > 0 {
		target = latest.env
	}
	fetchCtx, cancel := context.WithTimeout(ctx, f.cfg.FetchTimeout)
	snap, at, err := f.fetch(fetchCtx, target)
	cancel()
	if err == nil {
		var res []eventstore.Result
		if res, err = f.cfg.Store.Append(ctx, []domain.Event{snap}); err == nil && res[0].Err != nil {
			err = res[0].Err
		}
		if err != nil {
			err = fmt.Errorf("could not append the snapshot of %s: %w", target.ObjectID, err)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return f.failed(ctx, rest, err, p)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE ledger.thin_fetches SET status = 'fetched', snapshot_id = $2, done_at = $3,
		next_attempt_at = NULL, covered_by = NULL WHERE event_id = $1`, target.ID, snap.ID, time.Unix(at, 0)); err != nil {
		return fmt.Errorf("could not record the fetch for %s: %w", target.ID, err)
	}
	p.Fetched++
	var others []string
	for _, r := range rest {
		if r.env.ID != target.ID {
			others = append(others, r.env.ID)
		}
	}
	if len(others) > 0 {
		if err := f.cover(ctx, others, target.ID); err != nil {
			return err
		}
		p.Covered += len(others)
	}
	// Thin events of the object given up before this fetch are answered by it.
	tag, err := f.pool.Exec(ctx, `UPDATE ledger.thin_fetches SET status = 'covered', covered_by = $5, done_at = $6
		WHERE status = 'failed' AND object_id = $1 AND livemode = $2 AND account = $3 AND object_type = $4
		AND extract(epoch FROM created) + $7 < $8`, e.ObjectID, e.Livemode, e.Account, e.ObjectType, target.ID, f.cfg.Clock.Now(), thinSkew, at)
	if err != nil {
		return fmt.Errorf("could not record thin events covered by %s: %w", target.ID, err)
	}
	p.Covered += int(tag.RowsAffected())
	return nil
}

// lastFetch is the object's fetched thin event latest in the read models' order, and when that
// fetch was made (Unix seconds); nil when none was fetched.
func (f *ThinFetcher) lastFetch(ctx context.Context, e domain.Envelope) (*thinRow, int64, error) {
	rows, err := f.pool.Query(ctx, `SELECT event_id, type, extract(epoch FROM created)::bigint, extract(epoch FROM done_at)::bigint
		FROM ledger.thin_fetches WHERE status = 'fetched' AND object_id = $1 AND livemode = $2 AND account = $3 AND object_type = $4`,
		e.ObjectID, e.Livemode, e.Account, e.ObjectType)
	if err != nil {
		return nil, 0, fmt.Errorf("could not read the fetches of %s: %w", e.ObjectID, err)
	}
	defer rows.Close()
	var latest *thinRow
	var at int64
	for rows.Next() {
		r := thinRow{env: e}
		var done int64
		if err := rows.Scan(&r.env.ID, &r.env.Type, &r.env.Created, &done); err != nil {
			return nil, 0, err
		}
		if latest == nil || r.key().compare(latest.key()) > 0 {
			latest, at = &r, done
		}
	}
	return latest, at, rows.Err()
}

func (f *ThinFetcher) cover(ctx context.Context, ids []string, by string) error {
	if _, err := f.pool.Exec(ctx, `UPDATE ledger.thin_fetches SET status = 'covered', covered_by = $2, done_at = $3,
		next_attempt_at = NULL WHERE event_id = ANY($1) AND status = 'pending'`, ids, by, f.cfg.Clock.Now()); err != nil {
		return fmt.Errorf("could not record thin events covered by %s: %w", by, err)
	}
	return nil
}

// failed records a failed fetch on the thin events it was for, and when each is next tried.
func (f *ThinFetcher) failed(ctx context.Context, group []thinRow, cause error, p *ThinPass) error {
	now := f.cfg.Clock.Now()
	msg := cause.Error()
	var perm permanent
	given := errors.As(cause, &perm)
	for _, r := range group {
		attempts := r.attempts + 1
		status, next := "pending", (*time.Time)(nil)
		var done *time.Time
		if attempts >= f.cfg.MaxAttempts || given {
			status, done = "failed", &now
			p.Failed++
		} else {
			wait := min(f.cfg.FirstBackoff<<min(attempts-1, 20), f.cfg.MaxBackoff)
			at := now.Add(wait)
			next = &at
			p.Retrying++
		}
		if _, err := f.pool.Exec(ctx, `UPDATE ledger.thin_fetches SET attempts = $2, last_error = $3, status = $4,
			next_attempt_at = $5, done_at = $6 WHERE event_id = $1`, r.env.ID, attempts, msg, status, next, done); err != nil {
			return fmt.Errorf("could not record the failed fetch for %s: %w", r.env.ID, err)
		}
	}
	f.cfg.Logger.Warn("thin event fetch failed", "event_id", group[len(group)-1].env.ID, "object", group[0].env.ObjectID,
		"attempts", group[len(group)-1].attempts+1, "error", msg)
	return nil
}

// permanent marks a fetch failure no retry can mend: its thin events are failed at once.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// fetch fetches a thin event's object and its v2 Event, and makes the snapshot; at is when the
// object was asked for (its state is that of then or later).
func (f *ThinFetcher) fetch(ctx context.Context, thin domain.Envelope) (snap domain.Event, at int64, err error) {
	at = f.cfg.Clock.Now().Unix()
	api := f.apis[thin.Livemode]
	if api == nil {
		mode := "test"
		if thin.Livemode {
			mode = "live"
		}
		return domain.Event{}, at, fmt.Errorf("no %s key to fetch %s with: set STRIPE_SECRET_KEY for %s mode", mode, thin.ObjectID, mode)
	}
	kind, _ := domain.ThinKind(thin.ObjectType)
	path, ok := kindPaths[kind]
	if !ok {
		return domain.Event{}, at, permanent{fmt.Errorf("no path to fetch a %s from", thin.ObjectType)}
	}
	params := &stripe.Params{Context: ctx}
	if thin.Account != "" {
		params.SetStripeAccount(thin.Account)
	}
	object, err := callGet(api, path+"/"+url.PathEscape(thin.ObjectID), nil, params)
	var se *stripe.Error
	switch {
	case err != nil && strings.HasSuffix(thin.Type, ".deleted") && errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound:
		// The object is gone: what its deletion says. A deleted customer is still answered
		// ({"deleted":true}) by Stripe, and a deleted coupon's deletion is all there is to
		// know (its terms are its earlier events'); for another kind the read model keeps the
		// last state.
		switch kind {
		case domain.KindCustomers:
			object = domain.DeletedCustomer(thin.ObjectID)
		case domain.KindCoupons:
			object = domain.DeletedCoupon(thin.ObjectID)
		default:
			return domain.Event{}, at, permanent{fmt.Errorf("GET %s/%s: Stripe answers 404 for the deleted %s; the read model keeps its last state",
				path, thin.ObjectID, thin.ObjectType)}
		}
	case err != nil:
		return domain.Event{}, at, apiError(ctx, "GET "+path+"/"+thin.ObjectID, err)
	}
	// The v2 Event adds only its changes, and Stripe keeps it 30 days: one it no longer has
	// (a thin event fetched late) is fetched without them.
	var before json.RawMessage
	v2, err := api.getV2(ctx, "/v2/core/events/"+url.PathEscape(thin.ID), thin.Account)
	var gone *v2Error
	switch {
	case errors.As(err, &gone) && gone.status == http.StatusNotFound:
	case err != nil:
		return domain.Event{}, at, err
	default:
		var ev struct {
			Changes *struct {
				Before json.RawMessage `json:"before"`
			} `json:"changes"`
		}
		if err := json.Unmarshal(v2, &ev); err != nil {
			return domain.Event{}, at, fmt.Errorf("GET /v2/core/events/%s: the answer is not a v2 Event: %v", thin.ID, err)
		}
		if ev.Changes != nil {
			before = ev.Changes.Before
		}
	}
	snap, err = domain.NewThinSnapshot(thin, object, before, at, stripe.APIVersion)
	return snap, at, err
}

// getV2 is a GET of Stripe's v2 API: JSON, the v2 version header, and the connected account
// as Stripe-Context. Errors say the status and Stripe's message, never the key.
func (a *stripeAPI) getV2(ctx context.Context, path, account string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Stripe-Version", V2APIVersion)
	if account != "" {
		req.Header.Set("Stripe-Context", account)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("GET %s: %w", path, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the caller's; the key is in no URL, but say less
		}
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, &v2Error{path: path, status: resp.StatusCode, code: e.Error.Code, message: e.Error.Message}
	}
	return body, nil
}

// v2Error is an error answer of the v2 API, said without the key.
type v2Error struct {
	path, code, message string
	status              int
}

func (e *v2Error) Error() string {
	return fmt.Sprintf("GET %s: Stripe answered %d %s: %s", e.path, e.status, e.code, e.message)
}

// ErrNoThinEvent is returned by Refetch for a named event the fetcher has not queued.
var ErrNoThinEvent = errors.New("no such thin event in ledger.thin_fetches")

// Refetch puts thin events back in the queue, due now and with their attempts reset: the named
// ones (whatever became of them, but for those about objects no read model holds), or with
// failed every one whose fetch was given up. A running fetcher takes them at its next pass. It
// answers how many were queued again.
func Refetch(ctx context.Context, pool *pgxpool.Pool, ids []string, failed bool) (int, error) {
	where, args := `status = 'failed'`, []any{}
	if !failed {
		where, args = `event_id = ANY($1) AND status <> 'unsupported'`, []any{ids}
	}
	tag, err := pool.Exec(ctx, `UPDATE ledger.thin_fetches SET status = 'pending', attempts = 0, next_attempt_at = now(),
		done_at = NULL, covered_by = NULL WHERE `+where, args...)
	if err != nil {
		return 0, fmt.Errorf("could not queue the thin events again: %w", err)
	}
	n := int(tag.RowsAffected())
	if !failed && n < len(ids) {
		return n, fmt.Errorf("%d of the %d named: %w (or about an object no read model holds)", len(ids)-n, len(ids), ErrNoThinEvent)
	}
	return n, nil
}

// ThinState is where one thin event's fetch stands (its ledger.thin_fetches row).
type ThinState struct {
	Status     string     `json:"status"` // pending, fetched, covered, failed, unsupported
	Attempts   int        `json:"attempts"`
	LastError  *string    `json:"last_error"`
	NextAt     *time.Time `json:"next_attempt_at"`
	SnapshotID *string    `json:"snapshot_id"` // the snapshot appended, when fetched
	CoveredBy  *string    `json:"covered_by"`  // the thin event whose fetch answers it, when covered
	DoneAt     *time.Time `json:"done_at"`
}

// ThinStateOf is a thin event's fetch, nil when the fetcher has not queued it yet.
func ThinStateOf(ctx context.Context, pool *pgxpool.Pool, eventID string) (*ThinState, error) {
	var s ThinState
	err := pool.QueryRow(ctx, `SELECT status, attempts, last_error, next_attempt_at, snapshot_id, covered_by, done_at
		FROM ledger.thin_fetches WHERE event_id = $1`, eventID).Scan(&s.Status, &s.Attempts, &s.LastError, &s.NextAt, &s.SnapshotID, &s.CoveredBy, &s.DoneAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("could not read the fetch of thin event %s: %w", eventID, err)
	}
	return &s, nil
}
