package domain

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Redaction: removing a customer's personal data from stored payloads (GDPR / CCPA erasure) while
// keeping everything the figures and the proof rest on. RedactPayload is the rule; the log, the
// chain and the read models' re-fold are the eventstore's and the projections' business.

// RedactionType is the type of the event the ledger appends for every redaction: who asked, when,
// why, for which customer and which log positions it changed — never the erased values.
const RedactionType = "ledger.redaction"

// RedactedMarker replaces every erased string value.
const RedactedMarker = "[redacted]"

var redactedJSON = []byte(`"` + RedactedMarker + `"`)

// PersonalKeys are the object keys whose values are personal data, wherever they appear in a
// payload (data.object, data.previous_attributes, nested objects such as a charge's
// payment_method_details.card or a Checkout session's customer_details, and metadata). A key's
// string values are replaced with RedactedMarker, inside objects and arrays too; numbers, booleans
// and nulls are kept, so no amount, count or flag changes and an absent value stays null.
var PersonalKeys = []string{
	// people and how to reach them
	"email", "name", "phone", "address", "shipping", "billing_details",
	"customer_details", "shipping_details", "shipping_address", "billing_address",
	// invoices' copies of the customer
	"customer_email", "customer_name", "customer_phone", "customer_address", "customer_shipping",
	"customer_tax_ids", "receipt_email",
	// cards (payment methods, sources, payment_method_details.card) and bank accounts
	"last4", "dynamic_last4", "fingerprint",
	"address_city", "address_country", "address_line1", "address_line2", "address_state", "address_zip",
	// other payment methods' holders (bank debits, wallets, PayPal, card-present receipts)
	"account_holder_name", "cardholder_name", "verified_name", "iban_last4", "payer_email",
	"payer_name", "payer_id",
	// where and from what a customer acted (mandates, reviews, tax location), their tax IDs
	"ip_address", "user_agent", "tax_ids",
	// dispute evidence
	"customer_email_address", "customer_purchase_ip",
}

// catalogueKeys hold the seller's own catalogue objects (a subscription's prices and products,
// its discounts' coupons and promotion codes): their `name` is a product's or coupon's, never
// a person's, so a redaction leaves them as they are.
var catalogueKeys = map[string]bool{"coupon": true, "price": true, "plan": true, "product": true, "promotion_code": true}

// RedactRules says what RedactPayload erases beyond PersonalKeys.
type RedactRules struct {
	// MetadataKeys are metadata keys whose values are personal in this business (a CRM ID, a
	// username): erased in every metadata object (LEDGER_REDACT_METADATA_KEYS).
	MetadataKeys []string
}

// RedactPayload returns the payload with every personal value replaced by RedactedMarker, and
// whether anything changed. Only the values change: every other byte — key order, whitespace,
// money, IDs, statuses, timestamps — is kept as it was, so the result still decodes to the same
// read-model figures. A payload with nothing personal left is returned unchanged (and false).
func RedactPayload(payload []byte, rules RedactRules) ([]byte, bool, error) {
	r := redactor{personal: map[string]bool{}, metadata: map[string]bool{}}
	for _, k := range PersonalKeys {
		r.personal[k] = true
	}
	for _, k := range rules.MetadataKeys {
		r.metadata[k] = true
	}
	if !json.Valid(payload) {
		return nil, false, errors.New("could not redact the payload: not valid JSON")
	}
	out, changed, err := r.walk(payload, false, false)
	if err != nil {
		return nil, false, fmt.Errorf("could not redact the payload: %w", err)
	}
	if !changed {
		return payload, false, nil
	}
	return out, true, nil
}

type redactor struct {
	personal, metadata map[string]bool
}

// edit replaces raw[start:end] with b.
type edit struct {
	start, end int
	b          []byte
}

