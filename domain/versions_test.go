package domain

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/stripesim"
)

// One invoice history, rendered at 2023-10-16 (the webhooks), at 2026-08-26.dahlia (the
// Events API of an account on dahlia) and mixed event by event, folds to the same invoice and
// lines. The exception is what dahlia's invoice does not carry (its charge and payment intent
// are invoice payments'): nil when the latest event is a dahlia one, and attention says so (an
// older rendering's charge is not kept: the invoice may have been paid by another since).
func TestInvoicesFoldAlikeAtEveryVersion(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 5, Customers: 150, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		AccountAPIVersion: "2026-08-26.dahlia"})
	sim.Run(time.Time{})
	renderings := map[string]map[string][]Fact{} // old, new, mixed → invoice → facts
	for _, k := range []string{"old", "new", "mixed"} {
		renderings[k] = map[string][]Fact{}
	}
	for i, ev := range sim.Events() {
		if !json.Valid(ev.API) || !isInvoiceEvent(ev.Type) {
			continue
		}
		old, err := DecodeFact(ev.Webhook)
		if err != nil {
			t.Fatal(err)
		}
		nu, err := DecodeFact(ev.API)
		if err != nil {
			t.Fatal(err)
		}
		renderings["old"][ev.ObjectID] = append(renderings["old"][ev.ObjectID], old)
		renderings["new"][ev.ObjectID] = append(renderings["new"][ev.ObjectID], nu)
		mixed := old
		if i%2 == 1 {
			mixed = nu
		}
		renderings["mixed"][ev.ObjectID] = append(renderings["mixed"][ev.ObjectID], mixed)
	}
	var subscribed, taxed, lines, unlinked int
	for id, facts := range renderings["old"] {
		want, err := FoldInvoice(facts)
		if err != nil {
			t.Fatal(err)
		}
		if want.Attention != nil {
			t.Fatalf("%s at 2023-10-16: attention %q", id, *want.Attention)
		}
		for _, k := range []string{"new", "mixed"} {
			got, err := FoldInvoice(renderings[k][id])
			if err != nil {
				t.Fatal(err)
			}
			if latest, _ := Latest(renderings[k][id]); latest.APIVersion != "2023-10-16" {
				if got.Charge != nil || got.PaymentIntent != nil {
					t.Fatalf("%s (%s): charge %v, payment_intent %v from a dahlia invoice", id, k, got.Charge, got.PaymentIntent)
				}
				if (want.Charge != nil || want.PaymentIntent != nil) && got.Attention == nil {
					t.Fatalf("%s (%s): no charge or payment_intent, and no attention", id, k)
				}
				got.Charge, got.PaymentIntent = want.Charge, want.PaymentIntent
				unlinked++
			} else if got.Attention != nil {
				t.Fatalf("%s (%s): attention %q from a 2023-10-16 invoice", id, k, *got.Attention)
			}
			got.Attention = nil
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Fatalf("%s folds otherwise at %s:\n got %s\nwant %s", id, k, g, w)
			}
		}
		if want.Subscription != nil {
			subscribed++
		}
		if want.Tax != nil {
			taxed++
		}
		for _, l := range want.Lines {
			if l.Price != nil && l.Subscription != nil && l.TaxAmount != nil {
				lines++
			}
		}
	}
	if subscribed == 0 || taxed == 0 || lines == 0 || unlinked == 0 {
		t.Fatalf("%d invoices with a subscription, %d with tax, %d lines with price, subscription and tax, %d without their payment links: the history should have each",
			subscribed, taxed, lines, unlinked)
	}
}

// A credit note folds to the same row from its 2023-10-16 and its dahlia renderings, whose
// refund is the first of refunds[].
func TestCreditNotesFoldAlikeAtEveryVersion(t *testing.T) {
	t.Parallel()
	old, nu := dahliaRenderings(t, "credit_note.")
	refunded := 0
	for id := range old {
		want, err := FoldCreditNote(old[id])
		if err != nil {
			t.Fatal(err)
		}
		got, err := FoldCreditNote(nu[id])
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("%s folds otherwise at dahlia:\n got %s\nwant %s", id, g, w)
		}
		if want.Refund != nil {
			refunded++
		}
	}
	if refunded == 0 {
		t.Fatalf("none of %d credit notes made a refund", len(old))
	}
}

// From clover a discount names its coupon instead of embedding it: a subscription whose discount
// is rendered so is not valued blind. Its MRR is NULL and attention says which coupon is not
// expanded, where the 2023-10-16 rendering of the same events values it.
func TestCloverDiscountsAreNotValuedBlind(t *testing.T) {
	t.Parallel()
	old, nu := dahliaRenderings(t, "customer.subscription.")
	blind := 0
	for id := range old {
		want, err := FoldSubscription(old[id])
		if err != nil {
			t.Fatal(err)
		}
		got, err := FoldSubscription(nu[id])
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Discounts) == 0 || want.MRR == nil || *want.MRR == 0 {
			continue
		}
		if got.MRR != nil || !strings.Contains(Deref(got.Attention), "is not expanded") || strings.Contains(Deref(got.Attention), `coupon "" `) {
			t.Fatalf("%s at dahlia: mrr %v, attention %q; want NULL and attention naming the coupon", id, got.MRR, Deref(got.Attention))
		}
		blind++
	}
	if blind == 0 {
		t.Fatal("no discounted subscription with MRR in the account")
	}
}

