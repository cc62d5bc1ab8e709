package projections

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stripeledger/ledger/domain"
)

// The read models' columns, in the order the row builders below produce them. Replay and the live
// runner build rows with the same functions, so a row is the same whichever wrote it.
var (
	customersTable = spec{"customers", []string{"id", "email", "name", "currency", "metadata", "deleted", "created", "event_id", "event_created"}}
	sessionsTable  = spec{"checkout_sessions", []string{"id", "customer", "client_reference_id", "subscription", "mode", "status",
		"payment_status", "currency", "amount_total", "metadata", "app_user_id", "created", "event_id", "event_created"}}
	subscriptionsTable = spec{"subscriptions", []string{"id", "customer", "app_user_id", "status", "currency", "items", "trial_start", "trial_end",
		"current_period_start", "current_period_end", "cancel_at_period_end", "cancel_at", "canceled_at", "ended_at", "pause_behavior",
		"coupon_duration", "coupon_percent_off", "metadata", "mrr", "attention", "created", "event_id", "event_created"}}
	movementsTable = spec{"subscription_movements", []string{"subscription", "customer", "currency", "kind", "amount", "mrr_before", "mrr_after", "event_id", "at"}}
	invoicesTable  = spec{"invoices", []string{"id", "customer", "subscription", "status", "billing_reason", "currency", "amount_due",
		"amount_paid", "amount_remaining", "total", "attempt_count", "charge", "payment_intent", "period_start", "period_end", "created", "event_id", "event_created"}}
	chargesTable = spec{"charges", []string{"id", "amount", "amount_captured", "amount_refunded", "refunded", "currency", "status",
		"paid", "failure_code", "failure_message", "payment_intent", "invoice", "customer", "dispute_id", "dispute_status", "created", "event_id", "event_created"}}
	refundsTable  = spec{"refunds", []string{"id", "charge", "amount", "currency", "status", "reason", "created", "event_id", "event_created"}}
	disputesTable = spec{"disputes", []string{"id", "charge", "amount", "currency", "status", "reason", "created", "event_id", "event_created"}}
)

// spec is a read-model table: its name in schema ledger and its columns.
type spec struct {
	name    string
	columns []string
}

// rowEvent is the event a row of the table was folded from (its event_id column).
func (s spec) rowEvent(row []any) string {
	if i := slices.Index(s.columns, "event_id"); i >= 0 && i < len(row) {
		id, _ := row[i].(string)
		return id
	}
	return ""
}

// upsert is the statement that writes one row keyed by id, replacing whatever was there except
// the keep columns of an existing row.
func (s spec) upsert(keep ...string) string {
	marks := make([]string, len(s.columns))
	var sets []string
	for i, c := range s.columns {
		marks[i] = fmt.Sprintf("$%d", i+1)
		if c != "id" && !slices.Contains(keep, c) {
			sets = append(sets, c+" = EXCLUDED."+c)
		}
	}
	return fmt.Sprintf("INSERT INTO ledger.%s (%s) VALUES (%s) ON CONFLICT (id) DO UPDATE SET %s",
		s.name, strings.Join(s.columns, ", "), strings.Join(marks, ", "), strings.Join(sets, ", "))
}

