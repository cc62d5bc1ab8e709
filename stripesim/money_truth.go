package stripesim

// MoneyTruth is what a ledger's money figures must reproduce for one scope, computed here from
// the Sim's own balance transactions and payouts (never from the ledger's code): per settlement
// currency, fees and net by reporting category; per payout, the transactions its
// `GET /v1/balance_transactions?payout=` listing holds and whether they add up to it.
type MoneyTruth struct {
	Livemode           bool   `json:"livemode"`
	Account            string `json:"account,omitempty"`
	SettlementCurrency string `json:"settlement_currency"`
	// Counts is the number of objects of each of MoneyKinds.
	Counts map[string]int `json:"counts"`
	// Balances are per currency of the balance transactions (the settlement currency).
	Balances map[string]TruthBalance `json:"balances"`
	// Payouts are every payout, oldest first.
	Payouts []TruthPayout `json:"payouts"`
	// Charges are each succeeded charge's balance transaction, by charge ID: the fee and net a
	// ledger's charges row must show.
	Charges map[string]TruthTxn `json:"charges"`
}

// TruthBalance sums one currency's balance transactions.
type TruthBalance struct {
	// Categories are every transaction by reporting category (charge, refund, dispute,
	// dispute_reversal, payout, payout_reversal).
	Categories map[string]TruthCategory `json:"categories"`
	// Fees is the sum of every transaction's fee; Net the sum of the nets of every transaction
	// that is not a payout or a payout's failure (what the account earned, after fees).
	Fees int64 `json:"fees"`
	Net  int64 `json:"net"`
	// Available and Pending are the balance: the nets of the transactions available now
	// (payouts included, negative) and of those still pending.
	Available int64 `json:"available"`
	Pending   int64 `json:"pending"`
	// PaidOut is the sum of the amounts of paid payouts.
	PaidOut int64 `json:"paid_out"`
}

// TruthCategory sums the transactions of one reporting category.
type TruthCategory struct {
	Count  int   `json:"count"`
	Amount int64 `json:"amount"`
	Fee    int64 `json:"fee"`
	Net    int64 `json:"net"`
}

func (c *TruthCategory) add(bt *BalanceTransaction) {
	c.Count++
	c.Amount += bt.Amount
	c.Fee += bt.Fee
	c.Net += bt.Net
}

// TruthPayout is one payout and its parts.
type TruthPayout struct {
	ID                   string `json:"id"`
	Currency             string `json:"currency"`
	Status               string `json:"status"`
	ReconciliationStatus string `json:"reconciliation_status"` // what Stripe shows: in_progress until in transit, then completed
	Amount               int64  `json:"amount"`
	Created              int64  `json:"created"`
	ArrivalDate          int64  `json:"arrival_date"`
	BalanceTransaction   string `json:"balance_transaction"` // its own, type payout, amount -Amount
	// Transactions is how many transactions its listing holds, its own included.
	Transactions int `json:"transactions"`
	// Categories, Fees and Net are over the listed transactions but its own.
	Categories map[string]TruthCategory `json:"categories"`
	Fees       int64                    `json:"fees"`
	Net        int64                    `json:"net"`
	// Reconciled is whether Net equals Amount: false only for the payout Config.PayoutMismatch
	// injects.
	Reconciled bool `json:"reconciled"`
}

// TruthTxn is one balance transaction's figures.
type TruthTxn struct {
	BalanceTransaction string `json:"balance_transaction"`
	Amount             int64  `json:"amount"`
	Currency           string `json:"currency"`
	Fee                int64  `json:"fee"`
	Net                int64  `json:"net"`
	ExchangeRate       string `json:"exchange_rate,omitempty"` // "" when no conversion
}

// MoneyTruth computes the scope's money figures from its current objects.
func (s *Sim) MoneyTruth() MoneyTruth {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.moneyTruth()
}

func (s *Sim) moneyTruth() MoneyTruth {
	t := MoneyTruth{Livemode: s.cfg.Livemode, Account: s.cfg.Account, SettlementCurrency: s.cfg.SettlementCurrency,
		Counts: map[string]int{}, Balances: map[string]TruthBalance{}, Payouts: []TruthPayout{}, Charges: map[string]TruthTxn{}}
	for _, kind := range MoneyKinds {
		t.Counts[kind] = len(s.objs.kinds[kind])
	}
	byPayout := map[string]*TruthPayout{}
	for _, l := range s.objs.kinds["payouts"] {
		po := l.v.(*Payout)
		tp := TruthPayout{ID: po.ID, Currency: po.Currency, Status: po.Status, ReconciliationStatus: po.ReconciliationStatus,
			Amount: po.Amount, Created: po.Created, ArrivalDate: po.ArrivalDate, Categories: map[string]TruthCategory{}}
		if po.BalanceTransaction != nil {
			tp.BalanceTransaction = *po.BalanceTransaction
		}
		t.Payouts = append(t.Payouts, tp)
	}
	for i := range t.Payouts {
		byPayout[t.Payouts[i].ID] = &t.Payouts[i]
	}
	for _, l := range s.objs.kinds["balance_transactions"] {
		bt := l.v.(*BalanceTransaction)
		b := t.Balances[bt.Currency]
		if b.Categories == nil {
			b.Categories = map[string]TruthCategory{}
		}
		c := b.Categories[bt.ReportingCategory]
		c.add(bt)
		b.Categories[bt.ReportingCategory] = c
		b.Fees += bt.Fee
		if bt.Type != "payout" && bt.Type != "payout_failure" {
			b.Net += bt.Net
		}
		if bt.Status == "available" {
			b.Available += bt.Net
		} else {
			b.Pending += bt.Net
		}
		t.Balances[bt.Currency] = b
		if bt.Type == "charge" {
			tx := TruthTxn{BalanceTransaction: bt.ID, Amount: bt.Amount, Currency: bt.Currency, Fee: bt.Fee, Net: bt.Net}
			if bt.ExchangeRate != nil {
				tx.ExchangeRate = bt.ExchangeRate.String()
			}
			t.Charges[*bt.Source] = tx
		}
		if tp := byPayout[bt.payout]; tp != nil {
			tp.Transactions++
			if bt.ID != tp.BalanceTransaction {
				c := tp.Categories[bt.ReportingCategory]
				c.add(bt)
				tp.Categories[bt.ReportingCategory] = c
				tp.Fees += bt.Fee
				tp.Net += bt.Net
			}
		}
	}
	for i := range t.Payouts {
		tp := &t.Payouts[i]
		tp.Reconciled = tp.Net == tp.Amount
		if tp.Status == "paid" {
			b := t.Balances[tp.Currency]
			b.PaidOut += tp.Amount
			t.Balances[tp.Currency] = b
		}
	}
	return t
}
