package domain

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
)

// MovementKind classifies a change of a subscription's MRR.
type MovementKind string

const (
	MovementNew          MovementKind = "new"          // first MRR of the subscription
	MovementExpansion    MovementKind = "expansion"    // MRR went up
	MovementContraction  MovementKind = "contraction"  // MRR went down, not to zero
	MovementChurn        MovementKind = "churn"        // MRR went to zero (canceled, unpaid, past_due too long…)
	MovementReactivation MovementKind = "reactivation" // MRR came back after churn
	MovementPause        MovementKind = "pause"        // MRR went to zero for paused collection (paused=zero only)
	MovementResume       MovementKind = "resume"       // MRR came back when the pause ended
)

// Movement is one change of a subscription's MRR, when it took effect and the events that
// caused it, so finance can recompute any metric from the log of movements.
type Movement struct {
	Subscription string
	Customer     string
	Currency     string
	Seq          int // its place in the subscription's log, from 0
	Kind         MovementKind
	Amount       int64 // MRRAfter - MRRBefore, minor units
	MRRBefore    int64
	MRRAfter     int64
	Settings     string // MRRSettings.String() of the settings it was computed under
	// SourceEvents are the events of the instant (for a movement an event caused, the
	// customer's event for a change of its discount), or the event whose state was in force
	// (for one a rule timed: a discount's end, past_due + N days, the period end of an
	// immediate cancellation).
	SourceEvents []string
	At           int64  // effective time, Unix seconds
	PeriodStart  *int64 // the service period's start in force at At (FX converts at its date)
}

// MRRState is what a subscription's valuation reads after one of its events: the same under
// every setting, so a settings change recomputes movements from these without the events.
type MRRState struct {
	EventID     string
	At          int64 // the event's created
	Status      string
	Paused      bool // pause_collection set
	Terminal    bool // a deletion: anything after it is a late echo
	PeriodStart *int64
	PeriodEnd   *int64
	Items       []ItemValue // the licensed recurring items
	// Discounts are the subscription's own; when OwnDiscounts is false, its customer's apply.
	Discounts    []Discount
	OwnDiscounts bool
	Unvalued     string   // why the items cannot be valued; "" when they can
	Metered      []string // prices left out of MRR as metered
}

// ItemValue is one licensed item: its value per month before discounts (exact), the month
// factor of its interval (for amount_off coupons), and its own discounts.
type ItemValue struct {
	Monthly   *big.Rat
	Factor    *big.Rat
	Discounts []Discount
}

// fastFractions is off only in the test that holds valueAtFast to math/big.
var fastFractions = true

// valueAtFast is valueAt in int64 fractions; false when a step would overflow (or a value does
// not fit), and valueAt then computes with math/big.
func (s *MRRState) valueAtFast(t int64, currency string, set MRRSettings, customer func(int64) *Discount) (int64, string, bool) {
	var total frac = frac{0, 1}
	apply := func(d *Discount, v frac, factor *big.Rat) (frac, string, bool) {
		if d.Unvalued != "" {
			return v, d.Unvalued, true
		}
		if !set.counts(d) || !d.inForce(t) {
			return v, "", true
		}
		var ok bool
		switch {
		case d.PercentOff != nil:
			p, fits := fracOf(d.Percent())
			if !fits {
				return v, "", false
			}
			// v × (100 − p) / 100
			rest, ok1 := frac{100*p.d - p.n, 100 * p.d}, p.n <= math.MaxInt64/2 && p.d <= math.MaxInt64/200
			if !ok1 {
				return v, "", false
			}
			if rest.n < 0 {
				rest.n = 0
			}
			if v, ok = v.mul(rest); !ok {
				return v, "", false
			}
		case d.AmountOff != nil:
			amt, found := int64(0), false
			if d.Currency != nil && *d.Currency == currency {
				amt, found = *d.AmountOff, true
			} else if a, in := d.AmountOffIn[currency]; in {
				amt, found = a, true
			}
			if !found {
				return v, fmt.Sprintf("coupon %s has no amount_off in %s", d.Coupon, currency), true
			}
			off := frac{amt, 1}
			if factor != nil {
				f, fits := fracOf(factor)
				if !fits {
					return v, "", false
				}
				if off, ok = off.mul(f); !ok {
					return v, "", false
				}
			}
			if v, ok = v.add(frac{-off.n, off.d}); !ok {
				return v, "", false
			}
		}
		if v.n < 0 {
			v = frac{0, 1}
		}
		return v, "", true
	}
	for _, it := range s.Items {
		v, fits := fracOf(it.Monthly)
		if !fits {
			return 0, "", false
		}
		for k := range it.Discounts {
			var why string
			var ok bool
			if v, why, ok = apply(&it.Discounts[k], v, it.Factor); !ok || why != "" {
				return 0, why, ok
			}
		}
		var ok bool
		if total, ok = total.add(v); !ok {
			return 0, "", false
		}
	}
	var factor *big.Rat
	if len(s.Items) > 0 {
		factor = s.Items[0].Factor
	}
	var why string
	ok := true
	if s.OwnDiscounts {
		for k := range s.Discounts {
			if total, why, ok = apply(&s.Discounts[k], total, factor); !ok || why != "" {
				return 0, why, ok
			}
		}
	} else if d := customer(t); d != nil {
		if total, why, ok = apply(d, total, factor); !ok || why != "" {
			return 0, why, ok
		}
	}
	return total.floor(), "", true
}

