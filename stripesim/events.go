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
	Webhook  []byte // the body delivered to the endpoint (at its version: Config.WebhookAPIVersion)
	API      []byte // as the Events API renders it (the account's default version when it was created)
	// Thin and ThinAPI are the thin event that stands for it (thin.go): the notification a thin
	// destination is sent and GET /v2/core/events/{id}'s answer. Rendered only for an account
	// with a thin destination (DeliveryConfig.Thin).
	Thin, ThinAPI []byte
	// Renderings are the webhook bodies of endpoints with an API version of their own
	// (DeliveryConfig.APIVersion), by that version (Unpinned: the account's default then).
	Renderings map[string][]byte

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
	render := func(version string) []byte {
		if version == APIVersion {
			return renderEvent(ev, APIVersion, obj, prev, reqID, s.cfg.Livemode, s.cfg.Account)
		}
		v := s.versioned(version, obj)
		return renderEvent(ev, version, v, versionedPrev(version, obj, v, prev), reqID, s.cfg.Livemode, s.cfg.Account)
	}
	account, webhook := s.accountVersion(), s.cfg.WebhookAPIVersion
	if webhook == Unpinned {
		webhook = account
	}
	ev.Webhook = render(webhook)
	ev.API = ev.Webhook
	if account != webhook {
		ev.API = render(account)
	}
	if s.thin {
		ev.Thin, ev.ThinAPI = s.renderThin(ev, obj, prev)
	}
	for v := range s.endpointVersions {
		at := v
		if at == Unpinned {
			at = account
		}
		if ev.Renderings == nil {
			ev.Renderings = map[string][]byte{}
		}
		ev.Renderings[v] = render(at)
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
//   - from 2025-03-31 (basil) the billing period lives on subscription items, not the
//     subscription, and basilRender makes the release's other moves;
//   - from 2025-09-30 (clover) a discount names its coupon in source instead of embedding it
//     (cloverRender).
func (s *Sim) versioned(version string, obj any) any {
	if o, ok := obj.(*Charge); ok && version < "2022-11-15" {
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
	}
	if version < basil {
		return obj
	}
	return versionedMap(version, asMap(obj))
}

// versionedMap makes basil's moves, and clover's from clover on, in m (an object rendered at
// 2023-10-16, as a JSON object).
func versionedMap(version string, m map[string]any) map[string]any {
	if m["object"] == "subscription" {
		for _, it := range items(m["items"]) {
			it["current_period_start"], it["current_period_end"] = m["current_period_start"], m["current_period_end"]
		}
		delete(m, "current_period_start")
		delete(m, "current_period_end")
	}
	basilRender(m)
	if version >= clover {
		cloverRender(m)
	}
	return m
}

// versionedPrev is previous_attributes at version for the change of obj that prev (its fields'
// values before, at 2023-10-16) describes, v being obj's rendering at version: as Stripe
// computes them, the fields whose rendering at version differs between the object before the
// change and after (a basil subscription's new period is a change of its items; a basil
// invoice's paid is no field at all). nil when none.
func versionedPrev(version string, obj, v any, prev map[string]any) map[string]any {
	now, ok := v.(map[string]any)
	if !ok || prev == nil {
		return prev
	}
	before := asMap(obj)
	for k, p := range asMap(prev) {
		before[k] = p
	}
	before = versionedMap(version, before)
	out := map[string]any{}
	for k, b := range before {
		if !sameJSON(b, now[k]) {
			out[k] = b
		}
	}
	for k := range now {
		if _, ok := before[k]; !ok {
			out[k] = nil
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// basil and clover are the first API versions of the 2025-03-31.basil and 2025-09-30.clover
// releases (their moves from the dahlia spec, stripe-mock v0.203.0, and Stripe's changelog).
const (
	basil  = "2025-03-31"
	clover = "2025-09-30"
)

// basilRender moves m (a rendered object) as API versions from basil on render it:
//   - a subscription has no discount (discounts[] only), and its prices' recurring no
//     aggregate_usage;
//   - an invoice has no subscription, charge, payment_intent or paid (its subscription is
//     parent.subscription_details.subscription; its payments are invoice payments, a list the
//     invoice carries only when expanded), and no tax or total_tax_amounts (total_taxes);
//   - an invoice line has no price (pricing.price_details), proration, subscription_item or type
//     (parent.subscription_item_details), tax_amounts or tax_rates (taxes), or
//     amount_excluding_tax;
//   - a credit note has refunds[] instead of refund, total_taxes instead of tax_amounts, and
//     its lines taxes instead of tax_amounts and no amount_excluding_tax;
//   - a charge and a payment intent have no invoice.
func basilRender(m map[string]any) {
	switch m["object"] {
	case "subscription":
		delete(m, "discount")
		for _, it := range items(m["items"]) {
			if p, ok := it["price"].(map[string]any); ok {
				if r, ok := p["recurring"].(map[string]any); ok {
					delete(r, "aggregate_usage")
				}
			}
		}
	case "invoice":
		var parent any // a one-off invoice has none
		if sub := m["subscription"]; sub != nil {
			parent = map[string]any{"type": "subscription_details", "quote_details": nil,
				"subscription_details": map[string]any{"metadata": map[string]any{}, "subscription": sub}}
		}
		m["parent"] = parent
		m["total_taxes"] = taxes(m["total_tax_amounts"])
		for _, k := range []string{"subscription", "charge", "payment_intent", "paid", "tax", "total_tax_amounts"} {
			delete(m, k)
		}
		for _, l := range items(m["lines"]) {
			price, _ := l["price"].(map[string]any)
			l["pricing"] = map[string]any{"type": "price_details", "price_details": map[string]any{"price": price["id"], "product": price["product"]},
				"unit_amount_decimal": price["unit_amount_decimal"]}
			l["parent"] = map[string]any{"type": "subscription_item_details", "invoice_item_details": nil,
				"subscription_item_details": map[string]any{"invoice_item": nil, "proration": l["proration"],
					"proration_details": map[string]any{"credited_items": nil}, "subscription": l["subscription"], "subscription_item": l["subscription_item"]}}
			l["taxes"] = taxes(l["tax_amounts"])
			for _, k := range []string{"price", "proration", "subscription_item", "type", "tax_amounts", "tax_rates", "amount_excluding_tax"} {
				delete(l, k)
			}
		}
	case "credit_note":
		refunds := []any{}
		if r := m["refund"]; r != nil {
			refunds = append(refunds, map[string]any{"amount_refunded": m["amount"], "refund": r, "type": "refund", "payment_record_refund": nil})
		}
		m["refunds"], m["total_taxes"] = refunds, taxes(m["tax_amounts"])
		delete(m, "refund")
		delete(m, "tax_amounts")
		for _, l := range items(m["lines"]) {
			l["taxes"] = taxes(l["tax_amounts"])
			delete(l, "tax_amounts")
			delete(l, "amount_excluding_tax")
		}
	case "charge", "payment_intent":
		delete(m, "invoice")
	}
}

// cloverRender moves every discount in v (a rendered object, at any depth) as API versions from
// clover on render it: its coupon is no longer embedded, source names it (type coupon).
func cloverRender(v any) {
	switch x := v.(type) {
	case map[string]any:
		if x["object"] == "discount" {
			var coupon any
			if c, ok := x["coupon"].(map[string]any); ok {
				coupon = c["id"]
			}
			x["source"] = map[string]any{"type": "coupon", "coupon": coupon}
			delete(x, "coupon")
		}
		for _, child := range x {
			cloverRender(child)
		}
	case []any:
		for _, child := range x {
			cloverRender(child)
		}
	}
}

// taxes are tax amounts (total_tax_amounts, a line's tax_amounts) as basil's taxes render them.
func taxes(amounts any) []any {
	out := []any{}
	list, _ := amounts.([]any)
	for _, a := range list {
		t := a.(map[string]any)
		behavior := "exclusive"
		if t["inclusive"] == true {
			behavior = "inclusive"
		}
		out = append(out, map[string]any{"amount": t["amount"], "tax_behavior": behavior, "type": "tax_rate_details",
			"tax_rate_details": map[string]any{"tax_rate": t["tax_rate"]}, "taxability_reason": t["taxability_reason"],
			"taxable_amount": t["taxable_amount"]})
	}
	return out
}

// items are the objects of a list's data (a subscription's items, an invoice's lines).
func items(list any) []map[string]any {
	l, _ := list.(map[string]any)
	data, _ := l["data"].([]any)
	out := make([]map[string]any, 0, len(data))
	for _, d := range data {
		out = append(out, d.(map[string]any))
	}
	return out
}

// asMap is v as a JSON object, numbers kept exact.
func asMap(v any) map[string]any {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("stripesim: " + err.Error())
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		panic("stripesim: " + err.Error())
	}
	return m
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
