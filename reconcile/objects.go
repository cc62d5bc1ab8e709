package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/projections"
)

// checkedKinds are the objects the drift check lists from Stripe, in order. Coupons first: a
// run that repairs a coupon compares the customers and subscriptions whose discounts name it
// with its terms. Then customers, so that the oldest creation of the two dates the account for
// the progress estimate of the others.
var checkedKinds = []domain.Kind{domain.KindCoupons, domain.KindCustomers, domain.KindSubscriptions, domain.KindInvoices, domain.KindCharges,
	domain.KindRefunds, domain.KindDisputes, domain.KindCheckoutSessions, domain.KindPayouts, domain.KindPaymentIntents,
	domain.KindCreditNotes}

// kindPaths are where Stripe lists each kind, and objectTypes the object each kind's events carry.
var (
	kindPaths = map[domain.Kind]string{domain.KindCustomers: "/v1/customers", domain.KindSubscriptions: "/v1/subscriptions",
		domain.KindInvoices: "/v1/invoices", domain.KindCharges: "/v1/charges", domain.KindRefunds: "/v1/refunds",
		domain.KindDisputes: "/v1/disputes", domain.KindCheckoutSessions: "/v1/checkout/sessions", domain.KindPayouts: "/v1/payouts",
		domain.KindPaymentIntents: "/v1/payment_intents", domain.KindCreditNotes: "/v1/credit_notes", domain.KindCoupons: "/v1/coupons"}
	objectTypes = map[domain.Kind]string{domain.KindCustomers: "customer", domain.KindSubscriptions: "subscription",
		domain.KindInvoices: "invoice", domain.KindCharges: "charge", domain.KindRefunds: "refund",
		domain.KindDisputes: "dispute", domain.KindCheckoutSessions: "checkout.session", domain.KindPayouts: "payout",
		domain.KindPaymentIntents: "payment_intent", domain.KindCreditNotes: "credit_note", domain.KindCoupons: "coupon"}
)

// Drift is one field of one object where the ledger and Stripe disagree.
type Drift struct {
	Kind      domain.Kind `json:"kind"`
	Object    string      `json:"object"`
	Livemode  bool        `json:"livemode"`
	Account   *string     `json:"account"` // null for the platform's own objects
	Field     string      `json:"field"`   // a field, "missing" (Stripe has it, the ledger not) or "deleted"
	Stripe    any         `json:"stripe"`
	Ledger    any         `json:"ledger"`           // nil when the ledger has no such object
	Explained bool        `json:"explained"`        // a missing event still in the Events API accounts for it
	Repair    string      `json:"repair,omitempty"` // the snapshot event appended (or that would be)
}