func (s *MRRState) unvalued(why string) {
	if s.Unvalued == "" {
		s.Unvalued = why
	}
}

// CustomerDiscount is the customer's discount from one of its events on (nil: none).
type CustomerDiscount struct {
	At       int64     `json:"at"`
	EventID  string    `json:"event_id"` // the customer's event that changed it
	Discount *Discount `json:"discount"`
}

// SubscriptionHistory is a subscription's valuation inputs after each of its events, in the
// ordering rule's order, up to its deletion.
type SubscriptionHistory struct {
	ID, Customer, Currency string
	States                 []MRRState
	echoes                 Sensitivity // of the events after a deletion (Sensitivity); not kept in the inputs
}

const day = 86400

// Value sets row.MRR (as of the newest of the subscription's events and its customer's discount
// changes: what the ledger knows now) and row.Attention, and returns the
// movement log, under settings set with the customer's discounts (its history, oldest first).
func (h *SubscriptionHistory) Value(row *SubscriptionRow, customer []CustomerDiscount, set MRRSettings) []Movement {
	set = set.WithDefaults()
	moves, mrr, why := h.log(customer, set)
	row.MRR = mrr
	var notes []string
	if row.Attention != nil {
		notes = append(notes, *row.Attention)
	}
	if why != "" {
		notes = append(notes, "MRR not valued: "+why)
	}
	if n := len(h.States); n > 0 && len(h.States[n-1].Metered) > 0 {
		notes = append(notes, "metered prices left out of MRR: "+strings.Join(h.States[n-1].Metered, ", "))
	}
	row.Attention = nil
	if len(notes) > 0 {
		a := strings.Join(notes, "; ")
		row.Attention = &a
	}
	return moves
}

