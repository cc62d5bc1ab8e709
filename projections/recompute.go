package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
)

// RecomputeConfig says which MRR settings to recompute the movement log under.
type RecomputeConfig struct {
	MRR domain.MRRSettings
	// Workers value subscriptions in parallel; default the number of CPUs.
	Workers int
}

// RecomputeStats say what a recompute did.
type RecomputeStats struct {
	Subscriptions int
	Movements     int
	Changed       int // subscriptions whose mrr or attention changed
	Versions      int // history versions of subscriptions valued again
	Took          time.Duration
}

// Recompute brings subscriptions.mrr, their attention and ledger.subscription_movements to the
// MRR settings cfg.MRR, from ledger.subscription_mrr_inputs and the customers' discount
// histories: the same rows a replay under those settings gives, without reading the log; and
// their history (subscriptions_history, subscription_movements_history) by folding the
// subscriptions' events again (revalueHistory). It is
// what a runner does when it starts with settings other than those the tables record
// (ledger.mrr_settings).
//
// It runs in one transaction under the projection's lock (live batches wait for it). The new
// movement log is written into a table beside the live one and renamed into place, so queries
// keep reading the old log until the commit; subscriptions' rows are updated only where the
// figure changed.
func Recompute(ctx context.Context, pool *pgxpool.Pool, cfg RecomputeConfig) (RecomputeStats, error) {
	start := time.Now()
	if err := cfg.MRR.Validate(); err != nil {
		return RecomputeStats{}, err
	}
	set := cfg.MRR.WithDefaults()
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return RecomputeStats{}, fmt.Errorf("could not begin the recompute: %w", err)
	}
	defer func() { tx.Rollback(context.WithoutCancel(ctx)) }() //nolint:errcheck // no-op after commit
	if err := lockProjection(ctx, tx, StateName); err != nil {
		return RecomputeStats{}, err
	}
	subs, err := readInputs(ctx, tx)
	if err != nil {
		return RecomputeStats{}, err
	}
	moves := Subscriptions.Children[0]
	var movesTable table
	for _, t := range Subscriptions.tables() {
		if t.name == moves.Table {
			movesTable = t
		}
	}
	shadow := movesTable.name + "_recompute"
	if _, err := tx.Exec(ctx, movesTable.createSQL(shadow), pgx.QueryExecModeSimpleProtocol); err != nil {
		return RecomputeStats{}, fmt.Errorf("could not create the recompute's tables: %w", err)
	}

	// Value every subscription on every worker; the movement rows stream into COPY as they come.
	type result struct {
		id        string
		mrr       *int64
		attention *string
		err       error
	}
	results := make([]result, len(subs))
	rowsOut := make(chan []any, 4096)
	var wg sync.WaitGroup
	chunk := (len(subs) + cfg.Workers - 1) / max(cfg.Workers, 1)
	for w := 0; w < cfg.Workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, len(subs))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				s := &subs[i]
				attention, h, err := decodeInputs(s.inputs)
				if err == nil && s.customer != nil {
					var hist []domain.CustomerDiscount
					if err = json.Unmarshal(s.customer, &hist); err != nil {
						err = fmt.Errorf("customer discount history: %w", err)
					}
					s.history = hist
				}
				if err != nil {
					results[i] = result{id: s.id, err: fmt.Errorf("subscription %s: %w", s.id, err)}
					continue
				}
				row := domain.SubscriptionRow{Attention: attention}
				for _, m := range h.Value(&row, s.history, set) {
					rowsOut <- movementValues(&m, s.livemode, s.account)
				}
				results[i] = result{id: s.id, mrr: row.MRR, attention: row.Attention}
			}
		}()
	}
	go func() { wg.Wait(); close(rowsOut) }()
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger", shadow}, columnNames(movesTable.columns), &chanSource{ch: rowsOut})
	if err != nil {
		for range rowsOut { // let the workers finish
		}
		return RecomputeStats{}, fmt.Errorf("could not write the recomputed movements: %w", err)
	}
	for _, r := range results {
		if r.err != nil {
			return RecomputeStats{}, fmt.Errorf("could not recompute: %w (replay the log: ledger replay)", r.err)
		}
	}
	// Only the rows whose figure changed are written (each update is a new row version).
	ids, mrrs, attentions := make([]string, len(results)), make([]*int64, len(results)), make([]*string, len(results))
	for i, r := range results {
		ids[i], mrrs[i], attentions[i] = r.id, r.mrr, r.attention
	}
	tag, err := tx.Exec(ctx, `UPDATE ledger.subscriptions s SET mrr = r.mrr, attention = r.attention
		FROM unnest($1::text[], $2::bigint[], $3::text[]) AS r(id, mrr, attention)
		WHERE s.id = r.id AND (s.mrr IS DISTINCT FROM r.mrr OR s.attention IS DISTINCT FROM r.attention)`, ids, mrrs, attentions)
	if err != nil {
		return RecomputeStats{}, fmt.Errorf("could not update the subscriptions' figures: %w", err)
	}
	// Index the new log, swap it in, and record the settings.
	swap := movesTable.indexSQL(shadow, "_recompute")
	swap = append(swap,
		fmt.Sprintf(`ALTER TABLE ledger.%s RENAME TO %s_old`, movesTable.name, movesTable.name),
		fmt.Sprintf(`ALTER TABLE ledger.%s RENAME TO %s`, shadow, movesTable.name),
		fmt.Sprintf(`DROP TABLE ledger.%s_old`, movesTable.name))
	for _, ix := range movesTable.indexNames() {
		swap = append(swap, fmt.Sprintf(`ALTER INDEX ledger.%s_recompute RENAME TO %s`, ix, ix))
	}
	swap = append(swap, movesTable.commentSQL(movesTable.name)...)
	swap = append(swap, `DELETE FROM ledger.mrr_settings`, fmt.Sprintf(`INSERT INTO ledger.mrr_settings (settings) VALUES (%s)`, quote(set.String())))
	if _, err := tx.Exec(ctx, strings.Join(swap, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return RecomputeStats{}, fmt.Errorf("could not swap the recomputed movements in: %w", err)
	}
	if err := attachRollup(ctx, tx); err != nil {
		return RecomputeStats{}, err
	}
	versions, err := revalueHistory(ctx, tx, set)
	if err != nil {
		return RecomputeStats{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return RecomputeStats{}, fmt.Errorf("could not commit the recompute: %w", err)
	}
	return RecomputeStats{Subscriptions: len(subs), Movements: int(n), Changed: int(tag.RowsAffected()), Versions: versions, Took: time.Since(start)}, nil
}

// revalueChunk is how many subscriptions' histories revalueHistory folds at a time.
const revalueChunk = 1000

// revalueHistory brings ledger.subscriptions_history and subscription_movements_history to the
// settings set: every version's mrr, attention and movements. A version's valuation inputs are
// not kept (subscription_mrr_inputs_history holds them per arrival, not per version of a late
// arrival), so each subscription's history is folded again from its events in the log, as the
// live runner writes it again, and valued with its customer's discount history from the
// current rows: the rows a replay under set writes, at the cost of reading the subscriptions'
// events (not the whole log). The valuation inputs' own history is the same under every
// setting and stays. It returns the versions written.
func revalueHistory(ctx context.Context, tx pgx.Tx, set domain.MRRSettings) (int, error) {
	if historyOff.Load() {
		return 0, nil
	}
	m := Subscriptions
	hts := m.historyTables()
	moves := 1 + slices.IndexFunc(m.Children, func(c *Child) bool { return c.Table == "subscription_movements" })
	rows, err := tx.Query(ctx, `SELECT DISTINCT id FROM ledger.`+hts[0].name+` ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("could not read the subscriptions' history: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("could not read the subscriptions' history: %w", err)
	}
	// Deleted, not truncated: readers at a cut keep the old versions until the commit.
	for _, i := range []int{0, moves} {
		if _, err := tx.Exec(ctx, `DELETE FROM ledger.`+hts[i].name); err != nil {
			return 0, fmt.Errorf("could not clear ledger.%s: %w", hts[i].name, err)
		}
	}
	e := &engine{projection: StateName, env: env{mrr: set}}
	versions := 0
	for lo := 0; lo < len(ids); lo += revalueChunk {
		chunk := ids[lo:min(lo+revalueChunk, len(ids))]
		set := idSet{}
		for _, id := range chunk {
			set.add(id)
		}
		read, err := e.readHistories(ctx, tx, map[*Model]idSet{m: set})
		if err != nil {
			return 0, err
		}
		// Quarantined events stay out (foldHistories leaves out those listed); an event that
		// cannot be decoded was quarantined when it was folded.
		out, _ := e.foldHistories(m, read[m], chunk, nil)
		in, err := e.readInputs(ctx, tx, m, out)
		if err != nil {
			return 0, err
		}
		e.histories(m, out, in)
		var versionRows, moveRows [][]any
		for _, f := range out {
			if f.history != nil {
				versionRows = append(versionRows, f.history.rows...)
				moveRows = append(moveRows, f.history.children[moves-1]...)
			}
		}
		for i, r := range map[int][][]any{0: versionRows, moves: moveRows} {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger", hts[i].name}, columnNames(hts[i].columns), pgx.CopyFromRows(r)); err != nil {
				return 0, fmt.Errorf("could not write ledger.%s: %w", hts[i].name, err)
			}
		}
		versions += len(versionRows)
	}
	return versions, nil
}

// recomputeInput is one subscription's inputs as read from the tables.
type recomputeInput struct {
	id       string
	inputs   []byte
	customer []byte // the customer's discount_history JSON, nil when none
	history  []domain.CustomerDiscount
	livemode bool
	account  *string
}

func readInputs(ctx context.Context, tx pgx.Tx) ([]recomputeInput, error) {
	rows, err := tx.Query(ctx, `SELECT s.id, i.inputs, c.discount_history::text, s.livemode, s.account
		FROM ledger.subscription_mrr_inputs i JOIN ledger.subscriptions s ON s.id = i.subscription
		LEFT JOIN ledger.customers c ON c.id = s.customer`)
	if err != nil {
		return nil, fmt.Errorf("could not read the subscriptions' MRR inputs: %w", err)
	}
	defer rows.Close()
	var out []recomputeInput
	for rows.Next() {
		var in recomputeInput
		var cust *string
		if err := rows.Scan(&in.id, &in.inputs, &cust, &in.livemode, &in.account); err != nil {
			return nil, fmt.Errorf("could not read the subscriptions' MRR inputs: %w", err)
		}
		if cust != nil {
			in.customer = []byte(*cust)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("could not read the subscriptions' MRR inputs: %w", err)
	}
	return out, nil
}

// chanSource is a pgx.CopyFromSource over a channel of rows.
type chanSource struct {
	ch  <-chan []any
	row []any
}

func (c *chanSource) Next() bool {
	r, ok := <-c.ch
	c.row = r
	return ok
}
func (c *chanSource) Values() ([]any, error) { return c.row, nil }
func (c *chanSource) Err() error             { return nil }
