package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Source says how an event reached the log. It is part of each row and of its hash.
type Source string

const (
	// SourceWebhook: delivered to POST /webhooks/stripe with a valid Stripe-Signature.
	SourceWebhook Source = "webhook"
	// SourceReconcile: found missing by reconciliation and fetched from Stripe's Events API.
	SourceReconcile Source = "reconcile"
	// SourceSnapshot: a ledger-made event carrying a Stripe object whose drift no Stripe event explains.
	SourceSnapshot Source = "snapshot"
	// SourceImport: loaded in bulk from an export (backfill of history older than 30 days).
	SourceImport Source = "import"
	// SourceLedger: written by the ledger about the log itself (a redaction's record); it carries
	// no Stripe object and no read model folds it.
	SourceLedger Source = "ledger"
)

// Valid reports whether s is one of the sources.
func (s Source) Valid() bool {
	switch s {
	case SourceWebhook, SourceReconcile, SourceSnapshot, SourceImport, SourceLedger:
		return true
	}
	return false
}

// Envelope is the part of a Stripe event the ledger indexes. Everything else stays inside the raw
// payload, untouched: decoding only these fields keeps ingestion cheap and lets events of any API
// version or unknown type be stored.
type Envelope struct {
	ID         string // evt_…
	Type       string // e.g. invoice.paid
	APIVersion string // "" when the event carries none
	Created    int64  // Unix seconds, Stripe's one-second resolution
	Livemode   bool
	Account    string // Connect account, "" for the platform's own events
	ObjectType string // data.object.object, e.g. "invoice"
	ObjectID   string // data.object.id
}

// CreatedTime is Created as a UTC time.
func (e Envelope) CreatedTime() time.Time { return time.Unix(e.Created, 0).UTC() }

// EnvelopeError says why a body is not a Stripe event. Reason is a short stable token (for metrics
// and the quarantine table); Detail is for people.
type EnvelopeError struct {
	Reason string
	Detail string
}

func (e *EnvelopeError) Error() string { return "not a stripe event: " + e.Detail }

// Reasons an envelope is refused.
const (
	ReasonNotJSON    = "not_json"
	ReasonNoID       = "no_id"
	ReasonNoType     = "no_type"
	ReasonNoCreated  = "no_created"
	ReasonBadField   = "bad_field"
	ReasonNotAnEvent = "not_an_event"
)

// MaxIDLength bounds identifiers stored as text. Stripe's are far shorter; the bound keeps a
// hostile or broken body from turning an index entry into megabytes.
const MaxIDLength = 255

// rawEnvelope mirrors the JSON shape. Pointers tell "absent" from "empty".
type rawEnvelope struct {
	ID         *string  `json:"id"`
	Object     *string  `json:"object"`
	Type       *string  `json:"type"`
	APIVersion *string  `json:"api_version"`
	Created    *int64   `json:"created"`
	Livemode   bool     `json:"livemode"`
	Account    *string  `json:"account"`
	Data       *rawData `json:"data"`
	// A thin event's (object "v2.core.event"): created is an RFC 3339 string, the connected
	// account is its context, and the object it is about its related_object.
	CreatedAt *string
	Context   *string
	Related   *rawRelated
}

type rawRelated struct {
	ID   *string
	Type *string
}

type rawData struct {
	Object *rawObject `json:"object"`
}

type rawObject struct {
	ID     *string `json:"id"`
	Object *string `json:"object"`
}

// DecodeEnvelope reads the indexed fields of a Stripe event from its raw JSON. It accepts every
// event type and API version; it refuses only bodies that are not events at all, with an
// *EnvelopeError.
func DecodeEnvelope(raw []byte) (Envelope, error) { return decodeEnvelope(raw, true) }

// DecodeSignedEnvelope is DecodeEnvelope for a body already known to be valid JSON: a stored
// body whose Stripe signature was just verified is byte for byte one ingest validated, so the
// validation pass (most of the cost on a large body) is skipped. On other input the result is
// unspecified, though it never panics.
func DecodeSignedEnvelope(raw []byte) (Envelope, error) { return decodeEnvelope(raw, false) }