// log walks the subscription's time line: each event's instant, and within the time an event's
// state is in force, every instant a rule fixes (a discount's start or end, a customer's
// discount changing, past_due + N days, the period end of an immediate cancellation). The MRR is
// constant between those instants, so evaluating it at each and recording each change is exact.
func (h *SubscriptionHistory) log(customer []CustomerDiscount, set MRRSettings) (moves []Movement, mrr *int64, why string) {
	settings := set.String()
	var (
		cur                int64 // the log's MRR so far
		churned, inPause   bool
		pastDueSince       int64
		canceledEnd        *int64 // the period end an immediate cancellation keeps its MRR until
		keep               int64
		prevStatus         string
		lastVal            *int64
		lastWhy            string
		states             = h.States
		statusOf           = func(s *MRRState) string { return cond(s.Terminal, "canceled", s.Status) }
		customerDiscountAt = func(t int64) *Discount { return customerAt(customer, t) }
		asOf               int64 // the row's figure is the MRR as of the newest input
	)
	for k := range states {
		asOf = max(asOf, states[k].At)
	}
	for k := range customer {
		asOf = max(asOf, customer[k].At)
	}
	for i := 0; i < len(states); {
		// The instant At: its state is the last of its events.
		j := i
		for j+1 < len(states) && states[j+1].At == states[i].At {
			j++
		}
		s := &states[j]
		var ids []string
		for k := i; k <= j; k++ {
			ids = append(ids, states[k].EventID)
		}
		next := int64(1 << 62)
		if j+1 < len(states) {
			next = states[j+1].At
		}
		status := statusOf(s)
		if status == "past_due" && prevStatus != "past_due" {
			pastDueSince = s.At
		}
		if status == "canceled" && prevStatus != "canceled" {
			canceledEnd, keep = nil, cur
			end := s.PeriodEnd
			if end == nil && i > 0 {
				end = states[i-1].PeriodEnd
			}
			if end != nil && *end > s.At {
				canceledEnd = end
			}
		}
		prevStatus = status
		// The instants this state is in force at.
		points := []int64{s.At}
		add := func(t *int64) {
			if t != nil && *t > s.At && *t < next {
				points = append(points, *t)
			}
		}
		for _, it := range s.Items {
			for k := range it.Discounts {
				add(it.Discounts[k].Start)
				add(it.Discounts[k].End)
			}
		}
		for k := range s.Discounts {
			add(s.Discounts[k].Start)
			add(s.Discounts[k].End)
		}
		if !s.OwnDiscounts {
			for k := range customer {
				add(&customer[k].At)
				if d := customer[k].Discount; d != nil {
					add(d.Start)
					add(d.End)
				}
			}
		}
		if status == "past_due" && set.PastDueDays > 0 {
			t := pastDueSince + int64(set.PastDueDays)*day
			add(&t)
		}
		if status == "canceled" && set.ChurnAt == ChurnAtPeriodEnd {
			add(canceledEnd)
		}
		slices.Sort(points)
		points = slices.Compact(points)
		for _, t := range points {
			var v int64
			var pause bool
			var unvalued string
			switch {
			case status == "canceled" && set.ChurnAt == ChurnAtPeriodEnd && canceledEnd != nil && t < *canceledEnd:
				v = keep
			case status != "active" && status != "past_due":
			case status == "past_due" && set.PastDueDays > 0 && t >= pastDueSince+int64(set.PastDueDays)*day:
			case s.Paused && set.Paused == PausedZero:
				pause = true
			default:
				v, unvalued = s.valueAt(t, h.Currency, set, customerDiscountAt)
			}
			if t <= asOf {
				lastVal, lastWhy = nil, unvalued
				if unvalued == "" {
					lastVal = &v
				}
			}
			if unvalued != "" {
				continue // an unvalued instant moves nothing: the log holds its last figure
			}
			if v == cur {
				if v == 0 && !pause && inPause {
					inPause, churned = false, true // canceled while paused: a later return is a reactivation
				}
				continue
			}
			m := Movement{Subscription: h.ID, Customer: h.Customer, Currency: h.Currency, Seq: len(moves),
				Amount: v - cur, MRRBefore: cur, MRRAfter: v, Settings: settings, At: t, PeriodStart: s.PeriodStart,
				SourceEvents: ids}
			if t != s.At {
				m.SourceEvents = []string{s.EventID}
				if !s.OwnDiscounts {
					for k := range customer { // the customer's event that changed its discount then
						if customer[k].At == t && customer[k].EventID != "" {
							m.SourceEvents = []string{customer[k].EventID}
						}
					}
				}
			}
			switch {
			case v == 0 && pause:
				m.Kind, inPause = MovementPause, true
			case v == 0:
				m.Kind, churned, inPause = MovementChurn, true, false
			case cur == 0 && inPause:
				m.Kind, inPause = MovementResume, false
			case cur == 0 && churned:
				m.Kind = MovementReactivation
			case cur == 0:
				m.Kind = MovementNew
			case v > cur:
				m.Kind = MovementExpansion
			default:
				m.Kind = MovementContraction
			}
			moves = append(moves, m)
			cur = v
		}
		if s.Terminal {
			break
		}
		i = j + 1
	}
	return moves, lastVal, lastWhy
}

