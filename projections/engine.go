package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// engine runs the declarations. It does not patch rows with an event's fields: it folds every
// object an event is about from that object's whole history in the log, with the model's
// reducer, and then every object that reads it (Relation), so a row is a function of the set of
// its events (and of the rows it reads) whatever order they were applied in, applying an event
// twice changes nothing, and live rows equal a replay's.
//
// The live runner folds a batch of events with foldChanges; replay (rebuild.go) folds the whole
// log with the same foldObject, derive and row values, reading relations from its shadow
// tables instead of the live ones.
type engine struct {
	projection string
	env        env
	suffix     string // table name suffix: "" for the live tables, "_rebuild" for replay's
}

func (e *engine) table(name string) string { return "ledger." + name + e.suffix }

// change is one event to fold: what it is about.
type change struct {
	eventType, objectType, objectID string
	// rewrite says the object's events changed in place (a redaction): its history is written
	// again from its whole log.
	rewrite bool
}

// modelFor is the read model an event folds into, nil for none: its type must route to the
// model's kind and its data.object be that model's object (an event whose object is not what its
// type says is kept in the log and left out of the read models, live and replayed alike).
func modelFor(eventType, objectType string) *Model {
	kind := domain.Route(eventType)
	if kind == "" {
		return nil
	}
	for _, m := range Models {
		if m.Kind == kind {
			if m.ObjectType != objectType {
				return nil
			}
			return m
		}
	}
	return nil
}

// Poison is an event a projection cannot fold, and why.
type Poison struct {
	EventID   string
	Position  int64
	EventType string
	ObjectID  string
	Err       error
}

// dependent is a model that reads another through one of its relations.
type dependent struct {
	model *Model
	rel   Relation
}

// dependents are, for each model, the models that read it.
var dependents = func() map[*Model][]dependent {
	out := map[*Model][]dependent{}
	for _, m := range Models {
		for _, r := range m.Reads {
			out[r.Model] = append(out[r.Model], dependent{m, r})
		}
	}
	return out
}()

// idSet is a set of object IDs.
type idSet map[string]bool

func (s idSet) add(ids ...string) {
	for _, id := range ids {
		if id != "" {
			s[id] = true
		}
	}
}

func (s idSet) sorted() []string { return slices.Sorted(maps.Keys(s)) }

// foldChanges folds the objects the events are about, and every object that reads one of them,
// into the read models in tx. The histories of every object the events are about are read in one
// round trip; then models are taken in dependency order, each in at most two more (the rows it
// reads, when it reads any; its writes, with the lookup of the dependents to fold next), plus one
// for the histories of dependents that were not among the events' objects. Poisoned events are
// quarantined, not returned as errors: an error means the database refused or failed, and the
// caller decides whether the batch is retried or an event is at fault.
func (e *engine) foldChanges(ctx context.Context, tx pgx.Tx, changes []change) error {
	dirty, rewrite := map[*Model]idSet{}, idSet{}
	for _, c := range changes {
		if m := modelFor(c.eventType, c.objectType); m != nil {
			if dirty[m] == nil {
				dirty[m] = idSet{}
			}
			dirty[m].add(c.objectID)
			if c.rewrite {
				rewrite.add(m.Table + "/" + c.objectID)
			}
		}
	}
	read, err := e.readHistories(ctx, tx, dirty)
	if err != nil {
		return err
	}
	for _, m := range Models {
		if len(dirty[m]) == 0 {
			continue
		}
		ids := dirty[m].sorted()
		r := read[m]
		if r == nil {
			r = &histories{oldKeys: map[string][]string{}, written: map[string][]int64{}}
		}
		if missing := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { _, ok := slices.BinarySearch(r.ids, id); return ok }); len(missing) > 0 {
			// Dependents added by the models before this one: their histories now.
			set := idSet{}
			for _, id := range missing {
				set.add(id)
			}
			more, err := e.readHistories(ctx, tx, map[*Model]idSet{m: set})
			if err != nil {
				return err
			}
			r.merge(more[m])
		}
		if err := e.foldModel(ctx, tx, m, ids, r, dirty, rewrite); err != nil {
			return fmt.Errorf("could not fold %d %s: %w", len(ids), m.Table, err)
		}
	}
	return nil
}

// histories is what a fold of some objects of one model reads first: their events, those of them
// kept in quarantine, and the keys their dependents knew them by before the fold.
type histories struct {
	ids         []string // the objects read (a copy: the caller's set may grow)
	events      []eventstore.Record
	quarantined []string
	oldKeys     map[string][]string // relation column -> the values stored for these objects
	written     map[string][]int64  // object -> the arrivals its history holds (history.go)
}

