package projections

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/domain"
)

// Bitemporal history. Every read model has a history table, ledger.<table>_history, beside it,
// made from its declaration like the table itself, so a model declared later gets one with no
// code of its own. It answers two questions the current rows cannot:
//
//   - as_of T: what Stripe's timeline says at T — the fold of the object's events created at or
//     before T (the ordering rule decides within a second; a cut takes whole seconds);
//   - known_at P: what the ledger knew once the log held position P — the fold of the events
//     at positions up to P. A repair that appends older events later changes what is true
//     as of T, but never what was known at P.
//
// A version of an object is the fold of the events known at an arrival P (an event's position)
// created at or before a second S: row R(P, S), stored with valid_from = S and known_from = P.
// When an event arrives, the versions at and after its second change (an older event arriving
// late changes every later version), so one row is written for each second of the object's known
// events at or after the new event's: one row per event for events that arrive in order, more
// for late ones. Rows are only ever added (in the live runner; replay writes them all at once):
// the version at a cut (T, P) is, of the object's rows with valid_from <= T and known_from <= P,
// the one with the greatest valid_from and then the greatest known_from — the prefix of the
// ordered rows an index on (created, id, valid_from, known_from), newest first, walks to.
//
// The live runner writes the rows of the events it folds in the batch's transaction, after
// checking that the arrivals already written are the object's foldable events up to then; when
// they are not (a held event released, an event quarantined after the fact, a redaction that
// changed payloads), the object's history is written again from its whole log. Replay writes
// every object's history from its whole log, so live and replayed history are the same rows.
//
// Columns that come from other read models (a charge's dispute, a subscription's app_user_id)
// are not stored derived: the history rows hold them as the reducer leaves them (NULL), and
// readers at a cut (ReadAt) derive them from the related objects' versions at the same cut,
// so they are correct at the cut, as a fold of the log cut there would give them. The columns
// a model values from its own fold state (a subscription's mrr, attention and movements, which
// read its valuation inputs after each event and its customer's discount history) are stored
// valued in every version, under the MRR settings the tables record, with the related rows the
// object's current row reads (see valueSubscription for what that means at a cut); Recompute
// values them again under new settings.
//
// Child tables (a subscription's movements) keep their history as changes: for every arrival,
// the child rows the object's fold gained or changed (gone = false) or lost (gone = true), so
// the child rows known at P are, per child key, the latest change at or before P that is not
// gone. They follow known_at only: an as-of reader of children cuts them by their own time
// column (a movement's at).

// historyOff turns the writing of history off: for the benchmarks that measure what history
// costs the live runner and replay (export_test.go). The tables are made all the same.
var historyOff atomic.Bool

// historySuffix names a table's history table.
const historySuffix = "_history"

// history columns added to a model's own.
var (
	validFromColumn = Column{Name: "valid_from", Type: "timestamptz",
		Comment: "The Stripe second this version holds from: it is the fold of the object's events created at or before it (known at known_from)."}
	knownFromColumn = Column{Name: "known_from", Type: "bigint",
		Comment: "The log position (ledger.events.position) of the event whose arrival made this version: the ledger knew it from then on."}
	goneColumn = Column{Name: "gone", Type: "boolean",
		Comment: "True when the parent's fold lost this child row at known_from; false when it gained or changed it."}
	knownToColumn = Column{Name: "known_to", Type: "bigint", Null: true,
		Comment: "The log position of the next change of this child row (its key), from which this one no longer holds; NULL while it is the latest."}
)

