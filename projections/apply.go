package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/domain"
)

// applier folds events into the read models inside the caller's transaction. It does not patch
// rows with an event's fields: it re-folds every object the events touch from that object's whole
// history in the log, with the same reducers and row builders as replay. A row is therefore a
// function of the set of its events whatever order they were applied in, applying an event twice
// changes nothing, and the live read models equal a replay's.
//
// A batch of events is folded set-wise, in a fixed number of pipelined round trips whatever its
// size: (1) the histories of every object touched, (2) the new rows plus what the next step needs
// to know (disputes of the charges, the stored inputs of app user IDs), (3) charges and app user
// IDs — with one more read when a dispute moves a charge the batch did not otherwise touch.
type applier struct {
	projection string
	identity   domain.Identity
}

// change is one event to fold.
type change struct {
	eventType, objectID string
}

// idSet is a set of object IDs.
type idSet map[string]bool

func (s idSet) add(id string) {
	if id != "" {
		s[id] = true
	}
}

func (s idSet) sorted() []string { return slices.Sorted(maps.Keys(s)) }

// touched is the objects a batch must re-fold, by read model.
type touched map[domain.Kind]idSet

func (t touched) add(kind domain.Kind, id string) {
	if t[kind] == nil {
		t[kind] = idSet{}
	}
	t[kind].add(id)
}

func (t touched) ids(kind domain.Kind) []string { return t[kind].sorted() }

// facts is histories by read model and object.
type facts map[domain.Kind]map[string][]domain.Fact

// historySQL reads the events of the given objects, and of the disputes of the given charges,
// less the events quarantined for the projection, in log order.
const historySQL = `SELECT e.event_id, e.type, e.object_id, e.payload FROM ledger.events e
	WHERE (e.object_id = ANY($1) OR e.object_id IN (SELECT d.id FROM ledger.disputes d WHERE d.charge = ANY($3)))
	  AND NOT EXISTS (SELECT 1 FROM ledger.projection_quarantine q
		WHERE q.projection = $2 AND q.event_id = e.event_id AND q.resolved_at IS NULL)
	ORDER BY e.position`

// readHistory reads historySQL's rows into out; events whose payload cannot be decoded are
// returned as poison.
func readHistory(rows pgx.Rows, out facts) ([]Poison, error) {
	defer rows.Close()
	var undecoded []Poison
	for rows.Next() {
		var eventID, typ, objectID string
		var payload []byte
		if err := rows.Scan(&eventID, &typ, &objectID, &payload); err != nil {
			return nil, err
		}
		kind := domain.Route(typ)
		if kind == "" {
			continue
		}
		f, err := domain.DecodeStoredFact(payload)
		if err != nil {
			undecoded = append(undecoded, Poison{EventID: eventID, Err: err})
			continue
		}
		if out[kind] == nil {
			out[kind] = map[string][]domain.Fact{}
		}
		out[kind][objectID] = append(out[kind][objectID], f)
	}
	return undecoded, rows.Err()
}

// links reads (id, text) pairs.
func links(rows pgx.Rows) (map[string]string, error) {
	out := map[string]string{}
	var id, v string
	_, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error {
		out[id] = v
		return nil
	})
	return out, err
}

// writes is a pipeline of statements whose results are not read, each with the event whose
// snapshot its row holds ("" for other statements): when Postgres refuses a row, that event is
// the one at fault, whichever event's arrival made the row be written.
type writes struct {
	b     pgx.Batch
	blame []string
}

func (w *writes) queue(blame, sql string, args ...any) {
	w.b.Queue(sql, args...)
	w.blame = append(w.blame, blame)
}

func (w *writes) put(t spec, id string, ok bool, row []any, keep ...string) {
	if ok {
		w.queue(t.rowEvent(row), t.upsert(keep...), row...)
	} else {
		w.queue("", `DELETE FROM ledger.`+t.name+` WHERE id = $1`, id)
	}
}

