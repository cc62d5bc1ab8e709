package domain

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
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
	Livemode   bool
	Account    string                     // the connected account, "" for the platform's own events
	ObjectRaw  json.RawMessage            // data.object as sent
	Prev       map[string]json.RawMessage // data.previous_attributes; nil when absent
	// ListedBy is the payout whose `GET /v1/balance_transactions?payout=` listing returned a
	// balance-transaction snapshot's object (the envelope's ledger_listed_by; see
	// NewBalanceTransactionSnapshot), "" for every other event.
	ListedBy string
	// ThinType is the thin event a thin snapshot was fetched for (the envelope's
	// ledger_thin_type, e.g. v1.invoice.paid; see NewThinSnapshot): the fact ranks as that
	// event within its second. "" for every other event.
	ThinType string

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
	// A repeated key's last value wins and null clears it, exactly as the envelope scanner reads
	// them (NewEvent): the log's columns — which decide whether an event is held — and the row's
	// livemode and account must never disagree about one body.
	str := func(dst *string) error {
		if s.peek() == 'n' {
			s.literal()
			*dst = ""
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
		case "account":
			return str(&f.Account)
		case ListedByKey:
			return str(&f.ListedBy)
		case ThinTypeKey:
			return str(&f.ThinType)
		case "livemode":
			switch lit := string(s.literal()); lit {
			case "true":
				f.Livemode = true
			case "false", "null": // as the envelope scanner: the last value wins, null is false
				f.Livemode = false
			default:
				return fmt.Errorf("livemode is not a boolean")
			}
			return nil
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
//  3. within one (created, rank) group, the previous_attributes chain, anchored on the state the
//     object had before the group: the snapshot of the fact ordered just before it, which is the
//     last event of an earlier second or a lower-rank event of the same second (the creation).
//     The group's first event is the one whose previous_attributes describe the anchor, the next
//     the one whose previous_attributes describe the first's snapshot, and so on; an event with
//     no previous_attributes fits anywhere. Only a whole chain counts, not pairs: two updates
//     that undo each other in one second (cancel_at_period_end set and cleared, a quantity
//     changed and restored) each describe the other's snapshot, and only the anchor says which
//     came first. A group with nothing before it has no anchor; its first event is one that no
//     other event of the group precedes;
//  4. where the chain does not decide — several whole chains fit, or none does (an event in
//     between is missing) — the event ID; such a group is reported (OrderReport, Ambiguity).
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

// typeRanks are the types whose action ranks otherwise elsewhere: a payout's failure and a
// payment intent's success are outcomes that follow its creation (and updates) in the same
// second, not creations; a cancellation closes.
var typeRanks = map[string]int{
	"payout.failed": 4, "payout.canceled": 5,
	"payment_intent.succeeded": 4, "payment_intent.canceled": 5,
}

// Rank is the lifecycle rank of an event type within one second (see the ordering rule).
// Unknown actions rank as updates.
func Rank(eventType string) int {
	if r, ok := typeRanks[eventType]; ok {
		return r
	}
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
	if a.fields == nil {
		// Scan a's snapshot for just the fields b reports instead of decoding all of it: the
		// chain compares every fact of a group with the anchor and with each other, most of a
		// snapshot is never looked at, and a mismatch usually shows in the first field compared.
		found := 0
		s := &scanner{b: a.ObjectRaw}
		err := s.fields(func(key, value []byte) error {
			prev, ok := b.Prev[string(key)]
			if !ok {
				return nil
			}
			if !describes(prev, value) {
				return errDiffers
			}
			if found++; found == len(b.Prev) { // a snapshot has each key once
				return errAllFound
			}
			return nil
		})
		switch err {
		case errAllFound:
			return true
		case errDiffers:
			return false
		}
		// A field b reports is absent from a's snapshot (describes then compares it with
		// null), or the snapshot does not scan: decide on its decoded fields.
	}
	compared := 0
	for k, prev := range b.Prev {
		cur := a.Field(k)
		if cur == nil && a.APIVersion != b.APIVersion {
			// a's version does not render the field (an invoice's paid from basil on): it says
			// nothing about a, and is left out of the comparison.
			continue
		}
		if !describes(prev, cur) {
			return false
		}
		compared++
	}
	return compared > 0 // nothing compared is no evidence that b came after a
}

var (
	errDiffers  = errors.New("a field differs")
	errAllFound = errors.New("every field found")
)

// describes reports whether prev, a field's value in previous_attributes, describes cur, that
// field in an earlier snapshot. Stripe diffs hashes key by key — a metadata key changed reads
// {"metadata":{"plan":"old"}}, one added {"metadata":{"plan":null}} — and sends everything else,
// arrays included, whole. A whole hash (as the simulator sends) is described by itself too.
func describes(prev, cur json.RawMessage) bool {
	if len(prev) > 0 && prev[0] == '{' && len(cur) > 0 && cur[0] == '{' && !bytes.Equal(prev, cur) {
		p, perr := rawFields(prev)
		c, cerr := rawFields(cur)
		if perr == nil && cerr == nil {
			for k, v := range p {
				if !describes(v, c[k]) { // a key absent from cur is null
					return false
				}
			}
			return true
		}
	}
	return jsonEqual(prev, cur)
}

// fits reports whether b can come right after a in a chain: its previous_attributes describe a,
// or it has none and so says nothing about what came before it.
func fits(b, a *Fact) bool { return len(b.Prev) == 0 || follows(b, a) }

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
	if differ(a, b) {
		return false
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x) // maps marshal with sorted keys: a canonical form
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// differ reports, without decoding them, that two JSON values with different bytes cannot be
// equal: values of different kinds, strings without escapes or non-ASCII bytes, true, false and
// null, integers short enough to be exact as the float64 encoding/json decodes them to. Most
// comparisons along the chain are of such values and most of them differ.
func differ(a, b json.RawMessage) bool {
	ka, kb := jsonKind(a), jsonKind(b)
	switch {
	case ka != kb:
		return true
	case ka == '"':
		return isPlain(a) && isPlain(b)
	case ka == '0':
		return shortInteger(a) && shortInteger(b)
	case ka == '{' || ka == '[':
		return false
	}
	return true // true, false, null: one spelling each
}

// jsonKind is the first byte of a JSON value, '0' for any number.
func jsonKind(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	if c := v[0]; c == '-' || '0' <= c && c <= '9' {
		return '0'
	}
	return v[0]
}

func shortInteger(v []byte) bool {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return v[0] != '-' || v[1] != '0' // -0 is left to encoding/json
}

// Ambiguity is a same-second group of one object's events whose order the previous_attributes
// chain could not decide: several orders of them are consistent with it, or none is. Those events
// are then in event-ID order, which may not be the order Stripe made them in, so the object's
// row may not be its state. It is only reported when the order can matter: when the undecided
// events' snapshots (data.object) are not all byte-equal.
type Ambiguity struct {
	Created  int64    // the second of the group
	EventIDs []string // the events whose order was not decided, by event ID
}

// Order sorts one object's facts by the ordering rule. Facts with the same event ID are one event
// delivered more than once and are kept once (an event ID names one event, so they share created
// and type; the log, keyed by event ID, holds one). The result depends only on the set of facts.
func Order(facts []Fact) []Fact {
	out, _ := OrderReport(facts)
	return out
}

// OrderReport is Order, with the groups the chain could not decide (see Ambiguity) in time
// order; nil when there are none, as for nearly every object. It is for the projection engine to
// count them, so that an operator sees how many rows rest on an order their events do not give.
func OrderReport(facts []Fact) ([]Fact, []Ambiguity) {
	// Sort pointers with each fact's rank beside it: a comparison then costs no Rank lookup.
	type keyed struct {
		rank int
		f    *Fact
	}
	keys := make([]keyed, len(facts))
	for i := range facts {
		keys[i] = keyed{facts[i].rank(), &facts[i]}
	}
	slices.SortFunc(keys, func(a, b keyed) int {
		if c := cmp.Compare(a.f.Created, b.f.Created); c != 0 {
			return c
		}
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if c := strings.Compare(a.f.EventID, b.f.EventID); c != 0 {
			return c
		}
		// Copies of one event are equal; this only makes the choice among differing bodies
		// under one ID (which the log, keyed by event ID, cannot hold) independent of arrival.
		return bytes.Compare(a.f.ObjectRaw, b.f.ObjectRaw)
	})
	out := make([]Fact, 0, len(keys))
	for i, k := range keys {
		if i > 0 && k.f.EventID == keys[len(out)-1].f.EventID {
			continue // a copy of one event sorts next to it
		}
		keys[len(out)] = k
		out = append(out, *k.f)
	}
	var amb []Ambiguity
	for start := 0; start < len(out); {
		end := start + 1
		for end < len(out) && out[end].Created == out[start].Created && keys[end].rank == keys[start].rank {
			end++
		}
		if end-start > 1 {
			var anchor *Fact
			if start > 0 {
				anchor = &out[start-1]
			}
			g := out[start:end]
			if u := orderGroup(g, anchor); u < len(g)-1 && !sameSnapshots(g[u:]) {
				a := Ambiguity{Created: g[0].Created}
				for _, f := range g[u:] {
					a.EventIDs = append(a.EventIDs, f.EventID)
				}
				slices.Sort(a.EventIDs)
				amb = append(amb, a)
			}
		}
		start = end
	}
	return out, amb
}

func sameSnapshots(facts []Fact) bool {
	for _, f := range facts[1:] {
		if !bytes.Equal(f.ObjectRaw, facts[0].ObjectRaw) {
			return false
		}
	}
	return true
}

// exhaustiveUpTo bounds the search for whole chains. A group of up to this many facts has every
// order considered, pruned and memoised on (last fact, facts left): at most n·2ⁿ states, 2,048
// for 8. A larger group, which only a pathological burst makes, is followed greedily instead:
// while exactly one fact fits the last, take it; the rest is ordered pair by pair and reported.
// Realistic groups have 2 or 3 facts.
const exhaustiveUpTo = 8

// orderGroup orders one (created, rank) group, sorted by event ID, along the previous_attributes
// chain from anchor (nil when nothing comes before the group), and returns the index from which
// the chain did not decide the order (len(g) when it decided all of it).
//
// When several whole chains fit, each undecided step takes the fitting fact with the smallest
// event ID that still leads to a whole chain, so the order is still one the events allow. When
// none fits, the group is ordered pair by pair as the rule did before it followed whole chains.
func orderGroup(g []Fact, anchor *Fact) int {
	n := len(g)
	if n > exhaustiveUpTo {
		return followGreedily(g, anchor)
	}
	// follow[j] is the set of facts whose snapshots g[j]'s previous_attributes describe.
	var follow [exhaustiveUpTo]uint8
	for j := range g {
		for i := range g {
			if i != j && follows(&g[j], &g[i]) {
				follow[j] |= 1 << i
			}
		}
	}
	c := chains{n: n, memo: make([]uint8, n<<n)}
	for i := range g {
		for j := range g {
			if j != i && (len(g[j].Prev) == 0 || follow[j]&(1<<i) != 0) {
				c.next[i] |= 1 << j
			}
		}
	}
	all := uint8(1<<n - 1)
	var first uint8
	for j := range g {
		if anchor != nil {
			if fits(&g[j], anchor) {
				first |= 1 << j
			}
		} else if !preceded(follow[:n], j) {
			first |= 1 << j
		}
	}
	if anchor == nil && first == 0 {
		first = all // every fact is preceded by another: a cycle, and no fact is first
	}
	step := c.viable(first, all)
	if step == 0 {
		pairwise(g)
		return 0
	}
	undecided := n
	var order [exhaustiveUpTo]uint8
	left := all
	for pos := range n {
		if step&(step-1) != 0 && undecided == n {
			undecided = pos
		}
		j := bits.TrailingZeros8(step) // the smallest event ID among the fitting facts
		order[pos] = uint8(j)
		left &^= 1 << j
		step = c.viable(c.next[j]&left, left)
	}
	var was [exhaustiveUpTo]Fact
	copy(was[:], g)
	for pos, j := range order[:n] {
		g[pos] = was[j]
	}
	return undecided
}

// preceded reports whether g[j] strictly follows another fact of its group (follow as in
// orderGroup): its previous_attributes describe that fact, and not the other way round.
func preceded(follow []uint8, j int) bool {
	for set := follow[j]; set != 0; set &= set - 1 {
		if i := bits.TrailingZeros8(set); follow[i]&(1<<j) == 0 {
			return true
		}
	}
	return false
}

// chains answers, for one group, whether the facts left can still be laid out as a whole chain
// after a given fact.
type chains struct {
	n    int
	next [exhaustiveUpTo]uint8 // next[i]: the facts that fit right after g[i]
	memo []uint8               // by last<<n | left: 0 not known, 1 a chain exists, 2 none
}

// viable is the subset of candidates after which the rest of left can still be chained.
func (c *chains) viable(candidates, left uint8) uint8 {
	var v uint8
	for set := candidates; set != 0; set &= set - 1 {
		j := bits.TrailingZeros8(set)
		if c.completes(j, left&^(1<<j)) {
			v |= 1 << j
		}
	}
	return v
}

// completes reports whether the facts in left can follow g[last] as a whole chain.
func (c *chains) completes(last int, left uint8) bool {
	if left == 0 {
		return true
	}
	k := last<<c.n | int(left)
	if m := c.memo[k]; m != 0 {
		return m == 1
	}
	ok := false
	for set := c.next[last] & left; set != 0; set &= set - 1 {
		if j := bits.TrailingZeros8(set); c.completes(j, left&^(1<<j)) {
			ok = true
			break
		}
	}
	c.memo[k] = 2
	if ok {
		c.memo[k] = 1
	}
	return ok
}

// followGreedily orders a group too large to search: while exactly one of the facts left fits
// after the last one placed (the anchor, or for the first place a fact no other precedes), it is
// placed; the rest is ordered pair by pair. It returns where the chain stopped deciding.
func followGreedily(g []Fact, anchor *Fact) int {
	last := anchor
	for pos := range g {
		pick := -1
		for c := pos; c < len(g); c++ {
			var ok bool
			if last != nil {
				ok = fits(&g[c], last)
			} else {
				ok = true
				for o := pos; o < len(g); o++ {
					if o != c && follows(&g[c], &g[o]) && !follows(&g[o], &g[c]) {
						ok = false
						break
					}
				}
			}
			if ok && pick >= 0 {
				pick = -1 // more than one fits: undecided
				break
			}
			if ok {
				pick = c
			}
		}
		if pick < 0 {
			pairwise(g[pos:])
			return pos
		}
		f := g[pick]
		copy(g[pos+1:pick+1], g[pos:pick]) // the others keep their ID order
		g[pos] = f
		last = &g[pos]
	}
	return len(g)
}

// pairwise orders facts (sorted by event ID) by the chain pair by pair: repeatedly the first fact
// that no other remaining fact strictly precedes. Two facts that each follow the other, as a
// toggle and its revert do, stay in ID order: that is why whole chains are tried first.
func pairwise(group []Fact) {
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
