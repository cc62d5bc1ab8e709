package stripesim

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"time"
)

// The money side of the account: a balance transaction for every succeeded charge, refund and
// dispute, with Stripe's card fees, converted into the account's settlement currency at the
// day's rate (fx.go); funds available two days later; an automatic payout of the available
// balance every day at 00:00 UTC, paid one or two days later or, now and then, failed (its
// funds return to the balance and go out with the next payout).
//
// Everything here draws from its own random stream (money.rng), IDs included, so that the rest
// of a seed's account — customers, subscriptions, invoices, charges and their events — is what it
// was before the account moved money.

// Card fees, as Stripe's standard US pricing: 2.9 % of the settlement amount plus 30¢. The fixed
// part (and the dispute fee) is in USD, converted at the day's rate when the account settles in
// another currency.
const (
	cardFeePermille = 29      // 2.9 %
	cardFeeFixedUSD = 30      // 30¢
	disputeFeeUSD   = 15_00   // $15 per dispute, not returned when the dispute is won
	fundsDelay      = 2 * day // pending → available
)

// payoutFailures are the failure codes and messages of a failed payout (Stripe's list).
var payoutFailures = []struct{ code, message string }{
	{"account_closed", "The bank account has been closed."},
	{"insufficient_funds", "Your Stripe account has insufficient funds to cover the payout."},
	{"no_account", "The bank account details on file are probably incorrect. No bank account could be located with those details."},
	{"could_not_process", "The bank could not process this payout."},
}

// payoutFailureRate is the chance that a payout fails on its arrival date. A run that has made
// failEvery payouts with none failed fails the next one, so that every long run has one.
const (
	payoutFailureRate = 0.02
	failEvery         = 40
)

type moneyState struct {
	rng    *rand.Rand
	settle string // settlement currency
	bank   string // the payout destination, ba_…
	seq    int

	open     []*BalanceTransaction            // not yet listed by a payout, creation order
	listed   map[string][]*BalanceTransaction // payout ID → its transactions, its own included
	payouts  int                              // payouts made
	failed   int                              // payouts failed
	mismatch bool                             // the injected mismatch has been made

	invoices map[string]*Invoice // by ID, for credit notes
	intents  map[string]*PaymentIntent
	taxRates map[string]string // txr_… by currency (vatRates)
	cnCount  map[string]int    // credit notes per invoice, for their numbers

	changes map[string][]itemsChange // subscription → item changes since its last invoice
	billed  map[string]Period        // subscription → the period its last invoice billed
	balance map[string]int64         // customer → balance (≤ 0: credit from prorations)
}

func newMoney(s *Sim) *moneyState {
	m := &moneyState{
		rng:    rand.New(rand.NewPCG(s.cfg.Seed^0x6d6f6e6579, s.cfg.Seed^0x243f6a8885a308d3)),
		settle: s.cfg.SettlementCurrency,
		listed: map[string][]*BalanceTransaction{}, invoices: map[string]*Invoice{},
		intents: map[string]*PaymentIntent{}, taxRates: map[string]string{}, cnCount: map[string]int{},
		changes: map[string][]itemsChange{}, billed: map[string]Period{}, balance: map[string]int64{},
	}
	m.bank = randomID(m.rng, "ba", 24)
	for _, tr := range vatRates {
		m.taxRates[tr] = randomID(m.rng, "txr", 24)
	}
	// The first automatic payout runs at the first midnight (UTC) after the account opens.
	first := s.cfg.Start.UTC().Truncate(day).Add(day)
	s.at(first, s.payoutTick)
	return m
}

func (m *moneyState) id(prefix string) string { return randomID(m.rng, prefix, 24) }

// midnight is the start of t's UTC day.
func midnight(t time.Time) time.Time { return t.UTC().Truncate(day) }

// CardFee is Stripe's card fee on a charge whose balance transaction amount is amount (minor units
// of the settlement currency settle) on day d: 2.9 % of the amount, rounded half away from zero,
// plus 30¢ converted into settle at d's rate.
func CardFee(amount int64, settle string, d time.Time) int64 {
	pct := (amount*cardFeePermille + 500) / 1000
	if amount < 0 {
		pct = -((-amount*cardFeePermille + 500) / 1000)
	}
	fixed, err := ConvertMinor(cardFeeFixedUSD, "usd", settle, d)
	if err != nil {
		panic("stripesim: " + err.Error())
	}
	return pct + fixed
}

