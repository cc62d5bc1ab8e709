// Package projections folds the event log into the read models finance queries
// (ledger.subscriptions, ledger.charges, …), using the reducers and the ordering rule in domain.
package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// Config tunes a rebuild. Zero values take the documented defaults.
type Config struct {
	Identity  domain.Identity // how app user IDs are found; default metadata key app_user_id
	BatchSize int             // events between Progress calls; default 5,000
	// Progress, if set, is called every BatchSize events with the position read so far and the
	// position the rebuild goes up to.
	Progress func(done, total int64)
}

// Stats says what a rebuild did.
type Stats struct {
	Position int64          // the log position the read models now reflect
	Events   int64          // events read
	Rows     map[string]int // rows written, by table
	Took     time.Duration
}

// StateName is the row of ledger.projection_state the read models' position is kept under.
const StateName = "read_models"

// Rebuild replays the whole log into new tables beside the live ones and swaps them in, all in one
// transaction: queries keep answering from the old tables until the commit and then see the new
// ones — never an empty or half-built table. Interrupting it (ctx) rolls everything back; it is
// safe to run again at any time. Events appended while it runs are left for the next run.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, cfg Config) (Stats, error) {
	start := time.Now()
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 5000
	}
	if err := cfg.Identity.Validate(); err != nil {
		return Stats{}, err
	}
	store := eventstore.New(pool)
	head, err := store.Head(ctx)
	if err != nil {
		return Stats{}, err
	}
	set, err := readFacts(ctx, store, head.Position, cfg)
	if err != nil {
		return Stats{}, err
	}
	tables, err := set.fold(cfg.Identity)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Position: head.Position, Events: head.Position, Rows: map[string]int{}}
	if err := swapIn(ctx, pool, tables, head.Position); err != nil {
		return Stats{}, err
	}
	for _, t := range tables {
		st.Rows[t.name] = len(t.rows)
	}
	st.Took = time.Since(start)
	return st, nil
}