// dahliaRenderings are the facts of the events whose type starts with prefix, of the
// simulator's account on dahlia, by object: as its webhooks rendered them (2023-10-16) and as
// its Events API did (dahlia).
func dahliaRenderings(t *testing.T, prefix string) (old, nu map[string][]Fact) {
	t.Helper()
	sim := stripesim.New(stripesim.Config{Seed: 5, Customers: 150, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		AccountAPIVersion: "2026-08-26.dahlia"})
	sim.Run(time.Time{})
	old, nu = map[string][]Fact{}, map[string][]Fact{}
	for _, ev := range sim.Events() {
		if !strings.HasPrefix(ev.Type, prefix) {
			continue
		}
		for _, r := range []struct {
			raw []byte
			to  map[string][]Fact
		}{{ev.Webhook, old}, {ev.API, nu}} {
			f, err := DecodeFact(r.raw)
			if err != nil {
				t.Fatal(err)
			}
			r.to[ev.ObjectID] = append(r.to[ev.ObjectID], f)
		}
	}
	return old, nu
}

func isInvoiceEvent(typ string) bool {
	return len(typ) > 8 && typ[:8] == "invoice."
}

// In a log that holds a subscription's events at two versions (webhooks pinned to 2023-10-16,
// repairs at dahlia), a dahlia event's discount that names its coupon by ID alone is valued with
// the coupon another of its events embeds: the MRR is the 2023-10-16 log's. Only a subscription
// none of whose events embeds the coupon stays unvalued, and says so.
func TestCloverDiscountsValuedFromTheOtherRendering(t *testing.T) {
	t.Parallel()
	old, nu := dahliaRenderings(t, "customer.subscription.")
	valued, blind := 0, 0
	for id := range old {
		want, err := FoldSubscription(old[id])
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Discounts) == 0 || want.MRR == nil || *want.MRR == 0 || len(old[id]) < 2 {
			continue
		}
		// The latest event at dahlia, the others at 2023-10-16.
		mixed := append([]Fact(nil), old[id]...)
		last := len(Order(mixed)) - 1
		latest := Order(mixed)[last].EventID
		for i := range mixed {
			if mixed[i].EventID == latest {
				for _, f := range nu[id] {
					if f.EventID == latest {
						mixed[i] = f
					}
				}
			}
		}
		got, err := FoldSubscription(mixed)
		if err != nil {
			t.Fatal(err)
		}
		_, h, err := FoldSubscriptionHistory(mixed)
		if err != nil {
			t.Fatal(err)
		}
		wantMoves, _ := Movements(old[id])
		gotMoves := h.Value(&SubscriptionRow{}, nil, MRRSettings{})
		switch {
		case got.MRR != nil && *got.MRR == *want.MRR && string(mustJSON(t, gotMoves)) == string(mustJSON(t, wantMoves)):
			valued++
		case got.MRR == nil && strings.Contains(Deref(got.Attention), "is not expanded"):
			blind++ // the discount came with the dahlia event alone
		default:
			t.Fatalf("%s: mrr %s (want %d), attention %q; movements %s, want %s", id, string(mustJSON(t, got.MRR)), *want.MRR, Deref(got.Attention),
				mustJSON(t, gotMoves), mustJSON(t, wantMoves))
		}
	}
	if valued == 0 {
		t.Fatalf("no subscription valued from its other rendering (%d blind)", blind)
	}
	t.Logf("%d discounted subscriptions valued with their latest event at dahlia, %d not (the discount came with it)", valued, blind)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The terms of a coupon come from the event that embeds it and value that event's state and the
// later ones only: with a subscription's first event at dahlia (its coupon by ID) and the later
// ones at 2023-10-16, every movement before the second event is what a fold of the log cut
// there gives, though the full log knows the coupon.
func TestCouponFillKeepsThePast(t *testing.T) {
	t.Parallel()
	old, nu := dahliaRenderings(t, "customer.subscription.")
	checked := 0
	for id := range old {
		ordered := Order(old[id])
		if len(ordered) < 2 || ordered[1].Created == ordered[0].Created {
			continue
		}
		mixed := append([]Fact(nil), ordered...)
		for _, f := range nu[id] {
			if f.EventID == ordered[0].EventID {
				mixed[0] = f
			}
		}
		full, err := Movements(mixed)
		if err != nil {
			t.Fatal(err)
		}
		cut, err := Movements(mixed[:1])
		if err != nil {
			t.Fatal(err)
		}
		var before []Movement
		for _, m := range full {
			if m.At < ordered[1].Created {
				before = append(before, m)
			}
		}
		if string(mustJSON(t, before)) != string(mustJSON(t, cut)) {
			t.Fatalf("%s: the full log's movements before its second event %s, the cut log's %s", id, mustJSON(t, before), mustJSON(t, cut))
		}
		if row, _ := FoldSubscription(mixed[:1]); len(row.Discounts) > 0 {
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no subscription whose first event carries a discount")
	}
}