// insert is the plain INSERT of one row.
func (s spec) insert() string {
	marks := make([]string, len(s.columns))
	for i := range s.columns {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	return fmt.Sprintf("INSERT INTO ledger.%s (%s) VALUES (%s)", s.name, strings.Join(s.columns, ", "), strings.Join(marks, ", "))
}

func ts(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func tsp(sec *int64) *time.Time {
	if sec == nil {
		return nil
	}
	t := ts(*sec)
	return &t
}

func meta(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func customerRow(c domain.CustomerRow) []any {
	return []any{c.ID, c.Email, c.Name, c.Currency, meta(c.Metadata), c.Deleted, ts(c.Created), c.EventID, ts(c.EventCreated)}
}

func sessionRow(cs domain.CheckoutSessionRow, user string) []any {
	return []any{cs.ID, cs.Customer, cs.ClientReferenceID, cs.Subscription, cs.Mode, cs.Status,
		cs.PaymentStatus, cs.Currency, cs.AmountTotal, meta(cs.Metadata), user, ts(cs.Created), cs.EventID, ts(cs.EventCreated)}
}

func subscriptionRow(r domain.SubscriptionRow, user string) []any {
	items := make([]map[string]any, 0, len(r.Items))
	for _, it := range r.Items {
		items = append(items, map[string]any{"id": it.ID, "price": it.Price, "product": it.Product, "quantity": it.Quantity,
			"interval": it.Interval, "interval_count": it.IntervalCount, "unit_amount": it.UnitAmount})
	}
	return []any{r.ID, r.Customer, user, r.Status, r.Currency, items, tsp(r.TrialStart), tsp(r.TrialEnd),
		tsp(r.CurrentPeriodStart), tsp(r.CurrentPeriodEnd), r.CancelAtPeriodEnd, tsp(r.CancelAt), tsp(r.CanceledAt), tsp(r.EndedAt),
		r.PauseBehavior, r.CouponDuration, r.CouponPercentOff, meta(r.Metadata), r.MRR, r.Attention, ts(r.Created), r.EventID, ts(r.EventCreated)}
}

func movementRows(ms []domain.Movement) [][]any {
	rows := make([][]any, 0, len(ms))
	for _, m := range ms {
		rows = append(rows, []any{m.Subscription, m.Customer, m.Currency, string(m.Kind), m.Amount, m.MRRBefore, m.MRRAfter, m.EventID, ts(m.At)})
	}
	return rows
}

func invoiceRow(r domain.InvoiceRow) []any {
	return []any{r.ID, r.Customer, r.Subscription, r.Status, r.BillingReason, r.Currency, r.AmountDue,
		r.AmountPaid, r.AmountRemaining, r.Total, r.AttemptCount, r.Charge, r.PaymentIntent, ts(r.PeriodStart), ts(r.PeriodEnd),
		ts(r.Created), r.EventID, ts(r.EventCreated)}
}

func chargeRow(r domain.ChargeRow) []any {
	return []any{r.ID, r.Amount, r.AmountCaptured, r.AmountRefunded, r.Refunded, r.Currency, r.Status,
		r.Paid, r.FailureCode, r.FailureMessage, r.PaymentIntent, r.Invoice, r.Customer, r.DisputeID, r.DisputeStatus, ts(r.Created),
		r.EventID, ts(r.EventCreated)}
}

func refundRow(r domain.RefundRow) []any {
	return []any{r.ID, r.Charge, r.Amount, r.Currency, r.Status, r.Reason, ts(r.Created), r.EventID, ts(r.EventCreated)}
}

func disputeRow(r domain.DisputeRow) []any {
	return []any{r.ID, r.Charge, r.Amount, r.Currency, r.Status, r.Reason, ts(r.Created), r.EventID, ts(r.EventCreated)}
}

// subscriptionFold is a subscription's row and its movement log.
type subscriptionFold struct {
	row   domain.SubscriptionRow
	moves []domain.Movement
}

func foldSubscription(facts []domain.Fact) (subscriptionFold, error) {
	r, ms, err := domain.FoldSubscriptionHistory(facts)
	return subscriptionFold{r, ms}, err
}

// Poison is an event a projection cannot fold, and why.
type Poison struct {
	EventID  string
	Position int64 // set instead of EventID when the payload could not even be decoded
	Err      error
}

// foldClean folds one object's facts. When the fold fails, the facts that cannot be folded even on
// their own are set aside as poison (to be quarantined) and the rest are folded again, so one bad
// event does not take its object's row, or the projection, down with it. ok is false when
// nothing foldable is left. Both replay and the live runner fold through here.
func foldClean[T any](facts []domain.Fact, fn func([]domain.Fact) (T, error)) (row T, ok bool, poison []Poison) {
	for len(facts) > 0 {
		r, err := fn(facts)
		if err == nil {
			return r, true, poison
		}
		var keep []domain.Fact
		for _, f := range facts {
			if _, ferr := fn([]domain.Fact{f}); ferr != nil {
				poison = append(poison, Poison{EventID: f.EventID, Err: ferr})
			} else {
				keep = append(keep, f)
			}
		}
		if len(keep) == len(facts) {
			// Every fact folds alone but not together: blame the one the fold reads last.
			latest, _ := domain.Latest(facts)
			poison = append(poison, Poison{EventID: latest.EventID, Err: err})
			keep = keep[:0]
			for _, f := range facts {
				if f.EventID != latest.EventID {
					keep = append(keep, f)
				}
			}
		}
		facts = keep
	}
	return row, false, poison
}

// sessionForSubscription picks the Checkout session whose identity a subscription takes when
// several name it: the earliest created, then the smallest ID, so replay and live agree.
func sessionForSubscription(sessions []domain.CheckoutSessionRow) *domain.CheckoutSessionRow {
	if len(sessions) == 0 {
		return nil
	}
	sort.Slice(sessions, func(i, j int) bool {
		if sessions[i].Created != sessions[j].Created {
			return sessions[i].Created < sessions[j].Created
		}
		return sessions[i].ID < sessions[j].ID
	})
	return &sessions[0]
}