// runObjects compares the fields finance relies on, object by object, between Stripe's lists and
// the ledger, in one scope, and repairs what no event explains.
//
// It first runs the events pass over the scope's window not yet proven complete, so every event
// Stripe still keeps is in the log; it then lists each kind and folds each listed object's
// history straight from the log (the read models' own reducers, without waiting for the live
// projection) and compares. What still differs cannot be explained by an event Stripe keeps —
// the events are older than 30 days, or were never generated — and is repaired by appending a
// snapshot event carrying Stripe's object, with an ID derived from the object's bytes so a
// re-run does not append it twice. On an empty ledger every object is missing, so this is also
// the backfill.
//
// The listing of each kind saves its cursor after every page and the kinds listed in full: a run
// resuming a cancelled or dead one starts each kind where that one stopped and skips the kinds
// it finished.
//
// Objects the ledger holds that Stripe no longer lists (deleted while no webhook arrived) are
// found once a kind has been listed in full in one run: each is asked for by ID, and one Stripe
// answers 404 for, or shows deleted, is a finding (field "deleted"). A customer's is repaired
// with a snapshot of Stripe's deleted customer object, which marks it deleted in the read model,
// and a coupon's with Stripe's deletion answer, which marks it deleted and keeps its terms.
// Charges, refunds, disputes and Checkout sessions cannot be deleted in Stripe, and a deleted
// subscription or invoice has no object to carry: for those the finding stands alone, for an
// operator to look into, and the ledger keeps the last state Stripe showed.
func (r *Reconciler) runObjects(ctx context.Context, api *stripeAPI, rec *recorder, opts Options, sc Scope, resume *ScopeRun) error {
	cur := rec.cur
	explained := map[string]bool{}
	findingsBefore := len(rec.findings)
	if err := r.runEvents(ctx, api, rec, JobEvents, Options{DryRun: opts.DryRun}, sc, nil); err != nil {
		return fmt.Errorf("events pass: %w", err)
	}
	if opts.DryRun {
		// A real run appended the missing events: what still differs is unexplained.
		for _, f := range rec.findings[findingsBefore:] {
			var m struct {
				Object string `json:"object_id"`
			}
			if json.Unmarshal(f, &m) == nil && m.Object != "" {
				explained[m.Object] = true
			}
		}
	}
	cur.Cursor = ""
	resumeKind, resumeAfter := domain.Kind(""), ""
	if resume != nil {
		cur.KindsDone = slices.Clone(resume.KindsDone)
		if k, after, ok := strings.Cut(resume.Cursor, ":"); ok && slices.Contains(checkedKinds, domain.Kind(k)) &&
			!slices.Contains(resume.KindsDone, domain.Kind(k)) {
			resumeKind, resumeAfter = domain.Kind(k), after
		}
	}
	for _, kind := range checkedKinds {
		if slices.Contains(cur.KindsDone, kind) {
			rec.progress.kindDone()
			continue
		}
		after := ""
		if kind == resumeKind {
			after = resumeAfter
		}
		// Deletions are judged only over a listing made in full by this run.
		var seen map[string]bool
		if after == "" {
			seen = map[string]bool{}
		}
		rec.progress.kind(kind)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			items, more, err := listObjects(ctx, api, sc, kind, after, r.cfg.PageSize)
			if err != nil {
				return err
			}
			if err := r.comparePage(ctx, rec, sc, kind, items, explained, seen, opts.DryRun); err != nil {
				return err
			}
			if len(items) > 0 {
				var last struct{ ID string }
				_ = json.Unmarshal(items[len(items)-1], &last)
				after = last.ID
			}
			rec.progress.page(items)
			cur.Cursor = string(kind) + ":" + after
			if !more || len(items) == 0 {
				break
			}
			if err := rec.page(ctx); err != nil {
				return err
			}
		}
		if seen != nil {
			if err := r.findDeleted(ctx, api, rec, sc, kind, seen, opts.DryRun); err != nil {
				return err
			}
		}
		cur.KindsDone = append(cur.KindsDone, kind)
		cur.Cursor = string(kind) + ":"
		rec.progress.kindDone()
		if err := rec.page(ctx); err != nil {
			return err
		}
	}
	return nil
}

// listObjects is one page of a Stripe list in the scope, newest first, as raw objects.
func listObjects(ctx context.Context, api *stripeAPI, sc Scope, kind domain.Kind, startingAfter string, pageSize int) ([]json.RawMessage, bool, error) {
	path, ok := kindPaths[kind]
	if !ok {
		return nil, false, fmt.Errorf("cannot list %s", kind)
	}
	lp := stripe.ListParams{Limit: stripe.Int64(int64(pageSize)), Single: true, Context: ctx}
	if startingAfter != "" {
		lp.StartingAfter = stripe.String(startingAfter)
	}
	if sc.Account != "" {
		lp.SetStripeAccount(sc.Account)
	}
	var params stripe.ListParamsContainer = &lp
	if kind == domain.KindSubscriptions {
		// Without status=all Stripe leaves canceled subscriptions out.
		params = &stripe.SubscriptionListParams{ListParams: lp, Status: stripe.String("all")}
	}
	var pg eventPage
	if err := getRaw(ctx, api, path, params, &pg); err != nil {
		return nil, false, apiError(ctx, "could not list "+string(kind), err)
	}
	return pg.Data, pg.HasMore, nil
}

// compared is an object's state as the read models see it.
type compared map[string]any