func (w *writes) quarantine(projection string, poison []Poison) {
	for _, p := range poison {
		sql, args := quarantineSQL(projection, p)
		w.queue("", sql, args...)
	}
}

// exec runs the first n statements of the batch br was sent from, stopping at the first error;
// a refused row's error names its event (refusedRow).
func (w *writes) exec(br pgx.BatchResults, n int) error {
	for i := range n {
		if _, err := br.Exec(); err != nil {
			if i < len(w.blame) && w.blame[i] != "" {
				return &refusedRow{eventID: w.blame[i], err: err}
			}
			return err
		}
	}
	return nil
}

// refusedRow is the database refusing a read-model row, and the event whose snapshot it holds.
type refusedRow struct {
	eventID string
	err     error
}

func (e *refusedRow) Error() string { return e.err.Error() }
func (e *refusedRow) Unwrap() error { return e.err }

// fold folds the events' objects, and everything that reads them, into the read models.
// Poisoned events are quarantined, not returned as errors: an error means the database refused
// or failed, and the caller decides whether the batch is retried or the event is at fault.
func (a *applier) fold(ctx context.Context, tx pgx.Tx, changes []change) error {
	dirty := touched{}
	for _, c := range changes {
		if kind := domain.Route(c.eventType); kind != "" {
			dirty.add(kind, c.objectID)
		}
	}
	if len(dirty) == 0 {
		return nil
	}
	var all []string
	for _, byID := range dirty {
		for id := range byID {
			all = append(all, id)
		}
	}
	slices.Sort(all)

	// 1. Histories, and the links the fold may break (a session's subscription, a dispute's charge).
	hist := facts{}
	var sessionSub, disputeCharge map[string]string
	var undecoded []Poison
	{
		b := &pgx.Batch{}
		b.Queue(historySQL, all, a.projection, dirty.ids(domain.KindCharges))
		b.Queue(`SELECT id, subscription FROM ledger.checkout_sessions WHERE id = ANY($1)`, dirty.ids(domain.KindCheckoutSessions))
		b.Queue(`SELECT id, charge FROM ledger.disputes WHERE id = ANY($1)`, dirty.ids(domain.KindDisputes))
		br := tx.SendBatch(ctx, b)
		rows, err := br.Query()
		if err == nil {
			undecoded, err = readHistory(rows, hist)
		}
		if err == nil {
			rows, err = br.Query()
			if err == nil {
				sessionSub, err = links(rows)
			}
		}
		if err == nil {
			rows, err = br.Query()
			if err == nil {
				disputeCharge, err = links(rows)
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("could not read the histories of %d objects: %w", len(all), err)
		}
	}

	// 2. Fold everything but charges; write it; read what charges and app user IDs need.
	w := &writes{}
	w.quarantine(a.projection, undecoded)
	identitySubs, identitySessions := idSet{}, idSet{}
	foldEach(w, a.projection, dirty, hist, domain.KindCustomers, customersTable, domain.FoldCustomer, customerRow)
	for _, id := range dirty.ids(domain.KindCheckoutSessions) {
		cs, ok, poison := foldClean(hist[domain.KindCheckoutSessions][id], domain.FoldCheckoutSession)
		w.quarantine(a.projection, poison)
		// The app user ID is computed in step 3 from the stored rows; an existing one is kept
		// until then so an unchanged ID is not written twice.
		w.put(sessionsTable, id, ok, rowIf(ok, func() []any { return sessionRow(cs, "") }), "app_user_id")
		identitySessions.add(id)
		identitySubs.add(sessionSub[id])
		identitySubs.add(cs.Subscription)
	}
	for _, id := range dirty.ids(domain.KindSubscriptions) {
		f, ok, poison := foldClean(hist[domain.KindSubscriptions][id], foldSubscription)
		w.quarantine(a.projection, poison)
		w.put(subscriptionsTable, id, ok, rowIf(ok, func() []any { return subscriptionRow(f.row, "") }), "app_user_id")
		w.queue("", `DELETE FROM ledger.subscription_movements WHERE subscription = $1`, id)
		for _, m := range movementRows(f.moves) {
			w.queue(movementsTable.rowEvent(m), movementsTable.insert(), m...)
		}
		identitySubs.add(id)
	}
	foldEach(w, a.projection, dirty, hist, domain.KindInvoices, invoicesTable, domain.FoldInvoice, invoiceRow)
	foldEach(w, a.projection, dirty, hist, domain.KindRefunds, refundsTable, domain.FoldRefund, refundRow)
	charges := idSet{}
	for _, id := range dirty.ids(domain.KindCharges) {
		charges.add(id)
	}
	for _, id := range dirty.ids(domain.KindDisputes) {
		r, ok, poison := foldClean(hist[domain.KindDisputes][id], domain.FoldDispute)
		w.quarantine(a.projection, poison)
		w.put(disputesTable, id, ok, rowIf(ok, func() []any { return disputeRow(r) }))
		// A charge reads its disputes' facts less the poisoned ones, as in replay.
		if len(poison) > 0 {
			hist[domain.KindDisputes][id] = without(hist[domain.KindDisputes][id], poison)
		}
		charges.add(disputeCharge[id])
		charges.add(r.Charge)
	}
	chargeIDs := charges.sorted()
	customerIDs := dirty.ids(domain.KindCustomers)
	w.b.Queue(`SELECT charge, id FROM ledger.disputes WHERE charge = ANY($1) ORDER BY id`, chargeIDs)
	w.b.Queue(subscriptionIdentitySQL, identitySubs.sorted(), customerIDs)
	w.b.Queue(sessionIdentitySQL, identitySessions.sorted(), customerIDs)
	br := tx.SendBatch(ctx, &w.b)
	err := w.exec(br, w.b.Len()-3)
	disputesOf := map[string][]string{}
	var subUpdates, sessionUpdates [][2]string
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			var charge, id string
			_, err = pgx.ForEachRow(rows, []any{&charge, &id}, func() error {
				disputesOf[charge] = append(disputesOf[charge], id)
				return nil
			})
		}
	}
	if err == nil {
		subUpdates, err = a.subscriptionIdentities(br)
	}
	if err == nil {
		sessionUpdates, err = a.sessionIdentities(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("could not write the read models: %w", err)
	}

	// 3. Charges (with their disputes) and app user IDs. A charge or dispute whose history the
	// first read did not bring (a dispute event about a charge the batch did not touch) is read now.
	var missing []string
	for _, id := range chargeIDs {
		if _, ok := hist[domain.KindCharges][id]; !ok {
			missing = append(missing, id)
		}
		for _, d := range disputesOf[id] {
			if _, ok := hist[domain.KindDisputes][d]; !ok {
				missing = append(missing, d)
			}
		}
	}
	var more []Poison
	if len(missing) > 0 {
		rows, err := tx.Query(ctx, historySQL, missing, a.projection, []string{})
		if err == nil {
			more, err = readHistory(rows, hist)
		}
		if err != nil {
			return fmt.Errorf("could not read the histories of %d charges and disputes: %w", len(missing), err)
		}
	}
	w = &writes{}
	w.quarantine(a.projection, more)
	for _, id := range chargeIDs {
		var disputeFacts []domain.Fact
		for _, d := range disputesOf[id] {
			disputeFacts = append(disputeFacts, hist[domain.KindDisputes][d]...)
		}
		r, ok, poison := foldClean(hist[domain.KindCharges][id], func(fs []domain.Fact) (domain.ChargeRow, error) {
			return domain.FoldCharge(fs, disputeFacts)
		})
		w.quarantine(a.projection, poison)
		w.put(chargesTable, id, ok, rowIf(ok, func() []any { return chargeRow(r) }))
	}
	for _, u := range subUpdates {
		w.queue("", `UPDATE ledger.subscriptions SET app_user_id = $2 WHERE id = $1`, u[0], u[1])
	}
	for _, u := range sessionUpdates {
		w.queue("", `UPDATE ledger.checkout_sessions SET app_user_id = $2 WHERE id = $1`, u[0], u[1])
	}
	if w.b.Len() == 0 {
		return nil
	}
	br = tx.SendBatch(ctx, &w.b)
	err = w.exec(br, w.b.Len())
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("could not write charges and app user IDs: %w", err)
	}
	return nil
}

