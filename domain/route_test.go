package domain_test

import (
	"encoding/json"
	"testing"

	"github.com/stripeledger/ledger/domain"
)

func TestRoute(t *testing.T) {
	t.Parallel()
	for _, typ := range domain.ReadModelEventTypes {
		if domain.Route(typ) == "" {
			t.Errorf("%s is a read-model type but routes nowhere", typ)
		}
	}
	for typ, want := range map[string]domain.Kind{
		"customer.subscription.updated":            domain.KindSubscriptions,
		"customer.updated":                         domain.KindCustomers,
		"charge.dispute.closed":                    domain.KindDisputes,
		"charge.refund.updated":                    domain.KindRefunds,
		"charge.refunded":                          domain.KindCharges,
		"checkout.session.completed":               domain.KindCheckoutSessions,
		"issuing_card.created":                     "",
		"customer.discount.created":                "",
		"payment_intent.succeeded":                 domain.KindPaymentIntents,
		"payment_intent.amount_capturable_updated": "",
		"payout.paid":                              domain.KindPayouts,
		"credit_note.voided":                       domain.KindCreditNotes,
		"coupon.deleted":                           domain.KindCoupons,
		"balance.available":                        "",
		domain.SnapshotBalanceTransaction:          domain.KindBalanceTransactions,
	} {
		if got := domain.Route(typ); got != want {
			t.Errorf("Route(%s) = %q, want %q", typ, got, want)
		}
	}
	// Each read model's snapshot type routes to it, and every read model has one.
	for _, kind := range []domain.Kind{domain.KindCustomers, domain.KindSubscriptions, domain.KindInvoices, domain.KindCharges,
		domain.KindRefunds, domain.KindDisputes, domain.KindCheckoutSessions, domain.KindBalanceTransactions, domain.KindPayouts,
		domain.KindPaymentIntents, domain.KindCreditNotes, domain.KindCoupons} {
		typ, ok := domain.SnapshotTypes[kind]
		if !ok {
			t.Errorf("no snapshot type for %s", kind)
		} else if got := domain.Route(typ); got != kind {
			t.Errorf("Route(%s) = %q, want %q", typ, got, kind)
		}
	}
	// Every event the simulated account emits routes to the read model of its object.
	a := play(t, 43, 60)
	objectKind := map[string]domain.Kind{
		`"customer"`: domain.KindCustomers, `"subscription"`: domain.KindSubscriptions, `"invoice"`: domain.KindInvoices,
		`"charge"`: domain.KindCharges, `"refund"`: domain.KindRefunds, `"dispute"`: domain.KindDisputes,
		`"checkout.session"`: domain.KindCheckoutSessions, `"payout"`: domain.KindPayouts, `"payment_intent"`: domain.KindPaymentIntents,
		`"credit_note"`: domain.KindCreditNotes, `"coupon"`: domain.KindCoupons,
	}
	for _, ev := range a.sim.Events() {
		var e struct {
			Type string
			Data struct {
				Object struct {
					Object json.RawMessage
				}
			}
		}
		_ = json.Unmarshal(ev.Webhook, &e)
		if got, want := domain.Route(e.Type), objectKind[string(e.Data.Object.Object)]; got != want {
			t.Fatalf("%s about a %s routes to %q", e.Type, e.Data.Object.Object, got)
		}
	}
}
