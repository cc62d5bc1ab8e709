package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// Snapshot event types: events the ledger itself makes, carrying a Stripe object exactly as
// Stripe's API returned it, when reconciliation finds the ledger's state of the object differs
// from Stripe's and no event Stripe still keeps explains it (the events are older than 30 days,
// or were never generated). Projections fold them by the same ordering rule as Stripe's events;
// they rank as updates.
const (
	SnapshotSubscription    = "ledger.snapshot.subscription"
	SnapshotCharge          = "ledger.snapshot.charge"
	SnapshotInvoice         = "ledger.snapshot.invoice"
	SnapshotCustomer        = "ledger.snapshot.customer"
	SnapshotRefund          = "ledger.snapshot.refund"
	SnapshotDispute         = "ledger.snapshot.dispute"
	SnapshotCheckoutSession = "ledger.snapshot.checkout_session"
	// SnapshotBalanceTransaction is the only way balance transactions reach the log: Stripe
	// sends no events for them (see NewBalanceTransactionSnapshot).
	SnapshotBalanceTransaction = "ledger.snapshot.balance_transaction"
	SnapshotPayout             = "ledger.snapshot.payout"
	SnapshotPaymentIntent      = "ledger.snapshot.payment_intent"
	SnapshotCreditNote         = "ledger.snapshot.credit_note"
	SnapshotCoupon             = "ledger.snapshot.coupon"
)

// SnapshotTypes maps each read model reconciliation can repair to its snapshot event type.
var SnapshotTypes = map[Kind]string{
	KindSubscriptions:    SnapshotSubscription,
	KindCharges:          SnapshotCharge,
	KindInvoices:         SnapshotInvoice,
	KindCustomers:        SnapshotCustomer,
	KindRefunds:          SnapshotRefund,
	KindDisputes:         SnapshotDispute,
	KindCheckoutSessions: SnapshotCheckoutSession,

	KindBalanceTransactions: SnapshotBalanceTransaction,
	KindPayouts:             SnapshotPayout,
	KindPaymentIntents:      SnapshotPaymentIntent,
	KindCreditNotes:         SnapshotCreditNote,
	KindCoupons:             SnapshotCoupon,
}

// DeletedCustomer is the object Stripe answers for a customer that was deleted
// ({"id":…,"object":"customer","deleted":true}): a snapshot carrying it marks the customer
// deleted in the read model when the customer.deleted event never reached the ledger.
func DeletedCustomer(id string) json.RawMessage {
	return fmt.Appendf(nil, `{"id":%q,"object":"customer","deleted":true}`, id)
}

// DeletedCoupon is what Stripe answers when a coupon is deleted ({"id":…,"object":"coupon",
// "deleted":true}): a snapshot carrying it marks the coupon deleted and keeps its terms (they
// are its earlier events'), when a coupon's deletion is known and its object no longer is.
func DeletedCoupon(id string) json.RawMessage {
	return fmt.Appendf(nil, `{"id":%q,"object":"coupon","deleted":true}`, id)
}

// SnapshotID is a snapshot's event ID. It is derived from the object's exact bytes, so
// reconciling the same Stripe state again makes the same event, which the log then ignores.
func SnapshotID(eventType string, object []byte) string {
	sum := sha256.Sum256(append([]byte(eventType+"\x00"), object...))
	return "evt_ledger_snapshot_" + hex.EncodeToString(sum[:12])
}

// NewSnapshot builds the snapshot event for a Stripe object of the given kind, dated created, in
// the given mode and account ("" for the platform's own objects; acct_… puts the connected
// account in the envelope, as Stripe's own events of that account carry it).
func NewSnapshot(kind Kind, object json.RawMessage, created int64, livemode bool, account, apiVersion string) (Event, error) {
	return newSnapshot(kind, object, created, livemode, account, apiVersion, "")
}

// ListedByKey is the envelope field of a balance-transaction snapshot naming the payout whose
// listing returned it (Fact.ListedBy).
const ListedByKey = "ledger_listed_by"

// NewBalanceTransactionSnapshot is the snapshot of a balance transaction as Stripe's API
// returned it; payout, when not "", is the payout whose `GET /v1/balance_transactions?payout=`
// listing returned it. Stripe's balance transaction object does not say which payout paid it
// out — only that listing does — so the ledger records it beside the object, in the envelope's
// ledger_listed_by, and leaves data.object byte for byte as Stripe sent it. The payout is part
// of the snapshot's ID: the same bytes fetched by ID and by the payout's listing are two
// events, and refetching either appends nothing.
func NewBalanceTransactionSnapshot(object json.RawMessage, created int64, livemode bool, account, apiVersion, payout string) (Event, error) {
	return newSnapshot(KindBalanceTransactions, object, created, livemode, account, apiVersion, payout)
}

func newSnapshot(kind Kind, object json.RawMessage, created int64, livemode bool, account, apiVersion, listedBy string) (Event, error) {
	typ, ok := SnapshotTypes[kind]
	if !ok {
		return Event{}, fmt.Errorf("no snapshot event for %s", kind)
	}
	id := SnapshotID(typ, object)
	if listedBy != "" {
		id = SnapshotID(typ, append(append([]byte(listedBy), 0), object...))
	}
	body := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":%q,"created":%d,"livemode":%s,`,
		id, apiVersion, created, strconv.FormatBool(livemode))
	if account != "" {
		body = fmt.Appendf(body, `"account":%q,`, account)
	}
	if listedBy != "" {
		body = fmt.Appendf(body, `%q:%q,`, ListedByKey, listedBy)
	}
	body = fmt.Appendf(body, `"type":%q,"data":{"object":`, typ)
	body = append(body, object...)
	body = append(body, `}}`...)
	return NewEvent(body, SourceSnapshot, "")
}
