package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
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
	Subscriptions int // every subscription, now under the new settings
	// Revalued subscriptions were valued again: those whose inputs the change can act on
	// (domain.Sensitivity), or all of them when those are more than a quarter.
	Revalued  int
	Movements int // movements written: the revalued subscriptions'
	Changed   int // subscriptions whose mrr or attention changed
	Versions  int // history versions of subscriptions valued again
	// Refolded subscriptions' histories were folded again from their events: those whose stored
	// versions could not be valued (revalueHistory).
	Refolded int
	Took     time.Duration
	// Phases say where Took went, in order: what an operator reads when a recompute is slow.
	Phases []Phase
}

// Phase is one part of a recompute and how long it took.
type Phase struct {
	Name string
	Took time.Duration
}

// PhaseList is phases as one line of text: "read inputs 412ms, ...".
func PhaseList(phases []Phase) string {
	parts := make([]string, len(phases))
	for i, p := range phases {
		parts[i] = p.Name + " " + p.Took.Round(time.Millisecond).String()
	}
	return strings.Join(parts, ", ")
}

// phases times the parts of a recompute.
type phases struct {
	last time.Time
	out  []Phase
}

func (p *phases) done(name string) {
	now := time.Now()
	p.out = append(p.out, Phase{name, now.Sub(p.last)})
	p.last = now
}