// HistoryColumn is one of the columns the history tables add to a model's or a child's.
func HistoryColumn(name string) (Column, bool) {
	for _, c := range []Column{validFromColumn, knownFromColumn, goneColumn, knownToColumn} {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// HistoryTable is the name of model m's history table.
func (m *Model) HistoryTable() string { return m.Table + historySuffix }

// historyKeys are the ordering a cut walks: an object's versions newest first.
const historyKeys = "created DESC, id DESC, valid_from DESC, known_from DESC"

// historyTables are every history table, in declaration order: each model's, then its
// children's.
func historyTables() []table {
	var out []table
	for _, m := range Models {
		out = append(out, m.historyTables()...)
	}
	return out
}

// historyTables are m's history table and its children's.
func (m *Model) historyTables() []table {
	cols := append(slices.Concat(m.Columns, m.impl.historyColumns()), validFromColumn, knownFromColumn)
	indexes := []string{historyKeys, "livemode, account, " + historyKeys}
	// The relations other models read this one by, at a cut.
	for _, other := range Models {
		for _, r := range other.Reads {
			if r.Model == m && r.Column != "" && !slices.Contains(indexes, r.Column) {
				indexes = append(indexes, r.Column)
			}
		}
	}
	labels := map[string]string{historyKeys: "cut", "livemode, account, " + historyKeys: "scope_cut"}
	out := []table{{name: m.HistoryTable(), columns: cols, primaryKey: []string{"id", "valid_from", "known_from"}, indexes: indexes, labels: labels,
		comment: "Every version of ledger." + m.Table + " (bitemporal history): the row as of each Stripe second (valid_from) as known from each log position (known_from). Columns derived from other read models are NULL here: the API derives them at the cut; those valued from the object's own fold (a subscription's mrr and attention) are stored valued. Written with the rows, rebuilt by replay."}}
	for _, c := range m.Children {
		out = append(out, table{name: c.Table + historySuffix, columns: append(slices.Clone(c.Columns), knownFromColumn, goneColumn, knownToColumn),
			primaryKey: append(slices.Clone(c.PrimaryKey), "known_from"),
			indexes:    []string{c.Key},
			comment:    "Every change of ledger." + c.Table + " as the ledger learned it: the rows its parent's fold gained, changed or lost (gone) at each log position (known_from). Rebuilt by replay."})
	}
	return out
}

// arrival is one foldable event of an object and where it sits in the log.
type arrival struct {
	position int64
	fact     domain.Fact
}

// objectHistory is what one fold writes to an object's history: its rows, and whether the rows
// already there are dropped first.
type objectHistory struct {
	rewrite  bool
	rows     [][]any   // history table rows
	children [][][]any // per child, its history rows
}

// historyOf computes the history rows of the arrivals of one object from index from on (evs
// sorted by position; those before from are already written). It folds without derivations:
// see the package's history comment.
//
// latest, when not nil, is the fold of every event in evs (the object's row before it is
// derived): the last arrival's last version, which the caller has already folded.
//
// value, when not nil, is the model's valuation with the relation inputs of the object's
// current row (a subscription's customer): every version carries what it values (mrr,
// attention, the movement log), which a reader at a cut cannot compute from a stored row.
func historyOf(m *Model, evs []arrival, from int, latest any, value func(row any)) objectHistory {
	var h objectHistory
	h.children = make([][][]any, len(m.Children))
	fold := func(known []arrival, limit int64) any {
		row := foldFacts(m, known, limit)
		if row != nil && value != nil {
			value(row)
		}
		return row
	}
	var prev []map[string]childRow // per child, the rows of the fold before this arrival, by key
	if len(m.Children) > 0 {
		prev = childSets(m, fold(evs[:from], -1))
	}
	for j := from; j < len(evs); j++ {
		known := evs[:j+1]
		seconds := make([]int64, 0, 1)
		for _, a := range known {
			if c := a.fact.Created; c >= evs[j].fact.Created && !slices.Contains(seconds, c) {
				seconds = append(seconds, c)
			}
		}
		slices.Sort(seconds)
		var last any
		for i, s := range seconds {
			limit := s
			if i == len(seconds)-1 {
				limit = -1 // every known event
			}
			var row any
			if limit < 0 && j == len(evs)-1 && latest != nil {
				row = latest
				if value != nil {
					value(row)
				}
			} else {
				row = fold(known, limit)
			}
			if row == nil {
				continue
			}
			if limit < 0 {
				last = row
			}
			h.rows = append(h.rows, append(append(m.impl.values(row), m.impl.historyValues(row)...), ts(s), evs[j].position))
		}
		if len(m.Children) == 0 {
			continue
		}
		cur := childSets(m, last)
		for ci, c := range m.Children {
			h.children[ci] = childChanges(c, h.children[ci], prev[ci], cur[ci], evs[j].position)
		}
		prev = cur
	}
	for ci, c := range m.Children {
		linkChildChanges(c, h.children[ci])
	}
	return h
}

// childChanges appends to out the changes of child c from prev to cur (a fold's rows of c by
// key, before and after the arrival at position): the rows gained or changed (gone false) and
// lost (gone true), the arrival's changes in row order (the maps' order is random).
func childChanges(c *Child, out [][]any, prev, cur map[string]childRow, position int64) [][]any {
	var changes []childRow
	for k, row := range cur {
		if old, ok := prev[k]; !ok || old.text != row.text {
			changes = append(changes, childRow{append(slices.Clone(row.values), position, false, nil), row.text})
		}
	}
	for k, row := range prev {
		if _, ok := cur[k]; !ok {
			changes = append(changes, childRow{append(slices.Clone(row.values), position, true, nil), row.text})
		}
	}
	slices.SortFunc(changes, func(a, b childRow) int { return cmp.Compare(a.text, b.text) })
	for _, ch := range changes {
		out = append(out, ch.values)
	}
	return out
}

// linkChildChanges sets each of c's changes' known_to: the position of the next change of the
// same key, which ends it.
func linkChildChanges(c *Child, rows [][]any) {
	n := len(c.Columns)
	last := map[string]int{}
	for i, row := range rows {
		k := rowKey(childKey(c, row))
		if p, ok := last[k]; ok {
			rows[p][n+2] = row[n]
		}
		last[k] = i
	}
}

// childKey is a child row's primary key values.
func childKey(c *Child, row []any) []any {
	out := make([]any, len(c.PrimaryKey))
	for k, name := range c.PrimaryKey {
		out[k] = row[slices.IndexFunc(c.Columns, func(col Column) bool { return col.Name == name })]
	}
	return out
}

// foldFacts folds the events among evs created at or before second limit (all of them when
// limit < 0), nil when nothing foldable is left. The reducers may reorder what they are given:
// they get a copy.
func foldFacts(m *Model, evs []arrival, limit int64) any {
	facts := make([]domain.Fact, 0, len(evs))
	for _, a := range evs {
		if limit < 0 || a.fact.Created <= limit {
			facts = append(facts, a.fact)
		}
	}
	if len(facts) == 0 {
		return nil
	}
	row, ok, _ := foldClean(facts, m.impl.fold)
	if !ok {
		return nil
	}
	return row
}

// childRow is a child row's values and their text (rowKey), which compares and orders them.
type childRow struct {
	values []any
	text   string
}

// childSets are the child rows of a folded row (nil: none), per child, by their primary key.
func childSets(m *Model, row any) []map[string]childRow {
	out := make([]map[string]childRow, len(m.Children))
	var rows [][][]any
	if row != nil {
		rows = m.impl.childRows(row)
	}
	for i, c := range m.Children {
		if rows == nil {
			out[i] = map[string]childRow{}
			continue
		}
		out[i] = childSet(c, rows[i])
	}
	return out
}

// childSet is rows of child c by their primary key.
func childSet(c *Child, rows [][]any) map[string]childRow {
	out := make(map[string]childRow, len(rows))
	for _, r := range rows {
		out[rowKey(childKey(c, r))] = childRow{r, rowKey(r)}
	}
	return out
}

// rowKey is a row's values as comparable text: equal rows give equal text, pointers print what
// they point to. The types a movement row holds are written directly (a history is written for
// every arrival of every object, so this is on the runner's path); others (bytes, JSON values)
// as JSON.
func rowKey(vals []any) string {
	b := make([]byte, 0, 16*len(vals))
	for _, v := range vals {
		b = appendKeyValue(b, v)
		b = append(b, 0)
	}
	return string(b)
}

func appendKeyValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 'n')
	case string:
		return strconv.AppendQuote(append(b, 's'), x)
	case *string:
		if x == nil {
			return append(b, 'n')
		}
		return strconv.AppendQuote(append(b, 's'), *x)
	case int64:
		return strconv.AppendInt(append(b, 'i'), x, 10)
	case int:
		return strconv.AppendInt(append(b, 'i'), int64(x), 10)
	case *int64:
		if x == nil {
			return append(b, 'n')
		}
		return strconv.AppendInt(append(b, 'i'), *x, 10)
	case bool:
		return strconv.AppendBool(append(b, 'b'), x)
	case time.Time:
		return x.AppendFormat(append(b, 't'), time.RFC3339Nano)
	case *time.Time:
		if x == nil {
			return append(b, 'n')
		}
		return x.AppendFormat(append(b, 't'), time.RFC3339Nano)
	case []string:
		if x == nil {
			return append(b, 'n') // NULL, unlike an empty array
		}
		b = append(b, 'a')
		for _, s := range x {
			b = strconv.AppendQuote(b, s)
		}
		return b
	}
	j, _ := json.Marshal(v)
	return append(append(b, 'j'), j...)
}