// DisputeFee is the $15 dispute fee in the settlement currency on day d.
func DisputeFee(settle string, d time.Time) int64 {
	fee, err := ConvertMinor(disputeFeeUSD, "usd", settle, d)
	if err != nil {
		panic("stripesim: " + err.Error())
	}
	return fee
}

// settlement converts amount (minor units of currency) into the settlement currency at today's
// rate; rate is the exchange_rate to show (nil when no conversion).
func (s *Sim) settlement(amount int64, currency string) (int64, *json.Number) {
	settle := s.money.settle
	if currency == settle {
		return amount, nil
	}
	v, err := ConvertMinor(amount, currency, settle, s.now)
	if err != nil {
		panic("stripesim: " + err.Error())
	}
	r, _ := FXRateString(currency, settle, s.now)
	n := json.Number(trimRate(r))
	return v, &n
}

// trimRate writes a six-place rate as Stripe does, without trailing zeros ("1.085000" → "1.085").
func trimRate(r string) string {
	if strings.Contains(r, ".") {
		r = strings.TrimRight(strings.TrimRight(r, "0"), ".")
	}
	return r
}

// newTxn records a balance transaction created now, available fundsDelay later (at the start of
// that UTC day, as Stripe dates available_on), or at once when available is set.
func (s *Sim) newTxn(typ, category, source string, amount, fee int64, feeDesc string, rate *json.Number, desc *string, available bool) *BalanceTransaction {
	m := s.money
	bt := &BalanceTransaction{ID: m.id("txn"), Object: "balance_transaction", Amount: amount, Created: s.unix(),
		Currency: m.settle, Description: desc, ExchangeRate: rate, Fee: fee, FeeDetails: []FeeDetail{}, Net: amount - fee,
		ReportingCategory: category, Source: ptr(source), Status: "pending", Type: typ, seq: m.seq}
	m.seq++
	if fee != 0 {
		bt.FeeDetails = append(bt.FeeDetails, FeeDetail{Amount: fee, Currency: m.settle, Description: ptr(feeDesc), Type: "stripe_fee"})
	}
	if available {
		bt.Status, bt.AvailableOn = "available", s.unix()
	} else {
		bt.AvailableOn = midnight(s.now).Add(fundsDelay).Unix()
	}
	s.objs.add("balance_transactions", bt.ID, bt.Created, bt)
	m.open = append(m.open, bt)
	return bt
}

// chargeTxn is a succeeded charge's balance transaction, with the card fee.
func (s *Sim) chargeTxn(ch *Charge) {
	amount, rate := s.settlement(ch.Amount, ch.Currency)
	fee := CardFee(amount, s.money.settle, s.now)
	bt := s.newTxn("charge", "charge", ch.ID, amount, fee, "Stripe processing fees", rate, ptr(ch.Description), false)
	ch.BalanceTransaction = ptr(bt.ID)
}

// refundTxn debits a refund at the day's rate. Stripe keeps the charge's fee.
func (s *Sim) refundTxn(re *Refund) {
	amount, rate := s.settlement(re.Amount, re.Currency)
	bt := s.newTxn("refund", "refund", re.ID, -amount, 0, "", rate, ptr("REFUND FOR CHARGE"), false)
	re.BalanceTransaction = ptr(bt.ID)
}

// disputeTxn withdraws the disputed amount and charges the dispute fee.
func (s *Sim) disputeTxn(dp *Dispute) {
	amount, rate := s.settlement(dp.Amount, dp.Currency)
	bt := s.newTxn("adjustment", "dispute", dp.ID, -amount, DisputeFee(s.money.settle, s.now), "Dispute fee", rate,
		ptr("Chargeback withdrawal for "+dp.Charge), false)
	dp.BalanceTransactions = append(dp.BalanceTransactions, bt)
}

