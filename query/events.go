package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/projections"
)

type eventsRecord = eventstore.Record

// eventsFilter selects an object's history, up to asOf when set.
func eventsFilter(objectID string, asOf time.Time) eventstore.Filter {
	return eventstore.Filter{ObjectIDs: []string{objectID}, CreatedTo: asOf, Payload: true}
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

// Summary is subscriptions by status and currency, events appended per minute over the last
// hour, the log's size and the live projection's lag.
func (q *Queries) Summary(ctx context.Context) (Summary, error) {
	out := Summary{Subscriptions: []StatusCount{}, EventsPerMinute: []eventstore.Minute{}}
	rows, err := q.pool.Query(ctx, `SELECT status, currency, count(*), coalesce(sum(mrr), 0)::bigint FROM ledger.subscriptions
		GROUP BY 1, 2 ORDER BY 2, 3 DESC`)
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
