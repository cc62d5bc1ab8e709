package domain

import (
	"cmp"
	"fmt"
	"slices"
)

// ChargeRow is a charge as finance reads it, with its refunds and latest dispute folded in. Money
// is in the currency's minor unit.
type ChargeRow struct {
	ID             string
	Amount         int64
	AmountCaptured int64
	AmountRefunded int64
	Refunded       bool
	Currency       string
	Status         string
	Paid           bool
	FailureCode    *string
	FailureMessage *string
	PaymentIntent  *string
	Invoice        *string
	Customer       *string // nil for a guest payment
	Created        int64
	DisputeID      *string // the latest dispute on the charge, nil when none
	DisputeStatus  *string // needs_response, under_review, won, lost, …
	// BalanceTransaction is the charge's balance transaction (nil while Stripe has none);
	// Fee, Net and SettlementCurrency are that transaction's (see SetBalanceTransaction), nil
	// until the ledger holds it.
	BalanceTransaction *string
	Fee                *int64
	Net                *int64
	SettlementCurrency *string
	// Attention says why a person should look at the row: its invoice is not known (a charge's
	// events do not name it from basil on, and no invoice payment of its payment intent has
	// said); nil when nothing.
	Attention *string
	Provenance
}

type rawCharge struct {
	ID             string  `json:"id"`
	Amount         int64   `json:"amount"`
	AmountCaptured int64   `json:"amount_captured"`
	AmountRefunded int64   `json:"amount_refunded"`
	Refunded       bool    `json:"refunded"`
	Currency       string  `json:"currency"`
	Status         string  `json:"status"`
	Paid           bool    `json:"paid"`
	FailureCode    *string `json:"failure_code"`
	FailureMessage *string `json:"failure_message"`
	PaymentIntent  *string `json:"payment_intent"`
	Invoice        *string `json:"invoice"`
	Customer       *string `json:"customer"`
	Created        int64   `json:"created"`
	// Expandable: an ID, or the transaction itself when expanded.
	BalanceTransaction *ref `json:"balance_transaction"`
}

// FoldCharge is a charge's row from its own events (charge.*) and the rows of its disputes (see
// SetDisputes). Refunds arrive, at API version 2023-10-16, as charge.refunded with the Charge's
// amount_refunded, so they are in the charge's own snapshot.
func FoldCharge(charge []Fact, disputes []DisputeRow) (ChargeRow, error) {
	var c rawCharge
	f, err := fold(charge, &c)
	if err != nil {
		return ChargeRow{}, err
	}
	row := ChargeRow{
		ID: c.ID, Amount: c.Amount, AmountCaptured: c.AmountCaptured, AmountRefunded: c.AmountRefunded,
		Refunded: c.Refunded, Currency: c.Currency, Status: c.Status, Paid: c.Paid, Created: c.Created,
		FailureCode: c.FailureCode, FailureMessage: c.FailureMessage, PaymentIntent: c.PaymentIntent,
		Invoice: c.Invoice, Customer: c.Customer, BalanceTransaction: expandedID(c.BalanceTransaction), Provenance: provenance(f),
	}
	if row.Invoice == nil && row.PaymentIntent != nil && invoicePaymentsApart(f.APIVersion) {
		why := fmt.Sprintf("invoice not known: a charge at API version %q does not carry it (an invoice payment of its payment intent names it, when it pays one)", f.APIVersion)
		row.Attention = &why
	}
	row.SetDisputes(disputes)
	return row, nil
}

// SetIntent fills the invoice a charge's own events did not carry (from basil on: Stripe dropped
// Charge.invoice) from its payment intent's row, whose invoice the invoice payments give, or
// from the invoice payment made with the charge alone.
func (r *ChargeRow) SetIntent(intents []PaymentIntentRow, payments []InvoicePaymentRow) {
	if r.Invoice == nil && len(intents) > 0 {
		r.Invoice = intents[0].Invoice
	}
	for _, p := range payments {
		if r.Invoice == nil {
			inv := p.Invoice
			r.Invoice = &inv
		}
	}
	if r.Invoice != nil {
		r.Attention = nil
	}
}

// SetDisputes sets the row's dispute columns from the rows of the charge's disputes: of several,
// the latest opened (by created, then ID) — a charge disputed again is about the new dispute.
func (r *ChargeRow) SetDisputes(disputes []DisputeRow) {
	r.DisputeID, r.DisputeStatus = nil, nil
	if len(disputes) == 0 {
		return
	}
	d := slices.MaxFunc(disputes, func(a, b DisputeRow) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.ID, b.ID))
	})
	r.DisputeID, r.DisputeStatus = &d.ID, &d.Status
}

// SetBalanceTransaction sets the row's fee, net and settlement currency from the row of its
// balance transaction, among txns (the rows whose ID is the charge's balance_transaction): left
// nil when the ledger does not hold it yet. The fee and net are in the settlement currency,
// which differs from the charge's currency when Stripe converted it.
func (r *ChargeRow) SetBalanceTransaction(txns []BalanceTransactionRow) {
	r.Fee, r.Net, r.SettlementCurrency = nil, nil, nil
	if r.BalanceTransaction == nil {
		return
	}
	for _, t := range txns {
		if t.ID == *r.BalanceTransaction {
			fee, net, cur := t.Fee, t.Net, t.Currency
			r.Fee, r.Net, r.SettlementCurrency = &fee, &net, &cur
			return
		}
	}
}