// disputeWonTxn reinstates a won dispute's funds (the fee stays charged).
func (s *Sim) disputeWonTxn(dp *Dispute) {
	amount, rate := s.settlement(dp.Amount, dp.Currency)
	bt := s.newTxn("adjustment", "dispute_reversal", dp.ID, amount, 0, "", rate, ptr("Chargeback reversal for "+dp.Charge), false)
	dp.BalanceTransactions = append(dp.BalanceTransactions, bt)
}

// payoutTick runs every day at 00:00 UTC: funds due become available, and the available balance
// is paid out if it is positive (a negative one waits for later funds, as Stripe does).
func (s *Sim) payoutTick() {
	m := s.money
	now := s.unix()
	var sweep, keep []*BalanceTransaction
	var net int64
	for _, bt := range m.open {
		if bt.Status == "pending" && bt.AvailableOn <= now {
			bt.Status = "available"
		}
		if bt.Status == "available" {
			sweep = append(sweep, bt)
			net += bt.Net
		} else {
			keep = append(keep, bt)
		}
	}
	if net > 0 {
		m.open = keep
		s.payout(sweep, net)
	}
	s.after(day, s.payoutTick)
}

// payout pays out the swept transactions: pending at creation, in transit (and its
// reconciliation completed) a few hours later, paid on its arrival date or failed.
func (s *Sim) payout(sweep []*BalanceTransaction, net int64) {
	m := s.money
	amount := net
	if s.cfg.PayoutMismatch != 0 && !m.mismatch && !s.now.Before(s.cfg.Start.Add(s.cfg.End.Sub(s.cfg.Start)/2)) {
		amount += s.cfg.PayoutMismatch
		m.mismatch = true
	}
	arrival := midnight(s.now).Add(time.Duration(1+m.rng.IntN(2)) * day)
	po := &Payout{ID: m.id("po"), Object: "payout", Amount: amount, ArrivalDate: arrival.Unix(), Automatic: true,
		Created: s.unix(), Currency: m.settle, Description: ptr("STRIPE PAYOUT"), Destination: ptr(m.bank),
		Livemode: s.cfg.Livemode, Metadata: map[string]string{}, Method: "standard", ReconciliationStatus: "in_progress",
		SourceType: "card", Status: "pending", Type: "bank_account"}
	own := s.newTxn("payout", "payout", po.ID, -amount, 0, "", nil, ptr("STRIPE PAYOUT"), true)
	m.open = m.open[:len(m.open)-1] // the payout's own transaction is listed by it, not by the next
	po.BalanceTransaction = ptr(own.ID)
	for _, bt := range sweep {
		bt.payout = po.ID
	}
	own.payout = po.ID
	m.listed[po.ID] = append(append([]*BalanceTransaction(nil), sweep...), own)
	m.payouts++
	fail := m.rng.Float64() < payoutFailureRate || (m.failed == 0 && m.payouts%failEvery == 0)
	failure := payoutFailures[m.rng.IntN(len(payoutFailures))]
	s.objs.add("payouts", po.ID, po.Created, po)
	s.emitFrom(m.rng, "payout.created", po, po.ID, nil, false)

	s.after(time.Duration(2+m.rng.IntN(6))*time.Hour, func() {
		po.Status, po.ReconciliationStatus = "in_transit", "completed"
		s.emitFrom(m.rng, "payout.updated", po, po.ID, map[string]any{"status": "pending", "reconciliation_status": "in_progress"}, false)
	})
	s.at(arrival, func() {
		if !fail {
			po.Status = "paid"
			s.emitFrom(m.rng, "payout.paid", po, po.ID, map[string]any{"status": "in_transit"}, false)
			return
		}
		m.failed++
		back := s.newTxn("payout_failure", "payout_reversal", po.ID, po.Amount, 0, "", nil, ptr("STRIPE PAYOUT FAILURE"), true)
		po.Status, po.FailureCode, po.FailureMessage = "failed", ptr(failure.code), ptr(failure.message)
		po.FailureBalanceTransaction = ptr(back.ID)
		s.emitFrom(m.rng, "payout.failed", po, po.ID, map[string]any{"status": "in_transit", "failure_code": nil,
			"failure_message": nil, "failure_balance_transaction": nil}, false)
	})
}
