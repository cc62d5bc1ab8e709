package domain

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The rows below are snapshots of Stripe objects as finance reads them: the object as of the latest
// of its events by the ordering rule, with the event that produced it. Money is in the currency's
// minor unit; times are Unix seconds. A field Stripe can leave null or out is a pointer, nil when
// absent: never "" or 0 standing in for "none".

// Provenance is the event a row's state comes from: the latest of its object's events by the
// ordering rule.
type Provenance struct {
	EventID      string
	EventCreated int64
	// Livemode and Account are the event's: every object lives in one mode of one account
	// (Account nil for the platform's own objects, acct_… for a connected account's).
	Livemode bool
	Account  *string
}

// Source is the row's provenance (every row type embeds Provenance).
func (p *Provenance) Source() *Provenance { return p }

func provenance(f Fact) Provenance {
	p := Provenance{EventID: f.EventID, EventCreated: f.Created, Livemode: f.Livemode}
	if f.Account != "" {
		p.Account = &f.Account
	}
	return p
}

// InvoiceRow is an invoice.
type InvoiceRow struct {
	ID              string
	Customer        *string
	Subscription    *string
	Status          *string // draft, open, paid, uncollectible, void
	BillingReason   *string
	Currency        string
	AmountDue       int64
	AmountPaid      int64
	AmountRemaining int64
	Total           int64
	Subtotal        int64
	Tax             *int64 // nil when the invoice has no tax
	// TotalDiscounts is the sum of total_discount_amounts, 0 when none.
	TotalDiscounts    int64
	TotalExcludingTax *int64
	AttemptCount      int64
	Charge            *string
	PaymentIntent     *string
	PeriodStart       int64
	PeriodEnd         int64
	Created           int64
	// Lines are the line items the invoice object carries (lines.data): the first page of them
	// when Stripe says lines.has_more (LinesHasMore).
	Lines        []InvoiceLineRow
	LinesHasMore bool
	// Attention says why a person should look at the row: a link the invoice's events do not
	// carry at their API version; nil when nothing.
	Attention *string
	Provenance
}

// InvoicePaymentRow is a payment of an invoice (API versions from 2025-03-31.basil): made with a
// payment intent or a charge.
type InvoicePaymentRow struct {
	ID              string
	Invoice         string
	Status          string // open, paid, canceled
	AmountPaid      *int64 // nil until paid
	AmountRequested int64
	Currency        string
	IsDefault       bool
	PaymentType     string // payment_intent, charge, payment_record, …
	PaymentIntent   *string
	Charge          *string
	PaidAt          *int64
	CanceledAt      *int64
	Created         int64
	Provenance
}

// FoldInvoicePayment is an invoice payment's row from its events (invoice_payment.*).
func FoldInvoicePayment(facts []Fact) (InvoicePaymentRow, error) {
	var o struct {
		ID              string `json:"id"`
		Invoice         *ref   `json:"invoice"`
		Status          string `json:"status"`
		AmountPaid      *int64 `json:"amount_paid"`
		AmountRequested int64  `json:"amount_requested"`
		Currency        string `json:"currency"`
		IsDefault       bool   `json:"is_default"`
		Payment         struct {
			Type          string `json:"type"`
			PaymentIntent *ref   `json:"payment_intent"`
			Charge        *ref   `json:"charge"`
		} `json:"payment"`
		StatusTransitions struct {
			PaidAt     *int64 `json:"paid_at"`
			CanceledAt *int64 `json:"canceled_at"`
		} `json:"status_transitions"`
		Created int64 `json:"created"`
	}
	f, err := fold(facts, &o)
	if err != nil {
		return InvoicePaymentRow{}, err
	}
	if o.Invoice == nil || *o.Invoice == "" {
		return InvoicePaymentRow{}, fmt.Errorf("event %s: invoice payment %s names no invoice", f.EventID, o.ID)
	}
	return InvoicePaymentRow{ID: o.ID, Invoice: string(*o.Invoice), Status: o.Status, AmountPaid: o.AmountPaid,
		AmountRequested: o.AmountRequested, Currency: o.Currency, IsDefault: o.IsDefault, PaymentType: o.Payment.Type,
		PaymentIntent: expandedID(o.Payment.PaymentIntent), Charge: expandedID(o.Payment.Charge),
		PaidAt: o.StatusTransitions.PaidAt, CanceledAt: o.StatusTransitions.CanceledAt, Created: o.Created,
		Provenance: provenance(f)}, nil
}

