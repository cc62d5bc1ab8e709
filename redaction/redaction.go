// Package redaction erases a customer's personal data from the ledger (GDPR, CCPA) without
// breaking its proof or its figures.
//
// Run replaces the personal values (domain.PersonalKeys and the configured metadata keys) of every
// event about the customer with domain.RedactedMarker, appends a ledger.redaction event saying who
// asked, when, why and which events changed (never the erased values), and re-folds the read
// models of the objects concerned — all in one transaction, so an interrupted redaction leaves
// nothing changed. Money, IDs, statuses and timestamps are kept, so every figure stays; each
// payload's stored SHA-256, which the hash chain covers (eventstore/hash.go), stays too, so
// `ledger verify` and every checkpoint still hold. The record is signed with the checkpoint key
// (Request.Key): the database accepts a record from anyone who can append, so the signature is
// what `ledger verify --checkpoints … --public-key …` tells an operator's erasure from a rewrite by.
//
// The events in scope are those of the customer object itself and of every object that names the
// customer (data.object.customer, or data.previous_attributes.customer for a payment method
// detached from it): charges, invoices, subscriptions, Checkout sessions, payment methods, payment
// intents, sources, tax IDs, … — and of the refunds and disputes of those charges and payment
// intents. An event whose payload merely mentions the ID elsewhere (another customer's metadata,
// say) is not.
package redaction

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/projections"
)

// MetadataKeysEnv names the environment variable listing the metadata keys that are personal
// data in this business, comma-separated.
const MetadataKeysEnv = "LEDGER_REDACT_METADATA_KEYS"

// MetadataKeysFromEnv reads MetadataKeysEnv.
func MetadataKeysFromEnv() []string { return domain.ParseMetadataKeys(os.Getenv(MetadataKeysEnv)) }

// Request is one redaction.
type Request struct {
	Customer string // cus_…
	Reason   string // why (a ticket, the legal basis): recorded in the log, so no personal data
	By       string // who asked: the operator, or the API's caller
	// MetadataKeys are erased from every metadata object besides domain.PersonalKeys
	// (MetadataKeysFromEnv).
	MetadataKeys []string
	// Identity must be the live runner's: the read models are re-folded with it.
	Identity domain.Identity
	// Key is the checkpoint key (LEDGER_CHECKPOINT_KEY), required: it signs the redaction's
	// record, which is what shows an operator authorised the change (integrity.SignRedaction).
	Key ed25519.PrivateKey

	// beforeRefold, set by a test, runs after the payloads are replaced and before the read
	// models are re-folded: a redaction interrupted there must roll back whole.
	beforeRefold func(context.Context) error
}

// MaxReasonLength bounds the reason and the requester's name.
const MaxReasonLength = 1000

var customerID = regexp.MustCompile(`^cus_[A-Za-z0-9_]{1,250}$`)

// InvalidRequest is a request that cannot run; nothing was read or changed.
type InvalidRequest struct {
	Field, Message string
}

func (e *InvalidRequest) Error() string { return e.Field + ": " + e.Message }

// ErrUnknownCustomer is returned when no event of the log is about the customer; nothing changed.
var ErrUnknownCustomer = errors.New("the log has no event about this customer")

// TamperedError is returned when an event in the redaction's scope is not intact: its payload is
// not the one its digest covers (or, redacted before, the one its last redaction recorded). A
// redaction would replace the evidence, so none runs; nothing changed.
type TamperedError struct {
	Position int64
	EventID  string
}

func (e *TamperedError) Error() string {
	return fmt.Sprintf("the payload of event %s at position %d is not the one the hash chain holds: the log was edited, "+
		"and a redaction would erase the evidence; run `ledger verify`", e.EventID, e.Position)
}

// NoKeyMessage is the InvalidRequest message for a request without the checkpoint key.
const NoKeyMessage = "a redaction is signed with the checkpoint key: set LEDGER_CHECKPOINT_KEY or --key"

// Validate checks the request without touching the database (Run does it too).
func (r *Request) Validate() error {
	switch {
	case r.Customer == "":
		return &InvalidRequest{"customer", "a customer ID (cus_…) is required"}
	case !customerID.MatchString(r.Customer):
		return &InvalidRequest{"customer", "not a Stripe customer ID (cus_ followed by letters, digits or _)"}
	case strings.TrimSpace(r.Reason) == "":
		return &InvalidRequest{"reason", "a reason is required: it is recorded with the redaction"}
	case len(r.Reason) > MaxReasonLength || !utf8.ValidString(r.Reason) || strings.IndexByte(r.Reason, 0) >= 0:
		return &InvalidRequest{"reason", fmt.Sprintf("must be valid text of at most %d bytes", MaxReasonLength)}
	case strings.TrimSpace(r.By) == "":
		return &InvalidRequest{"by", "who asks for the redaction is required"}
	case len(r.By) > MaxReasonLength || !utf8.ValidString(r.By) || strings.IndexByte(r.By, 0) >= 0:
		return &InvalidRequest{"by", fmt.Sprintf("must be valid text of at most %d bytes", MaxReasonLength)}
	}
	if err := r.Identity.Validate(); err != nil {
		return &InvalidRequest{"identity", err.Error()}
	}
	// Erasing the metadata key app user IDs are read from would give every redacted customer
	// the same app user ID, "[redacted]", merging them in every per-user figure.
	if m := r.Identity.Mode; m == domain.IdentityMetadata || m == "" {
		if key := r.Identity.Key(); slices.Contains(r.MetadataKeys, key) {
			return &InvalidRequest{"metadata_keys", fmt.Sprintf("%q is the metadata key app user IDs are read from: erasing it would merge every redacted customer into one app user; take it out of %s", key, MetadataKeysEnv)}
		}
	}
	if len(r.Key) != ed25519.PrivateKeySize {
		return &InvalidRequest{"key", NoKeyMessage}
	}
	return nil
}