// merge adds the histories of other objects of the same model.
func (h *histories) merge(o *histories) {
	h.ids = append(h.ids, o.ids...)
	slices.Sort(h.ids)
	h.events = append(h.events, o.events...)
	h.quarantined = append(h.quarantined, o.quarantined...)
	for col, keys := range o.oldKeys {
		h.oldKeys[col] = append(h.oldKeys[col], keys...)
	}
	for id, ps := range o.written {
		h.written[id] = ps
	}
}

// readHistories reads, in one round trip, the histories of the objects of every model in objects.
func (e *engine) readHistories(ctx context.Context, tx pgx.Tx, objects map[*Model]idSet) (map[*Model]*histories, error) {
	out := map[*Model]*histories{}
	b := &pgx.Batch{}
	for m, set := range objects {
		if len(set) == 0 {
			continue
		}
		ids := set.sorted()
		h := &histories{ids: ids, oldKeys: map[string][]string{}, written: map[string][]int64{}}
		out[m] = h
		e.queueWrittenArrivals(b, m, ids, h.written)
		eventstore.QueueList(b, eventstore.Filter{ObjectType: m.ObjectType, ObjectIDs: ids, Payload: true}, &h.events)
		b.Queue(`SELECT event_id FROM ledger.projection_quarantine WHERE projection = $1 AND resolved_at IS NULL AND object_id = ANY($2)`,
			e.projection, ids).Query(func(rows pgx.Rows) error {
			var err error
			h.quarantined, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		for _, d := range dependents[m] {
			col := d.rel.Column
			if _, queued := h.oldKeys[col]; col == "" || queued {
				continue
			}
			h.oldKeys[col] = nil
			b.Queue(fmt.Sprintf(`SELECT %s FROM %s WHERE id = ANY($1) AND %s IS NOT NULL`, col, e.table(m.Table), col), ids).
				Query(func(rows pgx.Rows) error {
					keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
					h.oldKeys[col] = keys
					return err
				})
		}
	}
	if b.Len() == 0 {
		return out, nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("could not read the histories of the objects to fold: %w", err)
	}
	return out, nil
}

// foldModel folds the given objects of m from their histories and adds the objects that read
// them to dirty.
func (e *engine) foldModel(ctx context.Context, tx pgx.Tx, m *Model, ids []string, h *histories, dirty map[*Model]idSet, rewrite idSet) error {
	// Fold each object from its history, then read the rows they derive columns from.
	out, poison := e.foldHistories(m, h, ids, rewrite)
	in, err := e.readInputs(ctx, tx, m, out)
	if err != nil {
		return err
	}
	for i := range out {
		f := &out[i]
		f.history = liveHistory(m, f.evs, f.written, f.rewrite, f.row, e.valuer(m, in))
	}

	// Write, and find the dependents to fold next.
	w := &writes{}
	w.quarantine(e.projection, poison)
	e.writeHistories(w, m, out) // before write derives the rows: history keeps them underived
	for _, r := range out {
		e.write(w, m, r, in)
	}
	next := map[*Model]idSet{}
	for _, d := range dependents[m] {
		if next[d.model] == nil {
			next[d.model] = idSet{}
		}
		if col := d.rel.Column; col != "" {
			for _, k := range h.oldKeys[col] {
				next[d.model].add(k)
			}
			i := columnIndex(m, col)
			for _, r := range out {
				if r.row != nil {
					next[d.model].add(textValue(m.impl.values(r.row)[i]))
				}
			}
			if d.rel.Values {
				for id := range next[d.model] {
					rewrite.add(d.model.Table + "/" + id)
				}
			}
			continue
		}
		set := next[d.model]
		dm, values := d.model, d.rel.Values
		w.b.Queue(fmt.Sprintf(`SELECT id FROM %s WHERE %s`, e.table(d.model.Table), viaMatch(d.model, d.rel.Via)), ids).
			Query(func(rows pgx.Rows) error {
				var id string
				_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
					set.add(id)
					if values {
						// Its versions were valued with what this fold changed.
						rewrite.add(dm.Table + "/" + id)
					}
					return nil
				})
				return err
			})
		w.blame = append(w.blame, "")
	}
	if err := w.send(ctx, tx); err != nil {
		return err
	}
	for model, set := range next {
		if dirty[model] == nil {
			dirty[model] = idSet{}
		}
		for id := range set {
			dirty[model].add(id)
		}
	}
	return nil
}

// folded is one object's fold: its row (nil when nothing foldable is left, or it has no events),
// what it writes, and the events set aside as poison.
type folded struct {
	id          string
	row         any
	ambiguities []domain.Ambiguity // of the facts the row was folded from
	history     *objectHistory     // the history rows to write (nil: none)
	// What its history is computed from once the relation inputs are read (the valuation
	// reads them): its arrivals, those already written, and whether it is written again.
	evs     []arrival
	written []int64
	rewrite bool
}

