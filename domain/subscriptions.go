package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// SubscriptionRow is a subscription as finance reads it. Money is in the currency's minor unit.
type SubscriptionRow struct {
	ID                 string
	Customer           string
	Status             string
	Currency           string
	Items              []SubscriptionItemRow
	TrialStart         *int64
	TrialEnd           *int64
	CurrentPeriodStart *int64
	CurrentPeriodEnd   *int64
	CancelAtPeriodEnd  bool
	CancelAt           *int64
	CanceledAt         *int64
	EndedAt            *int64
	PauseBehavior      *string // pause_collection.behavior, nil when not paused
	Paused             bool    // pause_collection is set
	Metadata           map[string]string
	// Discounts are the subscription's own discounts (discounts[], or the legacy discount),
	// in Stripe's order; nil when it has none (the customer's discount then applies).
	Discounts []Discount
	// Coupons are the IDs of every coupon its discounts (its own and its items') have named, in
	// any of its events, sorted; nil when none. The valuation reads their terms from the
	// coupons read model where an event names a coupon without embedding it (clover on).
	Coupons []string
	// MRR is the monthly recurring revenue as of the latest event, by the MRR settings (README,
	// "Revenue metrics"); nil when the subscription cannot be valued (Attention says why).
	MRR *int64
	// Attention says why a person should look at the row (nil when nothing): e.g. an event of
	// another API version whose billing period could not be found, a price shape that cannot be
	// valued, a metered price left out of MRR.
	Attention *string
	Created   int64 // when the subscription was created in Stripe
	// AppUserID is derived by the projection from the subscription, its Checkout session, its
	// customer and the identity setting (Identity.AppUserID); nil when nothing identifies it.
	AppUserID *string
	Provenance
}

// SubscriptionItemRow is one price on a subscription, with its current quantity and the shape
// of its price (what the valuation reads).
type SubscriptionItemRow struct {
	ID                string             `json:"id"`
	Price             string             `json:"price"`
	Product           string             `json:"product"`
	Quantity          int64              `json:"quantity"`
	Interval          string             `json:"interval"`
	IntervalCount     int64              `json:"interval_count"`
	UsageType         string             `json:"usage_type"`
	BillingScheme     *string            `json:"billing_scheme"`
	TiersMode         *string            `json:"tiers_mode"`
	UnitAmount        *int64             `json:"unit_amount"`
	UnitAmountDecimal *Decimal           `json:"unit_amount_decimal"`
	TransformQuantity *TransformQuantity `json:"transform_quantity"`
	Tiers             []PriceTier        `json:"tiers,omitempty"`
	Discounts         []Discount         `json:"discounts,omitempty"`
	// The item's own billing period, from API version 2025-03-31 (basil), where each item has
	// one (a mixed-interval subscription's differ); left out before.
	CurrentPeriodStart *int64 `json:"current_period_start,omitempty"`
	CurrentPeriodEnd   *int64 `json:"current_period_end,omitempty"`
}

type rawSubscription struct {
	ID                 string            `json:"id"`
	Customer           string            `json:"customer"`
	Status             string            `json:"status"`
	Currency           string            `json:"currency"`
	Created            int64             `json:"created"`
	TrialStart         *int64            `json:"trial_start"`
	TrialEnd           *int64            `json:"trial_end"`
	CurrentPeriodStart *int64            `json:"current_period_start"`
	CurrentPeriodEnd   *int64            `json:"current_period_end"`
	CancelAtPeriodEnd  bool              `json:"cancel_at_period_end"`
	CancelAt           *int64            `json:"cancel_at"`
	CanceledAt         *int64            `json:"canceled_at"`
	EndedAt            *int64            `json:"ended_at"`
	Metadata           map[string]string `json:"metadata"`
	PauseCollection    *struct {
		Behavior string `json:"behavior"`
	} `json:"pause_collection"`
	Discount  *rawDiscount  `json:"discount"`
	Discounts []discountRef `json:"discounts"`
	Items     struct {
		Data []struct {
			ID                 string        `json:"id"`
			Quantity           int64         `json:"quantity"`
			CurrentPeriodStart *int64        `json:"current_period_start"`
			CurrentPeriodEnd   *int64        `json:"current_period_end"`
			Discounts          []discountRef `json:"discounts"`
			Price              rawPrice      `json:"price"`
		} `json:"data"`
	} `json:"items"`
}

// FoldSubscription is a subscription's row from the set of its events, its MRR by the default
// settings and without its customer's discount (the projection derives both; see
// SubscriptionHistory).
func FoldSubscription(facts []Fact) (SubscriptionRow, error) { return FoldSubscriptionWith(facts, nil) }

// FoldSubscriptionWith is FoldSubscription with the terms of the coupons its discounts may name
// by ID (CouponTerms; nil: none known), as the projection values it with ledger.coupons.
func FoldSubscriptionWith(facts []Fact, coupons map[string]Discount) (SubscriptionRow, error) {
	f, ok := Latest(facts)
	if !ok {
		return SubscriptionRow{}, fmt.Errorf("no events")
	}
	row, st, err := foldEvent(f)
	if err != nil {
		return SubscriptionRow{}, err
	}
	// The coupons the subscription's other events embed value the latest's (fillStateCoupons);
	// an event after a deletion is a late echo, as FoldSubscriptionHistory reads it.
	states := []MRRState{}
	for _, o := range Order(facts) {
		if _, s, err := foldEvent(o); err == nil {
			states = append(states, s)
		}
		if terminal(o.Type) {
			break
		}
	}
	states = append(states, st)
	fillStateCoupons(&row, states)
	row.Coupons = (&SubscriptionHistory{States: states}).Coupons()
	h := SubscriptionHistory{ID: row.ID, Customer: row.Customer, Currency: row.Currency, States: []MRRState{st}}
	if coupons != nil {
		h.FillCoupons(coupons)
		row.FillCoupons(coupons)
	}
	h.Value(&row, nil, MRRSettings{})
	return row, nil
}