// arrivals are an object's foldable events by position: facts less those set aside as poison.
func arrivals(facts []domain.Fact, position func(eventID string) int64, poison []Poison) []arrival {
	out := make([]arrival, 0, len(facts))
	for _, f := range facts {
		if slices.ContainsFunc(poison, func(p Poison) bool { return p.EventID == f.EventID }) {
			continue
		}
		out = append(out, arrival{position: position(f.EventID), fact: f})
	}
	slices.SortFunc(out, func(a, b arrival) int { return cmp.Compare(a.position, b.position) })
	return out
}

// liveHistory is what the live runner writes for one object: the arrivals after those already
// written, or the whole history again when what is written is not a prefix of evs.
func liveHistory(m *Model, evs []arrival, written []int64, rewrite bool, latest any, value func(any)) *objectHistory {
	if historyOff.Load() {
		return nil
	}
	from := len(written)
	if !rewrite {
		if from > len(evs) {
			rewrite = true
		} else {
			for i, p := range written {
				if evs[i].position != p {
					rewrite = true
					break
				}
			}
		}
	}
	if rewrite {
		from = 0
	}
	if from == len(evs) && !rewrite {
		return nil
	}
	h := historyOf(m, evs, from, latest, value)
	h.rewrite = rewrite
	return &h
}

