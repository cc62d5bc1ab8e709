package domain_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
)

// Invoices, refunds, disputes, customers and Checkout sessions fold to what the account says.
func TestObjectRowsMatchTruth(t *testing.T) {
	t.Parallel()
	a := play(t, 31, 200)
	compare := func(kind, id string, row any, want map[string]any) {
		t.Helper()
		got, _ := json.Marshal(row)
		var g map[string]any
		_ = json.Unmarshal(got, &g)
		for k, v := range want {
			if !reflect.DeepEqual(g[k], v) {
				t.Fatalf("%s %s: %s = %v, Stripe says %v", kind, id, k, g[k], v)
			}
		}
	}
	n := 0
	for id, raw := range a.truth["invoices"] {
		row, err := domain.FoldInvoice(a.byObject[id])
		if err != nil {
			t.Fatal(err)
		}
		var o struct {
			Status          string
			AmountPaid      float64 `json:"amount_paid"`
			AmountRemaining float64 `json:"amount_remaining"`
			AttemptCount    float64 `json:"attempt_count"`
		}
		_ = json.Unmarshal(raw, &o)
		compare("invoice", id, row, map[string]any{"Status": o.Status, "AmountPaid": o.AmountPaid,
			"AmountRemaining": o.AmountRemaining, "AttemptCount": o.AttemptCount})
		n++
	}
	for id, raw := range a.truth["refunds"] {
		row, err := domain.FoldRefund(a.byObject[id])
		if err != nil {
			t.Fatal(err)
		}
		var o struct {
			Status string
			Amount float64
		}
		_ = json.Unmarshal(raw, &o)
		compare("refund", id, row, map[string]any{"Status": o.Status, "Amount": o.Amount})
		n++
	}
	for id, raw := range a.truth["disputes"] {
		row, err := domain.FoldDispute(a.byObject[id])
		if err != nil {
			t.Fatal(err)
		}
		var o struct{ Status string }
		_ = json.Unmarshal(raw, &o)
		compare("dispute", id, row, map[string]any{"Status": o.Status})
		n++
	}
	for id, raw := range a.truth["customers"] {
		row, err := domain.FoldCustomer(a.byObject[id])
		if err != nil {
			t.Fatal(err)
		}
		var o struct{ Email string }
		_ = json.Unmarshal(raw, &o)
		compare("customer", id, row, map[string]any{"Email": o.Email})
		n++
	}
	for id, raw := range a.truth["checkout_sessions"] {
		row, err := domain.FoldCheckoutSession(a.byObject[id])
		if err != nil {
			t.Fatal(err)
		}
		var o struct{ Status string }
		_ = json.Unmarshal(raw, &o)
		compare("checkout session", id, row, map[string]any{"Status": o.Status})
		n++
	}
	if n < 500 {
		t.Fatalf("only %d objects checked", n)
	}
}

// Every subscription in the account belongs to the app user who signed up, whether the ID came
// in the subscription's metadata (API signups) or through Checkout (client_reference_id).
func TestAppUserIDs(t *testing.T) {
	t.Parallel()
	a := play(t, 37, 150)
	sessionFor := map[string]*domain.CheckoutSessionRow{}
	guests := 0
	for id := range a.truth["checkout_sessions"] {
		s, err := domain.FoldCheckoutSession(a.byObject[id])
		if err != nil {
			t.Fatal(err)
		}
		if s.Subscription != nil {
			sessionFor[*s.Subscription] = &s
		}
		if s.Customer == nil {
			guests++
			anon := domain.Deref(domain.Identity{}.AppUserID(domain.IdentityInput{Session: &s}))
			if s.ClientReferenceID == nil && !strings.HasPrefix(anon, domain.AnonymousPrefix) {
				t.Fatalf("guest checkout %s got %q", s.ID, anon)
			}
		}
	}
	if guests == 0 {
		t.Fatal("no guest checkouts in the account")
	}
	viaCheckout := 0
	for id := range a.truth["subscriptions"] {
		sub, err := domain.FoldSubscription(a.byObject[id])
		if err != nil {
			t.Fatal(err)
		}
		cus, err := domain.FoldCustomer(a.byObject[sub.Customer])
		if err != nil {
			t.Fatal(err)
		}
		in := domain.IdentityInput{Customer: sub.Customer, SubscriptionMeta: sub.Metadata, CustomerMeta: cus.Metadata, Session: sessionFor[sub.ID]}
		if in.Session != nil {
			viaCheckout++
		}
		if got := domain.Deref((domain.Identity{}).AppUserID(in)); !strings.HasPrefix(got, "user_") {
			t.Fatalf("%s: app user %q", sub.ID, got)
		}
		if got := domain.Deref((domain.Identity{Mode: domain.IdentityCustomer}).AppUserID(in)); got != sub.Customer {
			t.Fatalf("%s: customer-ID mode gave %q", sub.ID, got)
		}
		anon := domain.Identity{Mode: domain.IdentityAnonymous}
		if a1, a2 := domain.Deref(anon.AppUserID(in)), domain.Deref(anon.AppUserID(in)); a1 != a2 || !strings.HasPrefix(a1, domain.AnonymousPrefix) {
			t.Fatalf("anonymous IDs %q %q", a1, a2)
		}
	}
	if viaCheckout == 0 {
		t.Fatal("no subscription came through Checkout")
	}
	if err := (domain.Identity{Mode: "email"}).Validate(); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

// The movement log up to the latest event adds up to each subscription's MRR, whatever order its
// events arrived in.
func TestMovements(t *testing.T) {
	t.Parallel()
	a := play(t, 41, 400)
	rng := rand.New(rand.NewPCG(5, 6))
	kinds := map[domain.MovementKind]int{}
	for id := range a.truth["subscriptions"] {
		facts := a.byObject[id]
		moves, err := domain.Movements(facts)
		if err != nil {
			t.Fatal(err)
		}
		// Past_due for three days churns, so a payment after it is a reactivation.
		r, h, _ := domain.FoldSubscriptionHistory(facts)
		for _, m := range h.Value(&r, nil, domain.MRRSettings{PastDueDays: 3}) {
			kinds[m.Kind]++
		}
		row, _ := domain.FoldSubscription(facts)
		if row.MRR == nil {
			continue // unvalued: its log holds the last valued figure
		}
		var sum int64
		for _, m := range moves {
			if m.At > row.EventCreated {
				continue // a movement a rule times after the latest event
			}
			sum += m.Amount
			kinds[m.Kind]++
			if m.Amount != m.MRRAfter-m.MRRBefore || m.Amount == 0 {
				t.Fatalf("%s: %+v", id, m)
			}
		}
		if row.MRR == nil || sum != *row.MRR {
			t.Fatalf("%s: movements add to %d, MRR is %v", id, sum, row.MRR)
		}
		again, _ := domain.Movements(shuffled(rng, facts))
		if !reflect.DeepEqual(again, moves) {
			t.Fatalf("%s: movements depend on arrival order", id)
		}
	}
	for _, k := range []domain.MovementKind{domain.MovementNew, domain.MovementExpansion, domain.MovementContraction, domain.MovementChurn, domain.MovementReactivation} {
		if kinds[k] == 0 {
			t.Errorf("no %s movement in the account", k)
		}
	}
}