// walk redacts one JSON value. erase: the value is under a personal key, so every string in it
// goes; metadata: the value is a metadata object, whose configured keys are personal too.
func (r *redactor) walk(raw []byte, erase, metadata bool) ([]byte, bool, error) {
	v := bytes.TrimLeft(raw, " \t\r\n")
	if len(v) == 0 {
		return nil, false, errors.New("empty value")
	}
	switch v[0] {
	case '{', '[':
	case '"':
		if erase && !bytes.Equal(v, redactedJSON) {
			return redactedJSON, true, nil
		}
		return raw, false, nil
	default:
		return raw, false, nil // numbers, booleans and null are kept
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	open, err := dec.Token()
	if err != nil {
		return nil, false, err
	}
	isObject := open == json.Delim('{')
	var edits []edit
	for dec.More() {
		key := ""
		if isObject {
			t, err := dec.Token()
			if err != nil {
				return nil, false, err
			}
			k, ok := t.(string)
			if !ok {
				return nil, false, errors.New("object key is not a string")
			}
			key = k
		}
		var member json.RawMessage
		if err := dec.Decode(&member); err != nil {
			return nil, false, err
		}
		end := int(dec.InputOffset())
		start := end - len(member)
		if isObject && !erase && catalogueKeys[key] {
			continue // the seller's catalogue: a coupon's or product's name is nobody's personal data
		}
		personal := isObject && (r.personal[key] || (metadata && r.metadata[key]))
		out, changed, err := r.walk(member, erase || personal, isObject && key == "metadata")
		if err != nil {
			return nil, false, err
		}
		if changed {
			edits = append(edits, edit{start, end, out})
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return nil, false, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, errors.New("trailing data after the value")
	}
	if len(edits) == 0 {
		return raw, false, nil
	}
	out := make([]byte, 0, len(raw))
	at := 0
	for _, e := range edits {
		out = append(out, raw[at:e.start]...)
		out = append(out, e.b...)
		at = e.end
	}
	return append(out, raw[at:]...), true, nil
}

// ParseMetadataKeys reads LEDGER_REDACT_METADATA_KEYS: comma-separated, spaces around names
// ignored, empty names dropped.
func ParseMetadataKeys(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// Refs are the links of an event's object to other objects that decide whether a redaction of a
// customer reaches it.
type Refs struct {
	ObjectID, ObjectType string
	// Customer is data.object.customer (an ID, or an expanded customer's id); PreviousCustomer
	// the same in data.previous_attributes (a payment method detached from the customer).
	Customer, PreviousCustomer string
	// Charge and PaymentIntent are data.object.charge and data.object.payment_intent (refunds,
	// disputes).
	Charge, PaymentIntent string
}

// ReadRefs decodes an event payload's Refs.
func ReadRefs(payload []byte) (Refs, error) {
	var ev struct {
		Data struct {
			Object struct {
				ID            string          `json:"id"`
				Object        string          `json:"object"`
				Customer      json.RawMessage `json:"customer"`
				Charge        json.RawMessage `json:"charge"`
				PaymentIntent json.RawMessage `json:"payment_intent"`
			} `json:"object"`
			Previous struct {
				Customer json.RawMessage `json:"customer"`
			} `json:"previous_attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return Refs{}, fmt.Errorf("could not read the event's object: %s", shortJSONError(err))
	}
	o := ev.Data.Object
	return Refs{ObjectID: o.ID, ObjectType: o.Object, Customer: refID(o.Customer),
		PreviousCustomer: refID(ev.Data.Previous.Customer), Charge: refID(o.Charge), PaymentIntent: refID(o.PaymentIntent)}, nil
}

// refID is a reference's ID: the string, or an expanded object's id; "" for null or absent.
func refID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.ID
	}
	return ""
}

// Redaction is the record a redaction appends to the log (type RedactionType, source
// SourceLedger), as data.object of the event. It names who, when, why and what, and for each
// changed event the SHA-256 of its payload after redaction: Verify checks a redacted payload
// against that, since the original's digest can no longer be recomputed. It never holds an
// erased value.
type Redaction struct {
	ID       string          `json:"id"`     // red_…, the event's ID without its prefix
	Object   string          `json:"object"` // "redaction"
	Customer string          `json:"customer"`
	Reason   string          `json:"reason"`
	By       string          `json:"requested_by"` // the operator, or the API token's holder
	At       int64           `json:"requested_at"` // Unix seconds
	Fields   []string        `json:"fields"`       // the keys erased: PersonalKeys and the metadata keys
	Events   []RedactedEvent `json:"events"`
	// Key names the checkpoint key that signed the record (integrity.KeyID) and Signature is
	// its Ed25519 signature, base64, over SignedMessage. The database lets a payload be replaced
	// under any record it can read, and anyone who can append can append one; the signature,
	// by a key the database never holds, is what shows an operator authorised the change.
	Key       string `json:"key,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// RedactionMessageVersion is the version of SignedMessage's format.
const RedactionMessageVersion = 1

// SignedMessage is what the checkpoint key signs for the redaction recorded by the event eventID:
// everything that authorises the change, in a fixed text form a verifier in another language can
// rebuild (README, "Erasure"). Every string is length-prefixed (its length in bytes, a space, the
// bytes), so no reason or name can pass for another field; the events are in position order.
//
//	ledger redaction 1
//	event <len> <event ID>
//	customer <len> <customer>
//	by <len> <requested_by>
//	at <requested_at, Unix seconds>
//	reason <len> <reason>
//	key <len> <key ID>
//	redacted <position> <len> <payload_sha256> <len> <event ID>      (one line per event)
func (r Redaction) SignedMessage(eventID string) []byte {
	text := func(b []byte, name, s string) []byte { return fmt.Appendf(b, "%s %d %s\n", name, len(s), s) }
	b := fmt.Appendf(nil, "ledger redaction %d\n", RedactionMessageVersion)
	b = text(b, "event", eventID)
	b = text(b, "customer", r.Customer)
	b = text(b, "by", r.By)
	b = fmt.Appendf(b, "at %d\n", r.At)
	b = text(b, "reason", r.Reason)
	b = fmt.Appendf(b, "key %d %s\n", len(r.Key), r.Key)
	events := slices.Clone(r.Events)
	slices.SortStableFunc(events, func(a, b RedactedEvent) int { return cmp.Compare(a.Position, b.Position) })
	for _, e := range events {
		b = fmt.Appendf(b, "redacted %d %d %s %d %s\n", e.Position, len(e.PayloadSHA256), e.PayloadSHA256, len(e.EventID), e.EventID)
	}
	return b
}

// RedactedEvent is one event a redaction changed.
type RedactedEvent struct {
	Position      int64  `json:"position"`
	EventID       string `json:"event_id"`
	PayloadSHA256 string `json:"payload_sha256"` // hex SHA-256 of the payload as redacted
}

// RedactionEventID is the ID of the event recording the redaction id (red_…).
func RedactionEventID(id string) string { return "evt_ledger_" + id }

// NewRedactionEvent is the log event recording r; id is random hex chosen by the caller.
func NewRedactionEvent(r Redaction, livemode bool, account string) (Event, error) {
	r.Object = "redaction"
	obj, err := json.Marshal(r)
	if err != nil {
		return Event{}, err
	}
	env := struct {
		ID         string         `json:"id"`
		Object     string         `json:"object"`
		APIVersion string         `json:"api_version"`
		Created    int64          `json:"created"`
		Livemode   bool           `json:"livemode"`
		Account    *string        `json:"account,omitempty"`
		Type       string         `json:"type"`
		Data       map[string]any `json:"data"`
	}{ID: RedactionEventID(r.ID), Object: "event", Created: r.At, Livemode: livemode, Type: RedactionType,
		Data: map[string]any{"object": json.RawMessage(obj)}}
	if account != "" {
		env.Account = &account
	}
	body, err := json.Marshal(env)
	if err != nil {
		return Event{}, err
	}
	return NewEvent(body, SourceLedger, "")
}

// ParseRedaction reads the record of a redaction event's payload.
func ParseRedaction(payload []byte) (Redaction, error) {
	var ev struct {
		Type string `json:"type"`
		Data struct {
			Object Redaction `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return Redaction{}, fmt.Errorf("not a redaction record: %s", shortJSONError(err))
	}
	if ev.Type != RedactionType || ev.Data.Object.Object != "redaction" {
		return Redaction{}, errors.New("not a redaction record")
	}
	return ev.Data.Object, nil
}
