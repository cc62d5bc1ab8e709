package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Money movement: balance transactions (what Stripe moved in and out of the balance, with its
// fees and the net), payouts (what it paid into the bank), payment intents, credit notes and
// invoice line items. Amounts are integers in the minor unit of the currency beside them; a
// balance transaction's amounts are in the settlement currency, converted from the presentment
// currency at exchange_rate.

// FeeDetail is one part of a balance transaction's fee.
type FeeDetail struct {
	Amount      int64   `json:"amount"`
	Currency    string  `json:"currency"`
	Type        string  `json:"type"` // stripe_fee, application_fee, tax, ...
	Description *string `json:"description"`
}

// BalanceTransactionRow is a balance transaction.
type BalanceTransactionRow struct {
	ID         string
	Amount     int64
	Fee        int64
	FeeDetails []FeeDetail // never nil: [] when the transaction has no fee
	Net        int64
	Currency   string
	// ExchangeRate is the rate the presentment amount was converted at, as the exact decimal
	// Stripe sent (never a float); nil when there was no conversion.
	ExchangeRate      *string
	ReportingCategory string
	Type              string
	SourceID          *string // the object that moved the balance (source)
	Status            string
	AvailableOn       int64
	// Payout is the payout whose listing returned the transaction (Fact.ListedBy), nil until
	// one has.
	Payout  *string
	Created int64
	Provenance
}

// PayoutRow is a payout.
type PayoutRow struct {
	ID                   string
	Amount               int64
	Currency             string
	ArrivalDate          int64
	Status               string
	FailureCode          *string
	FailureMessage       *string
	Method               string
	Automatic            bool
	ReconciliationStatus *string
	BalanceTransaction   *string
	Created              int64
	Provenance
}

// PaymentIntentRow is a payment intent.
type PaymentIntentRow struct {
	ID string
	// Amount and Currency are nil when Stripe leaves them out (from dahlia's spec on, a payment
	// intent need not carry them).
	Amount         *int64
	AmountReceived *int64 // Stripe may leave it out
	Currency       *string
	Status         string
	Customer       *string
	Invoice        *string
	LatestCharge   *string
	Created        int64
	// Attention says why a person should look at the row: its invoice is not known (a payment
	// intent's events do not name it from basil on, and no invoice payment made with it has
	// said); nil when nothing.
	Attention *string
	Provenance
}

// CreditNoteRow is a credit note.
type CreditNoteRow struct {
	ID       string
	Invoice  string
	Customer *string
	Number   *string
	Status   string // issued, void
	Type     string // pre_payment, post_payment
	Reason   *string
	Amount   int64
	Subtotal int64
	Total    int64
	Currency string
	Refund   *string
	Created  int64
	Provenance
}

// InvoiceLineRow is one line of an invoice, as the invoice object carried it.
type InvoiceLineRow struct {
	Invoice  string
	ID       string
	Price    *string
	Quantity *int64
	Amount   int64
	Currency string
	// DiscountAmount is the sum of the line's discount_amounts, 0 when it has none.
	DiscountAmount int64
	// TaxAmount is the sum of the line's tax_amounts, nil when it carries none.
	TaxAmount    *int64
	PeriodStart  int64
	PeriodEnd    int64
	Proration    bool
	Subscription *string
}

// ref is an expandable field: Stripe sends the related object's ID, or the object itself when
// expanded. Either way the ledger keeps the ID.
type ref string

func (r *ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*r = ref(o.ID)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*r = ref(s)
	return nil
}

// expandedID is an expandable field's ID, nil when absent (null, or an empty ID).
func expandedID(r *ref) *string {
	if r == nil || *r == "" {
		return nil
	}
	s := string(*r)
	return &s
}

// DecimalString reads a decimal Stripe sends (a JSON number such as exchange_rate, or a string such as
// unit_amount_decimal) exactly, as a decimal string; nil for null or absent. The digits are kept
// as sent ("1.10" stays "1.10", which Postgres numeric keeps too); an exponent form is written
// out in plain digits. It never goes through float64.
func DecimalString(raw json.RawMessage) (*string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decimal %s: %w", clip(string(raw)), err)
		}
	}
	if !decimalSyntax([]byte(s)) {
		return nil, fmt.Errorf("decimal %s is not a decimal number", clip(string(raw)))
	}
	if strings.ContainsAny(s, "eE") {
		r, _ := new(big.Rat).SetString(s)
		// The fewest places that hold the value exactly: a decimal's denominator is 2^a·5^b.
		for prec := 0; prec <= 64; prec++ {
			out := r.FloatString(prec)
			if back, _ := new(big.Rat).SetString(out); back.Cmp(r) == 0 {
				return &out, nil
			}
		}
		return nil, fmt.Errorf("decimal %s has too many places", clip(string(raw)))
	}
	return &s, nil
}

// foldOrdered is the object's state from the last of its facts by the ordering rule, decoded
// into v, with the facts in that order.
func foldOrdered(facts []Fact, v any) (Fact, []Fact, error) {
	ordered := Order(facts)
	if len(ordered) == 0 {
		return Fact{}, nil, fmt.Errorf("no events")
	}
	f := ordered[len(ordered)-1]
	return f, ordered, decodeObject(f, v)
}

