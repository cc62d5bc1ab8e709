package domain

// ChargeRow is a charge as finance reads it, with its refunds and dispute folded in. Money is in
// the currency's minor unit.
type ChargeRow struct {
	ID             string
	Amount         int64
	AmountCaptured int64
	AmountRefunded int64
	Refunded       bool
	Currency       string
	Status         string
	Paid           bool
	FailureCode    string
	FailureMessage string
	PaymentIntent  string
	Invoice        string
	Customer       string
	Created        int64
	DisputeID      string // the latest dispute on the charge, "" when none
	DisputeStatus  string // needs_response, under_review, won, lost, …
	EventID        string
	EventCreated   int64
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
}

// FoldCharge is a charge's row from its own events (charge.*) and the events of its disputes
// (charge.dispute.*, whose object is the Dispute). Refunds arrive, at API version 2023-10-16, as
// charge.refunded with the Charge's amount_refunded, so they are in the charge's own snapshot.
func FoldCharge(charge, disputes []Fact) (ChargeRow, error) {
	var c rawCharge
	f, err := fold(charge, &c)
	if err != nil {
		return ChargeRow{}, err
	}
	row := ChargeRow{
		ID: c.ID, Amount: c.Amount, AmountCaptured: c.AmountCaptured, AmountRefunded: c.AmountRefunded,
		Refunded: c.Refunded, Currency: c.Currency, Status: c.Status, Paid: c.Paid, Created: c.Created,
		FailureCode: deref(c.FailureCode), FailureMessage: deref(c.FailureMessage), PaymentIntent: deref(c.PaymentIntent),
		Invoice: deref(c.Invoice), Customer: deref(c.Customer), EventID: f.EventID, EventCreated: f.Created,
	}
	if d, ok := Latest(disputes); ok {
		var dp struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := decodeObject(d, &dp); err != nil {
			return ChargeRow{}, err
		}
		row.DisputeID, row.DisputeStatus = dp.ID, dp.Status
	}
	return row, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