// view folds facts into the fields the drift check compares; coupons are the terms of the
// scope's coupons in the log, which value the discounts that name a coupon by ID (clover on) as
// the read models do.
func view(kind domain.Kind, facts []domain.Fact, coupons map[string]domain.Discount) (compared, error) {
	switch kind {
	case domain.KindSubscriptions:
		s, err := domain.FoldSubscriptionWith(facts, coupons)
		if err != nil {
			return nil, err
		}
		return compared{"status": s.Status, "customer": s.Customer, "currency": s.Currency, "cancel_at_period_end": s.CancelAtPeriodEnd,
			"current_period_end": deref(s.CurrentPeriodEnd), "canceled_at": deref(s.CanceledAt), "ended_at": deref(s.EndedAt), "mrr": nullable(s.MRR)}, nil
	case domain.KindCharges:
		c, err := domain.FoldCharge(facts, nil)
		if err != nil {
			return nil, err
		}
		return compared{"amount": c.Amount, "amount_captured": c.AmountCaptured, "amount_refunded": c.AmountRefunded,
			"refunded": c.Refunded, "status": c.Status, "paid": c.Paid, "currency": c.Currency, "customer": domain.Deref(c.Customer)}, nil
	case domain.KindInvoices:
		i, err := domain.FoldInvoice(facts)
		if err != nil {
			return nil, err
		}
		return compared{"status": domain.Deref(i.Status), "amount_due": i.AmountDue, "amount_paid": i.AmountPaid,
			"amount_remaining": i.AmountRemaining, "total": i.Total, "currency": i.Currency}, nil
	case domain.KindCustomers:
		c, err := domain.FoldCustomer(facts)
		if err != nil {
			return nil, err
		}
		if coupons != nil {
			c.FillCoupons(coupons)
		}
		return compared{"email": opt(c.Email), "name": opt(c.Name), "currency": opt(c.Currency), "deleted": c.Deleted,
			"discount": discountTerms(c.Discount)}, nil
	case domain.KindRefunds:
		f, err := domain.FoldRefund(facts)
		if err != nil {
			return nil, err
		}
		return compared{"amount": f.Amount, "currency": f.Currency, "status": opt(f.Status), "charge": opt(f.Charge)}, nil
	case domain.KindDisputes:
		d, err := domain.FoldDispute(facts)
		if err != nil {
			return nil, err
		}
		return compared{"amount": d.Amount, "currency": d.Currency, "status": d.Status, "reason": d.Reason, "charge": d.Charge}, nil
	case domain.KindCheckoutSessions:
		c, err := domain.FoldCheckoutSession(facts)
		if err != nil {
			return nil, err
		}
		var total any
		if c.AmountTotal != nil {
			total = *c.AmountTotal
		}
		return compared{"status": opt(c.Status), "payment_status": c.PaymentStatus, "customer": opt(c.Customer),
			"subscription": opt(c.Subscription), "currency": opt(c.Currency), "amount_total": total, "mode": c.Mode}, nil
	case domain.KindPayouts:
		p, err := domain.FoldPayout(facts)
		if err != nil {
			return nil, err
		}
		return compared{"amount": p.Amount, "currency": p.Currency, "status": p.Status, "arrival_date": p.ArrivalDate,
			"failure_code": opt(p.FailureCode), "automatic": p.Automatic}, nil
	case domain.KindPaymentIntents:
		p, err := domain.FoldPaymentIntent(facts)
		if err != nil {
			return nil, err
		}
		var received any
		if p.AmountReceived != nil {
			received = *p.AmountReceived
		}
		return compared{"amount": nullable(p.Amount), "amount_received": received, "currency": opt(p.Currency), "status": p.Status,
			"customer": opt(p.Customer), "latest_charge": opt(p.LatestCharge)}, nil
	case domain.KindCoupons:
		c, err := domain.FoldCoupon(facts)
		if err != nil {
			return nil, err
		}
		return compared{"duration": c.Duration, "duration_in_months": nullable(c.DurationInMonths), "percent_off": opt(c.PercentOff),
			"amount_off": nullable(c.AmountOff), "currency": opt(c.Currency), "deleted": c.Deleted}, nil
	case domain.KindCreditNotes:
		c, err := domain.FoldCreditNote(facts)
		if err != nil {
			return nil, err
		}
		return compared{"status": c.Status, "amount": c.Amount, "total": c.Total, "currency": c.Currency, "invoice": c.Invoice}, nil
	}
	return nil, fmt.Errorf("no drift check for %s", kind)
}

// discountTerms is what of a customer's discount its subscriptions are valued with: its coupon
// and the coupon's terms. A discount whose event named the coupon by ID alone (from clover) has
// no terms, so it differs from Stripe's listing (at the pinned version, the coupon embedded),
// and the repair's snapshot brings the terms in.
func discountTerms(d *domain.Discount) any {
	if d == nil {
		return nil
	}
	return fmt.Sprintf("%s %s %s %s/%s %s", d.Coupon, d.Duration, domain.Deref((*string)(d.PercentOff)), fmt.Sprint(nullable(d.AmountOff)),
		domain.Deref(d.Currency), d.Unvalued)
}

