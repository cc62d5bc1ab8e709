package stripesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// Thin events: what Stripe sends an event destination that takes thin events (generally
// available for v1 resources from API 2026-09-30.endive). For each event the account emits, the
// destination is POSTed an unversioned notification naming the object,
//
//	{"id":"evt_test_65…","object":"v2.core.event","type":"v1.invoice.paid",
//	 "created":"2026-05-01T12:00:00.123Z","livemode":false,"context":"acct_…",
//	 "related_object":{"id":"in_…","type":"invoice","url":"/v1/invoices/in_…"}}
//
// signed like any webhook; GET /v2/core/events/{id} answers the same with `changes` (the
// previous and new values of what changed, for updates), and the object itself is fetched from
// its GET /v1/… as it is now. A thin event has its own ID: the ledger may hold both it and the
// snapshot event it stands for, from two endpoints.

// thinPaths are where an object of each type is fetched.
var thinPaths = map[string]string{
	"customer": "/v1/customers", "subscription": "/v1/subscriptions", "invoice": "/v1/invoices",
	"charge": "/v1/charges", "refund": "/v1/refunds", "dispute": "/v1/disputes",
	"checkout.session": "/v1/checkout/sessions", "payout": "/v1/payouts",
	"payment_intent": "/v1/payment_intents", "credit_note": "/v1/credit_notes",
	"invoice_payment": "/v1/invoice_payments", "coupon": "/v1/coupons",
}

// thinPrefix is how a thin event's ID begins in a mode: Stripe's v2 IDs say test mode in them.
func thinPrefix(livemode bool) string {
	if livemode {
		return "evt_65"
	}
	return "evt_test_65"
}

// ThinID is the ID of the thin event that stands for ev, in its account's mode.
func ThinID(ev *Event, livemode bool) string {
	return thinPrefix(livemode) + strings.TrimPrefix(ev.ID, "evt_")
}

// eventOfThin is the event a thin event's ID stands for.
func (s *Sim) eventOfThin(id string) (*Event, bool) {
	rest, ok := strings.CutPrefix(id, thinPrefix(s.cfg.Livemode))
	if !ok {
		return nil, false
	}
	ev, ok := s.byID["evt_"+rest]
	return ev, ok
}

// objectName is obj's `object` (every object struct has one).
func objectName(obj any) string {
	v := reflect.ValueOf(obj)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	if f := v.FieldByName("Object"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}

// renderThin is ev's thin notification and its v2 Event (the notification with `changes`),
// from the object as it is at the event and the previous values of what changed.
func (s *Sim) renderThin(ev *Event, obj any, prev map[string]any) (notification, v2 []byte) {
	typ, id := objectName(obj), ev.ObjectID
	// A discount cannot be fetched (there is no GET /v1/discounts): its thin event names what it
	// discounts, the subscription or the customer, whose object embeds it.
	if d, ok := obj.(*Discount); ok {
		switch {
		case d.Subscription != nil:
			typ, id = "subscription", *d.Subscription
		case d.Customer != nil:
			typ, id = "customer", *d.Customer
		}
	}
	// Stripe's v2 times have milliseconds; the second is the event's.
	created := time.Unix(ev.Created, int64(ev.Seq%1000)*int64(time.Millisecond)).UTC().Format("2006-01-02T15:04:05.000Z")
	n := map[string]any{
		"id": ThinID(ev, s.cfg.Livemode), "object": "v2.core.event", "type": "v1." + ev.Type,
		"created": created, "livemode": s.cfg.Livemode, "reason": nil,
		"related_object": map[string]any{"id": id, "type": typ, "url": thinPaths[typ] + "/" + id},
	}
	if s.cfg.Account != "" {
		n["context"] = s.cfg.Account
	}
	notification = mustJSON(n)
	if prev != nil {
		var now map[string]json.RawMessage
		_ = json.Unmarshal(mustJSON(obj), &now)
		after := map[string]json.RawMessage{}
		for k := range prev {
			after[k] = now[k]
		}
		n["changes"] = map[string]any{"before": prev, "after": after}
	}
	return notification, mustJSON(n)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v) // maps marshal with sorted keys: deterministic
	if err != nil {
		panic("stripesim: " + err.Error())
	}
	return b
}

// getV2Event serves GET /v2/core/events/{id}: the thin event with its changes, for 30 days.
func (s *Server) getV2Event(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sim := s.simFor(r)
	sim.mu.RLock()
	ev, ok := sim.eventOfThin(id)
	ok = ok && ev.ThinAPI != nil && ev.Created >= sim.now.Add(-Retention).Unix()
	var body []byte
	if ok {
		body = ev.ThinAPI
	}
	sim.mu.RUnlock()
	if !ok {
		stripeError(w, http.StatusNotFound, "resource_missing", fmt.Sprintf("No such event: '%s'", id), "id")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// Hang is a Fail status: the request is never answered (the client gives up), as a timeout.
const Hang = -1

// Fail makes every API request whose path begins with prefix answer status (429 rate_limit,
// 404 resource_missing, 500 api_error; Hang: no answer until the client gives up) until Heal: a
// fault for tests of what fails and is retried.
func (s *Server) Fail(prefix string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults == nil {
		s.faults = map[string]int{}
	}
	s.faults[prefix] = status
}

// Heal ends a Fail.
func (s *Server) Heal(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, prefix)
}

// fault answers r with its Fail status, if one applies.
func (s *Server) fault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	status := 0
	for prefix, st := range s.faults {
		if strings.HasPrefix(r.URL.Path, prefix) {
			status = st
		}
	}
	s.mu.Unlock()
	switch {
	case status == 0:
		return false
	case status == Hang:
		<-r.Context().Done()
	case status == http.StatusTooManyRequests:
		rateLimited(w)
	case status == http.StatusNotFound:
		stripeError(w, status, "resource_missing", "No such object: "+r.URL.Path, "id")
	default:
		stripeError(w, status, "api_error", "Something went wrong on Stripe's end.", "")
	}
	return true
}
