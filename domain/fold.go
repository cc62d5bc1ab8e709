package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Fact is one event as the read models see it: which object it is about, when, and the object's
// snapshot with the previous values of what changed.
type Fact struct {
	EventID    string
	Type       string
	Created    int64
	APIVersion string
	ObjectRaw  json.RawMessage            // data.object as sent
	Prev       map[string]json.RawMessage // data.previous_attributes; nil when absent

	fields map[string]json.RawMessage // data.object's top-level fields, decoded on first use
}

// Field is one top-level field of data.object as raw JSON (nil when absent). The object is
// decoded on the first call only: most facts never need it, and replay decodes millions.
func (f *Fact) Field(name string) json.RawMessage {
	if f.fields == nil {
		fields, err := rawFields(f.ObjectRaw)
		if err != nil {
			fields = map[string]json.RawMessage{}
		}
		f.fields = fields
	}
	return f.fields[name]
}

// DecodeFact reads the parts of an event the reducers use. It walks the event with the envelope
// scanner and keeps data.object as raw bytes, so replay pays for one pass over each payload.
func DecodeFact(raw []byte) (Fact, error) {
	if !json.Valid(raw) {
		return Fact{}, fmt.Errorf("could not decode event: not valid JSON")
	}
	return decodeFact(raw)
}

// DecodeStoredFact is DecodeFact for payloads read back from the log, which were checked with
// json.Valid when they were appended and cannot change since (the log is append-only and its
// hash chain shows any edit): it skips the second validation pass, a quarter of replay's decoding
// time. Should the scanner still trip on a payload, DecodeFact gives the definitive answer.
func DecodeStoredFact(raw []byte) (f Fact, err error) {
	defer func() {
		if recover() != nil {
			f, err = DecodeFact(raw)
		}
	}()
	if f, err = decodeFact(raw); err != nil {
		return DecodeFact(raw)
	}
	return f, nil
}

func decodeFact(raw []byte) (Fact, error) {
	var f Fact
	var prevRaw json.RawMessage
	s := &scanner{b: raw}
	str := func(dst *string) error {
		if s.peek() == 'n' {
			s.literal()
			return nil
		}
		v, err := s.str()
		*dst = v
		return err
	}
	rawValue := func() json.RawMessage {
		s.ws()
		start := s.i
		if s.skip() != nil {
			return nil
		}
		return json.RawMessage(raw[start:s.i])
	}
	err := s.object(func(key string) error {
		switch key {
		case "id":
			return str(&f.EventID)
		case "type":
			return str(&f.Type)
		case "api_version":
			return str(&f.APIVersion)
		case "created":
			n, err := strconv.ParseInt(string(s.literal()), 10, 64)
			if err != nil {
				return fmt.Errorf("created is not an integer")
			}
			f.Created = n
			return nil
		case "data":
			if s.peek() != '{' {
				return s.skip()
			}
			return s.object(func(key string) error {
				switch key {
				case "object":
					f.ObjectRaw = rawValue()
				case "previous_attributes":
					prevRaw = rawValue()
				default:
					return s.skip()
				}
				return nil
			})
		}
		return s.skip()
	})
	if err != nil {
		return Fact{}, fmt.Errorf("could not decode event %s: %w", f.EventID, err)
	}
	if len(f.ObjectRaw) == 0 || f.ObjectRaw[0] != '{' {
		return Fact{}, fmt.Errorf("event %s has no data.object", f.EventID)
	}
	if len(prevRaw) > 0 && prevRaw[0] == '{' {
		prev, err := rawFields(prevRaw)
		if err != nil {
			return Fact{}, fmt.Errorf("event %s: previous_attributes: %w", f.EventID, err)
		}
		f.Prev = prev
	}
	return f, nil
}

