package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/projections"
)

type eventsRecord = eventstore.Record

// eventsFilter selects an object's history: created up to asOf and at positions up to upTo, when
// set.
func eventsFilter(objectID string, asOf time.Time, upTo int64) eventstore.Filter {
	return eventstore.Filter{ObjectIDs: []string{objectID}, CreatedTo: asOf, UpToPosition: upTo, Payload: true}
}

// previousAttributes is data.previous_attributes of a stored event, null when it has none.
func previousAttributes(payload []byte) json.RawMessage {
	f, err := domain.DecodeStoredFact(payload)
	if err != nil || f.Prev == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(f.Prev) // keys sorted: the same text however the event ordered them
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// Event is one event of the log, its payload as stored.
type Event struct {
	Position   int64     `json:"position"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	APIVersion string    `json:"api_version"`
	Created    time.Time `json:"created"`
	Livemode   bool      `json:"livemode"`
	Account    string    `json:"account"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
	ObjectType string    `json:"object_type"`
	ObjectID   string    `json:"object_id"`
	// Endpoint is the Stripe endpoint a webhook came to (null: not a webhook, or from before
	// endpoints were told apart); HoldReason why it disagrees with it and is held out of the read
	// models (null: it agrees), until Released.
	Endpoint   *string         `json:"endpoint"`
	HoldReason *string         `json:"hold_reason"`
	Released   bool            `json:"released"`
	Payload    json.RawMessage `json:"payload"`
}

// Event reads one event of the log.
func (q *Queries) Event(ctx context.Context, id string) (Event, error) {
	if err := CheckID(id); err != nil {
		return Event{}, err
	}
	r, err := q.store.Get(ctx, id)
	if errors.Is(err, eventstore.ErrNotFound) {
		return Event{}, fmt.Errorf("%w: no event %s in the log", ErrNotFound, id)
	}
	if err != nil {
		return Event{}, err
	}
	return Event{Position: r.Position, EventID: r.ID, Type: r.Type, APIVersion: r.APIVersion, Created: r.CreatedTime(),
		Livemode: r.Livemode, Account: r.Account, Source: string(r.Source), ReceivedAt: r.ReceivedAt,
		ObjectType: r.ObjectType, ObjectID: r.ObjectID, Payload: r.Payload,
		Endpoint: nullIfEmpty(string(r.Endpoint)), HoldReason: nullIfEmpty(r.HoldReason), Released: r.Released}, nil
}

func nullIfEmpty(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// Summary is what the dashboard's header shows.
type Summary struct {
	// Livemode, Account and Includes say which mode and account Subscriptions are of.
	Livemode bool   `json:"livemode"`
	Account  string `json:"account"`
	Includes string `json:"includes"`
	// Scopes are the modes and accounts the read models hold objects of, for the dashboard's
	// mode switch and account selector.
	Scopes          []ScopeCount        `json:"scopes"`
	Subscriptions   []StatusCount       `json:"subscriptions"`
	EventsPerMinute []eventstore.Minute `json:"events_per_minute"`
	Log             map[string]int64    `json:"log"`
	Projection      projections.Status  `json:"projection"`
}

// StatusCount is subscriptions of one status and currency.
type StatusCount struct {
	Status   string `json:"status"`
	Currency string `json:"currency"`
	Count    int64  `json:"count"`
	MRR      int64  `json:"mrr"`
}

// ScopeCount is one mode and account the read models hold, with its customers, subscriptions
// and charges.
type ScopeCount struct {
	Livemode bool    `json:"livemode"`
	Account  *string `json:"account"` // null: the platform's own
	Objects  int64   `json:"objects"`
}

// ParseSummary reads a summary request's parameters: livemode and account, as a metric's
// (default live mode, the platform's own account).
func ParseSummary(v url.Values) (Scope, error) {
	for k := range v {
		if k != "livemode" && k != "account" {
			return Scope{}, badRequest("unknown_parameter", "unknown parameter %q; the summary takes livemode and account", k)
		}
	}
	return parseScope(v, true)
}

// Summary is, for one mode and account (or every account), subscriptions by status and
// currency; and the modes and accounts there are, events appended per minute over the last
// hour, the log's size and the live projection's lag.
func (q *Queries) Summary(ctx context.Context, scope Scope) (Summary, error) {
	includes := scope.Describe()
	if scope.Account == AllAccounts {
		// The summary's counts are not per account: they add every account's together.
		includes = strings.SplitN(includes, ",", 2)[0] + ", every account added together (the platform's own and each connected account's)"
	}
	out := Summary{Livemode: *scope.Livemode, Account: scope.AccountParam(), Includes: includes,
		Scopes: []ScopeCount{}, Subscriptions: []StatusCount{}, EventsPerMinute: []eventstore.Minute{}}
	scopes, err := q.pool.Query(ctx, `SELECT livemode, account, count(*) FROM (
		SELECT livemode, account FROM ledger.customers UNION ALL SELECT livemode, account FROM ledger.subscriptions
		UNION ALL SELECT livemode, account FROM ledger.charges) o GROUP BY 1, 2 ORDER BY 1 DESC, 2 NULLS FIRST`)
	if err != nil {
		return out, fmt.Errorf("could not list modes and accounts: %w", err)
	}
	for scopes.Next() {
		var c ScopeCount
		if err := scopes.Scan(&c.Livemode, &c.Account, &c.Objects); err != nil {
			scopes.Close()
			return out, err
		}
		out.Scopes = append(out.Scopes, c)
	}
	scopes.Close()
	if err := scopes.Err(); err != nil {
		return out, err
	}
	var args []any
	cond := strings.Join(scope.conds("s", func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }), " AND ")
	rows, err := q.pool.Query(ctx, `SELECT status, currency, count(*), coalesce(sum(mrr), 0)::bigint FROM ledger.subscriptions s
		WHERE `+cond+` GROUP BY 1, 2 ORDER BY 2, 3 DESC`, args...)
	if err != nil {
		return out, fmt.Errorf("could not summarise subscriptions: %w", err)
	}
	for rows.Next() {
		var s StatusCount
		if err := rows.Scan(&s.Status, &s.Currency, &s.Count, &s.MRR); err != nil {
			rows.Close()
			return out, err
		}
		out.Subscriptions = append(out.Subscriptions, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	per, err := q.store.AppendedPerMinute(ctx, time.Now().Add(-time.Hour))
	if err != nil {
		return out, err
	}
	if per != nil {
		out.EventsPerMinute = per
	}
	if out.Projection, err = projections.ReadStatus(ctx, q.pool); err != nil {
		return out, err
	}
	out.Log = map[string]int64{"events": out.Projection.Head}
	return out, nil
}