func cond[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

// customerAt is the customer's discount in its latest event at or before t.
func customerAt(h []CustomerDiscount, t int64) *Discount {
	var d *Discount
	for k := range h {
		if h[k].At > t {
			break
		}
		d = h[k].Discount
	}
	return d
}

// valueAt is the items' value at t with the discounts in force, rounded down once; a reason
// when something cannot be valued.
func (s *MRRState) valueAt(t int64, currency string, set MRRSettings, customer func(int64) *Discount) (int64, string) {
	if s.Unvalued != "" {
		return 0, s.Unvalued
	}
	if fastFractions {
		if v, why, ok := s.valueAtFast(t, currency, set, customer); ok {
			return v, why
		}
	}
	total := new(big.Rat)
	v := new(big.Rat)
	for _, it := range s.Items {
		v.Set(it.Monthly)
		for k := range it.Discounts {
			if why := applyIfInForce(&it.Discounts[k], v, t, currency, set, it.Factor); why != "" {
				return 0, why
			}
		}
		total.Add(total, v)
	}
	var factor *big.Rat
	if len(s.Items) > 0 {
		factor = s.Items[0].Factor
	}
	if s.OwnDiscounts {
		for k := range s.Discounts {
			if why := applyIfInForce(&s.Discounts[k], total, t, currency, set, factor); why != "" {
				return 0, why
			}
		}
	} else if d := customer(t); d != nil {
		if why := applyIfInForce(d, total, t, currency, set, factor); why != "" {
			return 0, why
		}
	}
	floor := new(big.Int).Div(total.Num(), total.Denom()) // Euclidean over a positive denominator: the floor
	if !floor.IsInt64() {
		return 0, fmt.Sprintf("an MRR of %s minor units does not fit in 64 bits", floor)
	}
	return floor.Int64(), ""
}

func applyIfInForce(d *Discount, remains *big.Rat, t int64, currency string, set MRRSettings, factor *big.Rat) string {
	if d.Unvalued != "" {
		return d.Unvalued
	}
	if !set.counts(d) || !d.inForce(t) {
		return ""
	}
	if err := d.apply(remains, currency, factor); err != nil {
		return err.Error()
	}
	return ""
}

// Movements is a subscription's movement log from the set of its events under the default
// settings and without its customer's discount (the projection adds both).
func Movements(facts []Fact) ([]Movement, error) {
	row, h, err := FoldSubscriptionHistory(facts)
	if err != nil {
		return nil, err
	}
	return h.Value(&row, nil, MRRSettings{}), nil
}

// FoldSubscriptionHistory is the subscription's row (as FoldSubscription's, before valuation)
// and its valuation inputs after each event, decoding each event once: replay folds every
// subscription this way. When an event cannot be decoded, the error is FoldSubscription's
// for the latest event, or names the event.
func FoldSubscriptionHistory(facts []Fact) (SubscriptionRow, SubscriptionHistory, error) {
	ordered := Order(facts)
	if len(ordered) == 0 {
		return SubscriptionRow{}, SubscriptionHistory{}, fmt.Errorf("no events")
	}
	latest := len(ordered) - 1 // Latest's rule: the last, or the last deletion once there is one
	for i := len(ordered) - 1; i >= 0; i-- {
		if terminal(ordered[i].Type) {
			latest = i
			break
		}
	}
	row, st, err := foldEvent(ordered[latest])
	if err != nil {
		return SubscriptionRow{}, SubscriptionHistory{}, err
	}
	h := SubscriptionHistory{ID: row.ID, Customer: row.Customer, Currency: row.Currency}
	for i, f := range ordered {
		if i == latest {
			h.States = append(h.States, st)
		} else {
			_, s, err := foldEvent(f)
			if err != nil {
				return SubscriptionRow{}, SubscriptionHistory{}, fmt.Errorf("event %s: %w", f.EventID, err)
			}
			h.States = append(h.States, s)
		}
		if terminal(f.Type) {
			// A deletion is terminal; anything after it is a late echo. An echo that arrived
			// before the deletion was folded into the versions known until then, so what the
			// settings can act on in it counts in the history's sensitivity.
			for _, e := range ordered[i+1:] {
				if _, s, err := foldEvent(e); err == nil {
					h.echoes |= (&SubscriptionHistory{States: []MRRState{s}}).Sensitivity()
				} else {
					h.echoes |= SensitiveAll
				}
			}
			break
		}
	}
	fillStateCoupons(&row, h.States)
	row.Coupons = h.Coupons()
	return row, h, nil
}

// fillStateCoupons values the discounts of states (in the ordering rule's order) that name
// their coupon by ID only with the terms that state or an earlier one embeds (see needsCoupon),
// and row's (the latest state's) with all of them. Only earlier states: a state's valuation, and
// so every movement at its time, is what a fold of the log cut there gives — an event that
// embeds the coupon later values the states from its own on.
func fillStateCoupons(row *SubscriptionRow, states []MRRState) {
	var known map[string]Discount
	for i := range states {
		known = coupons(known, states[i].Discounts)
		for _, it := range states[i].Items {
			known = coupons(known, it.Discounts)
		}
		if len(known) == 0 {
			continue
		}
		fillCoupons(states[i].Discounts, known)
		for _, it := range states[i].Items {
			fillCoupons(it.Discounts, known)
		}
	}
	if len(known) == 0 {
		return
	}
	fillCoupons(row.Discounts, known)
	for i := range row.Items {
		fillCoupons(row.Items[i].Discounts, known)
	}
}