// foldEach folds the touched objects of a read model whose rows depend on their own events only.
func foldEach[R any](w *writes, projection string, dirty touched, hist facts, kind domain.Kind, t spec,
	fold func([]domain.Fact) (R, error), row func(R) []any) {
	for _, id := range dirty.ids(kind) {
		r, ok, poison := foldClean(hist[kind][id], fold)
		w.quarantine(projection, poison)
		w.put(t, id, ok, rowIf(ok, func() []any { return row(r) }))
	}
}

func rowIf(ok bool, row func() []any) []any {
	if !ok {
		return nil
	}
	return row()
}

// subscriptionIdentitySQL reads the inputs of the app user IDs of the subscriptions with the
// given IDs or customers: the same inputs replay hands domain.Identity.
const subscriptionIdentitySQL = `SELECT s.id, s.customer, s.metadata, s.app_user_id, c.metadata, cs.id, cs.metadata, cs.client_reference_id
	FROM ledger.subscriptions s
	LEFT JOIN ledger.customers c ON c.id = s.customer
	LEFT JOIN LATERAL (SELECT x.id, x.metadata, x.client_reference_id FROM ledger.checkout_sessions x
		WHERE x.subscription = s.id ORDER BY x.created, x.id LIMIT 1) cs ON true
	WHERE s.id = ANY($1) OR s.customer = ANY($2)`

