package domain

import "strings"

// Kind names a read model (and the Stripe object it holds, in the plural).
type Kind string

const (
	KindCustomers        Kind = "customers"
	KindSubscriptions    Kind = "subscriptions"
	KindInvoices         Kind = "invoices"
	KindCharges          Kind = "charges"
	KindRefunds          Kind = "refunds"
	KindDisputes         Kind = "disputes"
	KindCheckoutSessions Kind = "checkout_sessions"
	// Money movement: balance transactions have no Stripe events and come only as snapshots
	// the balance reconcile job fetches; the others come by payout.*, payment_intent.* and
	// credit_note.* events too.
	KindBalanceTransactions Kind = "balance_transactions"
	KindPayouts             Kind = "payouts"
	KindPaymentIntents      Kind = "payment_intents"
	KindCreditNotes         Kind = "credit_notes"
	// Invoice payments (from API version 2025-03-31.basil) come by invoice_payment.* events.
	KindInvoicePayments Kind = "invoice_payments"
	// Coupons come by coupon.* events: what discounts that name their coupon by ID (from API
	// version 2025-09-30.clover) are valued with.
	KindCoupons Kind = "coupons"
)

// Route says which read model an event type feeds, "" for types no read model folds (they stay
// in the log and are ignored by projections). Disputes also change their charge's row (its
// dispute status): projections fold charge.dispute.* into both.
func Route(eventType string) Kind {
	switch eventType {
	case SnapshotSubscription:
		return KindSubscriptions
	case SnapshotCharge:
		return KindCharges
	case SnapshotInvoice:
		return KindInvoices
	case SnapshotCustomer:
		return KindCustomers
	case SnapshotRefund:
		return KindRefunds
	case SnapshotDispute:
		return KindDisputes
	case SnapshotCheckoutSession:
		return KindCheckoutSessions
	case SnapshotBalanceTransaction:
		return KindBalanceTransactions
	case SnapshotPayout:
		return KindPayouts
	case SnapshotPaymentIntent:
		return KindPaymentIntents
	case SnapshotCreditNote:
		return KindCreditNotes
	case SnapshotCoupon:
		return KindCoupons
	}
	if !KnownEventType(eventType) {
		return ""
	}
	switch {
	case strings.HasPrefix(eventType, "customer.subscription."):
		return KindSubscriptions
	case strings.HasPrefix(eventType, "customer."):
		return KindCustomers
	case strings.HasPrefix(eventType, "invoice."):
		return KindInvoices
	case strings.HasPrefix(eventType, "charge.dispute."):
		return KindDisputes
	case eventType == "charge.refund.updated", strings.HasPrefix(eventType, "refund."):
		return KindRefunds
	case strings.HasPrefix(eventType, "charge."):
		return KindCharges
	case strings.HasPrefix(eventType, "checkout.session."):
		return KindCheckoutSessions
	case strings.HasPrefix(eventType, "payout."):
		return KindPayouts
	case strings.HasPrefix(eventType, "payment_intent."):
		return KindPaymentIntents
	case strings.HasPrefix(eventType, "credit_note."):
		return KindCreditNotes
	case strings.HasPrefix(eventType, "invoice_payment."):
		return KindInvoicePayments
	case strings.HasPrefix(eventType, "coupon."):
		return KindCoupons
	}
	return ""
}