// queueWrittenArrivals queues the read of the arrivals already in the history of objects ids
// of m: per object, the distinct known_from of its rows, in order.
func (e *engine) queueWrittenArrivals(b *pgx.Batch, m *Model, ids []string, out map[string][]int64) {
	b.Queue(fmt.Sprintf(`SELECT id, array_agg(DISTINCT known_from ORDER BY known_from) FROM %s WHERE id = ANY($1) GROUP BY id`,
		e.table(m.HistoryTable())), ids).Query(func(rows pgx.Rows) error {
		var id string
		var ps []int64
		_, err := pgx.ForEachRow(rows, []any{&id, &ps}, func() error {
			out[id] = ps
			return nil
		})
		return err
	})
}

// writeHistories queues the history rows of a batch's objects of m: the deletions of those
// written again, then every table's new rows.
func (e *engine) writeHistories(w *writes, m *Model, out []folded) {
	hts := m.historyTables()
	rows := make([][][]any, len(hts))
	for _, f := range out {
		h := f.history
		if h == nil {
			continue
		}
		if h.rewrite {
			w.queue("", fmt.Sprintf(`DELETE FROM %s WHERE id = $1`, e.table(hts[0].name)), f.id)
			for i, c := range m.Children {
				w.queue("", fmt.Sprintf(`DELETE FROM %s WHERE %s = $1`, e.table(hts[1+i].name), c.Key), f.id)
			}
		}
		rows[0] = append(rows[0], h.rows...)
		for i, c := range m.Children {
			rows[1+i] = append(rows[1+i], h.children[i]...)
			if h.rewrite {
				continue
			}
			// The first change of a key in these rows ends the latest one written before.
			seen := map[string]bool{}
			keys := make([]string, len(c.PrimaryKey))
			for k, name := range c.PrimaryKey {
				keys[k] = fmt.Sprintf("%s = $%d", name, k+2)
			}
			end := fmt.Sprintf(`UPDATE %s SET known_to = $1 WHERE %s AND known_to IS NULL AND known_from < $1`,
				e.table(hts[1+i].name), strings.Join(keys, " AND "))
			for _, row := range h.children[i] {
				kv := childKey(c, row)
				if k := rowKey(kv); !seen[k] {
					seen[k] = true
					w.queue("", end, append([]any{row[len(c.Columns)]}, kv...)...)
				}
			}
		}
	}
	// One statement a row, the same text for every row of a table: prepared once per
	// connection, where a statement of many rows would be prepared again for every batch size.
	for i, t := range hts {
		sql := insertSQL(e.table(t.name), columnNames(t.columns))
		for _, row := range rows[i] {
			blame := ""
			if i == 0 {
				blame = versionEvent(m, row)
			}
			w.queue(blame, sql, row...)
		}
	}
}

