package stripesim

import "encoding/json"

// The objects the simulated account holds, in Stripe's shapes at API version 2023-10-16 (field
// names and nesting as in stripe-mock v0.183.0's fixtures), trimmed to what a ledger reads.
// Struct field order is the JSON order, so a seed always renders the same bytes.

// List is Stripe's list envelope, also used for nested lists (subscription items, invoice lines).
type List[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
	URL     string `json:"url"`
}

func newList[T any](url string, data []T) List[T] {
	if data == nil {
		data = []T{}
	}
	return List[T]{Object: "list", Data: data, URL: url}
}

type Customer struct {
	ID       string            `json:"id"`
	Object   string            `json:"object"`
	Created  int64             `json:"created"`
	Currency *string           `json:"currency"`
	Discount *Discount         `json:"discount"` // a customer-level coupon; applies to subscriptions without one of their own
	Email    string            `json:"email"`
	Name     string            `json:"name"`
	Livemode bool              `json:"livemode"`
	Metadata map[string]string `json:"metadata"`
	Deleted  bool              `json:"deleted,omitempty"`
}

type Recurring struct {
	AggregateUsage *string `json:"aggregate_usage"` // metered prices only
	Interval       string  `json:"interval"`
	IntervalCount  int     `json:"interval_count"`
	UsageType      string  `json:"usage_type"` // licensed or metered
}

// Price is a recurring price. Amounts are minor units; the *_decimal fields are decimal strings
// of minor units with up to 12 places ("2912.5" is $29.125), which Stripe sets beside the integer
// field (null when the amount has a fraction). Tiers are rendered as if expanded, which Stripe
// does only on request; a price with hidden tiers (see catalogue.go) shows what an unexpanded
// webhook carries.
type Price struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Active            bool               `json:"active"`
	BillingScheme     string             `json:"billing_scheme"` // per_unit or tiered
	Currency          string             `json:"currency"`
	Nickname          string             `json:"nickname"`
	Product           string             `json:"product"`
	Recurring         *Recurring         `json:"recurring"`
	Tiers             []PriceTier        `json:"tiers,omitempty"`
	TiersMode         *string            `json:"tiers_mode"` // graduated or volume when tiered
	TransformQuantity *TransformQuantity `json:"transform_quantity"`
	Type              string             `json:"type"`
	UnitAmount        *int64             `json:"unit_amount"`
	UnitAmountDecimal *string            `json:"unit_amount_decimal"`

	// hiddenTiers are the tiers of a tiered price rendered without them: the account bills with
	// them, a reader of the webhook cannot.
	hiddenTiers []PriceTier
	plan        *plan  // the catalogue entry the price belongs to
	cadence     string // month, quarter, year, week or fortnight
}

type PriceTier struct {
	FlatAmount        *int64  `json:"flat_amount"`
	FlatAmountDecimal *string `json:"flat_amount_decimal"`
	UnitAmount        *int64  `json:"unit_amount"`
	UnitAmountDecimal *string `json:"unit_amount_decimal"`
	UpTo              *int64  `json:"up_to"` // null: infinity (the last tier)
}

// TransformQuantity is package pricing: the quantity is divided by DivideBy and rounded up or
// down before it is multiplied by the unit amount.
type TransformQuantity struct {
	DivideBy int64  `json:"divide_by"`
	Round    string `json:"round"` // up or down
}

type SubscriptionItem struct {
	ID           string        `json:"id"`
	Object       string        `json:"object"`
	Created      int64         `json:"created"`
	Discounts    *DiscountRefs `json:"discounts,omitempty"` // item-level discounts, applied before the subscription's
	Price        Price         `json:"price"`
	Quantity     int64         `json:"quantity"`
	Subscription string        `json:"subscription"`
	// Only rendered for API versions that moved the period to items (2025-03-31 and later).
	CurrentPeriodStart int64 `json:"current_period_start,omitempty"`
	CurrentPeriodEnd   int64 `json:"current_period_end,omitempty"`

	// billedTo is the end of the period this item was last billed for: an item whose interval
	// differs from the subscription's first item (a yearly add-on on a monthly plan) is billed
	// only at the renewals where its own period has run out (dueNow).
	billedTo int64
	dueNow   bool
}

type PauseCollection struct {
	Behavior  string `json:"behavior"`
	ResumesAt *int64 `json:"resumes_at"`
}

