package stripesim

// TruthMetrics are the figures a ledger's read models must reproduce for one scope (mode ×
// account), computed here from the Sim's own objects and never from the ledger's domain package,
// so that a test comparing the two does not check the reducers against themselves.
type TruthMetrics struct {
	Livemode bool   `json:"livemode"`
	Account  string `json:"account,omitempty"` // "" for a platform's (or a lone account's) own scope
	// MRR is monthly recurring revenue per currency in minor units, by the definition with
	// Stripe's default settings (SubscriptionMRR), each subscription valued as of its latest
	// event — what a ledger's subscription rows hold — summed over the subscriptions that count
	// and can be valued. Every currency with a counting subscription has an entry. A rule instant
	// after a subscription's latest event (a repeating discount's end before Stripe's late
	// removal) is in TruthMRR's days and movements, not here.
	MRR map[string]int64 `json:"mrr"`
	// MRRSubscriptions is how many subscriptions have a status that counts (active or past_due).
	MRRSubscriptions int `json:"mrr_subscriptions"`
	// Unvalued is how many of those cannot be valued (their MRR is NULL; see MRRValue.Unvalued).
	Unvalued int `json:"unvalued"`
	// Counts is the number of objects per kind (Kinds), canceled subscriptions included.
	Counts map[string]int `json:"counts"`
	// Coupons is the number of coupons the account has made (GET /v1/coupons lists them).
	Coupons int `json:"coupons"`
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
	m.Coupons = len(s.objs.kinds["coupons"])
	values := s.rowMRR()
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
