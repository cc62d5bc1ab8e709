package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Thin events. An event destination that sends thin events (Stripe's event destinations, generally
// available for v1 resources from API 2026-09-30.endive) POSTs an unversioned notification that
// names the object it is about and carries none of it:
//
//	{"id":"evt_test_65…","object":"v2.core.event","type":"v1.invoice.paid",
//	 "created":"2026-10-01T12:00:00.123Z","livemode":false,"context":"acct_…",
//	 "related_object":{"id":"in_…","type":"invoice","url":"/v1/invoices/in_…"}}
//
// The log keeps it as it came, like any event (its envelope: created to the second, the context
// as the account, related_object as the object). No read model folds it: there is nothing in it
// to fold. The ledger then fetches the object (at its pinned API version) and the event's
// `changes` from GET /v2/core/events/{id}, and appends what it fetched as a thin snapshot
// (NewThinSnapshot), which the read models fold like any other event.

// ThinObject is a thin event's `object`.
const ThinObject = "v2.core.event"

// IsThin reports whether an event type is a thin event's: v1.* (about a v1 object) or v2.*.
// No snapshot event type starts so.
func IsThin(eventType string) bool {
	return strings.HasPrefix(eventType, "v1.") || strings.HasPrefix(eventType, "v2.")
}

// thinKinds are the related objects a thin event can name that a read model holds, by the type
// Stripe gives them in related_object.type.
var thinKinds = map[string]Kind{
	"customer": KindCustomers, "subscription": KindSubscriptions, "invoice": KindInvoices,
	"charge": KindCharges, "refund": KindRefunds, "dispute": KindDisputes,
	"checkout.session": KindCheckoutSessions, "payout": KindPayouts,
	"payment_intent": KindPaymentIntents, "credit_note": KindCreditNotes, "coupon": KindCoupons,
}

// ThinObjectTypes are the related_object types ThinKind knows.
func ThinObjectTypes() []string { return slices.Sorted(maps.Keys(thinKinds)) }

// ThinKind is the read model that holds a thin event's related object, false when none does
// (a v2 object, an invoice payment, a billing meter): such a thin event is kept in the log and
// nothing is fetched for it.
func ThinKind(relatedType string) (Kind, bool) {
	k, ok := thinKinds[relatedType]
	return k, ok
}

// Thin snapshot envelope keys: the provenance of what was fetched. The fetch is the object's
// state when it was fetched, which is at or after the thin event; the projections order the
// snapshot at the thin event's created and by the thin event's type within that second
// (Fact.ThinType), and the fetcher fetches again only for a thin event later than every one
// already fetched for the object (see package reconcile), so a later snapshot in that order is
// never an older state.
const (
	ThinEventKey = "ledger_thin_event" // the thin event's ID
	ThinTypeKey  = "ledger_thin_type"  // the thin event's type, e.g. v1.invoice.paid
	FetchedAtKey = "ledger_fetched_at" // when the object was fetched, Unix seconds
)

func thinEnvelope(r rawEnvelope) (Envelope, error) {
	if r.ID == nil || !strings.HasPrefix(*r.ID, "evt_") {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoID, Detail: "thin event has no event id (evt_…)"}
	}
	if r.Type == nil || *r.Type == "" {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoType, Detail: "thin event has no type"}
	}
	if !IsThin(*r.Type) {
		return Envelope{}, &EnvelopeError{Reason: ReasonBadField, Detail: fmt.Sprintf("thin event type %q is neither v1.* nor v2.*", clip(*r.Type))}
	}
	if r.CreatedAt == nil {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoCreated, Detail: "thin event has no created time (an RFC 3339 string)"}
	}
	at, err := time.Parse(time.RFC3339Nano, *r.CreatedAt)
	if err != nil || at.Unix() <= 0 {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoCreated, Detail: fmt.Sprintf("thin event created %q is not an RFC 3339 time after 1970", clip(*r.CreatedAt))}
	}
	e := Envelope{ID: *r.ID, Type: *r.Type, Created: at.Unix(), Livemode: r.Livemode}
	if r.Context != nil {
		e.Account = *r.Context
	}
	if r.Related != nil {
		if r.Related.ID != nil {
			e.ObjectID = *r.Related.ID
		}
		if r.Related.Type != nil {
			e.ObjectType = *r.Related.Type
		}
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// NewThinSnapshot is the event that brings a thin event's related object into the read models:
// object as GET /v1/… returned it at apiVersion, fetched at fetchedAt, and before, the
// `changes.before` of the thin event's v2 Event (nil when it has none), as previous_attributes.
// It is dated at the thin event's created and has the snapshot type of the object's read model.
//
// Its ID is evt_ledger_thin_<the thin event's ID>.<fetchedAt>.<a digest of the object>: where
// the ordering rule falls back to event IDs (two thin events of one second and one rank), thin
// snapshots sort as their thin events do, and two fetches for one thin event by when they were
// made, the later (newer) state last; the same state fetched for it in the same second appends
// nothing. ('.' sorts below every character of a Stripe ID, so a shorter thin ID that is a
// prefix of a longer one sorts first here too.)
//
// changes.after is not kept: the object is the state it describes or a later one, and
// previous_attributes is where redaction looks for personal values of earlier states.
func NewThinSnapshot(thin Envelope, object, before json.RawMessage, fetchedAt int64, apiVersion string) (Event, error) {
	kind, ok := ThinKind(thin.ObjectType)
	if !ok {
		return Event{}, fmt.Errorf("thin event %s is about a %q, which no read model holds", thin.ID, thin.ObjectType)
	}
	typ := SnapshotTypes[kind]
	sum := sha256.Sum256(object)
	id := fmt.Sprintf("evt_ledger_thin_%s.%010d.%s", strings.TrimPrefix(thin.ID, "evt_"), fetchedAt, hex.EncodeToString(sum[:6]))
	body := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":%q,"created":%d,"livemode":%s,`,
		id, apiVersion, thin.Created, strconv.FormatBool(thin.Livemode))
	if thin.Account != "" {
		body = fmt.Appendf(body, `"account":%q,`, thin.Account)
	}
	body = fmt.Appendf(body, `%q:%q,%q:%q,%q:%d,"type":%q,"data":{"object":`,
		ThinEventKey, thin.ID, ThinTypeKey, thin.Type, FetchedAtKey, fetchedAt, typ)
	body = append(body, object...)
	if len(before) > 0 && before[0] == '{' {
		body = append(body, `,"previous_attributes":`...)
		body = append(body, before...)
	}
	body = append(body, `}}`...)
	return NewEvent(body, SourceSnapshot, "")
}

// ThinRank is a thin event's lifecycle rank within its second (see Rank): that of the v1 event
// it stands for (v1.invoice.paid ranks as invoice.paid).
func ThinRank(thinType string) int { return Rank(strings.TrimPrefix(thinType, "v1.")) }

// rank is a fact's lifecycle rank within its second: a thin snapshot's is its thin event's
// (ThinRank), every other fact's its own type's.
func (f *Fact) rank() int {
	if f.ThinType != "" {
		return ThinRank(f.ThinType)
	}
	return Rank(f.Type)
}
