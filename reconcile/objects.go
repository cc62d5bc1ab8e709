package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/projections"
)

// checkedKinds are the objects the drift check lists from Stripe, in order.
var checkedKinds = []domain.Kind{domain.KindSubscriptions, domain.KindCharges, domain.KindInvoices}

// Drift is one field of one object where the ledger and Stripe disagree.
type Drift struct {
	Kind      domain.Kind `json:"kind"`
	Object    string      `json:"object"`
	Field     string      `json:"field"`
	Stripe    any         `json:"stripe"`
	Ledger    any         `json:"ledger"`           // nil when the ledger has no such object
	Explained bool        `json:"explained"`        // a missing event still in the Events API accounts for it
	Repair    string      `json:"repair,omitempty"` // the snapshot event appended (or that would be)
}

// runObjects compares the fields finance relies on, object by object, between Stripe's lists and
// the ledger, and repairs what no event explains.
//
// It first runs the events pass over the window not yet proven complete, so every event Stripe
// still keeps is in the log; it then folds each listed object's history straight from the log
// (the read models' own reducers, without waiting for the live projection) and compares. What
// still differs cannot be explained by an event Stripe keeps — the events are older than 30 days,
// or were never generated — and is repaired by appending a snapshot event carrying Stripe's
// object, with an ID derived from the object's bytes so a re-run does not append it twice.
func (r *Reconciler) runObjects(ctx context.Context, api *stripeAPI, rec *recorder, opts Options) error {
	explained := map[string]bool{}
	if err := r.runEvents(ctx, api, rec, JobEvents, Options{DryRun: opts.DryRun}, nil); err != nil {
		return fmt.Errorf("events pass: %w", err)
	}
	for _, f := range rec.findings {
		if !opts.DryRun {
			break // a real run appended the missing events: what still differs is unexplained
		}
		var m struct {
			Object string `json:"object_id"`
		}
		if json.Unmarshal(f, &m) == nil && m.Object != "" {
			explained[m.Object] = true
		}
	}
	rec.run.Drift = map[string]int{}
	for _, kind := range checkedKinds {
		after := ""
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			items, more, err := listObjects(ctx, api, kind, after, r.cfg.PageSize)
			if err != nil {
				return err
			}
			if err := r.comparePage(ctx, rec, kind, items, explained, opts.DryRun); err != nil {
				return err
			}
			if len(items) > 0 {
				var last struct{ ID string }
				_ = json.Unmarshal(items[len(items)-1], &last)
				after = last.ID
			}
			rec.run.Cursor = string(kind) + ":" + after
			if err := rec.page(ctx); err != nil {
				return err
			}
			if !more || len(items) == 0 {
				break
			}
		}
	}
	return nil
}

// listObjects is one page of a Stripe list, newest first, as raw objects.
func listObjects(ctx context.Context, api *stripeAPI, kind domain.Kind, startingAfter string, pageSize int) ([]json.RawMessage, bool, error) {
	lp := stripe.ListParams{Limit: stripe.Int64(int64(pageSize)), Single: true, Context: ctx}
	if startingAfter != "" {
		lp.StartingAfter = stripe.String(startingAfter)
	}
	var raw []byte
	var err error
	switch kind {
	case domain.KindSubscriptions:
		// Without status=all Stripe leaves canceled subscriptions out.
		it := api.Subscriptions.List(&stripe.SubscriptionListParams{ListParams: lp, Status: stripe.String("all")})
		if err = it.Err(); err == nil {
			raw = it.SubscriptionList().LastResponse.RawJSON
		}
	case domain.KindCharges:
		it := api.Charges.List(&stripe.ChargeListParams{ListParams: lp})
		if err = it.Err(); err == nil {
			raw = it.ChargeList().LastResponse.RawJSON
		}
	case domain.KindInvoices:
		it := api.Invoices.List(&stripe.InvoiceListParams{ListParams: lp})
		if err = it.Err(); err == nil {
			raw = it.InvoiceList().LastResponse.RawJSON
		}
	default:
		return nil, false, fmt.Errorf("cannot list %s", kind)
	}
	if err != nil {
		return nil, false, apiError(ctx, "could not list "+string(kind), err)
	}
	var pg eventPage
	if err := json.Unmarshal(raw, &pg); err != nil {
		return nil, false, fmt.Errorf("could not read the %s page: %w", kind, err)
	}
	return pg.Data, pg.HasMore, nil
}

// compared is an object's state as the read models see it.
type compared map[string]any

// view folds facts into the fields the drift check compares.
func view(kind domain.Kind, facts []domain.Fact) (compared, error) {
	switch kind {
	case domain.KindSubscriptions:
		s, err := domain.FoldSubscription(facts)
		if err != nil {
			return nil, err
		}
		return compared{"status": s.Status, "customer": s.Customer, "currency": s.Currency, "cancel_at_period_end": s.CancelAtPeriodEnd,
			"current_period_end": deref(s.CurrentPeriodEnd), "canceled_at": deref(s.CanceledAt), "ended_at": deref(s.EndedAt), "mrr": s.MRR}, nil
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
	}
	return nil, fmt.Errorf("no drift check for %s", kind)
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// comparePage compares one page of Stripe objects with the ledger, reading the page's histories
// from the log in one query (and their quarantined events in another).
func (r *Reconciler) comparePage(ctx context.Context, rec *recorder, kind domain.Kind, items []json.RawMessage, explained map[string]bool, dryRun bool) error {
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
		if domain.Route(ev.Type) != kind || quarantined[ev.ID] || ev.Held() {
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

	now := r.cfg.Now().Unix()
	var snapshots []domain.Event
	for i, raw := range items {
		id := ids[i]
		rec.run.ObjectsChecked++
		stripeView, err := view(kind, []domain.Fact{{EventID: "stripe", Type: domain.SnapshotTypes[kind], Created: now, ObjectRaw: raw}})
		if err != nil {
			return fmt.Errorf("could not read Stripe's %s %s: %w", kind, id, err)
		}
		var ledgerView compared
		if facts := hist[id]; len(facts) > 0 {
			if ledgerView, err = view(kind, facts); err != nil {
				ledgerView = nil // the ledger cannot fold it: as good as missing
			}
		}
		var diffs []Drift
		if ledgerView == nil {
			diffs = append(diffs, Drift{Kind: kind, Object: id, Field: "missing", Stripe: "present"})
		} else {
			for _, field := range slices.Sorted(maps.Keys(stripeView)) {
				if stripeView[field] != ledgerView[field] {
					diffs = append(diffs, Drift{Kind: kind, Object: id, Field: field, Stripe: stripeView[field], Ledger: ledgerView[field]})
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
			var o struct {
				Livemode bool `json:"livemode"`
			}
			_ = json.Unmarshal(raw, &o)
			snap, err := domain.NewSnapshot(kind, raw, now, o.Livemode, "", stripe.APIVersion)
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