func decodeEnvelope(raw []byte, validate bool) (Envelope, error) {
	r, err := scanEnvelopeOf(raw, validate)
	if err != nil {
		return Envelope{}, &EnvelopeError{Reason: ReasonNotJSON, Detail: "body is not a JSON object: " + shortJSONError(err)}
	}
	if r.Object != nil && *r.Object == ThinObject {
		return thinEnvelope(r)
	}
	if r.Object != nil && *r.Object != "event" {
		return Envelope{}, &EnvelopeError{Reason: ReasonNotAnEvent, Detail: fmt.Sprintf("object is %q, not \"event\"", clip(*r.Object))}
	}
	if r.CreatedAt != nil {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoCreated, Detail: "created is a string: only a thin event (object \"v2.core.event\") dates itself so"}
	}
	if r.ID == nil || *r.ID == "" {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoID, Detail: "no id"}
	}
	if !strings.HasPrefix(*r.ID, "evt_") {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoID, Detail: fmt.Sprintf("id %q is not an event id (evt_…)", clip(*r.ID))}
	}
	if r.Type == nil || *r.Type == "" {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoType, Detail: "no type"}
	}
	if r.Created == nil || *r.Created <= 0 {
		return Envelope{}, &EnvelopeError{Reason: ReasonNoCreated, Detail: "no positive created timestamp"}
	}
	e := Envelope{
		ID:       *r.ID,
		Type:     *r.Type,
		Created:  *r.Created,
		Livemode: r.Livemode,
	}
	if r.APIVersion != nil {
		e.APIVersion = *r.APIVersion
	}
	if r.Account != nil {
		e.Account = *r.Account
	}
	if r.Data != nil && r.Data.Object != nil {
		if r.Data.Object.ID != nil {
			e.ObjectID = *r.Data.Object.ID
		}
		if r.Data.Object.Object != nil {
			e.ObjectType = *r.Data.Object.Object
		}
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// Validate checks what Postgres and the indexes need of the text fields: valid UTF-8 with no NUL
// (Postgres text cannot hold one) and a bounded length. Decoded JSON can carry both.
func (e Envelope) Validate() error {
	fields := []struct{ name, v string }{
		{"id", e.ID}, {"type", e.Type}, {"api_version", e.APIVersion}, {"account", e.Account},
		{"data.object.object", e.ObjectType}, {"data.object.id", e.ObjectID},
	}
	for _, f := range fields {
		if len(f.v) > MaxIDLength {
			return &EnvelopeError{Reason: ReasonBadField, Detail: fmt.Sprintf("%s is longer than %d bytes", f.name, MaxIDLength)}
		}
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return &EnvelopeError{Reason: ReasonBadField, Detail: f.name + " is not valid text"}
		}
	}
	if e.ID == "" || e.Type == "" {
		return &EnvelopeError{Reason: ReasonNoID, Detail: "id and type are required"}
	}
	return nil
}

// Event is one entry to append to the log: the indexed envelope, the exact bytes it came from and
// how it came.
type Event struct {
	Envelope
	Source    Source
	Payload   []byte // exact bytes: the webhook request body, or the item Stripe's API returned
	Signature string // the Stripe-Signature header; webhook-sourced events only
	// ReceivedAt is when the ledger accepted the event; zero means "at append". Stored with
	// microsecond precision (Postgres timestamptz), so it is truncated to that.
	ReceivedAt time.Time
}

// NewEvent decodes raw's envelope and builds the event to append.
func NewEvent(raw []byte, source Source, signature string) (Event, error) {
	env, err := DecodeEnvelope(raw)
	if err != nil {
		return Event{}, err
	}
	return Event{Envelope: env, Source: source, Payload: raw, Signature: signature}, nil
}

// ErrInvalidEvent wraps every reason an Event cannot be appended.
var ErrInvalidEvent = errors.New("invalid event")

// Validate checks an event is appendable: valid envelope, known source, a payload, and a signature
// exactly when it came by webhook (the database checks the same).
func (e Event) Validate() error {
	if err := e.Envelope.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if !e.Source.Valid() {
		return fmt.Errorf("%w: unknown source %q", ErrInvalidEvent, clip(string(e.Source)))
	}
	if len(e.Payload) == 0 {
		return fmt.Errorf("%w: empty payload", ErrInvalidEvent)
	}
	if (e.Source == SourceWebhook) != (e.Signature != "") {
		return fmt.Errorf("%w: a signature is required for webhook events and only for them", ErrInvalidEvent)
	}
	if e.Created <= 0 {
		return fmt.Errorf("%w: created must be positive", ErrInvalidEvent)
	}
	if !utf8.ValidString(e.Signature) || strings.IndexByte(e.Signature, 0) >= 0 {
		return fmt.Errorf("%w: signature is not valid text", ErrInvalidEvent)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// shortJSONError keeps encoding/json's message but never echoes the body back.
func shortJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	var se2 *typeError
	if errors.As(err, &se2) {
		if se2.field == "" {
			return "not an object"
		}
		return se2.Error()
	}
	return "malformed"
}