// FoldBalanceTransaction is a balance transaction's row from its snapshots. Its state is the
// latest snapshot's (by the ordering rule: the later fetch); its payout is the one named by the
// latest snapshot a payout's listing made, so a later fetch by ID does not forget it.
func FoldBalanceTransaction(facts []Fact) (BalanceTransactionRow, error) {
	var o struct {
		ID                string          `json:"id"`
		Amount            int64           `json:"amount"`
		Fee               int64           `json:"fee"`
		FeeDetails        []FeeDetail     `json:"fee_details"`
		Net               int64           `json:"net"`
		Currency          string          `json:"currency"`
		ExchangeRate      json.RawMessage `json:"exchange_rate"`
		ReportingCategory string          `json:"reporting_category"`
		Type              string          `json:"type"`
		Source            *ref            `json:"source"`
		Status            string          `json:"status"`
		AvailableOn       int64           `json:"available_on"`
		Created           int64           `json:"created"`
	}
	f, ordered, err := foldOrdered(facts, &o)
	if err != nil {
		return BalanceTransactionRow{}, err
	}
	rate, err := DecimalString(o.ExchangeRate)
	if err != nil {
		return BalanceTransactionRow{}, fmt.Errorf("event %s: exchange_rate: %w", f.EventID, err)
	}
	row := BalanceTransactionRow{ID: o.ID, Amount: o.Amount, Fee: o.Fee, FeeDetails: o.FeeDetails, Net: o.Net,
		Currency: o.Currency, ExchangeRate: rate, ReportingCategory: o.ReportingCategory, Type: o.Type,
		SourceID: expandedID(o.Source), Status: o.Status, AvailableOn: o.AvailableOn, Created: o.Created, Provenance: provenance(f)}
	if row.FeeDetails == nil {
		row.FeeDetails = []FeeDetail{}
	}
	for i := len(ordered) - 1; i >= 0; i-- {
		if p := ordered[i].ListedBy; p != "" {
			row.Payout = &p
			break
		}
	}
	return row, nil
}

// FoldPayout is a payout's row from its events (payout.*) and snapshots.
func FoldPayout(facts []Fact) (PayoutRow, error) {
	var o struct {
		ID                   string  `json:"id"`
		Amount               int64   `json:"amount"`
		Currency             string  `json:"currency"`
		ArrivalDate          int64   `json:"arrival_date"`
		Status               string  `json:"status"`
		FailureCode          *string `json:"failure_code"`
		FailureMessage       *string `json:"failure_message"`
		Method               string  `json:"method"`
		Automatic            bool    `json:"automatic"`
		ReconciliationStatus *string `json:"reconciliation_status"`
		BalanceTransaction   *ref    `json:"balance_transaction"`
		Created              int64   `json:"created"`
	}
	f, err := fold(facts, &o)
	if err != nil {
		return PayoutRow{}, err
	}
	return PayoutRow{ID: o.ID, Amount: o.Amount, Currency: o.Currency, ArrivalDate: o.ArrivalDate, Status: o.Status,
		FailureCode: o.FailureCode, FailureMessage: o.FailureMessage, Method: o.Method, Automatic: o.Automatic,
		ReconciliationStatus: o.ReconciliationStatus, BalanceTransaction: expandedID(o.BalanceTransaction), Created: o.Created,
		Provenance: provenance(f)}, nil
}

// FoldPaymentIntent is a payment intent's row from its events (payment_intent.*) and snapshots.
func FoldPaymentIntent(facts []Fact) (PaymentIntentRow, error) {
	var o struct {
		ID             string  `json:"id"`
		Amount         *int64  `json:"amount"`
		AmountReceived *int64  `json:"amount_received"`
		Currency       *string `json:"currency"`
		Status         string  `json:"status"`
		Customer       *ref    `json:"customer"`
		Invoice        *ref    `json:"invoice"`
		LatestCharge   *ref    `json:"latest_charge"`
		Created        int64   `json:"created"`
	}
	f, err := fold(facts, &o)
	if err != nil {
		return PaymentIntentRow{}, err
	}
	row := PaymentIntentRow{ID: o.ID, Amount: o.Amount, AmountReceived: o.AmountReceived, Currency: o.Currency,
		Status: o.Status, Customer: expandedID(o.Customer), Invoice: expandedID(o.Invoice), LatestCharge: expandedID(o.LatestCharge),
		Created: o.Created, Provenance: provenance(f)}
	if row.Invoice == nil && invoicePaymentsApart(f.APIVersion) {
		why := fmt.Sprintf("invoice not known: a payment intent at API version %q does not carry it (an invoice payment made with it names it, when it pays one)", f.APIVersion)
		row.Attention = &why
	}
	return row, nil
}