// Discount is a coupon applied to a subscription, one of its items or a customer, from Start
// until End (repeating coupons; null for once and forever).
type Discount struct {
	ID               string  `json:"id"`
	Object           string  `json:"object"`
	CheckoutSession  *string `json:"checkout_session"`
	Coupon           Coupon  `json:"coupon"`
	Customer         *string `json:"customer"`
	End              *int64  `json:"end"`
	Invoice          *string `json:"invoice"`
	InvoiceItem      *string `json:"invoice_item"`
	PromotionCode    *string `json:"promotion_code"` // promo_…, unexpanded as in webhooks; the coupon is the discount's
	Start            int64   `json:"start"`
	Subscription     *string `json:"subscription"`
	SubscriptionItem *string `json:"subscription_item"`

	used         bool // a once coupon has discounted its invoice
	endScheduled bool // its removal after End is on the clock
}

// Coupon is percent-off (a JSON number: 12.5 is valid) or amount-off (minor units of Currency,
// or of CurrencyOptions[currency] for the other currencies it is offered in).
type Coupon struct {
	ID               string                          `json:"id"`
	Object           string                          `json:"object"`
	AmountOff        *int64                          `json:"amount_off"`
	Created          int64                           `json:"created"`
	Currency         *string                         `json:"currency"`
	CurrencyOptions  map[string]CouponCurrencyOption `json:"currency_options,omitempty"`
	Duration         string                          `json:"duration"` // forever, once, repeating
	DurationInMonths *int64                          `json:"duration_in_months"`
	Livemode         bool                            `json:"livemode"`
	MaxRedemptions   *int64                          `json:"max_redemptions"`
	Metadata         map[string]string               `json:"metadata"`
	Name             *string                         `json:"name"`
	PercentOff       *json.Number                    `json:"percent_off"`
	RedeemBy         *int64                          `json:"redeem_by"`
	TimesRedeemed    int64                           `json:"times_redeemed"`
	Valid            bool                            `json:"valid"`
}

type CouponCurrencyOption struct {
	AmountOff int64 `json:"amount_off"`
}

// DiscountRef is one entry of a discounts array: the discount itself, or only its ID (di_…) as
// Stripe renders the array unless it is expanded. hidden is the discount behind a bare ID, which
// the account bills with.
type DiscountRef struct {
	ID       string
	Discount *Discount
	hidden   *Discount
}

// discount is the discount the account applies, whether or not it is rendered.
func (r DiscountRef) discount() *Discount {
	if r.Discount != nil {
		return r.Discount
	}
	return r.hidden
}

// DiscountRefs renders as Stripe's discounts array: objects, or bare IDs.
type DiscountRefs []DiscountRef

func (rs DiscountRefs) MarshalJSON() ([]byte, error) {
	out := make([]any, len(rs))
	for i, r := range rs {
		if r.Discount != nil {
			out[i] = r.Discount
		} else {
			out[i] = r.ID
		}
	}
	return json.Marshal(out)
}

func (rs *DiscountRefs) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(DiscountRefs, len(raw))
	for i, r := range raw {
		if len(r) > 0 && r[0] == '"' {
			if err := json.Unmarshal(r, &out[i].ID); err != nil {
				return err
			}
			continue
		}
		d := new(Discount)
		if err := json.Unmarshal(r, d); err != nil {
			return err
		}
		out[i] = DiscountRef{ID: d.ID, Discount: d}
	}
	*rs = out
	return nil
}

type Subscription struct {
	ID                 string                 `json:"id"`
	Object             string                 `json:"object"`
	BillingCycleAnchor int64                  `json:"billing_cycle_anchor"`
	CancelAt           *int64                 `json:"cancel_at"`
	CancelAtPeriodEnd  bool                   `json:"cancel_at_period_end"`
	CanceledAt         *int64                 `json:"canceled_at"`
	CollectionMethod   string                 `json:"collection_method"`
	Created            int64                  `json:"created"`
	Currency           string                 `json:"currency"`
	CurrentPeriodEnd   int64                  `json:"current_period_end,omitempty"`
	CurrentPeriodStart int64                  `json:"current_period_start,omitempty"`
	Customer           string                 `json:"customer"`
	Discount           *Discount              `json:"discount"`            // the legacy single discount: set when there is exactly one
	Discounts          *DiscountRefs          `json:"discounts,omitempty"` // subscription-level discounts, in the order they apply
	EndedAt            *int64                 `json:"ended_at"`
	Items              List[SubscriptionItem] `json:"items"`
	LatestInvoice      *string                `json:"latest_invoice"`
	Livemode           bool                   `json:"livemode"`
	Metadata           map[string]string      `json:"metadata"`
	PauseCollection    *PauseCollection       `json:"pause_collection"`
	StartDate          int64                  `json:"start_date"`
	Status             string                 `json:"status"`
	TrialEnd           *int64                 `json:"trial_end"`
	TrialStart         *int64                 `json:"trial_start"`

	cust *Customer // whose discount applies when the subscription has none of its own
}