// valuer is m's valuation of an object's versions with the relation inputs in (nil when m
// values nothing).
func (e *engine) valuer(m *Model, in inputs) func(row any) {
	v := m.impl.valuer()
	if v == nil {
		return nil
	}
	return func(row any) { v(row, in, e.env) }
}

// foldHistories folds the objects ids of m from the history records (which may hold events of
// other models: those are skipped), leaving out the quarantined events, and works out what each
// object's history gains (rewrite: the objects, as table/id, whose history is written again).
func (e *engine) foldHistories(m *Model, h *histories, ids []string, rewrite idSet) ([]folded, []Poison) {
	hist, quarantined := h.events, h.quarantined
	byObject := map[string][]domain.Fact{}
	records := map[string]*eventstore.Record{}
	var poison []Poison
	for i := range hist {
		r := &hist[i]
		// Held events (they disagree with their endpoint) stay out until released, listed in
		// the quarantine or not yet.
		if modelFor(r.Type, r.ObjectType) != m || r.Held() || slices.Contains(quarantined, r.ID) {
			continue
		}
		records[r.ID] = r
		f, err := domain.DecodeStoredFact(r.Payload)
		if err != nil {
			poison = append(poison, Poison{EventID: r.ID, Position: r.Position, EventType: r.Type, ObjectID: r.ObjectID, Err: err})
			continue
		}
		byObject[r.ObjectID] = append(byObject[r.ObjectID], f)
	}
	out := make([]folded, 0, len(ids))
	for _, id := range ids {
		f, p := foldObject(m, id, byObject[id])
		for i := range p {
			if r := records[p[i].EventID]; r != nil {
				p[i].Position, p[i].EventType, p[i].ObjectID = r.Position, r.Type, r.ObjectID
			}
		}
		poison = append(poison, p...)
		f.evs = arrivals(byObject[id], func(eventID string) int64 { return records[eventID].Position }, p)
		f.written, f.rewrite = h.written[id], rewrite[m.Table+"/"+id]
		out = append(out, f)
	}
	return out, poison
}

// foldObject folds one object's facts with the model's reducer. The poison it returns names
// events by ID only; the caller knows where they sit in the log.
func foldObject(m *Model, id string, facts []domain.Fact) (folded, []Poison) {
	row, ok, poison := foldClean(facts, m.impl.fold)
	out := folded{id: id}
	if !ok {
		return out, poison
	}
	out.row = row
	if len(poison) > 0 {
		facts = slices.DeleteFunc(slices.Clone(facts), func(f domain.Fact) bool {
			return slices.ContainsFunc(poison, func(p Poison) bool { return p.EventID == f.EventID })
		})
	}
	out.ambiguities = domain.Ambiguities(facts)
	return out, poison
}

// ambiguityRows are an object's rows of ledger.ordering_ambiguities.
func ambiguityRows(m *Model, f folded) [][]any {
	out := make([][]any, 0, len(f.ambiguities))
	for _, a := range f.ambiguities {
		out = append(out, []any{m.Table, f.id, ts(a.Created), a.EventIDs})
	}
	return out
}

// textValue is a text column's value as written ("" for NULL).
func textValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case *string:
		return domain.Deref(x)
	}
	return ""
}

// readInputs reads, in tx, the rows the folded objects of m derive columns from, by relation.
func (e *engine) readInputs(ctx context.Context, tx pgx.Tx, m *Model, out []folded) (inputs, error) {
	if len(m.Reads) == 0 {
		return nil, nil
	}
	in := inputs{}
	b := &pgx.Batch{}
	for _, rel := range m.Reads {
		keys := idSet{}
		for _, f := range out {
			if f.row == nil {
				continue
			}
			if rel.Column != "" {
				keys.add(f.id)
			} else {
				keys.add(viaKeys(m, f.row, rel.Via)...)
			}
		}
		by, keyCol := "id", "id"
		if rel.Column != "" {
			by, keyCol = rel.Column, rel.Column
		}
		queueRows(b, e.table(rel.Model.Table), rel.Model, by, keys.sorted(), keyCol, in)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("could not read the rows %s reads: %w", m.Table, err)
	}
	return in, nil
}

// queueRows queues the read of model rm's rows (in table t) whose column by is one of keys, and
// files them in in[rm] under their keyCol value.
func queueRows(b *pgx.Batch, t string, rm *Model, by string, keys []string, keyCol string, in inputs) {
	if in[rm] == nil {
		in[rm] = map[string][]any{}
	}
	ki := columnIndex(rm, keyCol)
	b.Queue(fmt.Sprintf(`SELECT %s FROM %s WHERE %s = ANY($1)`, strings.Join(rm.ColumnNames(), ", "), t, by), keys).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				row, scan := rm.impl.newRow()
				if err := rows.Scan(scan...); err != nil {
					return err
				}
				k := textValue(rm.impl.values(row)[ki])
				in[rm][k] = append(in[rm][k], row)
			}
			return rows.Err()
		})
}

