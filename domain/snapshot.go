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
}

// DeletedCustomer is the object Stripe answers for a customer that was deleted
// ({"id":…,"object":"customer","deleted":true}): a snapshot carrying it marks the customer
// deleted in the read model when the customer.deleted event never reached the ledger.
func DeletedCustomer(id string) json.RawMessage {
	return fmt.Appendf(nil, `{"id":%q,"object":"customer","deleted":true}`, id)
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
	typ, ok := SnapshotTypes[kind]
	if !ok {
		return Event{}, fmt.Errorf("no snapshot event for %s", kind)
	}
	id := SnapshotID(typ, object)
	body := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":%q,"created":%d,"livemode":%s,`,
		id, apiVersion, created, strconv.FormatBool(livemode))
	if account != "" {
		body = fmt.Appendf(body, `"account":%q,`, account)
	}
	body = fmt.Appendf(body, `"type":%q,"data":{"object":`, typ)
	body = append(body, object...)
	body = append(body, `}}`...)
	return NewEvent(body, SourceSnapshot, "")
}