// RefundRow is a refund.
type RefundRow struct {
	ID       string
	Charge   *string
	Amount   int64
	Currency string
	Status   *string
	Reason   *string
	Created  int64
	Provenance
}

// DisputeRow is a dispute.
type DisputeRow struct {
	ID       string
	Charge   string
	Amount   int64
	Currency string
	Status   string
	Reason   string
	Created  int64
	Provenance
}

// CustomerRow is a customer.
type CustomerRow struct {
	ID       string
	Email    *string
	Name     *string
	Currency *string
	Metadata map[string]string // nil when the object carries none
	Deleted  bool
	Created  int64
	// Discount is the customer's discount as of its latest event (nil when none): it applies to
	// the customer's subscriptions that have none of their own.
	Discount *Discount
	// DiscountHistory is the customer's discount from each event that changed it, oldest
	// first (nil when it never had one): a subscription's MRR at t reads the entry in force at t.
	DiscountHistory []CustomerDiscount
	// Coupons are the IDs of every coupon its discount history names, sorted; nil when none.
	Coupons []string
	Provenance
}

// CheckoutSessionRow is a Checkout session, kept for identity (who a purchase belongs to).
type CheckoutSessionRow struct {
	ID                string
	Customer          *string
	ClientReferenceID *string
	Subscription      *string
	Mode              string
	Status            *string
	PaymentStatus     string
	Currency          *string
	AmountTotal       *int64
	Metadata          map[string]string
	Created           int64
	// AppUserID is derived by the projection from the session, its customer and the identity
	// setting (Identity.AppUserID); nil when nothing identifies the purchaser.
	AppUserID *string
	Provenance
}

// fold decodes the latest of facts into v and returns that fact.
func fold(facts []Fact, v any) (Fact, error) {
	f, ok := Latest(facts)
	if !ok {
		return Fact{}, fmt.Errorf("no events")
	}
	return f, decodeObject(f, v)
}

// rawInvoice is the invoice as every API version renders it: the fields of 2023-10-16 and those
// that replaced them from 2025-03-31 (basil), read into one row by FoldInvoice.
type rawInvoice struct {
	ID, Currency                           string
	Customer, Subscription, Charge, Status *string
	PaymentIntent                          *string `json:"payment_intent"`
	BillingReason                          *string `json:"billing_reason"`
	AmountDue                              int64   `json:"amount_due"`
	AmountPaid                             int64   `json:"amount_paid"`
	AmountRemaining                        int64   `json:"amount_remaining"`
	Total                                  int64
	Subtotal                               int64
	Tax                                    *int64
	TotalDiscountAmounts                   []struct{ Amount int64 } `json:"total_discount_amounts"`
	TotalExcludingTax                      *int64                   `json:"total_excluding_tax"`
	Lines                                  struct {
		Data    []rawLine
		HasMore bool `json:"has_more"`
	}
	AttemptCount int64 `json:"attempt_count"`
	PeriodStart  int64 `json:"period_start"`
	PeriodEnd    int64 `json:"period_end"`
	Created      int64
	// From basil: the subscription is the parent's, the tax total_taxes' sum.
	Parent *struct {
		SubscriptionDetails *struct {
			Subscription *ref `json:"subscription"`
		} `json:"subscription_details"`
	} `json:"parent"`
	TotalTaxes []struct{ Amount int64 } `json:"total_taxes"`
}