type InvoiceLine struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Amount             int64             `json:"amount"`
	AmountExcludingTax int64             `json:"amount_excluding_tax"`
	Currency           string            `json:"currency"`
	Description        string            `json:"description"`
	DiscountAmounts    []DiscountAmount  `json:"discount_amounts"`
	Discountable       bool              `json:"discountable"`
	Invoice            string            `json:"invoice"`
	Livemode           bool              `json:"livemode"`
	Metadata           map[string]string `json:"metadata"`
	Period             Period            `json:"period"`
	Price              Price             `json:"price"`
	Proration          bool              `json:"proration"`
	Quantity           int64             `json:"quantity"`
	Subscription       *string           `json:"subscription"`
	SubscriptionItem   string            `json:"subscription_item"`
	TaxAmounts         []TaxAmount       `json:"tax_amounts"`
	TaxRates           []any             `json:"tax_rates"` // always empty: see billLines
	Type               string            `json:"type"`      // subscription
}

type Period struct {
	End   int64 `json:"end"`
	Start int64 `json:"start"`
}

type Invoice struct {
	ID              string  `json:"id"`
	Object          string  `json:"object"`
	AmountDue       int64   `json:"amount_due"`
	AmountPaid      int64   `json:"amount_paid"`
	AmountRemaining int64   `json:"amount_remaining"`
	AttemptCount    int     `json:"attempt_count"`
	Attempted       bool    `json:"attempted"`
	BillingReason   string  `json:"billing_reason"`
	Charge          *string `json:"charge"`
	Created         int64   `json:"created"`
	Currency        string  `json:"currency"`
	Customer        string  `json:"customer"`
	// EndingBalance is the customer's balance after the invoice (negative: credit left, from
	// proration credits larger than what was due).
	EndingBalance *int64            `json:"ending_balance"`
	Lines         List[InvoiceLine] `json:"lines"`
	Livemode      bool              `json:"livemode"`
	NextPaymentAt *int64            `json:"next_payment_attempt"`
	Number        string            `json:"number"`
	Paid          bool              `json:"paid"`
	PaymentIntent *string           `json:"payment_intent"`
	PeriodEnd     int64             `json:"period_end"`
	PeriodStart   int64             `json:"period_start"`
	// StartingBalance is the customer's balance applied to amount_due (negative: a credit).
	StartingBalance int64   `json:"starting_balance"`
	Status          string  `json:"status"`
	Subscription    *string `json:"subscription"`
	Subtotal        int64   `json:"subtotal"`
	// SubtotalExcludingTax equals Subtotal: the simulator's taxes are exclusive.
	SubtotalExcludingTax *int64           `json:"subtotal_excluding_tax"`
	Tax                  *int64           `json:"tax"` // null when no tax rate applies
	Total                int64            `json:"total"`
	TotalDiscountAmounts []DiscountAmount `json:"total_discount_amounts"`
	TotalExcludingTax    *int64           `json:"total_excluding_tax"`
	TotalTaxAmounts      []TaxAmount      `json:"total_tax_amounts"`
}

// InvoicePayment is a payment of an invoice (from 2025-03-31.basil; its invoice_payment.paid
// event from 2025-05-28).
type InvoicePayment struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	AmountPaid        *int64             `json:"amount_paid"` // null until paid
	AmountRequested   int64              `json:"amount_requested"`
	Created           int64              `json:"created"`
	Currency          string             `json:"currency"`
	Invoice           string             `json:"invoice"`
	IsDefault         bool               `json:"is_default"`
	Livemode          bool               `json:"livemode"`
	Payment           AssociatedPayment  `json:"payment"`
	Status            string             `json:"status"` // open, paid, canceled
	StatusTransitions PaymentTransitions `json:"status_transitions"`
}

// AssociatedPayment is what an invoice payment was made with: a payment intent, or a charge
// made without one.
type AssociatedPayment struct {
	Type          string  `json:"type"` // payment_intent or charge
	PaymentIntent *string `json:"payment_intent,omitempty"`
	Charge        *string `json:"charge,omitempty"`
}

type PaymentTransitions struct {
	CanceledAt *int64 `json:"canceled_at"`
	PaidAt     *int64 `json:"paid_at"`
}