// SetPayments fills the invoice a payment intent's own events did not carry (from basil on:
// Stripe dropped PaymentIntent.invoice) from the invoice payments made with it; the first one's
// invoice when several.
func (r *PaymentIntentRow) SetPayments(payments []InvoicePaymentRow) {
	if r.Invoice != nil {
		return
	}
	var first *InvoicePaymentRow
	for i := range payments {
		if p := &payments[i]; first == nil || p.Created < first.Created || p.Created == first.Created && p.ID < first.ID {
			first = p
		}
	}
	if first != nil {
		inv := first.Invoice
		r.Invoice = &inv
		r.Attention = nil
	}
}

// FoldCreditNote is a credit note's row from its events (credit_note.*) and snapshots.
func FoldCreditNote(facts []Fact) (CreditNoteRow, error) {
	var o struct {
		ID       string  `json:"id"`
		Invoice  *ref    `json:"invoice"`
		Customer *ref    `json:"customer"`
		Number   *string `json:"number"`
		Status   string  `json:"status"`
		Type     string  `json:"type"`
		Reason   *string `json:"reason"`
		Amount   int64   `json:"amount"`
		Subtotal int64   `json:"subtotal"`
		Total    int64   `json:"total"`
		Currency string  `json:"currency"`
		Refund   *ref    `json:"refund"`
		// From 2025-03-31.basil a credit note lists its refunds instead.
		Refunds []struct {
			Refund *ref `json:"refund"`
		} `json:"refunds"`
		Created int64 `json:"created"`
	}
	f, err := fold(facts, &o)
	if err != nil {
		return CreditNoteRow{}, err
	}
	row := CreditNoteRow{ID: o.ID, Customer: expandedID(o.Customer), Number: o.Number, Status: o.Status, Type: o.Type,
		Reason: o.Reason, Amount: o.Amount, Subtotal: o.Subtotal, Total: o.Total, Currency: o.Currency,
		Refund: expandedID(o.Refund), Created: o.Created, Provenance: provenance(f)}
	for _, r := range o.Refunds { // the first refund (an entry may be a payment record's): the row holds one
		if row.Refund == nil {
			row.Refund = expandedID(r.Refund)
		}
	}
	if inv := expandedID(o.Invoice); inv != nil {
		row.Invoice = *inv
	} else {
		return CreditNoteRow{}, fmt.Errorf("event %s: credit note %s has no invoice", f.EventID, o.ID)
	}
	if row.Number != nil && *row.Number == "" {
		row.Number = nil
	}
	return row, nil
}

// rawLine is a line item as an invoice carries it in lines.data.
type rawLine struct {
	ID              string `json:"id"`
	Price           *ref   `json:"price"`
	Quantity        *int64 `json:"quantity"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
	DiscountAmounts []struct {
		Amount int64 `json:"amount"`
	} `json:"discount_amounts"`
	TaxAmounts []struct {
		Amount int64 `json:"amount"`
	} `json:"tax_amounts"`
	Period struct {
		Start int64 `json:"start"`
		End   int64 `json:"end"`
	} `json:"period"`
	Proration    bool `json:"proration"`
	Subscription *ref `json:"subscription"`
	// From 2025-03-31 (basil): the price is pricing's, the proration and subscription the
	// parent's, the taxes taxes'.
	Pricing *struct {
		PriceDetails *struct {
			Price *ref `json:"price"`
		} `json:"price_details"`
	} `json:"pricing"`
	Parent *struct {
		SubscriptionItemDetails *lineParent `json:"subscription_item_details"`
		InvoiceItemDetails      *lineParent `json:"invoice_item_details"`
	} `json:"parent"`
	Taxes []struct {
		Amount int64 `json:"amount"`
	} `json:"taxes"`
}

// lineParent is what generated an invoice line, from basil on.
type lineParent struct {
	Proration    bool `json:"proration"`
	Subscription *ref `json:"subscription"`
}

func lineRow(invoice string, l rawLine) InvoiceLineRow {
	row := InvoiceLineRow{Invoice: invoice, ID: l.ID, Price: expandedID(l.Price), Quantity: l.Quantity, Amount: l.Amount,
		Currency: l.Currency, PeriodStart: l.Period.Start, PeriodEnd: l.Period.End, Proration: l.Proration,
		Subscription: expandedID(l.Subscription)}
	if row.Price == nil && l.Pricing != nil && l.Pricing.PriceDetails != nil {
		row.Price = expandedID(l.Pricing.PriceDetails.Price)
	}
	if l.Parent != nil {
		for _, p := range []*lineParent{l.Parent.SubscriptionItemDetails, l.Parent.InvoiceItemDetails} {
			if p != nil {
				row.Proration = row.Proration || p.Proration
				if row.Subscription == nil {
					row.Subscription = expandedID(p.Subscription)
				}
			}
		}
	}
	for _, d := range l.DiscountAmounts {
		row.DiscountAmount += d.Amount
	}
	taxes := l.TaxAmounts
	if len(taxes) == 0 {
		taxes = l.Taxes
	}
	if len(taxes) > 0 {
		var tax int64
		for _, t := range taxes {
			tax += t.Amount
		}
		row.TaxAmount = &tax
	}
	return row
}