// Recompute brings subscriptions.mrr, their attention and ledger.subscription_movements to the
// MRR settings cfg.MRR, from ledger.subscription_mrr_inputs and the customers' discount
// histories: the same rows a replay under those settings gives, without reading the log; and
// their history (subscriptions_history, subscription_movements_history) from each version's
// stored valuation inputs (revalueHistory). It is what a runner does when it starts with settings other than those the tables record
// (ledger.mrr_settings).
//
// Only the subscriptions the change can act on are valued again (domain.Sensitivity, kept in
// subscription_mrr_inputs.sensitive_to), their movements deleted and written again in place;
// when they are more than a quarter of all, every subscription is valued and the new movement
// log written into a table beside the live one and renamed into place. It runs in one
// transaction under the projection's lock (live batches wait for it), so queries read the old
// figures until the commit; subscriptions' rows are updated only where the figure changed.
func Recompute(ctx context.Context, pool *pgxpool.Pool, cfg RecomputeConfig) (RecomputeStats, error) {
	start := time.Now()
	ph := &phases{last: start}
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
	// The others value the same under both settings.
	stored, err := storedSettings(ctx, tx)
	if err != nil {
		return RecomputeStats{}, err
	}
	differs := stored.Differs(set)
	var total, affected int
	if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE `+affectedSQL+`) `+inputsFrom, differs.Names(), differs&domain.SensitiveDiscounts != 0).Scan(&total, &affected); err != nil {
		return RecomputeStats{}, fmt.Errorf("could not read the subscriptions' MRR inputs: %w", err)
	}
	whole := affected*4 > total
	subs, err := readInputs(ctx, tx, whole, differs)
	if err != nil {
		return RecomputeStats{}, err
	}
	ph.done("read inputs")
	var only []string // the subscriptions valued again, in place; nil when all are, whole
	if !whole {
		only = make([]string, len(subs))
		for i := range subs {
			only[i] = subs[i].id
		}
	}
	moves := Subscriptions.Children[0]
	var movesTable table
	for _, t := range Subscriptions.tables() {
		if t.name == moves.Table {
			movesTable = t
		}
	}
	target := movesTable.name
	if whole {
		target += recomputeSuffix
		if _, err := tx.Exec(ctx, movesTable.createSQL(target), pgx.QueryExecModeSimpleProtocol); err != nil {
			return RecomputeStats{}, fmt.Errorf("could not create the recompute's tables: %w", err)
		}
	} else {
		// In place: the rollup's triggers take the deleted and the copied movements out and in.
		if _, err := tx.Exec(ctx, `DELETE FROM ledger.`+movesTable.name+` WHERE subscription = ANY($1)`, only); err != nil {
			return RecomputeStats{}, fmt.Errorf("could not clear the movements to recompute: %w", err)
		}
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
			rats := map[string]*big.Rat{}
			for i := lo; i < hi; i++ {
				s := &subs[i]
				attention, h, err := decodeInputsWith(s.inputs, rats)
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
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger", target}, columnNames(movesTable.columns), &chanSource{ch: rowsOut})
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
	ph.done("value and copy movements")
	// Only the rows whose figure changed are sent and written (each update is a new row
	// version, and most figures stay as they were).
	var ids []string
	var mrrs []*int64
	var attentions []*string
	for i, r := range results {
		if !equalPtr(r.mrr, subs[i].mrr) || !equalPtr(r.attention, subs[i].attention) {
			ids, mrrs, attentions = append(ids, r.id), append(mrrs, r.mrr), append(attentions, r.attention)
		}
	}
	tag, err := tx.Exec(ctx, `UPDATE ledger.subscriptions s SET mrr = r.mrr, attention = r.attention
		FROM unnest($1::text[], $2::bigint[], $3::text[]) AS r(id, mrr, attention)
		WHERE s.id = r.id`, ids, mrrs, attentions)
	if err != nil {
		return RecomputeStats{}, fmt.Errorf("could not update the subscriptions' figures: %w", err)
	}
	ph.done("update subscriptions")
	// Index the new log and swap it in (summing it into the rollup), and record the settings.
	var swap []string
	if whole {
		swap = movesTable.swapSQL(target)
	}
	swap = append(swap, `DELETE FROM ledger.mrr_settings`, fmt.Sprintf(`INSERT INTO ledger.mrr_settings (settings) VALUES (%s)`, quote(set.String())))
	if _, err := tx.Exec(ctx, strings.Join(swap, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return RecomputeStats{}, fmt.Errorf("could not swap the recomputed movements in: %w", err)
	}
	if whole {
		ph.done("index and swap movements")
		if err := attachRollup(ctx, tx); err != nil {
			return RecomputeStats{}, err
		}
		ph.done("rollup")
	}
	versions, refolded, err := revalueHistory(ctx, tx, set, ph, only)
	if err != nil {
		return RecomputeStats{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return RecomputeStats{}, fmt.Errorf("could not commit the recompute: %w", err)
	}
	ph.done("commit")
	return RecomputeStats{Subscriptions: total, Revalued: len(subs), Movements: int(n), Changed: int(tag.RowsAffected()), Versions: versions, Refolded: refolded, Took: time.Since(start), Phases: ph.out}, nil
}

// recomputeSuffix names the table a recompute writes beside a live one (swapSQL).
const recomputeSuffix = "_recompute"

// swapSQL are the statements that index shadow (t's table as a recompute wrote it beside t,
// t.name + recomputeSuffix) and put it in t's place under t's names and comments. Writing a
// table whole and swapping it in costs far less than deleting and inserting its rows in place
// (every index is built once, sorted, and no dead rows are left), and readers keep the old
// table until the commit.
func (t table) swapSQL(shadow string) []string {
	out := t.indexSQL(shadow, recomputeSuffix)
	out = append(out,
		fmt.Sprintf(`ALTER TABLE ledger.%s RENAME TO %s_old`, t.name, t.name),
		fmt.Sprintf(`ALTER TABLE ledger.%s RENAME TO %s`, shadow, t.name),
		fmt.Sprintf(`DROP TABLE ledger.%s_old`, t.name))
	for _, ix := range t.indexNames() {
		out = append(out, fmt.Sprintf(`ALTER INDEX ledger.%s%s RENAME TO %s`, ix, recomputeSuffix, ix))
	}
	return append(out, t.commentSQL(t.name)...)
}

// revalueChunk is how many subscriptions' histories revalueHistory values at a time: it bounds
// the memory a recompute holds, whatever the history's size (up to three chunks at once: one
// being valued, the next read, the one before written). A variable for the test that makes
// them small, to take many.
var revalueChunk = 5000

// revalueHistory brings ledger.subscriptions_history and subscription_movements_history to the
// settings set: every version's mrr and attention, and the movement log known at each arrival.
// Every version stores its valuation inputs (valuation_inputs, the same under every setting), so
// each is valued again from them with its customer's discount history from the current rows,
// as the live runner and replay value a version (valueSubscription); the movement log known at
// an arrival is the movements of the arrival's newest version (the fold of every event known
// then), and its changes are written as historyOf writes them. Versions are updated only where
// a figure changed.
//
// With only nil every subscription's history is valued and the movement history written whole
// and swapped in; otherwise only the histories of the subscriptions only lists (sorted) and of
// those without current inputs (whose sensitivity is not known) are, in place.
//
// A subscription whose versions cannot be valued so (a version whose inputs do not decode, as
// an older encoding's would not, or an arrival that changed its movements without leaving a version) is
// folded again from its events (refoldHistory). It returns the versions valued and how many
// subscriptions were folded again.
func revalueHistory(ctx context.Context, tx pgx.Tx, set domain.MRRSettings, ph *phases, only []string) (int, int, error) {
	if historyOff.Load() {
		return 0, 0, nil
	}
	m := Subscriptions
	hts := m.historyTables()
	mi := slices.IndexFunc(m.Children, func(c *Child) bool { return c.Table == "subscription_movements" })
	moves, movesHistory := m.Children[mi], hts[1+mi]
	inputsHistory := hts[1+slices.IndexFunc(m.Children, func(c *Child) bool { return c.Table == "subscription_mrr_inputs" })].name
	discounts, err := customerDiscounts(ctx, tx)
	if err != nil {
		return 0, 0, err
	}
	q, args := `SELECT DISTINCT id FROM ledger.`+hts[0].name+` ORDER BY id`, []any{}
	if only != nil {
		// Those without current inputs are found in the inputs' history, a tenth of the
		// versions' size: a subscription's first version is written with its inputs' first
		// change, and a later version only beside later changes.
		q, args = `SELECT id FROM unnest($1::text[]) id UNION SELECT DISTINCT h.subscription FROM ledger.`+inputsHistory+` h
			WHERE NOT EXISTS (SELECT 1 FROM ledger.subscription_mrr_inputs i WHERE i.subscription = h.subscription) ORDER BY 1`, []any{only}
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return 0, 0, fmt.Errorf("could not read the subscriptions' history: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, fmt.Errorf("could not read the subscriptions' history: %w", err)
	}
	// The movement history is written whole beside the live one and swapped in at the end, as
	// the movement log is: readers at a cut keep the old rows until the commit.
	target := movesHistory.name
	if only == nil {
		target += recomputeSuffix
		if _, err := tx.Exec(ctx, movesHistory.createSQL(target)); err != nil {
			return 0, 0, fmt.Errorf("could not create the recompute's tables: %w", err)
		}
	}
	ph.done("history: read ids")
	// Pipelined: while the workers value one chunk, the transaction writes the chunk before
	// and reads the next (a connection runs one statement at a time; the valuation needs none).
	var chunks [][]string
	for lo := 0; lo < len(ids); lo += revalueChunk {
		chunks = append(chunks, ids[lo:min(lo+revalueChunk, len(ids))])
	}
	valued := 0
	var refold []string
	var took [3]time.Duration // read, write, waiting for the valuation
	write := func(chunk []string, r revalued) error {
		if only != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM ledger.`+target+` WHERE subscription = ANY($1)`, chunk); err != nil {
				return fmt.Errorf("could not clear ledger.%s: %w", target, err)
			}
		}
		refold = append(refold, r.refold...)
		valued += r.valued
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger", target}, columnNames(movesHistory.columns), pgx.CopyFromRows(r.moves)); err != nil {
			return fmt.Errorf("could not write ledger.%s: %w", movesHistory.name, err)
		}
		if len(r.update.ids) > 0 {
			u := r.update
			if _, err := tx.Exec(ctx, `UPDATE ledger.`+hts[0].name+` h SET mrr = r.mrr, attention = r.attention
				FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::text[]) AS r(id, valid_from, known_from, mrr, attention)
				WHERE h.id = r.id AND h.valid_from = r.valid_from AND h.known_from = r.known_from`,
				u.ids, u.validFrom, u.knownFrom, u.mrr, u.attention); err != nil {
				return fmt.Errorf("could not update the subscriptions' history: %w", err)
			}
		}
		return nil
	}
	var next chunkVersions
	var prev revalued
	if len(chunks) > 0 {
		t0 := time.Now()
		if next, err = readChunk(ctx, tx, inputsHistory, chunks[0], only == nil); err != nil {
			return 0, 0, err
		}
		took[0] += time.Since(t0)
	}
	for i := range chunks {
		cur := next
		done := make(chan revalued, 1)
		go func() { done <- cur.value(set, discounts, moves) }()
		err := func() error {
			t0 := time.Now()
			if i > 0 {
				if err := write(chunks[i-1], prev); err != nil {
					return err
				}
			}
			t1 := time.Now()
			took[1] += t1.Sub(t0)
			if i+1 < len(chunks) {
				var err error
				if next, err = readChunk(ctx, tx, inputsHistory, chunks[i+1], only == nil); err != nil {
					return err
				}
			}
			took[0] += time.Since(t1)
			return nil
		}()
		t2 := time.Now()
		prev = <-done // waited for even on an error: no worker outlives the call
		took[2] += time.Since(t2)
		if err != nil {
			return 0, 0, err
		}
	}
	if len(chunks) > 0 {
		t0 := time.Now()
		if err := write(chunks[len(chunks)-1], prev); err != nil {
			return 0, 0, err
		}
		took[1] += time.Since(t0)
	}
	ph.out = append(ph.out, Phase{"history: read", took[0]}, Phase{"history: write movements and versions", took[1]}, Phase{"history: value (beyond the reads and writes)", took[2]})
	ph.last = time.Now()
	n, err := refoldHistory(ctx, tx, set, refold, target)
	if err != nil {
		return 0, 0, err
	}
	ph.done("history: fold again")
	if only == nil {
		if _, err := tx.Exec(ctx, strings.Join(movesHistory.swapSQL(target), ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
			return 0, 0, fmt.Errorf("could not swap the recomputed movement history in: %w", err)
		}
		ph.done("history: index and swap movements")
	}
	return valued + n, len(refold), nil
}

