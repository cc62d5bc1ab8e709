package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Rule sources: a rule matches Stripe events from the log, or the ledger's own findings.
const (
	SourceStripe = "stripe"
	SourceLedger = "ledger"
)

// Ledger-side kinds, the event types of a `source: ledger` rule. Their outbox rows are keyed
// ledger:… rather than by a Stripe event ID (see sources.go).
const (
	KindReconcileMissing = "reconcile.missing"    // an events run found events missing from the log
	KindReconcileDrift   = "reconcile.drift"      // an objects run found read-model rows that differ from Stripe
	KindReconcileFailed  = "reconcile.failed"     // a run failed (or stopped partway)
	KindEventQuarantined = "event.quarantined"    // a projection could not fold an event, or an event is held
	KindProjectionLag    = "projection.lag"       // the live projection is behind the log by more than lag_over
	KindEndpointProblem  = "endpoint.unhealthy"   // the endpoints job found an endpoint disabled, missing, or misconfigured
	defaultLagOver       = 5 * time.Minute        // projection.lag's threshold when a rule gives none
	defaultDigest        = DigestDaily            // where events past the late horizon go when the rule has no digest
	lateMark             = " — late (repaired)"   // appended to a late notification's subject
	backfillMark         = "[backfill] "          // put before a backfilled notification's subject
	digestSubjectFormat  = "%s: %d notifications" // a digest's subject: rule, count
)

// LedgerKinds are the event types a `source: ledger` rule may name.
var LedgerKinds = []string{KindReconcileMissing, KindReconcileDrift, KindReconcileFailed, KindEventQuarantined, KindProjectionLag, KindEndpointProblem}

// Digest periods.
const (
	DigestHourly = "hourly"
	DigestDaily  = "daily"
)

// Rule is one rule of the config file, checked and compiled.
type Rule struct {
	Name    string
	Source  string   // SourceStripe (the default) or SourceLedger
	Events  []string // event types (or ledger kinds) it matches
	Channel string
	Filter  Filter
	// QuietHours, if set, holds notifications that arrive inside the window until it ends.
	QuietHours *QuietHours
	// Digest, if set (hourly, daily), batches the rule's notifications into one message per
	// channel and period, sent at the period's end.
	Digest string
	// LagOver is projection.lag's threshold.
	LagOver time.Duration
	// Line is where the rule begins in the config file.
	Line int

	subject, text, blocks *template.Template
}

// Filter narrows a rule's events. Zero fields match everything.
type Filter struct {
	// AmountGTE and AmountLTE bound the amount in minor units (inclusive); an event with no
	// amount does not match a rule with either bound.
	AmountGTE, AmountLTE *int64
	Currency             []string // lowercase ISO codes
	Livemode             *bool
	// Account is "platform" (no connected account), an acct_… ID, or "" / "any".
	Account  string
	Metadata map[string]string // every key must have exactly this value
	Status   []string
	Reason   []string
}

// QuietHours is a daily window [From, To) in a time zone; To before From spans midnight.
type QuietHours struct {
	From, To time.Duration // since midnight
	Location *time.Location
}

// Matches says whether the event (or ledger-side fact) with fields f and metadata md passes
// the rule: its type is one of the rule's and every filter holds.
func (r *Rule) Matches(f Fields, md map[string]string) bool {
	t, _ := f["type"].(string)
	if !slices.Contains(r.Events, t) {
		return false
	}
	return r.Filter.matches(f, md)
}

func (fl *Filter) matches(f Fields, md map[string]string) bool {
	if fl.AmountGTE != nil || fl.AmountLTE != nil {
		a, ok := f["amount"].(int64)
		if !ok || (fl.AmountGTE != nil && a < *fl.AmountGTE) || (fl.AmountLTE != nil && a > *fl.AmountLTE) {
			return false
		}
	}
	if len(fl.Currency) > 0 && !oneOf(f["currency"], fl.Currency) {
		return false
	}
	if fl.Livemode != nil {
		if lm, _ := f["livemode"].(bool); lm != *fl.Livemode {
			return false
		}
	}
	switch acct, _ := f["account"].(string); fl.Account {
	case "", "any":
	case "platform":
		if acct != "" {
			return false
		}
	default:
		if acct != fl.Account {
			return false
		}
	}
	for k, v := range fl.Metadata {
		if got, ok := md[k]; !ok || got != v {
			return false
		}
	}
	if len(fl.Status) > 0 && !oneOf(f["status"], fl.Status) {
		return false
	}
	if len(fl.Reason) > 0 && !oneOf(f["reason"], fl.Reason) {
		return false
	}
	return true
}

func oneOf(v any, set []string) bool {
	s, ok := v.(string)
	return ok && slices.Contains(set, s)
}

// Render fills the rule's templates with f. The message carries f itself (for webhook
// receivers), and is marked when the notification is late or backfilled.
func (r *Rule) Render(f Fields) (Message, error) {
	var m Message
	var err error
	if m.Subject, err = execTemplate(r.subject, f); err != nil {
		return Message{}, fmt.Errorf("rule %s: subject: %w", r.Name, err)
	}
	if m.Text, err = execTemplate(r.text, f); err != nil {
		return Message{}, fmt.Errorf("rule %s: text: %w", r.Name, err)
	}
	m.Subject = strings.TrimSpace(m.Subject)
	if r.blocks != nil {
		b, err := execTemplate(r.blocks, f)
		if err != nil {
			return Message{}, fmt.Errorf("rule %s: blocks: %w", r.Name, err)
		}
		if !json.Valid([]byte(b)) {
			return Message{}, fmt.Errorf("rule %s: blocks did not render to JSON", r.Name)
		}
		m.Blocks = json.RawMessage(b)
	}
	if late, _ := f["late"].(bool); late {
		m.Late = true
		m.Subject += lateMark
		m.Text = fmt.Sprintf("Late (repaired): created %v, appended by reconciliation after the fact.\n%s", f["created"], m.Text)
	}
	if bf, _ := f["backfill"].(bool); bf {
		m.Subject = backfillMark + m.Subject
	}
	m.Fields = f
	return m, nil
}

// Release is when a notification arriving at t may be sent: t itself outside the window, the
// window's end inside it.
func (q *QuietHours) Release(t time.Time) time.Time {
	if q == nil || q.From == q.To {
		return t
	}
	lt := t.In(q.Location)
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, q.Location)
	// The clock time of day, not the time elapsed since midnight, on days the offset changes.
	at := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	end := func(day time.Time) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, q.Location).Add(q.To)
	}
	switch {
	case q.From < q.To: // e.g. 12:00–14:00
		if at >= q.From && at < q.To {
			return end(midnight)
		}
	case at >= q.From: // e.g. 22:00–07:00, before midnight
		return end(midnight.AddDate(0, 0, 1))
	case at < q.To: // after midnight
		return end(midnight)
	}
	return t
}

// PeriodEnd is the end of the digest period that t falls in: the next full hour, or the next
// midnight in loc (UTC when nil).
func PeriodEnd(period string, t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	if period == DigestHourly {
		return time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), 0, 0, 0, loc).Add(time.Hour)
	}
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, 1)
}

// digestLocation is the zone a rule's daily digests end in: its quiet hours' zone, else UTC.
func (r *Rule) digestLocation() *time.Location {
	if r.QuietHours != nil {
		return r.QuietHours.Location
	}
	return time.UTC
}