// readFacts streams the log up to position upTo and decodes it on two workers while Postgres is
// still sending: the fold needs the *set* of each object's facts, so the order in which they are
// grouped does not matter.
func readFacts(ctx context.Context, store *eventstore.Store, upTo int64, cfg Config) (*factSet, error) {
	type raw struct {
		pos           int64
		typ, objectID string
		payload       []byte
	}
	type decoded struct {
		kind     domain.Kind
		objectID string
		fact     domain.Fact
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	raws := make(chan raw, 512)
	facts := make(chan decoded, 512)
	errc := make(chan error, 3)
	var workers sync.WaitGroup
	for range 2 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for r := range raws {
				kind := domain.Route(r.typ)
				if kind == "" || r.objectID == "" {
					continue // unknown types stay in the log and are ignored here
				}
				f, err := domain.DecodeFact(r.payload)
				if err != nil {
					errc <- fmt.Errorf("position %d: %w", r.pos, err)
					cancel()
					return
				}
				select {
				case facts <- decoded{kind, r.objectID, f}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	set := newFactSet()
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for d := range facts {
			set.add(d.kind, d.objectID, d.fact)
		}
	}()
	err := store.ForEach(ctx, upTo, func(pos int64, typ, objectID string, payload []byte) error {
		select {
		case raws <- raw{pos, typ, objectID, payload}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if cfg.Progress != nil && (pos%int64(cfg.BatchSize) == 0 || pos == upTo) {
			cfg.Progress(pos, upTo)
		}
		return nil
	})
	close(raws)
	workers.Wait()
	close(facts)
	<-collected
	select {
	case werr := <-errc:
		return nil, werr
	default:
	}
	if err != nil {
		return nil, err
	}
	return set, nil
}

// factSet is the log grouped by read model and object.
type factSet struct {
	byKind   map[domain.Kind]map[string][]domain.Fact
	disputes map[string][]domain.Fact // charge ID -> its disputes' facts
}

func newFactSet() *factSet {
	return &factSet{byKind: map[domain.Kind]map[string][]domain.Fact{}, disputes: map[string][]domain.Fact{}}
}

func (s *factSet) add(kind domain.Kind, objectID string, f domain.Fact) {
	if s.byKind[kind] == nil {
		s.byKind[kind] = map[string][]domain.Fact{}
	}
	s.byKind[kind][objectID] = append(s.byKind[kind][objectID], f)
	if kind == domain.KindDisputes {
		var charge string
		_ = json.Unmarshal(f.Field("charge"), &charge)
		s.disputes[charge] = append(s.disputes[charge], f)
	}
}

// table is one read model's new contents.
type table struct {
	name    string
	columns []string
	rows    [][]any
}

func ts(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func tsp(sec *int64) *time.Time {
	if sec == nil {
		return nil
	}
	t := ts(*sec)
	return &t
}

func meta(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (s *factSet) fold(id domain.Identity) ([]table, error) {
	customers := table{name: "customers", columns: []string{"id", "email", "name", "currency", "metadata", "deleted", "created", "event_id", "event_created"}}
	customerMeta := map[string]map[string]string{}
	for _, facts := range s.byKind[domain.KindCustomers] {
		c, err := domain.FoldCustomer(facts)
		if err != nil {
			return nil, err
		}
		customerMeta[c.ID] = c.Metadata
		customers.rows = append(customers.rows, []any{c.ID, c.Email, c.Name, c.Currency, meta(c.Metadata), c.Deleted, ts(c.Created), c.EventID, ts(c.EventCreated)})
	}

	sessions := table{name: "checkout_sessions", columns: []string{"id", "customer", "client_reference_id", "subscription", "mode", "status",
		"payment_status", "currency", "amount_total", "metadata", "app_user_id", "created", "event_id", "event_created"}}
	sessionOf := map[string]*domain.CheckoutSessionRow{}
	for _, facts := range s.byKind[domain.KindCheckoutSessions] {
		cs, err := domain.FoldCheckoutSession(facts)
		if err != nil {
			return nil, err
		}
		if cs.Subscription != "" {
			sessionOf[cs.Subscription] = &cs
		}
		user := id.AppUserID(domain.IdentityInput{Customer: cs.Customer, CustomerMeta: customerMeta[cs.Customer], Session: &cs})
		sessions.rows = append(sessions.rows, []any{cs.ID, cs.Customer, cs.ClientReferenceID, cs.Subscription, cs.Mode, cs.Status,
			cs.PaymentStatus, cs.Currency, cs.AmountTotal, meta(cs.Metadata), user, ts(cs.Created), cs.EventID, ts(cs.EventCreated)})
	}

	// The remaining tables depend only on the above: fold them concurrently.
	var subs, moves, invoices, charges, refunds, disputes table
	var wg sync.WaitGroup
	errs := make([]error, 4)
	run := func(i int, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	run(0, func() error {
		var err error
		subs, moves, err = s.foldSubscriptions(id, customerMeta, sessionOf)
		return err
	})
	run(1, func() error {
		var err error
		invoices, err = s.foldInvoices()
		return err
	})
	run(2, func() error {
		var err error
		charges, err = s.foldCharges()
		return err
	})
	run(3, func() error {
		var err error
		refunds, disputes, err = s.foldRefundsAndDisputes()
		return err
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return []table{customers, sessions, subs, moves, invoices, charges, refunds, disputes}, nil
}

func (s *factSet) foldSubscriptions(id domain.Identity, customerMeta map[string]map[string]string, sessionOf map[string]*domain.CheckoutSessionRow) (table, table, error) {
	subs := table{name: "subscriptions", columns: []string{"id", "customer", "app_user_id", "status", "currency", "items", "trial_start", "trial_end",
		"current_period_start", "current_period_end", "cancel_at_period_end", "cancel_at", "canceled_at", "ended_at", "pause_behavior",
		"coupon_duration", "coupon_percent_off", "metadata", "mrr", "attention", "event_id", "event_created"}}
	moves := table{name: "subscription_movements", columns: []string{"subscription", "customer", "currency", "kind", "amount", "mrr_before", "mrr_after", "event_id", "at"}}
	for _, facts := range s.byKind[domain.KindSubscriptions] {
		r, err := domain.FoldSubscription(facts)
		if err != nil {
			return subs, moves, err
		}
		items := make([]map[string]any, 0, len(r.Items))
		for _, it := range r.Items {
			items = append(items, map[string]any{"id": it.ID, "price": it.Price, "product": it.Product, "quantity": it.Quantity,
				"interval": it.Interval, "interval_count": it.IntervalCount, "unit_amount": it.UnitAmount})
		}
		user := id.AppUserID(domain.IdentityInput{Customer: r.Customer, SubscriptionMeta: r.Metadata, CustomerMeta: customerMeta[r.Customer], Session: sessionOf[r.ID]})
		subs.rows = append(subs.rows, []any{r.ID, r.Customer, user, r.Status, r.Currency, items, tsp(r.TrialStart), tsp(r.TrialEnd),
			tsp(r.CurrentPeriodStart), tsp(r.CurrentPeriodEnd), r.CancelAtPeriodEnd, tsp(r.CancelAt), tsp(r.CanceledAt), tsp(r.EndedAt),
			r.PauseBehavior, r.CouponDuration, r.CouponPercentOff, meta(r.Metadata), r.MRR, r.Attention, r.EventID, ts(r.EventCreated)})
		ms, err := domain.Movements(facts)
		if err != nil {
			return subs, moves, err
		}
		for _, m := range ms {
			moves.rows = append(moves.rows, []any{m.Subscription, m.Customer, m.Currency, string(m.Kind), m.Amount, m.MRRBefore, m.MRRAfter, m.EventID, ts(m.At)})
		}
	}

	return subs, moves, nil
}

func (s *factSet) foldInvoices() (table, error) {
	invoices := table{name: "invoices", columns: []string{"id", "customer", "subscription", "status", "billing_reason", "currency", "amount_due",
		"amount_paid", "amount_remaining", "total", "attempt_count", "charge", "payment_intent", "period_start", "period_end", "created", "event_id", "event_created"}}
	for _, facts := range s.byKind[domain.KindInvoices] {
		r, err := domain.FoldInvoice(facts)
		if err != nil {
			return invoices, err
		}
		invoices.rows = append(invoices.rows, []any{r.ID, r.Customer, r.Subscription, r.Status, r.BillingReason, r.Currency, r.AmountDue,
			r.AmountPaid, r.AmountRemaining, r.Total, r.AttemptCount, r.Charge, r.PaymentIntent, ts(r.PeriodStart), ts(r.PeriodEnd),
			ts(r.Created), r.EventID, ts(r.EventCreated)})
	}

	return invoices, nil
}

func (s *factSet) foldCharges() (table, error) {
	charges := table{name: "charges", columns: []string{"id", "amount", "amount_captured", "amount_refunded", "refunded", "currency", "status",
		"paid", "failure_code", "failure_message", "payment_intent", "invoice", "customer", "dispute_id", "dispute_status", "created", "event_id", "event_created"}}
	for chargeID, facts := range s.byKind[domain.KindCharges] {
		r, err := domain.FoldCharge(facts, s.disputes[chargeID])
		if err != nil {
			return charges, err
		}
		charges.rows = append(charges.rows, []any{r.ID, r.Amount, r.AmountCaptured, r.AmountRefunded, r.Refunded, r.Currency, r.Status,
			r.Paid, r.FailureCode, r.FailureMessage, r.PaymentIntent, r.Invoice, r.Customer, r.DisputeID, r.DisputeStatus, ts(r.Created),
			r.EventID, ts(r.EventCreated)})
	}

	return charges, nil
}

func (s *factSet) foldRefundsAndDisputes() (table, table, error) {
	refunds := table{name: "refunds", columns: []string{"id", "charge", "amount", "currency", "status", "reason", "created", "event_id", "event_created"}}
	for _, facts := range s.byKind[domain.KindRefunds] {
		r, err := domain.FoldRefund(facts)
		if err != nil {
			return refunds, table{}, err
		}
		refunds.rows = append(refunds.rows, []any{r.ID, r.Charge, r.Amount, r.Currency, r.Status, r.Reason, ts(r.Created), r.EventID, ts(r.EventCreated)})
	}

	disputes := table{name: "disputes", columns: []string{"id", "charge", "amount", "currency", "status", "reason", "created", "event_id", "event_created"}}
	for _, facts := range s.byKind[domain.KindDisputes] {
		r, err := domain.FoldDispute(facts)
		if err != nil {
			return refunds, disputes, err
		}
		disputes.rows = append(disputes.rows, []any{r.ID, r.Charge, r.Amount, r.Currency, r.Status, r.Reason, ts(r.Created), r.EventID, ts(r.EventCreated)})
	}
	return refunds, disputes, nil
}

// swapIn writes each table's rows into a new table shaped like the live one and renames it into
// place, in one transaction. The live tables are locked only for the renames, after the COPYs.
func swapIn(ctx context.Context, pool *pgxpool.Pool, tables []table, position int64) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("could not begin rebuild: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	for _, t := range tables {
		shadow := t.name + "_rebuild"
		if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE ledger.%s (LIKE ledger.%s INCLUDING ALL)`, shadow, t.name)); err != nil {
			return fmt.Errorf("could not create ledger.%s: %w", shadow, err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger", shadow}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("could not fill ledger.%s: %w", shadow, err)
		}
	}
	for _, t := range tables {
		for _, sql := range []string{
			fmt.Sprintf(`ALTER TABLE ledger.%s RENAME TO %s_old`, t.name, t.name),
			fmt.Sprintf(`ALTER TABLE ledger.%s_rebuild RENAME TO %s`, t.name, t.name),
			fmt.Sprintf(`DROP TABLE ledger.%s_old`, t.name),
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("could not swap ledger.%s: %w", t.name, err)
			}
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger.projection_state (name, position, rebuilt_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, rebuilt_at = EXCLUDED.rebuilt_at`, StateName, position); err != nil {
		return fmt.Errorf("could not record the rebuilt position: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("could not commit the rebuild: %w", err)
	}
	return nil
}
