package stripesim

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
	Email    string            `json:"email"`
	Name     string            `json:"name"`
	Livemode bool              `json:"livemode"`
	Metadata map[string]string `json:"metadata"`
	Deleted  bool              `json:"deleted,omitempty"`
}

type Recurring struct {
	Interval      string `json:"interval"`
	IntervalCount int    `json:"interval_count"`
	UsageType     string `json:"usage_type"`
}

type Price struct {
	ID         string     `json:"id"`
	Object     string     `json:"object"`
	Active     bool       `json:"active"`
	Currency   string     `json:"currency"`
	Product    string     `json:"product"`
	Recurring  *Recurring `json:"recurring"`
	Type       string     `json:"type"`
	UnitAmount int64      `json:"unit_amount"`
	Nickname   string     `json:"nickname"`
}

type SubscriptionItem struct {
	ID           string `json:"id"`
	Object       string `json:"object"`
	Created      int64  `json:"created"`
	Price        Price  `json:"price"`
	Quantity     int64  `json:"quantity"`
	Subscription string `json:"subscription"`
	// Only rendered for API versions that moved the period to items (2025-03-31 and later).
	CurrentPeriodStart int64 `json:"current_period_start,omitempty"`
	CurrentPeriodEnd   int64 `json:"current_period_end,omitempty"`
}

type PauseCollection struct {
	Behavior  string `json:"behavior"`
	ResumesAt *int64 `json:"resumes_at"`
}

type Discount struct {
	Object string `json:"object"`
	Coupon Coupon `json:"coupon"`
}

type Coupon struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Duration   string `json:"duration"` // forever, once, repeating
	PercentOff int64  `json:"percent_off"`
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
	Discount           *Discount              `json:"discount"`
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
}

type InvoiceLine struct {
	ID          string `json:"id"`
	Object      string `json:"object"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
	Period      Period `json:"period"`
	Price       Price  `json:"price"`
	Quantity    int64  `json:"quantity"`
}

type Period struct {
	End   int64 `json:"end"`
	Start int64 `json:"start"`
}

type Invoice struct {
	ID              string            `json:"id"`
	Object          string            `json:"object"`
	AmountDue       int64             `json:"amount_due"`
	AmountPaid      int64             `json:"amount_paid"`
	AmountRemaining int64             `json:"amount_remaining"`
	AttemptCount    int               `json:"attempt_count"`
	Attempted       bool              `json:"attempted"`
	BillingReason   string            `json:"billing_reason"`
	Charge          *string           `json:"charge"`
	Created         int64             `json:"created"`
	Currency        string            `json:"currency"`
	Customer        string            `json:"customer"`
	Lines           List[InvoiceLine] `json:"lines"`
	Livemode        bool              `json:"livemode"`
	NextPaymentAt   *int64            `json:"next_payment_attempt"`
	Number          string            `json:"number"`
	Paid            bool              `json:"paid"`
	PaymentIntent   *string           `json:"payment_intent"`
	PeriodEnd       int64             `json:"period_end"`
	PeriodStart     int64             `json:"period_start"`
	Status          string            `json:"status"`
	Subscription    *string           `json:"subscription"`
	Subtotal        int64             `json:"subtotal"`
	Total           int64             `json:"total"`
}

type Charge struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Amount         int64             `json:"amount"`
	AmountCaptured int64             `json:"amount_captured"`
	AmountRefunded int64             `json:"amount_refunded"`
	Captured       bool              `json:"captured"`
	Created        int64             `json:"created"`
	Currency       string            `json:"currency"`
	Customer       *string           `json:"customer"`
	Description    string            `json:"description"`
	Disputed       bool              `json:"disputed"`
	FailureCode    *string           `json:"failure_code"`
	FailureMessage *string           `json:"failure_message"`
	Invoice        *string           `json:"invoice"`
	Livemode       bool              `json:"livemode"`
	Metadata       map[string]string `json:"metadata"`
	Paid           bool              `json:"paid"`
	PaymentIntent  *string           `json:"payment_intent"`
	Refunded       bool              `json:"refunded"`
	Status         string            `json:"status"`
}

type Refund struct {
	ID       string            `json:"id"`
	Object   string            `json:"object"`
	Amount   int64             `json:"amount"`
	Charge   string            `json:"charge"`
	Created  int64             `json:"created"`
	Currency string            `json:"currency"`
	Metadata map[string]string `json:"metadata"`
	Reason   *string           `json:"reason"`
	Status   string            `json:"status"`
}

type Dispute struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	Amount             int64             `json:"amount"`
	Charge             string            `json:"charge"`
	Created            int64             `json:"created"`
	Currency           string            `json:"currency"`
	IsChargeRefundable bool              `json:"is_charge_refundable"`
	Livemode           bool              `json:"livemode"`
	Metadata           map[string]string `json:"metadata"`
	Reason             string            `json:"reason"`
	Status             string            `json:"status"`
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