// foldEvent is the subscription's row and valuation inputs after one event.
func foldEvent(f Fact) (SubscriptionRow, MRRState, error) {
	var s rawSubscription
	if err := decodeObject(f, &s); err != nil {
		return SubscriptionRow{}, MRRState{}, err
	}
	row := SubscriptionRow{
		ID: s.ID, Customer: s.Customer, Status: s.Status, Currency: s.Currency,
		TrialStart: s.TrialStart, TrialEnd: s.TrialEnd,
		CurrentPeriodStart: s.CurrentPeriodStart, CurrentPeriodEnd: s.CurrentPeriodEnd,
		CancelAtPeriodEnd: s.CancelAtPeriodEnd, CancelAt: s.CancelAt, CanceledAt: s.CanceledAt, EndedAt: s.EndedAt,
		Metadata: s.Metadata, Created: s.Created, Provenance: provenance(f),
	}
	if s.PauseCollection != nil {
		row.PauseBehavior, row.Paused = &s.PauseCollection.Behavior, true
	}
	st := MRRState{EventID: f.EventID, At: f.Created, Status: s.Status, Paused: row.Paused, Terminal: terminal(f.Type)}
	// Unexpanded IDs in a discounts list are found among the discount objects the same
	// subscription carries.
	known := map[string]Discount{}
	var legacy *Discount
	if s.Discount != nil {
		d := readDiscount(s.Discount)
		known[d.ID], legacy = d, &d
	}
	for _, it := range s.Items.Data {
		for _, r := range it.Discounts {
			if r.Obj != nil {
				known[r.ID] = readDiscount(r.Obj)
			}
		}
	}
	switch {
	case s.Discounts != nil:
		if len(s.Discounts) > 0 {
			row.Discounts = resolve(s.Discounts, known)
		}
	case legacy != nil:
		row.Discounts = []Discount{*legacy}
	}
	st.Discounts, st.OwnDiscounts = row.Discounts, len(row.Discounts) > 0
	for _, it := range s.Items.Data {
		p := &it.Price
		item := SubscriptionItemRow{ID: it.ID, Price: p.ID, Product: p.Product, Quantity: it.Quantity,
			BillingScheme: p.BillingScheme, TiersMode: p.TiersMode, UnitAmount: p.UnitAmount, UnitAmountDecimal: p.UnitAmountDecimal,
			TransformQuantity: p.TransformQuantity, Tiers: p.Tiers, CurrentPeriodStart: it.CurrentPeriodStart, CurrentPeriodEnd: it.CurrentPeriodEnd}
		if len(it.Discounts) > 0 {
			item.Discounts = resolve(it.Discounts, known)
		}
		if r := p.Recurring; r != nil {
			item.Interval, item.IntervalCount, item.UsageType = r.Interval, r.IntervalCount, r.UsageType
		}
		row.Items = append(row.Items, item)
		// From API version 2025-03-31 the billing period lives on the items: the subscription's
		// is the earliest start and the latest end of its items'.
		if s.CurrentPeriodEnd == nil {
			if it.CurrentPeriodStart != nil && (row.CurrentPeriodStart == nil || *it.CurrentPeriodStart < *row.CurrentPeriodStart) {
				row.CurrentPeriodStart = it.CurrentPeriodStart
			}
			if it.CurrentPeriodEnd != nil && (row.CurrentPeriodEnd == nil || *it.CurrentPeriodEnd > *row.CurrentPeriodEnd) {
				row.CurrentPeriodEnd = it.CurrentPeriodEnd
			}
		}
		switch {
		case p.Recurring == nil:
			st.unvalued(fmt.Sprintf("price %s is not recurring", p.ID))
		case p.Recurring.UsageType == "metered":
			st.Metered = append(st.Metered, p.ID)
		default:
			v, err := periodValue(p, s.Currency, it.Quantity)
			if err != nil {
				st.unvalued(err.Error())
				continue
			}
			factor, err := monthFactor(p.Recurring.Interval, p.Recurring.IntervalCount)
			if err != nil {
				st.unvalued(fmt.Sprintf("price %s: %v", p.ID, err))
				continue
			}
			st.Items = append(st.Items, ItemValue{Monthly: v.Mul(v, factor), Factor: factor, Discounts: item.Discounts})
		}
	}
	st.PeriodStart, st.PeriodEnd = row.CurrentPeriodStart, row.CurrentPeriodEnd
	if row.CurrentPeriodEnd == nil && row.Status != "incomplete_expired" {
		why := fmt.Sprintf("no current_period_end in a %s event at API version %q", f.Type, f.APIVersion)
		row.Attention = &why
	}
	return row, st, nil
}

// decodeObject decodes data.object into one of the reducers' structs: with decodeInto, and with
// encoding/json when decodeInto refuses, so that what fails and the message an operator reads in
// the quarantine are encoding/json's.
func decodeObject(f Fact, v any) error {
	if fastDecode && decodeInto(f.ObjectRaw, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero() // nothing of a refused decode is kept
	if err := json.Unmarshal(f.ObjectRaw, v); err != nil {
		return fmt.Errorf("event %s: could not read data.object: %w", f.EventID, err)
	}
	return nil
}

// fastDecode is off only in the tests that compare decodeInto with encoding/json.
var fastDecode = true