// viaKeys are the IDs row's Via column holds: its one ID, or the IDs of a jsonb array of them.
func viaKeys(m *Model, row any, via string) []string {
	switch v := m.impl.values(row)[columnIndex(m, via)].(type) {
	case []string:
		return v
	default:
		return []string{textValue(v)}
	}
}

// viaMatch is the condition that finds the rows of m whose Via column holds one of the IDs $1.
func viaMatch(m *Model, via string) string {
	if c, _ := m.Column(via); c.Type == "jsonb" {
		return via + ` ?| $1::text[]`
	}
	return via + ` = ANY($1)`
}

func columnIndex(m *Model, name string) int {
	i := slices.IndexFunc(m.Columns, func(c Column) bool { return c.Name == name })
	if i < 0 {
		panic("projections: " + m.Table + " has no column " + name)
	}
	return i
}

// write queues an object's row (or its deletion), its children and its ambiguities.
func (e *engine) write(w *writes, m *Model, f folded, in inputs) {
	w.queue("", fmt.Sprintf(`DELETE FROM %s WHERE model = $1 AND object_id = $2`, e.table(ambiguitiesTable.name)), m.Table, f.id)
	for _, row := range ambiguityRows(m, f) {
		w.queue("", insertSQL(e.table(ambiguitiesTable.name), columnNames(ambiguitiesTable.columns)), row...)
	}
	if f.row == nil {
		w.queue("", fmt.Sprintf(`DELETE FROM %s WHERE id = $1`, e.table(m.Table)), f.id)
		for _, c := range m.Children {
			w.queue("", fmt.Sprintf(`DELETE FROM %s WHERE %s = $1`, e.table(c.Table), c.Key), f.id)
		}
		return
	}
	m.impl.derive(f.row, in, e.env)
	values := m.impl.values(f.row)
	blame := m.impl.source(f.row).EventID
	w.queue(blame, upsertSQL(e.table(m.Table), m.ColumnNames()), values...)
	for i, c := range m.Children {
		w.queue("", fmt.Sprintf(`DELETE FROM %s WHERE %s = $1`, e.table(c.Table), c.Key), f.id)
		for _, row := range m.impl.childRows(f.row)[i] {
			w.queue(blame, insertSQL(e.table(c.Table), columnNames(c.Columns)), row...)
		}
	}
}

// upsertSQL writes one row keyed by id, replacing whatever was there.
func upsertSQL(t string, cols []string) string {
	marks := make([]string, len(cols))
	var sets []string
	for i, c := range cols {
		marks[i] = fmt.Sprintf("$%d", i+1)
		if c != "id" {
			sets = append(sets, c+" = EXCLUDED."+c)
		}
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (id) DO UPDATE SET %s",
		t, strings.Join(cols, ", "), strings.Join(marks, ", "), strings.Join(sets, ", "))
}

func insertSQL(t string, cols []string) string {
	marks := make([]string, len(cols))
	for i := range cols {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", t, strings.Join(cols, ", "), strings.Join(marks, ", "))
}

// writes is a pipeline of statements whose results are not read (and the queries queued with
// their own result handlers), each with the event whose snapshot its row holds ("" for other
// statements): when Postgres refuses a row, that event is the one at fault, whichever event's
// arrival made the row be written.
type writes struct {
	b     pgx.Batch
	blame []string
}

func (w *writes) queue(blame, sql string, args ...any) {
	w.b.Queue(sql, args...)
	w.blame = append(w.blame, blame)
}

func (w *writes) quarantine(projection string, poison []Poison) {
	for _, p := range poison {
		sql, args := quarantineSQL(projection, p)
		w.queue("", sql, args...)
	}
}

// send runs the pipeline in tx, stopping at the first error; a refused row's error names its
// event (refusedRow).
func (w *writes) send(ctx context.Context, tx pgx.Tx) error {
	if w.b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, &w.b)
	defer br.Close()
	for i, qq := range w.b.QueuedQueries {
		var err error
		if qq.Fn != nil {
			err = qq.Fn(br)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			if i < len(w.blame) && w.blame[i] != "" {
				return &refusedRow{eventID: w.blame[i], err: err}
			}
			return err
		}
	}
	return br.Close()
}

// refusedRow is the database refusing a read-model row, and the event whose snapshot it holds.
type refusedRow struct {
	eventID string
	err     error
}

func (e *refusedRow) Error() string { return e.err.Error() }
func (e *refusedRow) Unwrap() error { return e.err }

// foldClean folds one object's facts. When the fold fails, the facts that cannot be folded even on
// their own are set aside as poison (to be quarantined) and the rest are folded again, so one bad
// event does not take its object's row, or the projection, down with it. ok is false when
// nothing foldable is left. Replay, the live runner and as-of all fold through here.
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