// The ordering rule. A read model is a function of the *set* of an object's events, never of the
// order they arrived in. Stripe's `created` has one-second resolution and same-second bursts are
// normal (a subscription's first invoice is created, finalized and paid in one second), so events
// of one object are ordered by:
//
//  1. created;
//  2. lifecycle rank within that second: creation first, then finalisation, updates, payment
//     outcomes, closing, deletion last (Rank);
//  3. the previous_attributes chain: B follows A when every previous value B reports equals A's
//     value — two updates in one second are ordered by what each says it changed from;
//  4. as a last resort, the event ID, so the result is at least always the same.
//
// And a deletion is terminal: once an object has a *.deleted event, a late update cannot bring it
// back, whatever its timestamp.

var ranks = map[string]int{
	"created": 0, "succeeded": 0, "failed": 0, "pending": 0, "completed": 0,
	"finalized": 1, "captured": 1, "funds_withdrawn": 1, "trial_will_end": 1,
	"updated": 2, "paused": 2, "resumed": 2, "expired": 2,
	"payment_failed": 3, "refunded": 3, "async_payment_failed": 3,
	"paid": 4, "payment_succeeded": 4, "async_payment_succeeded": 4,
	"voided": 5, "marked_uncollectible": 5, "closed": 8, "funds_reinstated": 9,
	"deleted": 10,
}

// Rank is the lifecycle rank of an event type within one second (see the ordering rule).
// Unknown actions rank as updates.
func Rank(eventType string) int {
	action := eventType[strings.LastIndexByte(eventType, '.')+1:]
	// charge.failed is a payment outcome of a new charge; invoice.payment_failed a later step.
	if r, ok := ranks[action]; ok {
		return r
	}
	return ranks["updated"]
}

func terminal(eventType string) bool { return strings.HasSuffix(eventType, ".deleted") }

// follows reports whether b's previous_attributes describe a's object: b happened after a.
func follows(b, a *Fact) bool {
	if len(b.Prev) == 0 {
		return false
	}
	for k, prev := range b.Prev {
		if !jsonEqual(prev, a.Field(k)) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b json.RawMessage) bool {
	if a == nil {
		a = json.RawMessage("null")
	}
	if b == nil {
		b = json.RawMessage("null")
	}
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x) // maps marshal with sorted keys: a canonical form
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// Order sorts one object's facts by the ordering rule (duplicates by event ID are dropped). The
// result depends only on the set of facts.
func Order(facts []Fact) []Fact {
	byID := make(map[string]Fact, len(facts))
	for _, f := range facts {
		byID[f.EventID] = f
	}
	out := make([]Fact, 0, len(byID))
	for _, f := range byID {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Created != b.Created {
			return a.Created < b.Created
		}
		if ra, rb := Rank(a.Type), Rank(b.Type); ra != rb {
			return ra < rb
		}
		return a.EventID < b.EventID
	})
	// Within each (created, rank) group, order along the previous_attributes chain: repeatedly
	// take the fact no other remaining fact precedes, the smallest ID among several.
	for start := 0; start < len(out); {
		end := start + 1
		for end < len(out) && out[end].Created == out[start].Created && Rank(out[end].Type) == Rank(out[start].Type) {
			end++
		}
		if end-start > 1 {
			chainOrder(out[start:end])
		}
		start = end
	}
	return out
}

// chainOrder orders one same-second, same-rank group (already sorted by ID) so that a fact comes
// after every fact it follows, when the chain says so without contradiction.
func chainOrder(group []Fact) {
	rest := append([]Fact(nil), group...)
	for i := range group {
		pick := 0
		for c := range rest {
			preceded := false
			for o := range rest {
				if o != c && follows(&rest[c], &rest[o]) && !follows(&rest[o], &rest[c]) {
					preceded = true
					break
				}
			}
			if !preceded {
				pick = c
				break
			}
		}
		group[i] = rest[pick]
		rest = append(rest[:pick], rest[pick+1:]...)
	}
}

// Latest is the fact whose snapshot is the object's current state: the last by the ordering
// rule, except that a deletion, once there is one, stays the answer.
func Latest(facts []Fact) (Fact, bool) {
	ordered := Order(facts)
	if len(ordered) == 0 {
		return Fact{}, false
	}
	for i := len(ordered) - 1; i >= 0; i-- {
		if terminal(ordered[i].Type) {
			return ordered[i], true
		}
	}
	return ordered[len(ordered)-1], true
}
