package domain

import "fmt"

// The rows below are snapshots of Stripe objects as finance reads them: the object as of the latest
// of its events by the ordering rule, with the event that produced it. Money is in the currency's
// minor unit; times are Unix seconds.

// InvoiceRow is an invoice.
type InvoiceRow struct {
	ID              string
	Customer        string
	Subscription    string
	Status          string // draft, open, paid, uncollectible, void
	BillingReason   string
	Currency        string
	AmountDue       int64
	AmountPaid      int64
	AmountRemaining int64
	Total           int64
	AttemptCount    int64
	Charge          string
	PaymentIntent   string
	PeriodStart     int64
	PeriodEnd       int64
	Created         int64
	EventID         string
	EventCreated    int64
}

// RefundRow is a refund.
type RefundRow struct {
	ID           string
	Charge       string
	Amount       int64
	Currency     string
	Status       string
	Reason       string
	Created      int64
	EventID      string
	EventCreated int64
}

// DisputeRow is a dispute.
type DisputeRow struct {
	ID           string
	Charge       string
	Amount       int64
	Currency     string
	Status       string
	Reason       string
	Created      int64
	EventID      string
	EventCreated int64
}

// CustomerRow is a customer.
type CustomerRow struct {
	ID           string
	Email        string
	Name         string
	Currency     string
	Metadata     map[string]string
	Deleted      bool
	Created      int64
	EventID      string
	EventCreated int64
}

// CheckoutSessionRow is a Checkout session, kept for identity (who a purchase belongs to).
type CheckoutSessionRow struct {
	ID                string
	Customer          string
	ClientReferenceID string
	Subscription      string
	Mode              string
	Status            string
	PaymentStatus     string
	Currency          string
	AmountTotal       int64
	Metadata          map[string]string
	Created           int64
	EventID           string
	EventCreated      int64
}

// fold decodes the latest of facts into v and returns that fact.
func fold(facts []Fact, v any) (Fact, error) {
	f, ok := Latest(facts)
	if !ok {
		return Fact{}, fmt.Errorf("no events")
	}
	return f, decodeObject(f, v)
}

// FoldInvoice is an invoice's row from its events.
func FoldInvoice(facts []Fact) (InvoiceRow, error) {
	var o struct {
		ID, Customer, Status, Currency string
		Subscription, Charge           *string
		PaymentIntent                  *string `json:"payment_intent"`
		BillingReason                  string  `json:"billing_reason"`
		AmountDue                      int64   `json:"amount_due"`
		AmountPaid                     int64   `json:"amount_paid"`
		AmountRemaining                int64   `json:"amount_remaining"`
		Total                          int64
		AttemptCount                   int64 `json:"attempt_count"`
		PeriodStart                    int64 `json:"period_start"`
		PeriodEnd                      int64 `json:"period_end"`
		Created                        int64
	}
	f, err := fold(facts, &o)
	if err != nil {
		return InvoiceRow{}, err
	}
	return InvoiceRow{ID: o.ID, Customer: o.Customer, Subscription: deref(o.Subscription), Status: o.Status,
		BillingReason: o.BillingReason, Currency: o.Currency, AmountDue: o.AmountDue, AmountPaid: o.AmountPaid,
		AmountRemaining: o.AmountRemaining, Total: o.Total, AttemptCount: o.AttemptCount, Charge: deref(o.Charge),
		PaymentIntent: deref(o.PaymentIntent), PeriodStart: o.PeriodStart, PeriodEnd: o.PeriodEnd, Created: o.Created,
		EventID: f.EventID, EventCreated: f.Created}, nil
}

// FoldRefund is a refund's row from its events (charge.refund.updated, refund.*).
func FoldRefund(facts []Fact) (RefundRow, error) {
	var o struct {
		ID, Charge, Currency, Status string
		Amount, Created              int64
		Reason                       *string
	}
	f, err := fold(facts, &o)
	if err != nil {
		return RefundRow{}, err
	}
	return RefundRow{ID: o.ID, Charge: o.Charge, Amount: o.Amount, Currency: o.Currency, Status: o.Status,
		Reason: deref(o.Reason), Created: o.Created, EventID: f.EventID, EventCreated: f.Created}, nil
}

// FoldDispute is a dispute's row from its events (charge.dispute.*).
func FoldDispute(facts []Fact) (DisputeRow, error) {
	var o struct {
		ID, Charge, Currency, Status, Reason string
		Amount, Created                      int64
	}
	f, err := fold(facts, &o)
	if err != nil {
		return DisputeRow{}, err
	}
	return DisputeRow{ID: o.ID, Charge: o.Charge, Amount: o.Amount, Currency: o.Currency, Status: o.Status,
		Reason: o.Reason, Created: o.Created, EventID: f.EventID, EventCreated: f.Created}, nil
}

// FoldCustomer is a customer's row from its events.
func FoldCustomer(facts []Fact) (CustomerRow, error) {
	var o struct {
		ID, Email, Name string
		Currency        *string
		Metadata        map[string]string
		Deleted         bool
		Created         int64
	}
	f, err := fold(facts, &o)
	if err != nil {
		return CustomerRow{}, err
	}
	return CustomerRow{ID: o.ID, Email: o.Email, Name: o.Name, Currency: deref(o.Currency), Metadata: o.Metadata,
		Deleted: o.Deleted || terminal(f.Type), Created: o.Created, EventID: f.EventID, EventCreated: f.Created}, nil
}

// FoldCheckoutSession is a Checkout session's row from its events.
func FoldCheckoutSession(facts []Fact) (CheckoutSessionRow, error) {
	var o struct {
		ID, Mode, Status, Currency string
		Customer, Subscription     *string
		ClientReferenceID          *string `json:"client_reference_id"`
		PaymentStatus              string  `json:"payment_status"`
		AmountTotal                int64   `json:"amount_total"`
		Metadata                   map[string]string
		Created                    int64
	}
	f, err := fold(facts, &o)
	if err != nil {
		return CheckoutSessionRow{}, err
	}
	return CheckoutSessionRow{ID: o.ID, Customer: deref(o.Customer), ClientReferenceID: deref(o.ClientReferenceID),
		Subscription: deref(o.Subscription), Mode: o.Mode, Status: o.Status, PaymentStatus: o.PaymentStatus,
		Currency: o.Currency, AmountTotal: o.AmountTotal, Metadata: o.Metadata, Created: o.Created,
		EventID: f.EventID, EventCreated: f.Created}, nil
}