// Summary is what a redaction did.
type Summary struct {
	Customer string `json:"customer"`
	// InScope counts the customer's events (and its objects'); Redacted those whose payload
	// changed. 0 redacted: everything was redacted already, nothing was appended.
	InScope   int     `json:"events_in_scope"`
	Redacted  int     `json:"events_redacted"`
	Objects   int     `json:"objects"`
	Positions []int64 `json:"positions"`
	// The redaction's own event in the log ("" and 0 when nothing changed).
	EventID  string    `json:"redaction_event_id,omitempty"`
	Position int64     `json:"redaction_position,omitempty"`
	By       string    `json:"requested_by"`
	At       time.Time `json:"requested_at"`
}

// Run redacts the customer's events, in one transaction. See the package comment.
//
// It refuses (TamperedError) when an event in scope is not intact, as the database would: a
// redaction must not launder an edit made behind the triggers' back.
//
// The scope is found first with no lock held. Then it takes the projection's lock (a live
// runner's batch waits) and the log's head lock (webhook appends wait), and looks again only at
// the events appended meanwhile, so appends and the runner wait for the redaction's writes, not
// for its pass over the log.
func Run(ctx context.Context, pool *pgxpool.Pool, req Request) (Summary, error) {
	if err := req.Validate(); err != nil {
		return Summary{}, err
	}
	sum := Summary{Customer: req.Customer, By: req.By, At: time.Now().UTC().Truncate(time.Second), Positions: []int64{}}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return sum, fmt.Errorf("could not begin the redaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	store := eventstore.New(pool).With(tx)

	head, err := store.Head(ctx)
	if err != nil {
		return sum, err
	}
	sc := &scope{store: store, customer: req.Customer, objects: map[string]bool{}}
	if err := sc.find(ctx, 0, head.Position); err != nil {
		return sum, err
	}
	// The locks only now: the live runner and appends wait for the redaction's writes, not for
	// the scan above.
	if err := projections.Lock(ctx, tx); err != nil {
		return sum, err
	}
	locked, err := eventstore.LockHead(ctx, tx)
	if err != nil {
		return sum, err
	}
	if locked.Position > head.Position {
		if err := sc.find(ctx, head.Position, locked.Position); err != nil {
			return sum, err
		}
	}
	if len(sc.objects) == 0 {
		return sum, fmt.Errorf("%w: %s", ErrUnknownCustomer, req.Customer)
	}

	recs, err := store.List(ctx, eventstore.Filter{ObjectIDs: sc.ids(), Payload: true})
	if err != nil {
		return sum, err
	}
	if err := checkIntact(ctx, store, recs); err != nil {
		return sum, err
	}
	rules := domain.RedactRules{MetadataKeys: req.MetadataKeys}
	var changed []eventstore.Record
	var payloads []eventstore.RedactedPayload
	var listed []domain.RedactedEvent
	livemode, account := recs[0].Livemode, recs[0].Account
	for _, r := range recs {
		if r.Type == domain.RedactionType {
			continue // the record of an earlier redaction holds nothing personal, and stays as written
		}
		sum.InScope++
		if r.ObjectID == req.Customer {
			livemode, account = r.Livemode, r.Account
		}
		out, ok, err := domain.RedactPayload(r.Payload, rules)
		if err != nil {
			return sum, fmt.Errorf("event %s at position %d: %w", r.ID, r.Position, err)
		}
		if !ok {
			continue
		}
		digest := sha256.Sum256(out)
		changed = append(changed, r)
		payloads = append(payloads, eventstore.RedactedPayload{Position: r.Position, Payload: out})
		listed = append(listed, domain.RedactedEvent{Position: r.Position, EventID: r.ID, PayloadSHA256: hex.EncodeToString(digest[:])})
		sum.Positions = append(sum.Positions, r.Position)
	}
	sum.Objects = len(sc.objects)
	sum.Redacted = len(changed)
	if len(changed) == 0 {
		return sum, nil // rolled back: nothing to record
	}

	var id [12]byte
	_, _ = rand.Read(id[:])
	fields := slices.Clone(domain.PersonalKeys)
	for _, k := range req.MetadataKeys {
		fields = append(fields, "metadata."+k)
	}
	rec := domain.Redaction{ID: "red_" + hex.EncodeToString(id[:]), Customer: req.Customer,
		Reason: req.Reason, By: req.By, At: sum.At.Unix(), Fields: fields, Events: listed}
	integrity.SignRedaction(req.Key, domain.RedactionEventID(rec.ID), &rec)
	ev, err := domain.NewRedactionEvent(rec, livemode, account)
	if err != nil {
		return sum, fmt.Errorf("could not make the redaction's record: %w", err)
	}
	res, err := store.AppendIn(ctx, tx, []domain.Event{ev})
	if err != nil {
		return sum, err
	}
	if res[0].Err != nil || res[0].Duplicate {
		return sum, fmt.Errorf("could not append the redaction's record: %v", res[0].Err)
	}
	if err := eventstore.Redact(ctx, tx, res[0].Position, payloads); err != nil {
		return sum, err
	}
	if req.beforeRefold != nil {
		if err := req.beforeRefold(ctx); err != nil {
			return sum, err
		}
	}
	if err := projections.Refold(ctx, tx, req.Identity, changed); err != nil {
		return sum, fmt.Errorf("could not re-fold the read models of the redacted events: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return sum, fmt.Errorf("could not commit the redaction: %w", err)
	}
	sum.EventID, sum.Position = ev.ID, res[0].Position
	return sum, nil
}

// checkIntact returns a TamperedError for the first of recs whose payload is not intact: not the
// one its digest covers or, redacted before, not the one its last redaction recorded. It is the
// database's own rule (ledger.guard_event_update), checked first so the answer names the event.
func checkIntact(ctx context.Context, store *eventstore.Store, recs []eventstore.Record) error {
	positions := make([]int64, 0, len(recs))
	for _, r := range recs {
		if r.Type != domain.RedactionType { // never redacted: Verify checks it as a link of the chain
			positions = append(positions, r.Position)
		}
	}
	pos, id, edited, err := store.FirstEdited(ctx, positions)
	if err != nil {
		return err
	}
	if edited {
		return &TamperedError{Position: pos, EventID: id}
	}
	return nil
}

// scope finds the objects a redaction of a customer reaches.
type scope struct {
	store    *eventstore.Store
	customer string
	objects  map[string]bool
	parents  []string // charges and payment intents of the customer: their refunds and disputes are in scope
}

func (s *scope) ids() []string {
	out := make([]string, 0, len(s.objects))
	for id := range s.objects {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// find adds the objects of the events in (after, upTo] that are the customer's or name it, then
// the refunds and disputes anywhere in the log of the charges and payment intents found.
func (s *scope) find(ctx context.Context, after, upTo int64) error {
	newParents := false
	err := s.store.Scan(ctx, eventstore.Filter{Mentions: []string{`"` + s.customer + `"`},
		AfterPosition: after, UpToPosition: upTo, Payload: true}, func(r *eventstore.Record) error {
		if r.Type == domain.RedactionType {
			return nil
		}
		refs, err := domain.ReadRefs(r.Payload)
		if err != nil {
			return fmt.Errorf("event %s at position %d: %w", r.ID, r.Position, err)
		}
		if r.ObjectID == "" {
			return nil
		}
		if r.ObjectID != s.customer && refs.Customer != s.customer && refs.PreviousCustomer != s.customer {
			return nil // it mentions the ID somewhere else
		}
		if !s.objects[r.ObjectID] {
			s.objects[r.ObjectID] = true
			if r.ObjectType == "charge" || r.ObjectType == "payment_intent" {
				s.parents = append(s.parents, r.ObjectID)
				newParents = true
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("could not find the customer's events: %w", err)
	}
	if len(s.parents) == 0 {
		return nil
	}
	from := after
	if newParents {
		from = 0 // a refund or dispute of a newly found charge may be anywhere before
	}
	needles := make([]string, len(s.parents))
	for i, p := range s.parents {
		needles[i] = `"` + p + `"`
	}
	for _, typ := range []string{"refund", "dispute"} {
		err := s.store.Scan(ctx, eventstore.Filter{ObjectType: typ, Mentions: needles, AfterPosition: from,
			UpToPosition: upTo, Payload: true}, func(r *eventstore.Record) error {
			refs, err := domain.ReadRefs(r.Payload)
			if err != nil {
				return fmt.Errorf("event %s at position %d: %w", r.ID, r.Position, err)
			}
			if slices.Contains(s.parents, refs.Charge) || slices.Contains(s.parents, refs.PaymentIntent) {
				s.objects[r.ObjectID] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("could not find the refunds and disputes of the customer's charges: %w", err)
		}
	}
	return nil
}