// FoldInvoice is an invoice's row from its events, whatever API version each was rendered at.
// From 2025-03-31 (basil) an invoice names its subscription through parent, its tax through
// total_taxes, and no longer carries its charge or payment intent (they are its invoice
// payments'): those two are then nil and attention says why.
func FoldInvoice(facts []Fact) (InvoiceRow, error) {
	var o rawInvoice
	f, err := fold(facts, &o)
	if err != nil {
		return InvoiceRow{}, err
	}
	row := InvoiceRow{ID: o.ID, Customer: o.Customer, Subscription: o.Subscription, Status: o.Status,
		BillingReason: o.BillingReason, Currency: o.Currency, AmountDue: o.AmountDue, AmountPaid: o.AmountPaid,
		AmountRemaining: o.AmountRemaining, Total: o.Total, Subtotal: o.Subtotal, Tax: o.Tax,
		TotalExcludingTax: o.TotalExcludingTax, AttemptCount: o.AttemptCount, Charge: o.Charge,
		PaymentIntent: o.PaymentIntent, PeriodStart: o.PeriodStart, PeriodEnd: o.PeriodEnd, Created: o.Created,
		Provenance: provenance(f)}
	if row.Subscription == nil && o.Parent != nil && o.Parent.SubscriptionDetails != nil {
		row.Subscription = expandedID(o.Parent.SubscriptionDetails.Subscription)
	}
	if row.Tax == nil && len(o.TotalTaxes) > 0 {
		var tax int64
		for _, t := range o.TotalTaxes {
			tax += t.Amount
		}
		row.Tax = &tax
	}
	for _, d := range o.TotalDiscountAmounts {
		row.TotalDiscounts += d.Amount
	}
	for _, l := range o.Lines.Data {
		row.Lines = append(row.Lines, lineRow(o.ID, l))
	}
	row.LinesHasMore = o.Lines.HasMore
	if invoicePaymentsApart(f.APIVersion) {
		row.paymentLinksApart(f.APIVersion)
	}
	return row, nil
}

// invoicePaymentsApart says whether an invoice rendered at version leaves its charge and
// payment intent to its invoice payments: from 2025-03-31 (basil), and at any version the
// ledger does not know that sorts after it.
func invoicePaymentsApart(version string) bool { return version >= "2025-03-31" }

// SetPayments fills the payment intent and charge the invoice's own events did not carry (from
// basil on) from its invoice payments, and says in attention what stays unknown. Links the
// invoice's events carried are kept. The payment intent is the default payment's (the one
// Stripe attempts), else the latest paid one's; the charge the latest charge-only payment's (a
// payment intent's charges are in charges, by payment_intent: the invoice payment does not name
// them, and the charges' own invoice is no longer said).
func (r *InvoiceRow) SetPayments(payments []InvoicePaymentRow) {
	if r.Charge != nil && r.PaymentIntent != nil || r.Attention == nil {
		return // the invoice's events carried its links (or had none to carry)
	}
	ps := slices.Clone(payments)
	slices.SortFunc(ps, func(a, b InvoicePaymentRow) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.ID, b.ID))
	})
	if r.PaymentIntent == nil {
		var pick *InvoicePaymentRow
		for i := range ps {
			if p := &ps[i]; p.PaymentIntent != nil && (p.IsDefault || p.Status == "paid" && (pick == nil || !pick.IsDefault)) {
				pick = p
			}
		}
		if pick != nil {
			r.PaymentIntent = pick.PaymentIntent
		}
	}
	for i := len(ps) - 1; i >= 0 && r.Charge == nil; i-- {
		r.Charge = ps[i].Charge
	}
	r.paymentLinksApart("")
}

// paymentLinksApart says in attention which of the charge and payment intent are nil on an
// invoice whose latest event, at version, does not carry them (version "": the attention it
// has names the version; only its list of what is missing is brought up to date). An older
// rendering of the invoice does not stand in for them: a charge retried since would be the
// wrong one.
func (r *InvoiceRow) paymentLinksApart(version string) {
	var missing []string
	if r.Charge == nil {
		missing = append(missing, "charge")
	}
	if r.PaymentIntent == nil {
		missing = append(missing, "payment_intent")
	}
	// A draft has no payment yet, nor has an invoice with nothing due; any other invoice may have
	// had one, which its events at this version do not show.
	if len(missing) == 0 || r.Status != nil && *r.Status == "draft" || r.AmountDue == 0 {
		r.Attention = nil
		return
	}
	why := fmt.Sprintf(" not known: an invoice at API version %q does not carry them (its invoice payments do)", version)
	if version == "" {
		if r.Attention == nil {
			return
		}
		_, rest, _ := strings.Cut(*r.Attention, " not known:")
		why = " not known:" + rest
	}
	why = strings.Join(missing, " and ") + why
	r.Attention = &why
}