// revalued is what chunkVersions.value computed for a chunk of subscriptions.
type revalued struct {
	valued int
	moves  [][]any // subscription_movements_history rows
	update struct {
		ids       []string
		validFrom []time.Time
		knownFrom []int64
		mrr       []*int64
		attention []*string
	}
	refold []string // subscriptions to fold again from their events
}

// version is one subscriptions_history row as readChunk reads it.
type version struct {
	id, customer string
	validFrom    time.Time
	knownFrom    int64
	inputs       []byte
	mrr          *int64
	attention    *string
	livemode     bool
	account      *string
}

// readChunk reads the versions of the subscriptions ids (sorted) and the arrivals that changed
// their inputs; dense says ids are every subscription from the first to the last.
func readChunk(ctx context.Context, tx pgx.Tx, inputsHistory string, ids []string, dense bool) (chunkVersions, error) {
	var out chunkVersions
	// The arrivals that changed a subscription's valuation inputs (the same under every setting,
	// and not rewritten here): each must have left a version. One that did not (its fold was
	// nil) emptied the subscription's movements under any settings, which only a fold writes.
	// A dense chunk (every subscription in its range) is read by range, a sparse one by ID.
	which, args := func(col string) string { return col + ` = ANY($1)` }, []any{ids}
	if dense {
		which, args = func(col string) string { return col + ` BETWEEN $1 AND $2` }, []any{ids[0], ids[len(ids)-1]}
	}
	rows, err := tx.Query(ctx, `SELECT subscription, array_agg(DISTINCT known_from) FROM ledger.`+inputsHistory+`
		WHERE `+which("subscription")+` GROUP BY 1`, args...)
	if err != nil {
		return out, fmt.Errorf("could not read the valuation inputs' history: %w", err)
	}
	arrivals := map[string][]int64{}
	for rows.Next() {
		var id string
		var at []int64
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return out, fmt.Errorf("could not read the valuation inputs' history: %w", err)
		}
		arrivals[id] = at
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("could not read the valuation inputs' history: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT id, customer, valid_from, known_from, valuation_inputs, mrr, attention, livemode, account
		FROM ledger.`+Subscriptions.HistoryTable()+` WHERE `+which("id")+` ORDER BY id, known_from, valid_from`, args...)
	if err != nil {
		return out, fmt.Errorf("could not read the subscriptions' history: %w", err)
	}
	defer rows.Close()
	var versions []version
	var groups [][2]int // each subscription's versions: [from, to)
	for rows.Next() {
		var v version
		if err := rows.Scan(&v.id, &v.customer, &v.validFrom, &v.knownFrom, &v.inputs, &v.mrr, &v.attention, &v.livemode, &v.account); err != nil {
			return out, fmt.Errorf("could not read the subscriptions' history: %w", err)
		}
		if len(groups) == 0 || versions[groups[len(groups)-1][0]].id != v.id {
			groups = append(groups, [2]int{len(versions), len(versions)})
		}
		versions = append(versions, v)
		groups[len(groups)-1][1] = len(versions)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("could not read the subscriptions' history: %w", err)
	}
	return chunkVersions{versions, groups, arrivals}, nil
}

// chunkVersions are the versions of a chunk of subscriptions as readChunk read them.
type chunkVersions struct {
	versions []version
	groups   [][2]int // each subscription's versions: [from, to)
	arrivals map[string][]int64
}

// value values the chunk's versions under set, on every CPU, each worker a share of the
// subscriptions, joined in order. It touches no connection, so it runs while the recompute's
// transaction writes the chunk before and reads the next.
func (c chunkVersions) value(set domain.MRRSettings, discounts map[string][]domain.CustomerDiscount, moves *Child) revalued {
	var out revalued
	versions, groups, arrivals := c.versions, c.groups, c.arrivals
	workers := min(runtime.GOMAXPROCS(0), max(len(groups), 1))
	parts := make([]revalued, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rats := map[string]*big.Rat{}
			for _, g := range groups[w*len(groups)/workers : (w+1)*len(groups)/workers] {
				vs := versions[g[0]:g[1]]
				parts[w].revalue(set, discounts, moves, vs, arrivals[vs[0].id], rats)
			}
		}()
	}
	wg.Wait()
	for _, p := range parts {
		out.valued += p.valued
		out.moves = append(out.moves, p.moves...)
		out.refold = append(out.refold, p.refold...)
		u, pu := &out.update, p.update
		u.ids, u.validFrom, u.knownFrom = append(u.ids, pu.ids...), append(u.validFrom, pu.validFrom...), append(u.knownFrom, pu.knownFrom...)
		u.mrr, u.attention = append(u.mrr, pu.mrr...), append(u.attention, pu.attention...)
	}
	return out
}

// revalue values one subscription's versions (in known_from, valid_from order) and adds what
// changed and its movement history to r, or the subscription to r.refold.
func (r *revalued) revalue(set domain.MRRSettings, customers map[string][]domain.CustomerDiscount, moves *Child, versions []version, arrivals []int64, rats map[string]*big.Rat) {
	id := versions[0].id
	// As valueSubscription values a version: with the discounts of the customer the current row
	// reads (the newest version's), which a version of another customer does not find.
	current := versions[len(versions)-1].customer
	var changes [][]any
	var prev movementSet
	type figure struct {
		v         *version
		mrr       *int64
		attention *string
	}
	var changed []figure
	last := map[int]int{} // each seq's latest change in changes
	var ok bool
	for i := range versions {
		v := &versions[i]
		attention, h, err := decodeInputsWith(v.inputs, rats)
		if err != nil {
			r.refold = append(r.refold, id)
			return
		}
		var discounts []domain.CustomerDiscount
		if v.customer == current {
			discounts = customers[current]
		}
		row := domain.SubscriptionRow{Attention: attention}
		ms := h.Value(&row, discounts, set)
		if !equalPtr(row.MRR, v.mrr) || !equalPtr(row.Attention, v.attention) {
			changed = append(changed, figure{v, row.MRR, row.Attention})
		}
		if i+1 < len(versions) && versions[i+1].knownFrom == v.knownFrom {
			continue // not the arrival's newest version
		}
		cur := movementSet{ms, v.livemode, v.account}
		if changes, ok = cur.changes(moves, changes, prev, v.knownFrom, last); !ok {
			r.refold = append(r.refold, id)
			return
		}
		prev = cur
	}
	for _, p := range arrivals {
		if !slices.ContainsFunc(versions, func(v version) bool { return v.knownFrom == p }) {
			r.refold = append(r.refold, id)
			return
		}
	}
	r.moves = append(r.moves, changes...)
	r.valued += len(versions)
	u := &r.update
	for _, f := range changed {
		u.ids, u.validFrom, u.knownFrom = append(u.ids, id), append(u.validFrom, f.v.validFrom), append(u.knownFrom, f.v.knownFrom)
		u.mrr, u.attention = append(u.mrr, f.mrr), append(u.attention, f.attention)
	}
}

// movementSet is a version's movement log, as subscription_movements rows of its mode and
// account would hold it.
type movementSet struct {
	moves    []domain.Movement
	livemode bool
	account  *string
}

// changes appends to out the subscription_movements_history rows of the change from prev to s
// at position, as childChanges and linkChildChanges write them for any child (a row for each
// movement gained or changed, a gone row for each lost, each earlier change of the same seq
// ending at position; last holds each seq's latest change in out), comparing the movements
// themselves instead of their rows' text: the movements' primary key (subscription, seq) is
// their place in the log. It is false for a log whose seqs are not their places, which
// revalue then leaves to a fold.
func (s movementSet) changes(c *Child, out [][]any, prev movementSet, position int64, last map[int]int) ([][]any, bool) {
	n := len(c.Columns)
	add := func(k int, row []any) {
		if p, ok := last[k]; ok {
			out[p][n+2] = position
		}
		last[k] = len(out)
		out = append(out, row)
	}
	same := prev.livemode == s.livemode && equalPtr(prev.account, s.account)
	for k := range max(len(prev.moves), len(s.moves)) {
		switch {
		case k < len(s.moves) && s.moves[k].Seq != k:
			return out, false
		case k >= len(s.moves):
			add(k, append(movementValues(&prev.moves[k], prev.livemode, prev.account), position, true, nil))
		case k >= len(prev.moves) || !same || !sameMovement(&prev.moves[k], &s.moves[k]):
			add(k, append(movementValues(&s.moves[k], s.livemode, s.account), position, false, nil))
		}
	}
	return out, true
}

// sameMovement says whether a and b give the same subscription_movements row (rowKey tells a
// nil list from an empty one, and so does this).
func sameMovement(a, b *domain.Movement) bool {
	return a.Subscription == b.Subscription && a.Customer == b.Customer && a.Currency == b.Currency && a.Seq == b.Seq &&
		a.Kind == b.Kind && a.Amount == b.Amount && a.MRRBefore == b.MRRBefore && a.MRRAfter == b.MRRAfter &&
		(a.SourceEvents == nil) == (b.SourceEvents == nil) && slices.Equal(a.SourceEvents, b.SourceEvents) &&
		a.At == b.At && equalPtr(a.PeriodStart, b.PeriodStart)
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// customerDiscounts are the customers' discount histories from the current rows, by customer.
func customerDiscounts(ctx context.Context, tx pgx.Tx) (map[string][]domain.CustomerDiscount, error) {
	rows, err := tx.Query(ctx, `SELECT id, discount_history::text FROM ledger.customers WHERE discount_history IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("could not read the customers' discounts: %w", err)
	}
	defer rows.Close()
	out := map[string][]domain.CustomerDiscount{}
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("could not read the customers' discounts: %w", err)
		}
		var h []domain.CustomerDiscount
		if err := json.Unmarshal([]byte(raw), &h); err != nil {
			return nil, fmt.Errorf("customer %s: discount history: %w", id, err)
		}
		out[id] = h
	}
	return out, rows.Err()
}