// opt is a nullable field's value for comparison: nil when absent, never "".
func opt(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// nullable is a nullable figure as a comparable value: nil (unvalued) or the number, never the
// pointer (two pointers to equal figures are different map values).
func nullable(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// couponTerms are the terms of the scope's coupons, folded from the log as the coupons read
// model folds them: those a repair of this run appended included.
func (r *Reconciler) couponTerms(ctx context.Context, sc Scope) (map[string]domain.Discount, error) {
	byID := map[string][]domain.Fact{}
	err := r.store.Scan(ctx, eventstore.Filter{ObjectType: "coupon", Payload: true}, func(ev *eventstore.Record) error {
		if domain.Route(ev.Type) != domain.KindCoupons || ev.Held() || ev.Livemode != sc.Livemode || ev.Account != sc.Account {
			return nil
		}
		if f, err := domain.DecodeStoredFact(ev.Payload); err == nil {
			byID[ev.ObjectID] = append(byID[ev.ObjectID], f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("could not read the ledger's coupons: %w", err)
	}
	var rows []domain.CouponRow
	for _, facts := range byID {
		if c, err := domain.FoldCoupon(facts); err == nil {
			rows = append(rows, c)
		}
	}
	return domain.CouponTerms(rows, sc.Livemode, sc.account()), nil
}

// comparePage compares one page of Stripe objects with the ledger, reading the page's histories
// from the log in one query (and their quarantined events in another).
// seen, when not nil, collects the page's IDs for the check of deleted objects.
func (r *Reconciler) comparePage(ctx context.Context, rec *recorder, sc Scope, kind domain.Kind, items []json.RawMessage, explained, seen map[string]bool, dryRun bool) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]string, len(items))
	for i, raw := range items {
		var o struct{ ID string }
		if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
			return fmt.Errorf("the %s list holds an object without an id", kind)
		}
		ids[i] = o.ID
		if seen != nil {
			seen[o.ID] = true
		}
	}
	// The objects' histories as the read models fold them: every event of these objects, routed
	// to this kind (a charge's ID is also the object of its refunds' and disputes' events), less
	// the events quarantined for the read models.
	quarantined, err := projections.OpenQuarantine(ctx, r.pool, ids)
	if err != nil {
		return fmt.Errorf("could not read the ledger's %s: %w", kind, err)
	}
	hist := map[string][]domain.Fact{}
	err = r.store.Scan(ctx, eventstore.Filter{ObjectIDs: ids, Payload: true}, func(ev *eventstore.Record) error {
		if domain.Route(ev.Type) != kind || quarantined[ev.ID] || ev.Held() || ev.Livemode != sc.Livemode || ev.Account != sc.Account {
			return nil
		}
		if f, err := domain.DecodeStoredFact(ev.Payload); err == nil {
			hist[ev.ObjectID] = append(hist[ev.ObjectID], f)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("could not read the ledger's %s: %w", kind, err)
	}

	var coupons map[string]domain.Discount
	if kind == domain.KindSubscriptions || kind == domain.KindCustomers {
		if coupons, err = r.couponTerms(ctx, sc); err != nil {
			return err
		}
	}
	now := r.cfg.Now().Unix()
	var snapshots []domain.Event
	for i, raw := range items {
		id := ids[i]
		rec.run.ObjectsChecked++
		stripeView, err := view(kind, []domain.Fact{{EventID: "stripe", Type: domain.SnapshotTypes[kind], Created: now, ObjectRaw: raw}}, nil)
		if err != nil {
			return fmt.Errorf("could not read Stripe's %s %s: %w", kind, id, err)
		}
		var ledgerView compared
		if facts := hist[id]; len(facts) > 0 {
			if ledgerView, err = view(kind, facts, coupons); err != nil {
				ledgerView = nil // the ledger cannot fold it: as good as missing
			}
		}
		var diffs []Drift
		if ledgerView == nil {
			diffs = append(diffs, Drift{Kind: kind, Object: id, Livemode: sc.Livemode, Account: sc.account(), Field: "missing", Stripe: "present"})
		} else {
			for _, field := range slices.Sorted(maps.Keys(stripeView)) {
				if stripeView[field] != ledgerView[field] {
					diffs = append(diffs, Drift{Kind: kind, Object: id, Livemode: sc.Livemode, Account: sc.account(), Field: field,
						Stripe: stripeView[field], Ledger: ledgerView[field]})
				}
			}
		}
		if len(diffs) == 0 {
			continue
		}
		repair := ""
		if explained[id] {
			// Only a dry run gets here: a real run appended the missing events before comparing.
			for j := range diffs {
				diffs[j].Explained = true
			}
		} else {
			// The scope's mode and account: the key's mode, and the account the object was read in.
			snap, err := domain.NewSnapshot(kind, raw, now, sc.Livemode, sc.Account, stripe.APIVersion)
			if err != nil {
				return fmt.Errorf("could not make a snapshot of %s: %w", id, err)
			}
			repair = snap.ID
			snapshots = append(snapshots, snap)
		}
		for _, d := range diffs {
			d.Repair = repair
			key := string(kind) + "." + d.Field
			if d.Explained {
				key += ".explained"
			}
			rec.run.Drift[key]++
			rec.find(d)
		}
	}
	if dryRun {
		return nil
	}
	return r.repair(ctx, rec, snapshots, "snapshots")
}

// deletion is the object that repairs a deletion of kind the ledger missed, false for a kind
// whose deletion leaves nothing to carry: a deleted customer ({"deleted":true}, as Stripe answers
// for it) and a deleted coupon (its terms stay, from its earlier events).
func deletion(kind domain.Kind, id string) (json.RawMessage, bool) {
	switch kind {
	case domain.KindCustomers:
		return domain.DeletedCustomer(id), true
	case domain.KindCoupons:
		return domain.DeletedCoupon(id), true
	}
	return nil, false
}

// findDeleted looks for objects of kind the ledger holds in the scope (it has their events, and
// none deleted them) that a full listing of Stripe did not show. Each is asked for by ID — it
// may have been created after the listing passed its place — and one Stripe answers 404 for, or
// shows deleted, is a finding; a customer's or a coupon's is repaired (see runObjects).
func (r *Reconciler) findDeleted(ctx context.Context, api *stripeAPI, rec *recorder, sc Scope, kind domain.Kind, seen map[string]bool, dryRun bool) error {
	held, err := r.store.Undeleted(ctx, sc.Livemode, sc.Account, objectTypes[kind])
	if err != nil {
		return fmt.Errorf("could not read the ledger's %s: %w", kind, err)
	}
	var gone []string
	for _, id := range held {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	// An object already marked deleted by an earlier repair is not found again.
	snapIDs := map[string]string{}
	if _, repairable := deletion(kind, ""); repairable {
		var ids []string
		for _, id := range gone {
			obj, _ := deletion(kind, id)
			sid := domain.SnapshotID(domain.SnapshotTypes[kind], obj)
			snapIDs[sid] = id
			ids = append(ids, sid)
		}
		known, err := r.store.Known(ctx, ids)
		if err != nil {
			return err
		}
		for _, sid := range known {
			gone = slices.DeleteFunc(gone, func(id string) bool { return id == snapIDs[sid] })
		}
	}
	now := r.cfg.Now().Unix()
	var snapshots []domain.Event
	for _, id := range gone {
		p := &stripe.Params{Context: ctx}
		if sc.Account != "" {
			p.SetStripeAccount(sc.Account)
		}
		body, err := callGet(api, kindPaths[kind]+"/"+id, nil, p)
		var se *stripe.Error
		switch {
		case errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound:
		case err != nil:
			return apiError(ctx, "could not read "+string(kind)+" "+id, err)
		default:
			var o struct {
				Deleted bool `json:"deleted"`
			}
			if json.Unmarshal(body, &o) != nil || !o.Deleted {
				continue // it exists: created after the listing passed its place
			}
		}
		d := Drift{Kind: kind, Object: id, Livemode: sc.Livemode, Account: sc.account(), Field: "deleted", Stripe: "deleted", Ledger: "present"}
		if obj, repairable := deletion(kind, id); repairable {
			snap, err := domain.NewSnapshot(kind, obj, now, sc.Livemode, sc.Account, stripe.APIVersion)
			if err != nil {
				return err
			}
			d.Repair = snap.ID
			snapshots = append(snapshots, snap)
		}
		rec.run.Drift[string(kind)+".deleted"]++
		rec.find(d)
	}
	if dryRun {
		return nil
	}
	return r.repair(ctx, rec, snapshots, "snapshots of deleted objects")
}
