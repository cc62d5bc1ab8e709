package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/stripeledger/ledger/eventstore"
)

// Templates see Fields, a fixed set of values taken from the event (FieldNames lists them and
// the README documents each) — never the raw payload, the environment or a channel's secret. A
// template that names anything else is refused when the config is loaded: templates run with
// missingkey=error against a map holding exactly these keys, and text/template has no function
// that reaches outside the data it is given.
//
// An absent value (a charge with no customer, a dispute's due_by on any other event) is nil in
// Message.Fields (JSON null) and the empty string in a template, so `{{with .email}}…{{end}}` and
// `{{if .due_by}}` read naturally.

// Fields are the values a rule's templates and filters see, keyed by FieldNames.
type Fields map[string]any

// FieldNames are the keys of Fields, the only names a template may use.
var FieldNames = []string{
	"rule",             // the rule's name
	"type",             // the event type (payment_intent.succeeded), or the ledger-side kind (reconcile.missing)
	"id",               // the Stripe event ID, or the ledger-side key (ledger:reconcile_run:42)
	"source",           // how the event reached the log: webhook, reconcile, snapshot, import, ledger
	"object_type",      // data.object.object: charge, payment_intent, dispute…
	"object_id",        // data.object.id
	"amount",           // integer minor units (amount, else amount_total, else amount_due), or absent
	"currency",         // ISO 4217, lowercase, or absent
	"amount_formatted", // the amount in major units per the currency's exponent: "1,234.56 USD", "1,235 JPY"
	"customer",         // cus_…, or absent
	"email",            // receipt_email, customer_email, customer_details.email, billing_details.email or a customer's email
	"status",           // the object's status
	"reason",           // dispute reason, failure code, cancellation reason, last payment error code
	"livemode",         // true or false
	"account",          // acct_… for a connected account, absent for the platform
	"created",          // when Stripe created the event (RFC 3339, UTC)
	"due_by",           // a dispute's evidence deadline (evidence_details.due_by, RFC 3339, UTC), or absent
	"late",             // true when reconciliation appended the event long after it happened
	"dashboard_url",    // the object in Stripe's Dashboard (the event's page when the object has none)
	"detail",           // ledger-side notifications: what was found, in a sentence; absent for Stripe events
	"backfill",         // true for a notification `ledger notify backfill` enqueued
}

// sampleFields holds every key, for checking templates at load.
func sampleFields() Fields {
	f := Fields{}
	for _, k := range FieldNames {
		f[k] = nil
	}
	return f
}

// forTemplate is f with absent values as "" (text/template prints nil as "<no value>").
func (f Fields) forTemplate() map[string]any {
	m := make(map[string]any, len(FieldNames))
	for _, k := range FieldNames {
		v := f[k]
		if v == nil {
			v = ""
		}
		m[k] = v
	}
	return m
}

// parseTemplate parses one of a rule's templates and runs it once over every field, so that an
// unknown name is refused at load rather than at the first event.
func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, sampleFields().forTemplate()); err != nil {
		return nil, err
	}
	return t, nil
}

// execTemplate renders t over f.
func execTemplate(t *template.Template, f Fields) (string, error) {
	if t == nil {
		return "", nil
	}
	var b bytes.Buffer
	if err := t.Execute(&b, f.forTemplate()); err != nil {
		return "", err
	}
	return b.String(), nil
}

// object is what the fields are read from: data.object of an event, decoded for these keys only.
type object struct {
	ID          string            `json:"id"`
	Object      string            `json:"object"`
	Amount      *int64            `json:"amount"`
	AmountTotal *int64            `json:"amount_total"`
	AmountDue   *int64            `json:"amount_due"`
	Currency    *string           `json:"currency"`
	Customer    json.RawMessage   `json:"customer"` // an ID, or an expanded customer
	Status      *string           `json:"status"`
	Metadata    map[string]string `json:"metadata"`
	// Emails, in the order they are preferred.
	ReceiptEmail    *string `json:"receipt_email"`
	CustomerEmail   *string `json:"customer_email"`
	Email           *string `json:"email"` // a customer object's own
	CustomerDetails *struct {
		Email *string `json:"email"`
	} `json:"customer_details"`
	BillingDetails *struct {
		Email *string `json:"email"`
	} `json:"billing_details"`
	// Reasons, likewise.
	Reason              *string `json:"reason"`
	FailureCode         *string `json:"failure_code"`
	CancellationDetails *struct {
		Reason *string `json:"reason"`
	} `json:"cancellation_details"`
	LastPaymentError *struct {
		Code *string `json:"code"`
	} `json:"last_payment_error"`
	EvidenceDetails *struct {
		DueBy *int64 `json:"due_by"`
	} `json:"evidence_details"`
}

