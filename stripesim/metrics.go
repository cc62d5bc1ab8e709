package stripesim

import "math/big"

// TruthMetrics are the figures a ledger's read models must reproduce for one scope (mode ×
// account), computed here from the Sim's own objects and never from the ledger's domain package,
// so that a test comparing the two does not check the reducers against themselves.
type TruthMetrics struct {
	Livemode bool   `json:"livemode"`
	Account  string `json:"account,omitempty"` // "" for a platform's (or a lone account's) own scope
	// MRR is monthly recurring revenue per currency in minor units, by Stripe's definition (see
	// SubscriptionMRR), summed over subscriptions that count.
	MRR map[string]int64 `json:"mrr"`
	// MRRSubscriptions is how many subscriptions contribute to MRR (active or past_due).
	MRRSubscriptions int `json:"mrr_subscriptions"`
	// Counts is the number of objects per kind (Kinds), canceled subscriptions included.
	Counts map[string]int `json:"counts"`
	// SucceededCharges is the sum of the amounts of succeeded charges per currency, before
	// refunds and disputes.
	SucceededCharges map[string]int64 `json:"succeeded_charges"`
}

// SubscriptionMRR is one subscription's monthly recurring revenue in its currency's minor units,
// by Stripe's Billing definition (the one the ledger takes by default), written out here on its
// own:
//
//   - only status active or past_due counts (not trialing, incomplete, unpaid or canceled); a
//     subscription set to cancel at period end, or with collection paused, is still active and
//     still counts;
//   - each licensed item is unit_amount × quantity, normalised to a month: year ÷ 12,
//     week × 52/12, day × 365/12, each ÷ interval_count; metered items have no forward value;
//   - only a forever coupon reduces it (percent off); once and repeating ones do not;
//   - the total is rounded down once per subscription, in exact arithmetic until then.
//
// ok is false when the subscription does not count.
func SubscriptionMRR(sub *Subscription) (mrr int64, ok bool) {
	if sub.Status != "active" && sub.Status != "past_due" {
		return 0, false
	}
	total := new(big.Rat)
	for _, it := range sub.Items.Data {
		r := it.Price.Recurring
		if r == nil || r.UsageType == "metered" {
			continue
		}
		count := int64(max(r.IntervalCount, 1))
		var v *big.Rat
		amount := it.Price.UnitAmount * it.Quantity
		switch r.Interval {
		case "month":
			v = big.NewRat(amount, count)
		case "year":
			v = big.NewRat(amount, 12*count)
		case "week":
			v = big.NewRat(amount*52, 12*count)
		case "day":
			v = big.NewRat(amount*365, 12*count)
		default:
			continue
		}
		total.Add(total, v)
	}
	if d := sub.Discount; d != nil && d.Coupon.Duration == "forever" && d.Coupon.PercentOff > 0 {
		total.Mul(total, big.NewRat(100-d.Coupon.PercentOff, 100))
	}
	// Floor: Quo truncates towards zero, and MRR is never negative.
	return new(big.Int).Quo(total.Num(), total.Denom()).Int64(), true
}

// TruthMetrics computes the scope's figures from its current objects.
func (s *Sim) TruthMetrics() TruthMetrics {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.truthMetrics()
}

func (s *Sim) truthMetrics() TruthMetrics {
	m := TruthMetrics{Livemode: s.cfg.Livemode, Account: s.cfg.Account, MRR: map[string]int64{},
		Counts: map[string]int{}, SucceededCharges: map[string]int64{}}
	for _, kind := range Kinds {
		m.Counts[kind] = len(s.objs.kinds[kind])
	}
	for _, l := range s.objs.kinds["subscriptions"] {
		sub := l.v.(*Subscription)
		if v, ok := SubscriptionMRR(sub); ok {
			m.MRR[sub.Currency] += v
			m.MRRSubscriptions++
		}
	}
	for _, l := range s.objs.kinds["charges"] {
		if ch := l.v.(*Charge); ch.Status == "succeeded" {
			m.SucceededCharges[ch.Currency] += ch.Amount
		}
	}
	return m
}