type Charge struct {
	ID             string `json:"id"`
	Object         string `json:"object"`
	Amount         int64  `json:"amount"`
	AmountCaptured int64  `json:"amount_captured"`
	AmountRefunded int64  `json:"amount_refunded"`
	// BalanceTransaction is the txn_… of a succeeded charge (null for a failed one).
	BalanceTransaction *string           `json:"balance_transaction"`
	Captured           bool              `json:"captured"`
	Created            int64             `json:"created"`
	Currency           string            `json:"currency"`
	Customer           *string           `json:"customer"`
	Description        string            `json:"description"`
	Disputed           bool              `json:"disputed"`
	FailureCode        *string           `json:"failure_code"`
	FailureMessage     *string           `json:"failure_message"`
	Invoice            *string           `json:"invoice"`
	Livemode           bool              `json:"livemode"`
	Metadata           map[string]string `json:"metadata"`
	Paid               bool              `json:"paid"`
	PaymentIntent      *string           `json:"payment_intent"`
	Refunded           bool              `json:"refunded"`
	Status             string            `json:"status"`
}

type Refund struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Amount             int64             `json:"amount"`
	BalanceTransaction *string           `json:"balance_transaction"`
	Charge             string            `json:"charge"`
	Created            int64             `json:"created"`
	Currency           string            `json:"currency"`
	Metadata           map[string]string `json:"metadata"`
	PaymentIntent      *string           `json:"payment_intent"`
	Reason             *string           `json:"reason"`
	Status             string            `json:"status"`
}

type Dispute struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Amount int64  `json:"amount"`
	// BalanceTransactions are the funds withdrawn (with the dispute fee) and, when the dispute
	// is won, reinstated: zero, one or two whole objects, as Stripe embeds them.
	BalanceTransactions []*BalanceTransaction `json:"balance_transactions"`
	Charge              string                `json:"charge"`
	Created             int64                 `json:"created"`
	Currency            string                `json:"currency"`
	IsChargeRefundable  bool                  `json:"is_charge_refundable"`
	Livemode            bool                  `json:"livemode"`
	Metadata            map[string]string     `json:"metadata"`
	Reason              string                `json:"reason"`
	Status              string                `json:"status"`
}

type CheckoutSession struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	AmountTotal       int64             `json:"amount_total"`
	ClientReferenceID *string           `json:"client_reference_id"`
	Created           int64             `json:"created"`
	Currency          string            `json:"currency"`
	Customer          *string           `json:"customer"`
	CustomerCreation  string            `json:"customer_creation"`
	Livemode          bool              `json:"livemode"`
	Metadata          map[string]string `json:"metadata"`
	Mode              string            `json:"mode"`
	PaymentStatus     string            `json:"payment_status"`
	Status            string            `json:"status"`
	Subscription      *string           `json:"subscription"`
}

// The money side: balance transactions, payouts, payment intents, credit notes, and the parts of
// invoice lines that carry discounts and taxes. Field names as in stripe-mock v0.183.0's spec.

type BalanceTransaction struct {
	ID          string  `json:"id"`
	Object      string  `json:"object"`
	Amount      int64   `json:"amount"` // in Currency (the settlement currency), minor units
	AvailableOn int64   `json:"available_on"`
	Created     int64   `json:"created"`
	Currency    string  `json:"currency"`
	Description *string `json:"description"`
	// ExchangeRate is set when the source's currency is not the settlement currency: a JSON
	// number with at most six decimal places, exactly FXRateString's value.
	ExchangeRate      *json.Number `json:"exchange_rate"`
	Fee               int64        `json:"fee"`
	FeeDetails        []FeeDetail  `json:"fee_details"`
	Net               int64        `json:"net"`
	ReportingCategory string       `json:"reporting_category"`
	Source            *string      `json:"source"`
	Status            string       `json:"status"` // pending until AvailableOn, then available
	Type              string       `json:"type"`

	payout string // the payout whose ?payout= listing holds it, "" until one does
	seq    int    // creation order, to break ties of created in lists
}

type FeeDetail struct {
	Amount      int64   `json:"amount"`
	Application *string `json:"application"`
	Currency    string  `json:"currency"`
	Description *string `json:"description"`
	Type        string  `json:"type"` // stripe_fee
}

type Payout struct {
	ID                        string            `json:"id"`
	Object                    string            `json:"object"`
	Amount                    int64             `json:"amount"`
	ArrivalDate               int64             `json:"arrival_date"`
	Automatic                 bool              `json:"automatic"`
	BalanceTransaction        *string           `json:"balance_transaction"`
	Created                   int64             `json:"created"`
	Currency                  string            `json:"currency"`
	Description               *string           `json:"description"`
	Destination               *string           `json:"destination"`
	FailureBalanceTransaction *string           `json:"failure_balance_transaction"`
	FailureCode               *string           `json:"failure_code"`
	FailureMessage            *string           `json:"failure_message"`
	Livemode                  bool              `json:"livemode"`
	Metadata                  map[string]string `json:"metadata"`
	Method                    string            `json:"method"`
	ReconciliationStatus      string            `json:"reconciliation_status"`
	SourceType                string            `json:"source_type"`
	StatementDescriptor       *string           `json:"statement_descriptor"`
	Status                    string            `json:"status"`
	Type                      string            `json:"type"`
}