// FoldRefund is a refund's row from its events (charge.refund.updated, refund.*).
func FoldRefund(facts []Fact) (RefundRow, error) {
	var o struct {
		ID, Currency           string
		Charge, Status, Reason *string
		Amount, Created        int64
	}
	f, err := fold(facts, &o)
	if err != nil {
		return RefundRow{}, err
	}
	return RefundRow{ID: o.ID, Charge: o.Charge, Amount: o.Amount, Currency: o.Currency, Status: o.Status,
		Reason: o.Reason, Created: o.Created, Provenance: provenance(f)}, nil
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
		Reason: o.Reason, Created: o.Created, Provenance: provenance(f)}, nil
}

// FoldCustomer is a customer's row from its events.
func FoldCustomer(facts []Fact) (CustomerRow, error) {
	var o struct {
		ID                    string
		Email, Name, Currency *string
		Metadata              map[string]string
		Deleted               bool
		Created               int64
	}
	f, err := fold(facts, &o)
	if err != nil {
		return CustomerRow{}, err
	}
	row := CustomerRow{ID: o.ID, Email: o.Email, Name: o.Name, Currency: o.Currency, Metadata: o.Metadata,
		Deleted: o.Deleted || terminal(f.Type), Created: o.Created, Provenance: provenance(f)}
	if row.DiscountHistory, err = customerDiscounts(facts); err != nil {
		return CustomerRow{}, err
	}
	if n := len(row.DiscountHistory); n > 0 {
		row.Discount = row.DiscountHistory[n-1].Discount
	}
	row.Coupons = couponsOfHistory(row.DiscountHistory)
	return row, nil
}

// customerDiscounts is the customer's discount after each of its events that changed it, in the
// ordering rule's order, up to its deletion.
//
// A discount that names its coupon by ID only takes the terms that event or an earlier one of the
// customer's embeds (see needsCoupon; only earlier ones, as fillStateCoupons).
func customerDiscounts(facts []Fact) ([]CustomerDiscount, error) {
	var out []CustomerDiscount
	var last string
	var known map[string]Discount
	for _, f := range Order(facts) {
		var o struct {
			Discount *rawDiscount `json:"discount"`
		}
		if err := decodeObject(f, &o); err != nil {
			return nil, err
		}
		e := CustomerDiscount{At: f.Created, EventID: f.EventID}
		if o.Discount != nil {
			ds := []Discount{readDiscount(o.Discount)}
			known = coupons(known, ds)
			fillCoupons(ds, known)
			e.Discount = &ds[0]
		}
		key, _ := json.Marshal(e.Discount)
		if string(key) != last && (out != nil || e.Discount != nil) {
			out = append(out, e)
		}
		last = string(key)
		if terminal(f.Type) {
			break
		}
	}
	return out, nil
}

// FoldCheckoutSession is a Checkout session's row from its events. Its AppUserID is left for the
// projection to derive.
func FoldCheckoutSession(facts []Fact) (CheckoutSessionRow, error) {
	var o struct {
		ID, Mode                       string
		Customer, Subscription, Status *string
		Currency                       *string
		ClientReferenceID              *string `json:"client_reference_id"`
		PaymentStatus                  string  `json:"payment_status"`
		AmountTotal                    *int64  `json:"amount_total"`
		Metadata                       map[string]string
		Created                        int64
	}
	f, err := fold(facts, &o)
	if err != nil {
		return CheckoutSessionRow{}, err
	}
	return CheckoutSessionRow{ID: o.ID, Customer: o.Customer, ClientReferenceID: o.ClientReferenceID,
		Subscription: o.Subscription, Mode: o.Mode, Status: o.Status, PaymentStatus: o.PaymentStatus,
		Currency: o.Currency, AmountTotal: o.AmountTotal, Metadata: o.Metadata, Created: o.Created,
		Provenance: provenance(f)}, nil
}

// Deref is *p, or "" when p is nil: for the places where absent and empty mean the same thing
// (an identity lookup key, say), never for a value that is written to a read model.
func Deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
