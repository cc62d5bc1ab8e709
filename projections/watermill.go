package projections

import (
	stdsql "database/sql"
	"errors"
	"strconv"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// The live runner consumes the log through watermill-sql's subscriber, with the two adapters
// below in place of its default tables: the "topic" is ledger.events itself (appended by
// eventstore, never by watermill) and the consumer group's offset is the projection's row in
// ledger.projection_state. Positions are dense and in commit order (the append takes the log's
// head lock), so "position > checkpoint" never skips an event that commits late.

// logTopic is the watermill topic name for the log.
const logTopic = "ledger_events"

// Message metadata keys the runner reads.
const (
	metaType       = "type"
	metaObjectID   = "object_id"
	metaPosition   = "position"
	metaReceivedAt = "received_at"
	metaBatchIndex = "batch_index" // 0-based place in the batch the subscriber read
	metaBatchSize  = "batch_size"
)

// logSchema is a watermill-sql SchemaAdapter over ledger.events.
type logSchema struct {
	batchSize int
}

var errReadOnlyTopic = errors.New("ledger.events is appended by the event store, not published to through watermill")

func (logSchema) InsertQuery(wsql.InsertQueryParams) (wsql.Query, error) {
	return wsql.Query{}, errReadOnlyTopic
}

// SelectQuery reads the next batch after the consumer group's checkpoint. It first takes the
// projection's transaction lock (see lockProjection), so a replay's table swap and a batch never
// interleave; the lock is transaction-scoped and costs nothing to WAL, so polling an idle log
// writes nothing.
func (s logSchema) SelectQuery(p wsql.SelectQueryParams) (wsql.Query, error) {
	return wsql.Query{
		Query: `WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtextextended($2, 0))),
			batch AS (SELECT e.position, e.event_id, e.type, e.object_id, e.received_at, e.payload
				FROM ledger.events e
				WHERE e.position > (SELECT st.position FROM ledger.projection_state st, lock WHERE st.name = $1)
				ORDER BY e.position
				LIMIT $3)
			SELECT b.*, row_number() OVER (ORDER BY b.position) - 1, count(*) OVER () FROM batch b ORDER BY b.position`,
		Args: []any{p.ConsumerGroup, txLockKey(p.ConsumerGroup), s.batchSize},
	}, nil
}

// UnmarshalMessage makes a watermill message of one event: the UUID is Stripe's event ID, the
// payload the exact bytes in the log. The metadata says where in its batch the event is: the
// runner folds a batch set-wise when its last event arrives.
func (logSchema) UnmarshalMessage(p wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var (
		pos                  int64
		eventID, typ, object string
		receivedAt           time.Time
		payload              []byte
		index, size          int64
	)
	if err := p.Row.Scan(&pos, &eventID, &typ, &object, &receivedAt, &payload, &index, &size); err != nil {
		return wsql.Row{}, err
	}
	msg := message.NewMessage(eventID, payload)
	msg.Metadata.Set(metaType, typ)
	msg.Metadata.Set(metaObjectID, object)
	msg.Metadata.Set(metaPosition, strconv.FormatInt(pos, 10))
	msg.Metadata.Set(metaReceivedAt, receivedAt.Format(time.RFC3339Nano))
	msg.Metadata.Set(metaBatchIndex, strconv.FormatInt(index, 10))
	msg.Metadata.Set(metaBatchSize, strconv.FormatInt(size, 10))
	return wsql.Row{Offset: pos, UUID: []byte(eventID), Payload: payload, Msg: msg}, nil
}

// SchemaInitializingQueries is empty: the migrations own the schema.
func (logSchema) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

func (logSchema) SubscribeIsolationLevel() stdsql.IsolationLevel { return stdsql.LevelReadCommitted }

// stateOffsets is a watermill-sql OffsetsAdapter over ledger.projection_state.
type stateOffsets struct{}

// AckMessageQuery moves the checkpoint in the batch's own transaction, after the handler has
// written the batch's rows, so an event's effect and its checkpoint commit together.
//
// The runner acknowledges a batch's events as they arrive and writes their rows when the last
// one does; it then records, transaction-locally, the position it wrote through. The checkpoint
// moves only if that is the position being acknowledged: a batch cut short (the subscriber
// closing, a deadline) commits no checkpoint for events whose rows were never written.
// GREATEST keeps the checkpoint from moving back if a runner that lost its lock finishes a stale
// batch: re-folding is idempotent, going backwards would only repeat work.
func (stateOffsets) AckMessageQuery(p wsql.AckMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{
		// position >= first - 1: a replay that moved the checkpoint back while this batch waited
		// (its query's snapshot predates the swap) leaves the checkpoint where the replay put it,
		// so the events in between are folded again into the new tables.
		Query: `UPDATE ledger.projection_state SET position = GREATEST(position, $2), updated_at = now()
			WHERE name = $1 AND current_setting('` + flushedSetting + `', true) = $3 AND position >= $4 - 1`,
		Args: []any{p.ConsumerGroup, p.LastRow.Offset, strconv.FormatInt(p.LastRow.Offset, 10), firstOffset(p)},
	}, nil
}

// firstOffset is the position of the batch's first event.
func firstOffset(p wsql.AckMessageQueryParams) int64 {
	if len(p.Rows) > 0 {
		return p.Rows[0].Offset
	}
	return p.LastRow.Offset
}

// flushedSetting is the transaction-local setting the runner records the position it has
// written the read models through in.
const flushedSetting = "ledger.projection_flushed_through"

func (stateOffsets) ConsumedMessageQuery(wsql.ConsumedMessageQueryParams) (wsql.Query, error) {
	return wsql.Query{}, nil
}

func (stateOffsets) NextOffsetQuery(p wsql.NextOffsetQueryParams) (wsql.Query, error) {
	return wsql.Query{Query: `SELECT position FROM ledger.projection_state WHERE name = $1`, Args: []any{p.ConsumerGroup}}, nil
}

func (stateOffsets) SchemaInitializingQueries(wsql.OffsetsSchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// BeforeSubscribingQueries makes sure the projection has its row (a projection never run nor
// rebuilt starts at position 0).
func (stateOffsets) BeforeSubscribingQueries(p wsql.BeforeSubscribingQueriesParams) ([]wsql.Query, error) {
	return []wsql.Query{{
		Query: `INSERT INTO ledger.projection_state (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`,
		Args:  []any{p.ConsumerGroup},
	}}, nil
}
