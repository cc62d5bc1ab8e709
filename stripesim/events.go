package stripesim

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Event is one Stripe event as the simulator emitted it.
type Event struct {
	ID       string
	Type     string
	Created  int64
	ObjectID string
	Seq      int    // emission order, 0-based
	Webhook  []byte // the body delivered to the endpoint (API version 2023-10-16)
	API      []byte // as the Events API renders it (the account's default version)

	// Delivery state, guarded by the Sim's lock.
	Delivered bool // some attempt was answered 2xx
	GaveUp    bool // every attempt failed and the schedule is exhausted
	Attempts  int
}

// emit records an event about obj (a pointer to one of the object structs). prev holds the
// previous values of the fields that changed, for *.updated events.
func (s *Sim) emit(typ string, obj any, objectID string, prev map[string]any, request bool) *Event {
	return s.emitFrom(s.rng, typ, obj, objectID, prev, request)
}

// emitFrom is emit with the event's IDs drawn from rng.
func (s *Sim) emitFrom(rng *rand.Rand, typ string, obj any, objectID string, prev map[string]any, request bool) *Event {
	if typ == "customer.subscription.updated" && s.money != nil {
		s.noteItemsChange(obj, prev) // for the next invoice's prorations
	}
	ev := &Event{ID: randomID(rng, "evt", 24), Type: typ, Created: s.unix(), ObjectID: objectID, Seq: len(s.events)}
	var reqID string
	if request {
		reqID = randomID(rng, "req", 14)
	}
	ev.Webhook = renderEvent(ev, APIVersion, obj, prev, reqID, s.cfg.Livemode, s.cfg.Account)
	ev.API = ev.Webhook
	if s.cfg.AccountAPIVersion != APIVersion {
		ev.API = renderEvent(ev, s.cfg.AccountAPIVersion, s.versioned(s.cfg.AccountAPIVersion, obj), prev, reqID, s.cfg.Livemode, s.cfg.Account)
	}
	s.events = append(s.events, ev)
	s.byID[ev.ID] = ev
	s.record(ev, obj)
	for _, f := range s.subscribers {
		f(ev)
	}
	return ev
}

// renderEvent writes the envelope by hand so that its bytes are fixed by the seed. account is the
// connected account the event belongs to ("" for a platform's own events, which carry no
// account key, as Stripe renders them).
func renderEvent(ev *Event, version string, obj any, prev map[string]any, reqID string, livemode bool, account string) []byte {
	data, err := json.Marshal(obj)
	if err != nil {
		panic("stripesim: " + err.Error())
	}
	var b bytes.Buffer
	b.Grow(len(data) + 400)
	b.WriteString(`{"id":"`)
	b.WriteString(ev.ID)
	b.WriteString(`","object":"event",`)
	if account != "" {
		b.WriteString(`"account":"`)
		b.WriteString(account)
		b.WriteString(`",`)
	}
	b.WriteString(`"api_version":"`)
	b.WriteString(version)
	b.WriteString(`","created":`)
	b.WriteString(strconv.FormatInt(ev.Created, 10))
	b.WriteString(`,"data":{"object":`)
	b.Write(data)
	if prev != nil {
		p, err := json.Marshal(prev) // maps marshal with sorted keys: deterministic
		if err != nil {
			panic("stripesim: " + err.Error())
		}
		b.WriteString(`,"previous_attributes":`)
		b.Write(p)
	}
	b.WriteString(`},"livemode":`)
	b.WriteString(strconv.FormatBool(livemode))
	b.WriteString(`,"pending_webhooks":1,"request":{"id":`)
	if reqID == "" {
		b.WriteString("null")
	} else {
		b.WriteString(`"` + reqID + `"`)
	}
	b.WriteString(`,"idempotency_key":`)
	if reqID == "" {
		b.WriteString("null")
	} else {
		b.WriteString(`"` + strings.Replace(reqID, "req_", "ik_", 1) + `"`)
	}
	b.WriteString(`},"type":"`)
	b.WriteString(ev.Type)
	b.WriteString(`"}`)
	return b.Bytes()
}

// versioned renders obj for another API version where Stripe moved fields. Known moves:
//   - before 2022-11-15 a Charge embedded its refunds as a list;
//   - from 2025-03-31 (basil) the billing period lives on subscription items, not the subscription.
func (s *Sim) versioned(version string, obj any) any {
	switch o := obj.(type) {
	case *Charge:
		if version >= "2022-11-15" {
			return obj
		}
		var refunds []Refund
		for _, l := range s.objs.kinds["refunds"] {
			if re := l.v.(*Refund); re.Charge == o.ID {
				refunds = append(refunds, *re)
			}
		}
		return struct {
			*Charge
			Refunds List[Refund] `json:"refunds"`
		}{o, newList("/v1/charges/"+o.ID+"/refunds", refunds)}
	case *Subscription:
		if version < "2025-03-31" {
			return obj
		}
		c := *o
		c.Items.Data = append([]SubscriptionItem(nil), o.Items.Data...)
		for i := range c.Items.Data {
			c.Items.Data[i].CurrentPeriodStart = o.CurrentPeriodStart
			c.Items.Data[i].CurrentPeriodEnd = o.CurrentPeriodEnd
		}
		c.CurrentPeriodStart, c.CurrentPeriodEnd = 0, 0
		return &c
	}
	return obj
}

// objects holds the account's current state: per kind, the objects in creation order.
type objects struct {
	kinds map[string][]listed
}

func newObjects() objects { return objects{kinds: map[string][]listed{}} }

func (o *objects) add(kind, id string, created int64, v any) {
	o.kinds[kind] = append(o.kinds[kind], listed{id, created, v})
}

// Kinds are the object lists the API serves.
var Kinds = []string{"customers", "subscriptions", "invoices", "charges", "refunds", "disputes", "checkout_sessions"}

// MoneyKinds are the money side's object lists (money.go), served like Kinds and in the truth's
// MoneyObjects: balance transactions (no events: a ledger lists them), payouts, payment intents
// and credit notes. They are apart from Kinds, whose objects a ledger folds from events alone,
// so that code checking every kind of Kinds against its read models holds as it did.
var MoneyKinds = []string{"balance_transactions", "payouts", "payment_intents", "credit_notes"}

// list returns the current objects of a kind newest first, Stripe's list order (creation order is
// time order).
func (o *objects) list(kind string) []listed {
	all := o.kinds[kind]
	out := make([]listed, len(all))
	for i, l := range all {
		out[len(all)-1-i] = l
	}
	return out
}

type listed struct {
	id      string
	created int64
	v       any // a pointer to the object, marshalled when listed
}