// Cut is a point in the ledger's two times. The zero Cut is now.
type Cut struct {
	// AsOf is Stripe's time: the objects as the events created at or before it make them (zero:
	// every event). An object exists at AsOf once it was created (its created <= AsOf).
	AsOf time.Time
	// KnownAt, when Known, is a log position: what the ledger knew once it held the events up
	// to it (0: nothing yet). Without Known, every event it holds.
	KnownAt int64
	Known   bool
}

// IsZero says the cut is now: the current rows answer it.
func (c Cut) IsZero() bool { return c.AsOf.IsZero() && !c.Known }

// Querier is what the reads at a cut run on: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Beginner is what ReadAt reads with: a pool or a connection.
type Beginner interface {
	Querier
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Select is what a reader at a cut asks for. Pre holds conditions on what an object's versions
// share (scope, created, id: written over alias h), evaluated before its version at the cut is
// chosen; Post conditions on the chosen version (over alias t). Both number their arguments
// from $1 in Args. Limit 0 reads every row.
type Select struct {
	Pre, Post []string
	Args      []any
	Limit     int
}

// ReadAt reads rows of m as they stood at the cut, from its history, newest first by (created,
// id), with the columns derived from other models derived from their versions at the same cut.
// Rows are in m's column order.
//
// A page (sel.Limit > 0) is read in a read-only transaction that turns the planner's sorts off
// for its walk: the cut's two bounds (created and valid_from) are correlated, Postgres multiplies
// their selectivities, underestimates the rows the cut admits, and for some cuts prefers
// sorting them all (half a second over 1M charges) to the index walk that stops at the page (a
// millisecond). The related models' reads that follow have the planner's defaults back.
func ReadAt(ctx context.Context, pool Beginner, m *Model, cut Cut, sel Select, identity domain.Identity) ([][]any, error) {
	var q Querier = pool
	if sel.Limit > 0 {
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, fmt.Errorf("could not read %s at the cut: %w", m.Table, err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to keep
		if _, err := tx.Exec(ctx, `SET LOCAL enable_sort = off`); err != nil {
			return nil, fmt.Errorf("could not read %s at the cut: %w", m.Table, err)
		}
		q = tx
	}
	e := env{identity: identity}
	if m.impl.valuer() != nil {
		// A version is valued at the cut under the settings the tables were valued under.
		qr, ok := q.(querier)
		if !ok {
			return nil, fmt.Errorf("could not read %s at the cut: %T cannot read the MRR settings", m.Table, q)
		}
		set, err := storedSettings(ctx, qr)
		if err != nil {
			return nil, fmt.Errorf("could not read %s at the cut: %w", m.Table, err)
		}
		e.mrr = set
	}
	rows, err := readAt(ctx, q, m, cut, sel, e)
	if err != nil {
		return nil, fmt.Errorf("could not read %s at the cut: %w", m.Table, err)
	}
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = m.impl.values(r)
	}
	return out, nil
}

// cutSQL is the query of m's versions at the cut: the latest version per object, then sel's
// conditions on it. Arguments after sel's are the cut's.
func cutSQL(m *Model, cut Cut, sel Select) (string, []any) {
	args := slices.Clone(sel.Args)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	pre := slices.Clone(sel.Pre)
	if !cut.AsOf.IsZero() {
		t := arg(cut.AsOf)
		// An object Stripe created after T did not exist at T; the condition also bounds the walk.
		pre = append(pre, "h.valid_from <= "+t, "h.created <= "+t)
	}
	if cut.Known {
		pre = append(pre, "h.known_from <= "+arg(cut.KnownAt))
	}
	where := ""
	if len(pre) > 0 {
		where = "WHERE " + strings.Join(pre, " AND ")
	}
	cols := make([]string, 0, len(m.Columns))
	for _, c := range slices.Concat(m.Columns, m.impl.historyColumns()) {
		cols = append(cols, "t."+c.Name)
	}
	q := fmt.Sprintf(`SELECT %s FROM (SELECT DISTINCT ON (h.created, h.id) h.* FROM ledger.%s h %s ORDER BY h.%s) t`,
		strings.Join(cols, ", "), m.HistoryTable(), where, strings.ReplaceAll(historyKeys, ", ", ", h."))
	if len(sel.Post) > 0 {
		q += " WHERE " + strings.Join(sel.Post, " AND ")
	}
	q += " ORDER BY t.created DESC, t.id DESC"
	if sel.Limit > 0 {
		q += " LIMIT " + arg(sel.Limit)
	}
	return q, args
}

// readAt reads and derives m's rows at the cut (pointers to m's row type).
func readAt(ctx context.Context, q Querier, m *Model, cut Cut, sel Select, e env) ([]any, error) {
	sql, args := cutSQL(m, cut, sel)
	// Planned for each cut's values (pgx's unnamed statement): a plan cached for any cut
	// (Postgres's generic plan) guesses what share of the history a cut admits, and for a
	// smaller table takes a sequential scan and a sort for the page's index walk.
	rows, err := q.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, err
	}
	var out []any
	for rows.Next() {
		row, scan := m.impl.newRow()
		if err := rows.Scan(append(scan, m.impl.historyScan(row)...)...); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(m.Reads) == 0 || len(out) == 0 {
		return out, nil
	}
	if tx, ok := q.(pgx.Tx); ok && sel.Limit > 0 {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_sort = on`); err != nil {
			return nil, err
		}
	}
	in := inputs{}
	for _, rel := range m.Reads {
		in[rel.Model] = map[string][]any{}
		keys, by, keyCol := idSet{}, "id", "id"
		if rel.Column != "" {
			by, keyCol = rel.Column, rel.Column
			for _, r := range out {
				keys.add(m.impl.id(r))
			}
		} else {
			for _, r := range out {
				keys.add(viaKeys(m, r, rel.Via)...)
			}
		}
		if len(keys) == 0 {
			continue
		}
		related, err := readAt(ctx, q, rel.Model, cut, Select{Pre: []string{"h." + by + " = ANY($1)"}, Args: []any{keys.sorted()}}, e)
		if err != nil {
			return nil, err
		}
		ki := columnIndex(rel.Model, keyCol)
		for _, r := range related {
			k := textValue(rel.Model.impl.values(r)[ki])
			in[rel.Model][k] = append(in[rel.Model][k], r)
		}
	}
	for _, r := range out {
		m.impl.derive(r, in, e)
	}
	return out, nil
}

// Derived says whether column name of m is one the ledger derives rather than reads from
// data.object (Column.Stripe is ""): a reader at a cut filters on such a column only after
// deriving it.
func (m *Model) Derived(name string) bool {
	c, ok := m.Column(name)
	return ok && c.Stripe == "" && len(m.Reads) > 0 && name != "livemode" && name != "account" && name != "event_id" && name != "event_created"
}

// versionEvent is the event whose snapshot a history row holds (its event_id column).
func versionEvent(m *Model, row []any) string {
	id, _ := row[columnIndex(m, "event_id")].(string)
	return id
}

// VersionsSQL is a query of m's rows at a cut, one per object, for a FROM clause: asOf and
// knownAt are SQL expressions (parameters, say) for the cut's bounds, "" for none; pre are
// conditions on what an object's versions share (created, scope), over alias h. Columns
// derived from other models are NULL in it (see ReadAt for rows with them).
func VersionsSQL(m *Model, asOf, knownAt string, pre ...string) string {
	conds := slices.Clone(pre) // on what an object's versions share (created, scope), over alias h
	if asOf != "" {
		conds = append(conds, "h.valid_from <= "+asOf, "h.created <= "+asOf)
	}
	if knownAt != "" {
		conds = append(conds, "h.known_from <= "+knownAt)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	// Newest first by the primary key, walked backwards: the first row of each object is its
	// version at the cut.
	return fmt.Sprintf(`SELECT DISTINCT ON (h.id) %s FROM ledger.%s h%s ORDER BY h.id DESC, h.valid_from DESC, h.known_from DESC`,
		"h."+strings.Join(m.ColumnNames(), ", h."), m.HistoryTable(), where)
}

// ChildVersionsSQL is a query of child table c's rows as known at the log position knownAt (an
// SQL expression), for a FROM clause: per child key, its latest change up to then, unless it
// was gone.
func ChildVersionsSQL(c *Child, knownAt string) string {
	// known_to links each change to the next: one pass, no sort.
	return fmt.Sprintf(`SELECT %s FROM ledger.%s h WHERE h.known_from <= %[3]s AND (h.known_to IS NULL OR h.known_to > %[3]s) AND NOT h.gone`,
		"h."+strings.Join(columnNames(c.Columns), ", h."), c.Table+historySuffix, knownAt)
}
