package domain

// Sensitivity says which of the MRR settings can change a subscription's valuation (its MRR,
// attention and movement log), so that a settings change values again only the subscriptions
// it can change. It is read from the subscription's valuation inputs, the same under every
// setting, and is a superset: a subscription it leaves out values the same under both
// settings, one it names may still.
//
// The settings reach the valuation at four places (SubscriptionHistory.log and the discounts it
// applies), and each needs something in the inputs to act on:
//   - LEDGER_MRR_PAST_DUE_DAYS only acts while a state is past_due;
//   - LEDGER_MRR_CHURN_AT only acts while a state is canceled;
//   - LEDGER_MRR_PAUSED only acts while a state has paused collection;
//   - LEDGER_MRR_DISCOUNTS only decides whether a discount of a given duration counts, and only
//     for a discount that is valued (an unvalued one leaves the figure unvalued under every
//     setting). The customer's discounts are not in the inputs: whoever values the subscription
//     with them adds SensitiveDiscounts (CustomerSensitivity).
//
// The events a version of the subscription's history folds are among those its current inputs
// fold, or late echoes of a deletion (events ordered after it, which the current inputs leave
// out but a version known before the deletion arrived folded): FoldSubscriptionHistory adds
// theirs, so a history folded from the events covers every version's. A history decoded from
// stored inputs does not know its echoes.
type Sensitivity uint8

const (
	SensitivePastDue Sensitivity = 1 << iota
	SensitiveCanceled
	SensitivePaused
	SensitiveOnce      // a valued discount of duration once
	SensitiveRecurring // a valued discount of duration forever or repeating
	SensitiveOtherDuration

	// SensitiveDiscounts is every discount duration.
	SensitiveDiscounts = SensitiveOnce | SensitiveRecurring | SensitiveOtherDuration
	// SensitiveAll is everything.
	SensitiveAll = SensitivePastDue | SensitiveCanceled | SensitivePaused | SensitiveDiscounts
)

// SensitivityNames name each bit, as ledger.subscription_mrr_inputs.sensitive_to lists them.
var SensitivityNames = []struct {
	Bit  Sensitivity
	Name string
}{
	{SensitivePastDue, "past_due"}, {SensitiveCanceled, "canceled"}, {SensitivePaused, "paused"},
	{SensitiveOnce, "discount_once"}, {SensitiveRecurring, "discount_recurring"}, {SensitiveOtherDuration, "discount_other"},
}

// Names are s's bits by name, in SensitivityNames' order; empty (not nil) for none.
func (s Sensitivity) Names() []string {
	out := []string{}
	for _, n := range SensitivityNames {
		if s&n.Bit != 0 {
			out = append(out, n.Name)
		}
	}
	return out
}

// Sensitivity is what in h's inputs the MRR settings can act on.
func (h *SubscriptionHistory) Sensitivity() Sensitivity {
	out := h.echoes
	discounts := func(ds []Discount) {
		for k := range ds {
			if ds[k].Unvalued == "" {
				out |= durationSensitivity(ds[k].Duration)
			}
		}
	}
	for k := range h.States {
		s := &h.States[k]
		switch {
		case s.Terminal || s.Status == "canceled":
			out |= SensitiveCanceled
		case s.Status == "past_due":
			out |= SensitivePastDue
		}
		if s.Paused {
			out |= SensitivePaused
		}
		discounts(s.Discounts)
		for i := range s.Items {
			discounts(s.Items[i].Discounts)
		}
	}
	return out
}

// CustomerSensitivity is what in a customer's discount history the MRR settings can act on.
func CustomerSensitivity(history []CustomerDiscount) Sensitivity {
	var out Sensitivity
	for _, c := range history {
		if c.Discount != nil && c.Discount.Unvalued == "" {
			out |= durationSensitivity(c.Discount.Duration)
		}
	}
	return out
}

func durationSensitivity(duration string) Sensitivity {
	switch duration {
	case "once":
		return SensitiveOnce
	case "forever", "repeating":
		return SensitiveRecurring
	default:
		return SensitiveOtherDuration
	}
}

// Differs is what a subscription must be sensitive to for its valuation under s and o to
// differ: none when the two settings value every subscription alike.
func (s MRRSettings) Differs(o MRRSettings) Sensitivity {
	s, o = s.WithDefaults(), o.WithDefaults()
	var out Sensitivity
	if s.PastDueDays != o.PastDueDays {
		out |= SensitivePastDue
	}
	if s.ChurnAt != o.ChurnAt {
		out |= SensitiveCanceled
	}
	if s.Paused != o.Paused {
		out |= SensitivePaused
	}
	for _, d := range []struct {
		bit      Sensitivity
		duration string
	}{{SensitiveOnce, "once"}, {SensitiveRecurring, "forever"}, {SensitiveRecurring, "repeating"}, {SensitiveOtherDuration, ""}} {
		if s.counts(&Discount{Duration: d.duration}) != o.counts(&Discount{Duration: d.duration}) {
			out |= d.bit
		}
	}
	return out
}
