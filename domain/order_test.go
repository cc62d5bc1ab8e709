package domain_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/stripesim"
)

// obj renders a snapshot or previous_attributes; maps marshal with sorted keys, so equal maps
// give byte-equal snapshots, as Stripe's do for an unchanged object.
func obj(fields map[string]any) string {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// with is base with some fields replaced.
func with(base map[string]any, kv ...any) map[string]any {
	out := maps.Clone(base)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func subItems(quantity int) map[string]any {
	return map[string]any{"object": "list", "data": []any{map[string]any{"id": "si_1", "quantity": quantity,
		"price": map[string]any{"id": "price_1", "product": "prod_1", "unit_amount": 1000, "recurring": map[string]any{"interval": "month", "interval_count": 1}}}}}
}

var (
	subscription = map[string]any{"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active", "currency": "usd",
		"created": 100, "current_period_start": 100, "current_period_end": 2700, "cancel_at_period_end": false, "cancel_at": nil,
		"canceled_at": nil, "pause_collection": nil, "items": subItems(1)}
	canceling = with(subscription, "cancel_at_period_end", true, "cancel_at", 2700, "canceled_at", 200)
	cancelOn  = map[string]any{"cancel_at_period_end": false, "cancel_at": nil, "canceled_at": nil} // prev of setting it
	cancelOff = map[string]any{"cancel_at_period_end": true, "cancel_at": 2700, "canceled_at": 200} // prev of clearing it

	invoice = map[string]any{"id": "in_1", "object": "invoice", "customer": "cus_1", "subscription": "sub_1", "status": "draft",
		"currency": "usd", "amount_due": 1000, "amount_paid": 0, "amount_remaining": 1000, "total": 1000, "created": 100,
		"billing_reason": "manual", "charge": nil, "payment_intent": nil}
	charge = map[string]any{"id": "ch_1", "object": "charge", "amount": 1000, "amount_captured": 1000, "amount_refunded": 0,
		"refunded": false, "currency": "usd", "status": "succeeded", "paid": true, "customer": "cus_1", "created": 100,
		"description": "Order 1", "metadata": map[string]any{}}
	refund = map[string]any{"id": "re_1", "object": "refund", "charge": "ch_1", "amount": 500, "currency": "usd",
		"status": "succeeded", "reason": nil, "created": 100, "metadata": map[string]any{}}
	dispute = map[string]any{"id": "dp_1", "object": "dispute", "charge": "ch_1", "amount": 1000, "currency": "usd",
		"status": "needs_response", "reason": "fraudulent", "created": 300, "metadata": map[string]any{}}
	customer = map[string]any{"id": "cus_1", "object": "customer", "email": "a@example.com", "name": "A", "currency": "usd",
		"created": 100, "metadata": map[string]any{}}
	session = map[string]any{"id": "cs_1", "object": "checkout.session", "customer": "cus_1", "client_reference_id": "user_1",
		"subscription": "sub_1", "mode": "subscription", "status": "complete", "payment_status": "paid", "currency": "usd",
		"amount_total": 1000, "created": 100, "metadata": map[string]any{}}
)

func ev(id, typ string, created int64, snapshot, prev map[string]any) domain.Fact {
	p := ""
	if prev != nil {
		p = obj(prev)
	}
	return fact(id, typ, created, obj(snapshot), p)
}

func foldAs[T any](fold func([]domain.Fact) (T, error)) func([]domain.Fact) (any, error) {
	return func(fs []domain.Fact) (any, error) { return fold(fs) }
}

// foldChargeWithDisputes folds the charge's own facts with its disputes' rows, as projections
// do: each dispute folded from its own events.
func foldChargeWithDisputes(fs []domain.Fact) (any, error) {
	var own []domain.Fact
	byDispute := map[string][]domain.Fact{}
	for _, f := range fs {
		if string(f.Field("object")) == `"dispute"` {
			var id string
			_ = json.Unmarshal(f.Field("id"), &id)
			byDispute[id] = append(byDispute[id], f)
		} else {
			own = append(own, f)
		}
	}
	var disputes []domain.DisputeRow
	for _, facts := range byDispute {
		d, err := domain.FoldDispute(facts)
		if err != nil {
			return nil, err
		}
		disputes = append(disputes, d)
	}
	return domain.FoldCharge(own, disputes)
}

// Two updates that undo each other in one second each describe the other's snapshot, so only
// the state before them (the anchor) says which came first. Every case below is folded in every
// order of arrival, and again with one event delivered twice. In the toggle cases the revert has
// the smaller event ID, so ordering such a pair by ID, as the rule once did, ends in the state
// the revert undid.
func TestOrderFollowsTheChainFromTheStateBefore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		facts []domain.Fact
		fold  func([]domain.Fact) (any, error)
		order []string // the event IDs by the ordering rule
		last  string   // the event whose snapshot the row is, when not the last of order
		check func(row any) bool
		amb   [][]string // the groups OrderReport reports, by event ID
	}{
		{
			name: "subscription: cancel_at_period_end set and cleared, anchored on an earlier second",
			facts: []domain.Fact{
				ev("evt_c", "customer.subscription.created", 100, subscription, nil),
				ev("evt_b", "customer.subscription.updated", 200, canceling, cancelOn),
				ev("evt_a", "customer.subscription.updated", 200, subscription, cancelOff),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool {
				return !r.(domain.SubscriptionRow).CancelAtPeriodEnd && r.(domain.SubscriptionRow).CanceledAt == nil
			},
		},
		{
			name: "subscription: cancel_at_period_end set and cleared, anchored on the creation in the same second",
			facts: []domain.Fact{
				ev("evt_c", "customer.subscription.created", 200, subscription, nil),
				ev("evt_b", "customer.subscription.updated", 200, canceling, cancelOn),
				ev("evt_a", "customer.subscription.updated", 200, subscription, cancelOff),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool { return !r.(domain.SubscriptionRow).CancelAtPeriodEnd },
		},
		{
			name: "subscription: cleared and set again, so the set comes last",
			facts: []domain.Fact{
				ev("evt_c", "customer.subscription.updated", 100, canceling, cancelOn),
				ev("evt_a", "customer.subscription.updated", 200, subscription, cancelOff),
				ev("evt_b", "customer.subscription.updated", 200, canceling, cancelOn),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_c", "evt_a", "evt_b"},
			check: func(r any) bool { return r.(domain.SubscriptionRow).CancelAtPeriodEnd },
		},
		{
			name: "subscription: quantity changed and restored",
			facts: []domain.Fact{
				ev("evt_c", "customer.subscription.created", 100, subscription, nil),
				ev("evt_b", "customer.subscription.updated", 200, with(subscription, "items", subItems(5)), map[string]any{"items": subItems(1)}),
				ev("evt_a", "customer.subscription.updated", 200, subscription, map[string]any{"items": subItems(5)}),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool {
				return r.(domain.SubscriptionRow).Items[0].Quantity == 1 && *r.(domain.SubscriptionRow).MRR == 1000
			},
		},
		{
			name: "subscription: pause_collection set and cleared",
			facts: []domain.Fact{
				ev("evt_c", "customer.subscription.created", 100, subscription, nil),
				ev("evt_b", "customer.subscription.updated", 200, with(subscription, "pause_collection", map[string]any{"behavior": "void", "resumes_at": nil}),
					map[string]any{"pause_collection": nil}),
				ev("evt_a", "customer.subscription.updated", 200, subscription,
					map[string]any{"pause_collection": map[string]any{"behavior": "void", "resumes_at": nil}}),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool { return r.(domain.SubscriptionRow).PauseBehavior == nil },
		},
		{
			// The first events known of the subscription: no anchor, but only one of the two is
			// preceded by nothing (the renewal; the failed payment says it changed the status
			// from active, and the renewal's previous period is not the other's).
			name: "subscription: a renewal and a failed payment with nothing before them",
			facts: []domain.Fact{
				ev("evt_b", "customer.subscription.updated", 2700, with(subscription, "current_period_start", 2700, "current_period_end", 5300),
					map[string]any{"current_period_start": 100, "current_period_end": 2700}),
				ev("evt_a", "customer.subscription.updated", 2700, with(subscription, "current_period_start", 2700, "current_period_end", 5300, "status", "past_due"),
					map[string]any{"status": "active"}),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_b", "evt_a"},
			check: func(r any) bool { return r.(domain.SubscriptionRow).Status == "past_due" },
		},
		{
			// Without the state before them, a toggle and its revert are each consistent with
			// coming first: the rule takes ID order and says so.
			name: "subscription: a toggle with nothing before it is ambiguous and reported",
			facts: []domain.Fact{
				ev("evt_b", "customer.subscription.updated", 200, canceling, cancelOn),
				ev("evt_a", "customer.subscription.updated", 200, subscription, cancelOff),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_a", "evt_b"},
			check: func(r any) bool { return r.(domain.SubscriptionRow).CancelAtPeriodEnd },
			amb:   [][]string{{"evt_a", "evt_b"}},
		},
		{
			// 1 → 5 → 1 → 5 with two different "5"s: both of them fit after the anchor, and
			// the chain cannot tell which was the first.
			name: "subscription: two whole chains after the anchor are reported",
			facts: []domain.Fact{
				ev("evt_c", "customer.subscription.created", 100, subscription, nil),
				ev("evt_b", "customer.subscription.updated", 200, with(subscription, "items", subItems(5), "metadata", map[string]any{"seats": "b"}),
					map[string]any{"items": subItems(1)}),
				ev("evt_a", "customer.subscription.updated", 200, subscription, map[string]any{"items": subItems(5)}),
				ev("evt_d", "customer.subscription.updated", 200, with(subscription, "items", subItems(5), "metadata", map[string]any{"seats": "d"}),
					map[string]any{"items": subItems(1)}),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_c", "evt_b", "evt_a", "evt_d"},
			check: func(r any) bool { return r.(domain.SubscriptionRow).Metadata["seats"] == "d" },
			amb:   [][]string{{"evt_a", "evt_b", "evt_d"}},
		},
		{
			// 1 → 2 → (3, not received yet) → 4: no order of what is here is a whole chain.
			name: "subscription: an event missing from the chain is reported",
			facts: []domain.Fact{
				ev("evt_c", "customer.subscription.created", 100, subscription, nil),
				ev("evt_x", "customer.subscription.updated", 200, with(subscription, "items", subItems(2)), map[string]any{"items": subItems(1)}),
				ev("evt_z", "customer.subscription.updated", 200, with(subscription, "items", subItems(4)), map[string]any{"items": subItems(3)}),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_c", "evt_x", "evt_z"},
			check: func(r any) bool { return r.(domain.SubscriptionRow).Items[0].Quantity == 4 },
			amb:   [][]string{{"evt_x", "evt_z"}},
		},
		{
			// Neither says what it changed and they are the same snapshot: any order gives the
			// same rows, so nothing is reported.
			name: "subscription: undecided events with byte-equal snapshots are not reported",
			facts: []domain.Fact{
				ev("evt_c", "customer.subscription.created", 100, subscription, nil),
				ev("evt_b", "customer.subscription.updated", 200, canceling, nil),
				ev("evt_a", "customer.subscription.updated", 200, canceling, nil),
			},
			fold:  foldAs(domain.FoldSubscription),
			order: []string{"evt_c", "evt_a", "evt_b"},
			check: func(r any) bool { return r.(domain.SubscriptionRow).CancelAtPeriodEnd },
		},
		{
			name: "invoice: amount changed and restored on a draft (a line added and removed)",
			facts: []domain.Fact{
				ev("evt_c", "invoice.created", 100, invoice, nil),
				ev("evt_b", "invoice.updated", 200, with(invoice, "amount_due", 1500, "amount_remaining", 1500, "total", 1500),
					map[string]any{"amount_due": 1000, "amount_remaining": 1000, "total": 1000}),
				ev("evt_a", "invoice.updated", 200, invoice, map[string]any{"amount_due": 1500, "amount_remaining": 1500, "total": 1500}),
			},
			fold:  foldAs(domain.FoldInvoice),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool { return r.(domain.InvoiceRow).AmountDue == 1000 },
		},
		{
			// A subscription's invoice is created, finalized and paid in one second; paid and
			// payment_succeeded share a rank, and payment_succeeded says nothing of what changed.
			name: "invoice: created, finalized and paid in one second",
			facts: []domain.Fact{
				ev("evt_d", "invoice.created", 100, invoice, nil),
				ev("evt_c", "invoice.finalized", 100, with(invoice, "status", "open", "payment_intent", "pi_1"), map[string]any{"status": "draft", "payment_intent": nil}),
				ev("evt_b", "invoice.paid", 100, with(invoice, "status", "paid", "payment_intent", "pi_1", "amount_paid", 1000, "amount_remaining", 0, "charge", "ch_1"),
					map[string]any{"status": "open", "amount_paid": 0, "amount_remaining": 1000, "charge": nil}),
				ev("evt_a", "invoice.payment_succeeded", 100, with(invoice, "status", "paid", "payment_intent", "pi_1", "amount_paid", 1000, "amount_remaining", 0, "charge", "ch_1"), nil),
			},
			fold:  foldAs(domain.FoldInvoice),
			order: []string{"evt_d", "evt_c", "evt_b", "evt_a"},
			check: func(r any) bool {
				return domain.Deref(r.(domain.InvoiceRow).Status) == "paid" && r.(domain.InvoiceRow).AmountPaid == 1000
			},
		},
		{
			name: "charge: description changed and changed back, with a dispute",
			facts: []domain.Fact{
				ev("evt_c", "charge.succeeded", 100, charge, nil),
				ev("evt_b", "charge.updated", 200, with(charge, "description", "Order 2"), map[string]any{"description": "Order 1"}),
				ev("evt_a", "charge.updated", 200, charge, map[string]any{"description": "Order 2"}),
				ev("evt_e", "charge.dispute.created", 300, dispute, nil),
			},
			fold:  foldChargeWithDisputes,
			order: []string{"evt_c", "evt_b", "evt_a", "evt_e"},
			last:  "evt_a",
			check: func(r any) bool {
				row := r.(domain.ChargeRow)
				return row.EventID == "evt_a" && domain.Deref(row.DisputeStatus) == "needs_response"
			},
		},
		{
			name: "refund: reason set and cleared, anchored on the creation in the same second",
			facts: []domain.Fact{
				ev("evt_c", "refund.created", 100, refund, nil),
				ev("evt_b", "refund.updated", 100, with(refund, "reason", "duplicate"), map[string]any{"reason": nil}),
				ev("evt_a", "refund.updated", 100, refund, map[string]any{"reason": "duplicate"}),
			},
			fold:  foldAs(domain.FoldRefund),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool { return r.(domain.RefundRow).Reason == nil && r.(domain.RefundRow).EventID == "evt_a" },
		},
		{
			name: "refund: a card refund's reason changed and changed back (charge.refund.updated)",
			facts: []domain.Fact{
				ev("evt_c", "charge.refund.updated", 100, with(refund, "reason", "requested_by_customer"), map[string]any{"status": "pending"}),
				ev("evt_b", "charge.refund.updated", 200, with(refund, "reason", "duplicate"), map[string]any{"reason": "requested_by_customer"}),
				ev("evt_a", "charge.refund.updated", 200, with(refund, "reason", "requested_by_customer"), map[string]any{"reason": "duplicate"}),
			},
			fold:  foldAs(domain.FoldRefund),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool { return domain.Deref(r.(domain.RefundRow).Reason) == "requested_by_customer" },
		},
		{
			name: "dispute: metadata set and cleared, anchored on funds withdrawn in an earlier second",
			facts: []domain.Fact{
				ev("evt_d", "charge.dispute.created", 300, dispute, nil),
				ev("evt_c", "charge.dispute.funds_withdrawn", 300, dispute, nil),
				ev("evt_b", "charge.dispute.updated", 400, with(dispute, "metadata", map[string]any{"case": "42"}), map[string]any{"metadata": map[string]any{}}),
				ev("evt_a", "charge.dispute.updated", 400, dispute, map[string]any{"metadata": map[string]any{"case": "42"}}),
			},
			fold:  foldAs(domain.FoldDispute),
			order: []string{"evt_d", "evt_c", "evt_b", "evt_a"},
			check: func(r any) bool {
				return r.(domain.DisputeRow).EventID == "evt_a" && r.(domain.DisputeRow).Status == "needs_response"
			},
		},
		{
			name: "customer: email changed and changed back, anchored on the creation in the same second",
			facts: []domain.Fact{
				ev("evt_c", "customer.created", 100, customer, nil),
				ev("evt_b", "customer.updated", 100, with(customer, "email", "typo@example.com"), map[string]any{"email": "a@example.com"}),
				ev("evt_a", "customer.updated", 100, customer, map[string]any{"email": "typo@example.com"}),
			},
			fold:  foldAs(domain.FoldCustomer),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool { return domain.Deref(r.(domain.CustomerRow).Email) == "a@example.com" },
		},
		{
			// Stripe diffs hashes key by key: only the key that changed is in
			// previous_attributes, null when it was not there.
			name: "customer: a metadata key added and removed, as Stripe reports hashes",
			facts: []domain.Fact{
				ev("evt_c", "customer.created", 100, with(customer, "metadata", map[string]any{"crm": "1"}), nil),
				ev("evt_b", "customer.updated", 200, with(customer, "metadata", map[string]any{"crm": "1", "tier": "gold"}),
					map[string]any{"metadata": map[string]any{"tier": nil}}),
				ev("evt_a", "customer.updated", 200, with(customer, "metadata", map[string]any{"crm": "1"}),
					map[string]any{"metadata": map[string]any{"tier": "gold"}}),
			},
			fold:  foldAs(domain.FoldCustomer),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool { _, ok := r.(domain.CustomerRow).Metadata["tier"]; return !ok },
		},
		{
			// The deletion ranks last in its second and stays the answer.
			name: "customer: email toggled in the second it is deleted",
			facts: []domain.Fact{
				ev("evt_c", "customer.created", 100, customer, nil),
				ev("evt_b", "customer.updated", 200, with(customer, "email", "typo@example.com"), map[string]any{"email": "a@example.com"}),
				ev("evt_a", "customer.updated", 200, customer, map[string]any{"email": "typo@example.com"}),
				ev("evt_0", "customer.deleted", 200, with(customer, "deleted", true), nil),
			},
			fold:  foldAs(domain.FoldCustomer),
			order: []string{"evt_c", "evt_b", "evt_a", "evt_0"},
			check: func(r any) bool {
				return r.(domain.CustomerRow).Deleted && domain.Deref(r.(domain.CustomerRow).Email) == "a@example.com"
			},
		},
		{
			// Stripe sends no checkout.session.updated at 2023-10-16; an action the rule does not
			// know ranks as an update, so such an event is chained as any update is.
			name: "checkout session: metadata set and cleared",
			facts: []domain.Fact{
				ev("evt_c", "checkout.session.completed", 100, session, nil),
				ev("evt_b", "checkout.session.updated", 200, with(session, "metadata", map[string]any{"app_user_id": "user_2"}), map[string]any{"metadata": map[string]any{}}),
				ev("evt_a", "checkout.session.updated", 200, session, map[string]any{"metadata": map[string]any{"app_user_id": "user_2"}}),
			},
			fold:  foldAs(domain.FoldCheckoutSession),
			order: []string{"evt_c", "evt_b", "evt_a"},
			check: func(r any) bool {
				return len(r.(domain.CheckoutSessionRow).Metadata) == 0 && r.(domain.CheckoutSessionRow).EventID == "evt_a"
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The row is the snapshot of the event the rule orders last (of the object's own
			// events, for a charge), whatever the order of arrival.
			want, err := tc.fold(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			last := tc.last
			if last == "" {
				last = tc.order[len(tc.order)-1]
			}
			if !tc.check(want) || reflect.ValueOf(want).FieldByName("EventID").String() != last {
				t.Fatalf("row %+v: fails the case's check or is not %s's snapshot", want, last)
			}
			arrivals := permutations(tc.facts)
			for _, p := range permutations(tc.facts) {
				arrivals = append(arrivals, append(slices.Clone(p), p[len(p)/2])) // one delivered twice
			}
			for _, arrival := range arrivals {
				ordered, amb := domain.OrderReport(arrival)
				var ids []string
				for _, f := range ordered {
					ids = append(ids, f.EventID)
				}
				if !slices.Equal(ids, tc.order) {
					t.Fatalf("arrival %s: order %v, want %v", eventIDs(arrival), ids, tc.order)
				}
				var gotAmb [][]string
				for _, a := range amb {
					for _, f := range tc.facts {
						if slices.Contains(a.EventIDs, f.EventID) && f.Created != a.Created {
							t.Fatalf("%s of second %d reported in second %d", f.EventID, f.Created, a.Created)
						}
					}
					gotAmb = append(gotAmb, a.EventIDs)
				}
				if !reflect.DeepEqual(gotAmb, tc.amb) {
					t.Fatalf("arrival %s: reported %v, want %v", eventIDs(arrival), gotAmb, tc.amb)
				}
				got, err := tc.fold(arrival)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("arrival %s: row %+v (%v), want %+v", eventIDs(arrival), got, err, want)
				}
			}
		})
	}
}

func eventIDs(fs []domain.Fact) string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.EventID)
	}
	return fmt.Sprint(ids)
}

// Order is OrderReport's order, and a group larger than the exhaustive search still follows a
// unique chain (greedily) and reports where it cannot.
func TestOrderOfLargeGroups(t *testing.T) {
	t.Parallel()
	// Twelve quantity changes in one second, 1 → 2 → … → 13, arriving with IDs in reverse.
	var chain []domain.Fact
	for q := 1; q <= 12; q++ {
		chain = append(chain, ev(fmt.Sprintf("evt_%02d", 20-q), "customer.subscription.updated", 200,
			with(subscription, "items", subItems(q+1)), map[string]any{"items": subItems(q)}))
	}
	created := ev("evt_00", "customer.subscription.created", 100, subscription, nil)
	facts := append([]domain.Fact{created}, chain...)
	ordered, amb := domain.OrderReport(facts)
	if len(amb) != 0 || !reflect.DeepEqual(eventIDs(ordered), eventIDs(domain.Order(facts))) {
		t.Fatalf("reported %v; Order differs from OrderReport", amb)
	}
	for i, f := range ordered[1:] {
		if f.EventID != chain[i].EventID {
			t.Fatalf("position %d: %s, want %s", i+1, f.EventID, chain[i].EventID)
		}
	}
	// Without the creation there is no anchor; the first is the one no other precedes.
	ordered, amb = domain.OrderReport(chain)
	if len(amb) != 0 || ordered[0].EventID != chain[0].EventID || ordered[11].EventID != chain[11].EventID {
		t.Fatalf("%s, reported %v", eventIDs(ordered), amb)
	}
	// A revert in a large group: after 1 → 2, both 2 → 3 and 2 → 1 fit, and following the chain
	// greedily stops there; the 12 facts left are reported.
	toggled := append(slices.Clone(facts), ev("evt_99", "customer.subscription.updated", 200, subscription, map[string]any{"items": subItems(2)}))
	if _, amb := domain.OrderReport(toggled); len(amb) != 1 || len(amb[0].EventIDs) != 12 {
		t.Fatalf("reported %v", amb)
	}
}

// On a realistic stream, with the simulator's same-second reversals in it, every subscription and
// customer folds, at the end of every simulated day it has events, to what the account says it is; ordering each object's
// events gives back the snapshots in the order the account made them; and nothing is reported
// ambiguous. The pairwise rule this replaced is run beside it, to show the stream is one it got
// wrong.
func TestSameSecondReversalsFoldToTheTruth(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sim := stripesim.New(stripesim.Config{Seed: 30, Customers: 300, End: end})
	byObject := map[string][]domain.Fact{}
	seen, checked, wrong, wrongBefore := 0, 0, 0, 0
	type kind struct {
		name string
		fold func([]domain.Fact) (any, error)
	}
	kinds := []kind{
		{"subscriptions", func(fs []domain.Fact) (any, error) {
			r, err := domain.FoldSubscription(fs)
			r.EventID, r.EventCreated = "", 0
			r.Coupons = nil // the coupons its whole history named: one snapshot cannot know them
			return r, err
		}},
		{"customers", func(fs []domain.Fact) (any, error) {
			r, err := domain.FoldCustomer(fs)
			r.EventID, r.EventCreated = "", 0
			r.DiscountHistory, r.Coupons = nil, nil // one snapshot has no history
			return r, err
		}},
	}
	for at := sim.Config().Start; !at.After(end); at = at.Add(24 * time.Hour) {
		sim.Run(at)
		events := sim.Events()
		// Only objects with new events are folded again: the others' rows cannot have changed,
		// and the fields their rows show do not change in the account without an event.
		changed := map[string]bool{}
		for _, ev := range events[seen:] {
			f, err := domain.DecodeFact(ev.Webhook)
			if err != nil {
				t.Fatal(err)
			}
			byObject[ev.ObjectID] = append(byObject[ev.ObjectID], f)
			changed[ev.ObjectID] = true
		}
		seen = len(events)
		truth := sim.Truth()
		for _, k := range kinds {
			var objects []json.RawMessage
			if err := json.Unmarshal(truth.Objects[k.name], &objects); err != nil {
				t.Fatal(err)
			}
			for _, raw := range objects {
				// The simulator renders the id first: reading it so is cheaper than decoding
				// thousands of unchanged objects a day.
				rest, ok := bytes.CutPrefix(raw, []byte(`{"id":"`))
				if !ok {
					t.Fatalf("an object without a leading id: %.60s", raw)
				}
				id := string(rest[:bytes.IndexByte(rest, '"')])
				if !changed[id] {
					continue
				}
				// The snapshot is valued at the time of the object's latest event (MRR reads
				// which discounts are in force then).
				var created int64
				for _, f := range byObject[id] {
					created = max(created, f.Created)
				}
				want, err := k.fold([]domain.Fact{fact("evt_truth", "x.updated", created, string(raw), "")})
				if err != nil {
					t.Fatal(err)
				}
				got, err := k.fold(byObject[id])
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					if wrong++; wrong <= 3 {
						t.Errorf("%s on %s: row %+v, the account says %s", id, at.Format(time.DateOnly), got, raw)
					}
				}
				// The pairwise rule's row is the snapshot of the last fact it orders (or the
				// last deletion).
				before := pairwiseOrder(byObject[id])
				latest := before[len(before)-1]
				for _, f := range before {
					if bytes.HasSuffix([]byte(f.Type), []byte(".deleted")) {
						latest = f
					}
				}
				if old, _ := k.fold([]domain.Fact{latest}); !reflect.DeepEqual(old, want) {
					wrongBefore++
				}
				checked++
			}
		}
	}
	if wrong > 0 || checked < 500 {
		t.Fatalf("%d of %d object-days differ from the account", wrong, checked)
	}

	// Same-second groups in which two updates each describe the other's snapshot.
	seq := map[string]int{}
	for _, ev := range sim.Events() {
		seq[ev.ID] = ev.Seq
	}
	reversals, misordered, misorderedBefore := 0, 0, 0
	for id, facts := range byObject {
		made := slices.Clone(facts)
		slices.SortFunc(made, func(a, b domain.Fact) int { return seq[a.EventID] - seq[b.EventID] })
		for i := 1; i < len(made); i++ {
			a, b := &made[i-1], &made[i]
			if a.Created == b.Created && pairwiseFollows(a, b) && pairwiseFollows(b, a) {
				reversals++
			}
		}
		ordered, amb := domain.OrderReport(facts)
		if len(amb) > 0 {
			t.Errorf("%s: reported %v", id, amb)
		}
		if !sameSnapshotsInOrder(ordered, made) {
			misordered++
			t.Errorf("%s: ordered %s, made %s", id, eventIDs(ordered), eventIDs(made))
		}
		if !sameSnapshotsInOrder(pairwiseOrder(facts), made) {
			misorderedBefore++
		}
	}
	t.Logf("%d object-days checked; %d same-second reversals; the pairwise rule misordered %d objects, and %d object-days differed from the account",
		checked, reversals, misorderedBefore, wrongBefore)
	if reversals == 0 || misorderedBefore == 0 || wrongBefore == 0 {
		t.Fatalf("the stream should have reversals the pairwise rule gets wrong: %d reversals, %d misordered, %d object-days wrong",
			reversals, misorderedBefore, wrongBefore)
	}
}

// sameSnapshotsInOrder reports whether two orders of one object's facts pass through the same
// snapshots: facts with byte-equal snapshots may trade places.
func sameSnapshotsInOrder(a, b []domain.Fact) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].ObjectRaw, b[i].ObjectRaw) {
			return false
		}
	}
	return true
}

// Ambiguities is OrderReport's report, with or without its shortcut for objects that cannot
// have an undecided group.
func TestAmbiguitiesAgreeWithOrderReport(t *testing.T) {
	t.Parallel()
	a := play(t, 43, 300)
	for id, facts := range a.byObject {
		_, want := domain.OrderReport(facts)
		if got := domain.Ambiguities(facts); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Ambiguities %v, OrderReport %v", id, got, want)
		}
	}
	toggle := []domain.Fact{
		fact("evt_b", "customer.updated", 200, `{"id":"cus_1","object":"customer","email":"t@x"}`, `{"email":"a@x"}`),
		fact("evt_a", "customer.updated", 200, `{"id":"cus_1","object":"customer","email":"a@x"}`, `{"email":"t@x"}`),
	}
	if got := domain.Ambiguities(toggle); len(got) != 1 || len(got[0].EventIDs) != 2 {
		t.Fatalf("a toggle with nothing before it: %v", got)
	}
}
