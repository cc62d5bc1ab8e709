package stripesim

// TruthMetrics are the figures a ledger's read models must reproduce for one scope (mode ×
// account), computed here from the Sim's own objects and never from the ledger's domain package,
// so that a test comparing the two does not check the reducers against themselves.
type TruthMetrics struct {
	Livemode bool   `json:"livemode"`
	Account  string `json:"account,omitempty"` // "" for a platform's (or a lone account's) own scope
	// MRR is monthly recurring revenue per currency in minor units at the account's clock, by the
	// definition with Stripe's default settings (see SubscriptionMRR and TruthMRR: a repeating
	// discount stops at its end, not when its removal arrives), summed over the subscriptions
	// that count and can be valued. Every currency with a counting subscription has an entry.
	MRR map[string]int64 `json:"mrr"`
	// MRRSubscriptions is how many subscriptions have a status that counts (active or past_due).
	MRRSubscriptions int `json:"mrr_subscriptions"`
	// Unvalued is how many of those cannot be valued (their MRR is NULL; see MRRValue.Unvalued).
	Unvalued int `json:"unvalued"`
	// Counts is the number of objects per kind (Kinds), canceled subscriptions included.
	Counts map[string]int `json:"counts"`
	// SucceededCharges is the sum of the amounts of succeeded charges per currency, before
	// refunds and disputes.
	SucceededCharges map[string]int64 `json:"succeeded_charges"`
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
	values := s.currentMRR()
	for _, l := range s.objs.kinds["subscriptions"] {
		sub := l.v.(*Subscription)
		if sub.Status != "active" && sub.Status != "past_due" {
			continue
		}
		m.MRRSubscriptions++
		v := values[sub.ID]
		m.MRR[sub.Currency] += v.MRR
		if v.Unvalued != "" {
			m.Unvalued++
		}
	}
	for _, l := range s.objs.kinds["charges"] {
		if ch := l.v.(*Charge); ch.Status == "succeeded" {
			m.SucceededCharges[ch.Currency] += ch.Amount
		}
	}
	return m
}