// eventObject decodes a payload's data.object.
func eventObject(payload []byte) (object, error) {
	var env struct {
		Data struct {
			Object object `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(payload, &env); err != nil {
		return object{}, fmt.Errorf("could not read data.object: %w", err)
	}
	return env.Data.Object, nil
}

// eventFields reads the documented fields of a stored event (its payload read with it), and
// returns the object's metadata beside them for the filters (metadata is matched, never shown).
func eventFields(r *eventstore.Record, dashboard string) (Fields, map[string]string, error) {
	o, err := eventObject(r.Payload)
	if err != nil {
		return nil, nil, err
	}
	f := Fields{
		"type": r.Type, "id": r.ID, "source": string(r.Source), "object_type": r.ObjectType, "object_id": r.ObjectID,
		"livemode": r.Livemode, "created": time.Unix(r.Created, 0).UTC().Format(time.RFC3339),
		"late": false, "backfill": false,
	}
	if r.Account != "" {
		f["account"] = r.Account
	}
	amount := first(o.Amount, o.AmountTotal, o.AmountDue)
	if amount != nil {
		f["amount"] = *amount
	}
	if o.Currency != nil && *o.Currency != "" {
		f["currency"] = strings.ToLower(*o.Currency)
		if amount != nil {
			f["amount_formatted"] = FormatAmount(*amount, *o.Currency)
		}
	}
	if c := customerID(o.Customer); c != "" {
		f["customer"] = c
	} else if o.Object == "customer" && o.ID != "" {
		f["customer"] = o.ID
	}
	var email *string
	for _, e := range []*string{o.ReceiptEmail, o.CustomerEmail, detailsEmail(o.CustomerDetails), detailsEmail(o.BillingDetails), o.Email} {
		if e != nil && *e != "" {
			email = e
			break
		}
	}
	if email != nil {
		f["email"] = *email
	}
	if o.Status != nil {
		f["status"] = *o.Status
	}
	reason := first(o.Reason, o.FailureCode)
	if reason == nil && o.CancellationDetails != nil {
		reason = o.CancellationDetails.Reason
	}
	if reason == nil && o.LastPaymentError != nil {
		reason = o.LastPaymentError.Code
	}
	if reason != nil {
		f["reason"] = *reason
	}
	if o.EvidenceDetails != nil && o.EvidenceDetails.DueBy != nil && *o.EvidenceDetails.DueBy > 0 {
		f["due_by"] = time.Unix(*o.EvidenceDetails.DueBy, 0).UTC().Format(time.RFC3339)
	}
	f["dashboard_url"] = DashboardURL(dashboard, r.Livemode, r.Account, r.ObjectType, r.ObjectID, r.ID)
	return f, o.Metadata, nil
}

func first[T any](vs ...*T) *T {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func detailsEmail(d *struct {
	Email *string `json:"email"`
}) *string {
	if d == nil {
		return nil
	}
	return d.Email
}

// customerID reads "customer": an ID string, or an expanded object's id.
func customerID(raw json.RawMessage) string {
	if len(raw) == 0 || raw[0] == 'n' {
		return ""
	}
	var id string
	if json.Unmarshal(raw, &id) == nil {
		return id
	}
	var o struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.ID
	}
	return ""
}

// DefaultDashboard is the base of Dashboard links (config `dashboard:`).
const DefaultDashboard = "https://dashboard.stripe.com"

// DashboardURL links an object in Stripe's Dashboard: base[/acct_…][/test]/path, or the event's
// page for objects the Dashboard has no page of its own for.
func DashboardURL(base string, livemode bool, account, objectType, objectID, eventID string) string {
	if base == "" {
		base = DefaultDashboard
	}
	u := strings.TrimRight(base, "/")
	if account != "" {
		u += "/" + account
	}
	if !livemode {
		u += "/test"
	}
	path := map[string]string{
		"charge": "payments", "payment_intent": "payments", "dispute": "disputes", "invoice": "invoices",
		"subscription": "subscriptions", "customer": "customers", "refund": "refunds", "payout": "payouts",
		"checkout.session": "checkout/sessions",
	}[objectType]
	if path == "" || objectID == "" {
		if eventID == "" {
			return u
		}
		return u + "/events/" + eventID
	}
	return u + "/" + path + "/" + objectID
}

// exponents are the currencies whose minor unit is not a hundredth (ISO 4217 as Stripe applies
// it): zero-decimal currencies count whole units, three-decimal ones thousandths. Every other
// currency has two decimals.
var exponents = map[string]int{
	"bif": 0, "clp": 0, "djf": 0, "gnf": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0, "pyg": 0,
	"rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
	"bhd": 3, "jod": 3, "kwd": 3, "omr": 3, "tnd": 3,
}

// Exponent is the number of decimals of a currency's minor unit.
func Exponent(currency string) int {
	if e, ok := exponents[strings.ToLower(currency)]; ok {
		return e
	}
	return 2
}

// FormatAmount writes minor units in major units with thousands separators and the currency's
// own number of decimals, in integer arithmetic only: FormatAmount(123456, "usd") is
// "1,234.56 USD", FormatAmount(1235, "jpy") is "1,235 JPY", FormatAmount(-500, "kwd") is
// "-0.500 KWD".
func FormatAmount(minor int64, currency string) string {
	exp := Exponent(currency)
	neg := minor < 0
	// Work on the digits of the absolute value as text: -minor overflows for math.MinInt64.
	digits := strconv.FormatInt(minor, 10)
	if neg {
		digits = digits[1:]
	}
	for len(digits) <= exp {
		digits = "0" + digits
	}
	whole, frac := digits[:len(digits)-exp], digits[len(digits)-exp:]
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if exp > 0 {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	b.WriteByte(' ')
	b.WriteString(strings.ToUpper(currency))
	return b.String()
}