// refoldHistory writes the history of the subscriptions ids again by folding their events from
// the log, as the live runner writes it, valued under set with their customers' discount
// histories from the current rows: the rows a replay under set writes, at the cost of reading
// the subscriptions' events. Quarantined events stay out (foldHistories leaves out those
// listed); an event that cannot be decoded was quarantined when it was folded. The valuation
// inputs' own history is the same under every setting and stays. The movement history goes to
// movesHistory, the table being written in place of subscription_movements_history, which
// holds none of theirs. It returns the versions written.
func refoldHistory(ctx context.Context, tx pgx.Tx, set domain.MRRSettings, ids []string, movesHistory string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	m := Subscriptions
	hts := m.historyTables()
	moves := 1 + slices.IndexFunc(m.Children, func(c *Child) bool { return c.Table == "subscription_movements" })
	if _, err := tx.Exec(ctx, `DELETE FROM ledger.`+hts[0].name+` WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("could not clear ledger.%s: %w", hts[0].name, err)
	}
	names := map[int]string{0: hts[0].name, moves: movesHistory}
	e := &engine{projection: StateName, env: env{mrr: set}}
	versions := 0
	for lo := 0; lo < len(ids); lo += revalueChunk {
		chunk := ids[lo:min(lo+revalueChunk, len(ids))]
		objects := idSet{}
		for _, id := range chunk {
			objects.add(id)
		}
		read, err := e.readHistories(ctx, tx, map[*Model]idSet{m: objects})
		if err != nil {
			return 0, err
		}
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
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger", names[i]}, columnNames(hts[i].columns), pgx.CopyFromRows(r)); err != nil {
				return 0, fmt.Errorf("could not write ledger.%s: %w", names[i], err)
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
	// The figures the row holds now.
	mrr       *int64
	attention *string
}

// inputsFrom is every subscription's inputs (i), its row (s) and its customer (c).
const inputsFrom = `FROM ledger.subscription_mrr_inputs i JOIN ledger.subscriptions s ON s.id = i.subscription
	LEFT JOIN ledger.customers c ON c.id = s.customer`

// affectedSQL says whether a subscription (inputs i, its customer c) is one a settings change
// that differs in $1 (domain.Sensitivity names) can change; $2 is whether it differs in a
// discount setting, which acts on the customer's discounts too.
const affectedSQL = `(i.sensitive_to && $1::text[] OR ($2 AND c.discount_history IS NOT NULL))`

// readInputs reads every subscription's inputs (all), or those of the subscriptions a change
// that differs in differs can change.
func readInputs(ctx context.Context, tx pgx.Tx, all bool, differs domain.Sensitivity) ([]recomputeInput, error) {
	where := ""
	args := []any{}
	if !all {
		where, args = ` WHERE `+affectedSQL, []any{differs.Names(), differs&domain.SensitiveDiscounts != 0}
	}
	rows, err := tx.Query(ctx, `SELECT s.id, i.inputs, c.discount_history::text, s.livemode, s.account, s.mrr, s.attention `+
		inputsFrom+where+` ORDER BY s.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("could not read the subscriptions' MRR inputs: %w", err)
	}
	defer rows.Close()
	var out []recomputeInput
	for rows.Next() {
		var in recomputeInput
		var cust *string
		if err := rows.Scan(&in.id, &in.inputs, &cust, &in.livemode, &in.account, &in.mrr, &in.attention); err != nil {
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