type PaymentIntent struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Amount             int64             `json:"amount"`
	AmountCapturable   int64             `json:"amount_capturable"`
	AmountReceived     int64             `json:"amount_received"`
	CaptureMethod      string            `json:"capture_method"`
	ConfirmationMethod string            `json:"confirmation_method"`
	Created            int64             `json:"created"`
	Currency           string            `json:"currency"`
	Customer           *string           `json:"customer"`
	Description        *string           `json:"description"`
	Invoice            *string           `json:"invoice"`
	LastPaymentError   *PaymentError     `json:"last_payment_error"`
	LatestCharge       *string           `json:"latest_charge"`
	Livemode           bool              `json:"livemode"`
	Metadata           map[string]string `json:"metadata"`
	PaymentMethodTypes []string          `json:"payment_method_types"`
	Status             string            `json:"status"`

	amountBefore *int64 // the amount its last event showed, when it changed since (partialPayment)
}

// PaymentError is a payment intent's last_payment_error (Stripe's api_errors).
type PaymentError struct {
	Charge  *string `json:"charge"`
	Code    *string `json:"code"`
	Message *string `json:"message"`
	Type    string  `json:"type"` // card_error
}

type CreditNote struct {
	ID                   string               `json:"id"`
	Object               string               `json:"object"`
	Amount               int64                `json:"amount"`
	AmountShipping       int64                `json:"amount_shipping"`
	Created              int64                `json:"created"`
	Currency             string               `json:"currency"`
	Customer             string               `json:"customer"`
	DiscountAmount       int64                `json:"discount_amount"`
	DiscountAmounts      []DiscountAmount     `json:"discount_amounts"`
	EffectiveAt          *int64               `json:"effective_at"`
	Invoice              string               `json:"invoice"`
	Lines                List[CreditNoteLine] `json:"lines"`
	Livemode             bool                 `json:"livemode"`
	Memo                 *string              `json:"memo"`
	Metadata             map[string]string    `json:"metadata"`
	Number               string               `json:"number"`
	OutOfBandAmount      *int64               `json:"out_of_band_amount"`
	PDF                  string               `json:"pdf"`
	Reason               *string              `json:"reason"`
	Refund               *string              `json:"refund"`
	Status               string               `json:"status"` // issued, void
	Subtotal             int64                `json:"subtotal"`
	SubtotalExcludingTax *int64               `json:"subtotal_excluding_tax"`
	TaxAmounts           []TaxAmount          `json:"tax_amounts"`
	Total                int64                `json:"total"`
	TotalExcludingTax    *int64               `json:"total_excluding_tax"`
	Type                 string               `json:"type"` // post_payment
	VoidedAt             *int64               `json:"voided_at"`
}

type CreditNoteLine struct {
	ID                 string           `json:"id"`
	Object             string           `json:"object"`
	Amount             int64            `json:"amount"`
	AmountExcludingTax *int64           `json:"amount_excluding_tax"`
	Description        *string          `json:"description"`
	DiscountAmount     int64            `json:"discount_amount"`
	DiscountAmounts    []DiscountAmount `json:"discount_amounts"`
	InvoiceLineItem    string           `json:"invoice_line_item,omitempty"`
	Livemode           bool             `json:"livemode"`
	Quantity           *int64           `json:"quantity"`
	TaxAmounts         []TaxAmount      `json:"tax_amounts"`
	TaxRates           []any            `json:"tax_rates"` // always empty, as the invoice line's
	Type               string           `json:"type"`      // invoice_line_item, custom_line_item
	UnitAmount         *int64           `json:"unit_amount"`
}

// DiscountAmount is one discount's share of a line or an invoice (discount: the di_… ID).
type DiscountAmount struct {
	Amount   int64  `json:"amount"`
	Discount string `json:"discount"`
}

// TaxAmount is one tax rate's share (tax_rate: the txr_… ID); the simulator's are exclusive.
type TaxAmount struct {
	Amount           int64   `json:"amount"`
	Inclusive        bool    `json:"inclusive"`
	TaxRate          string  `json:"tax_rate"`
	TaxabilityReason *string `json:"taxability_reason"`
	TaxableAmount    *int64  `json:"taxable_amount"`
}
