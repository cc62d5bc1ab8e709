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
	Metadata           map[string]string
	CouponDuration     *string // "forever", "once" or "repeating"; nil without a discount
	CouponPercentOff   *int64
	// MRR is the monthly-normalised recurring value, Stripe's way: only active and past_due
	// subscriptions count (not trials); yearly prices ÷ 12 (weekly × 52 ÷ 12, daily × 365 ÷ 12,
	// over interval_count); a forever coupon reduces it, a finite one does not. Rounded down to
	// the minor unit after summing the items.
	MRR int64
	// Attention says why a person should look at the row (nil when nothing): e.g. an event of
	// another API version whose billing period could not be found.
	Attention *string
	Created   int64 // when the subscription was created in Stripe
	// AppUserID is derived by the projection from the subscription, its Checkout session, its
	// customer and the identity setting (Identity.AppUserID); nil when nothing identifies it.
	AppUserID *string
	Provenance
}

// SubscriptionItemRow is one price on a subscription.
type SubscriptionItemRow struct {
	ID            string `json:"id"`
	Price         string `json:"price"`
	Product       string `json:"product"`
	Quantity      int64  `json:"quantity"`
	Interval      string `json:"interval"`
	IntervalCount int64  `json:"interval_count"`
	UnitAmount    int64  `json:"unit_amount"`
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
	Discount *struct {
		Coupon struct {
			Duration   string `json:"duration"`
			PercentOff *int64 `json:"percent_off"`
		} `json:"coupon"`
	} `json:"discount"`
	Items struct {
		Data []struct {
			ID                 string `json:"id"`
			Quantity           int64  `json:"quantity"`
			CurrentPeriodStart *int64 `json:"current_period_start"`
			CurrentPeriodEnd   *int64 `json:"current_period_end"`
			Price              struct {
				ID         string `json:"id"`
				Product    string `json:"product"`
				UnitAmount int64  `json:"unit_amount"`
				Recurring  *struct {
					Interval      string `json:"interval"`
					IntervalCount int64  `json:"interval_count"`
				} `json:"recurring"`
			} `json:"price"`
		} `json:"data"`
	} `json:"items"`
}

// FoldSubscription is a subscription's row from the set of its events.
func FoldSubscription(facts []Fact) (SubscriptionRow, error) {
	var s rawSubscription
	f, err := fold(facts, &s)
	if err != nil {
		return SubscriptionRow{}, err
	}
	row := SubscriptionRow{
		ID: s.ID, Customer: s.Customer, Status: s.Status, Currency: s.Currency,
		TrialStart: s.TrialStart, TrialEnd: s.TrialEnd,
		CurrentPeriodStart: s.CurrentPeriodStart, CurrentPeriodEnd: s.CurrentPeriodEnd,
		CancelAtPeriodEnd: s.CancelAtPeriodEnd, CancelAt: s.CancelAt, CanceledAt: s.CanceledAt, EndedAt: s.EndedAt,
		Metadata: s.Metadata, Created: s.Created, Provenance: provenance(f),
	}
	if s.PauseCollection != nil {
		row.PauseBehavior = &s.PauseCollection.Behavior
	}
	if d := s.Discount; d != nil {
		row.CouponDuration, row.CouponPercentOff = &d.Coupon.Duration, d.Coupon.PercentOff
	}
	for _, it := range s.Items.Data {
		item := SubscriptionItemRow{ID: it.ID, Price: it.Price.ID, Product: it.Price.Product, Quantity: it.Quantity, UnitAmount: it.Price.UnitAmount}
		if r := it.Price.Recurring; r != nil {
			item.Interval, item.IntervalCount = r.Interval, r.IntervalCount
		}
		row.Items = append(row.Items, item)
		// From API version 2025-03-31 the billing period lives on the items: map it back.
		if row.CurrentPeriodEnd == nil && it.CurrentPeriodEnd != nil {
			row.CurrentPeriodStart, row.CurrentPeriodEnd = it.CurrentPeriodStart, it.CurrentPeriodEnd
		}
	}
	if row.CurrentPeriodEnd == nil && row.Status != "incomplete_expired" {
		why := fmt.Sprintf("no current_period_end in a %s event at API version %q", f.Type, f.APIVersion)
		row.Attention = &why
	}
	row.MRR = MRR(row)
	return row, nil
}

// MRR is a subscription row's monthly recurring revenue (see SubscriptionRow.MRR).
func MRR(row SubscriptionRow) int64 {
	if row.Status != "active" && row.Status != "past_due" {
		return 0
	}
	var perYear int64
	for _, it := range row.Items {
		count := max(it.IntervalCount, 1)
		amount := it.UnitAmount * max(it.Quantity, 0)
		switch it.Interval {
		case "year":
			perYear += amount / count
		case "month":
			perYear += amount * 12 / count
		case "week":
			perYear += amount * 52 / count
		case "day":
			perYear += amount * 365 / count
		}
	}
	if Deref(row.CouponDuration) == "forever" && row.CouponPercentOff != nil && *row.CouponPercentOff > 0 {
		perYear -= perYear * *row.CouponPercentOff / 100
	}
	return perYear / 12
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