const sessionIdentitySQL = `SELECT cs.id, cs.customer, cs.metadata, cs.client_reference_id, cs.app_user_id, c.metadata
	FROM ledger.checkout_sessions cs LEFT JOIN ledger.customers c ON c.id = cs.customer
	WHERE cs.id = ANY($1) OR cs.customer = ANY($2)`

// subscriptionIdentities computes app user IDs from subscriptionIdentitySQL's rows and returns
// those that changed, as (id, app user ID).
func (a *applier) subscriptionIdentities(br pgx.BatchResults) ([][2]string, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	var out [][2]string
	var id, customer, current string
	var subMeta, custMeta, sessMeta map[string]string
	var sessID, sessRef *string
	_, err = pgx.ForEachRow(rows, []any{&id, &customer, &subMeta, &current, &custMeta, &sessID, &sessMeta, &sessRef}, func() error {
		in := domain.IdentityInput{Customer: customer, SubscriptionMeta: subMeta, CustomerMeta: custMeta}
		if sessID != nil {
			in.Session = &domain.CheckoutSessionRow{ID: *sessID, Metadata: sessMeta, ClientReferenceID: *sessRef}
		}
		if user := a.identity.AppUserID(in); user != current {
			out = append(out, [2]string{id, user})
		}
		subMeta, custMeta, sessMeta = nil, nil, nil
		return nil
	})
	return out, err
}

func (a *applier) sessionIdentities(br pgx.BatchResults) ([][2]string, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	var out [][2]string
	var s domain.CheckoutSessionRow
	var current string
	var custMeta map[string]string
	_, err = pgx.ForEachRow(rows, []any{&s.ID, &s.Customer, &s.Metadata, &s.ClientReferenceID, &current, &custMeta}, func() error {
		if user := a.identity.AppUserID(domain.IdentityInput{Customer: s.Customer, CustomerMeta: custMeta, Session: &s}); user != current {
			out = append(out, [2]string{s.ID, user})
		}
		s.Metadata, custMeta = nil, nil
		return nil
	})
	return out, err
}
