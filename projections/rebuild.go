// Package projections folds the event log into the read models finance queries
// (ledger.subscriptions, ledger.charges, …). Each read model is declared once (models.go); one
// engine runs the declarations live, a batch at a time (Runner), and in full (Rebuild), with the
// reducers and the ordering rule in domain.
package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// Config tunes a rebuild. Zero values take the documented defaults.
type Config struct {
	Identity domain.Identity    // how app user IDs are found; default metadata key app_user_id
	MRR      domain.MRRSettings // the revenue metrics' rules; the zero value is Stripe's (the defaults)
	// PartitionEvents is about how many events of the log one partition holds (between 2/3 and
	// 1.5 times it): replay folds a partition at a time, so this bounds its memory whatever the
	// log's size. Default 100,000.
	PartitionEvents int
	// SpillDir is where the decoded log is spilled while it is read; it needs about as much
	// free space as the log's data.objects. Default the system's temporary directory.
	SpillDir string
	// BatchSize is the events between Progress calls; default 5,000.
	BatchSize int
	// Progress, if set, is called as the rebuild goes: while the log is read, then while it is
	// folded (see Progress).
	Progress func(Progress)
}

// Progress is how far a rebuild is.
type Progress struct {
	Phase       string // "read" (the log is read and spilled) or "fold" (partitions are folded)
	Done, Total int64  // events
}

func (c *Config) setDefaults() {
	if c.PartitionEvents <= 0 {
		c.PartitionEvents = 100_000
	}
	if c.SpillDir == "" {
		c.SpillDir = os.TempDir()
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 5000
	}
}

// Stats says what a rebuild did.
type Stats struct {
	Position   int64          // the log position the read models now reflect
	Events     int64          // events read and folded in bulk
	CaughtUp   int64          // events appended meanwhile, folded in before the swap
	Rows       map[string]int // rows written, by table
	Partitions int            // partitions the log was folded in
	// Quarantined is how many events could not be folded: they are in
	// ledger.projection_quarantine and left out of the read models.
	Quarantined int
	Took        time.Duration
}

// StateName is the row of ledger.projection_state the read models' position is kept under.
const StateName = "read_models"

// foldWorkers decode while the log is read and fold a partition's objects.
const foldWorkers = 2

// Rebuild replays the whole log into new tables beside the live ones and swaps them in, all in one
// transaction: queries keep answering from the old tables until the commit and then see the new
// ones — never an empty or half-built table. The new tables are created from the declarations,
// so a rebuild is also how a change of a read model's shape reaches the database. Interrupting it
// (ctx) rolls everything back; it is safe to run again at any time. Events appended while the log
// is read are folded into the new tables before the swap, under the projection's lock, so the
// swap lands at the head.
//
// Memory is bounded by a partition (Config.PartitionEvents), not by the log: the log is read
// once, decoded and spilled to files by object, and each read model is folded a partition at a
// time, after the models it reads, whose rows it reads back from their new tables.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, cfg Config) (Stats, error) {
	start := time.Now()
	cfg.setDefaults()
	if err := cfg.Identity.Validate(); err != nil {
		return Stats{}, err
	}
	if err := cfg.MRR.Validate(); err != nil {
		return Stats{}, err
	}
	store := eventstore.New(pool)
	head, err := store.Head(ctx)
	if err != nil {
		return Stats{}, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("could not begin rebuild: %w", err)
	}
	defer func() { tx.Rollback(context.WithoutCancel(ctx)) }() //nolint:errcheck // no-op after commit

	// As many partitions as make each about PartitionEvents: rounded, not ceiled, so that logs of
	// any size fold partitions of about the same size, and memory stays the same.
	partitions := int(max(1, (head.Position+int64(cfg.PartitionEvents)/2)/int64(cfg.PartitionEvents)))
	sp, err := newSpill(cfg.SpillDir, partitions)
	if err != nil {
		return Stats{}, err
	}
	defer sp.remove()
	// The shadow tables are created while the log is read: that is Postgres's work on the
	// transaction's connection, and the read is on another.
	prepared := make(chan error, 1)
	go func() { prepared <- createShadows(ctx, tx) }()
	var held []eventstore.Record
	err = spillLog(ctx, store, head.Position, sp, cfg, &held)
	if perr := <-prepared; err == nil {
		err = perr
	}
	if err != nil {
		return Stats{}, err
	}

	r := &replay{tx: tx, sp: sp, cfg: cfg, total: head.Position, rows: map[string]int{}, held: held,
		e: &engine{projection: StateName, env: env{identity: cfg.Identity, mrr: cfg.MRR.WithDefaults()}, suffix: "_rebuild"}}
	if err := r.foldAll(ctx, partitions); err != nil {
		return Stats{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger.mrr_settings_rebuild (settings) VALUES ($1)`, cfg.MRR.String()); err != nil {
		return Stats{}, fmt.Errorf("could not record the MRR settings: %w", err)
	}
	if err := r.index(ctx, append(historyTables(), ambiguitiesTable, settingsTable)); err != nil {
		return Stats{}, err
	}
	reached, err := r.swap(ctx, head.Position)
	if err != nil {
		return Stats{}, err
	}
	return Stats{Position: reached, Events: head.Position, CaughtUp: reached - head.Position, Rows: r.rows,
		Partitions: partitions, Quarantined: len(r.poison), Took: time.Since(start)}, nil
}

// spillLog reads the log up to position upTo in one sequential pass and spills every event a
// read model folds to its partition. It decodes nothing: the read goes at the speed Postgres
// sends, and the events are decoded partition by partition while they are folded. Held events
// (eventstore.Record.Held) are not spilled but added to held, without their payloads, to be
// listed in the quarantine again; released ones are folded like any other.
func spillLog(ctx context.Context, store *eventstore.Store, upTo int64, sp *spill, cfg Config, held *[]eventstore.Record) error {
	var read int64
	var buf []byte
	progress := func() {
		if cfg.Progress != nil {
			cfg.Progress(Progress{Phase: "read", Done: min(read, upTo), Total: upTo})
		}
	}
	err := store.Scan(ctx, eventstore.Filter{UpToPosition: upTo, Payload: true, Unordered: true, Borrow: true}, func(r *eventstore.Record) error {
		// The read is in no particular order: progress is the count of events read.
		if read++; read%int64(cfg.BatchSize) == 0 {
			progress()
		}
		if r.Held() {
			h := *r
			h.Payload, h.Signature = nil, ""
			*held = append(*held, h)
			return nil
		}
		m := modelFor(r.Type, r.ObjectType)
		if m == nil || r.ObjectID == "" {
			return nil // other types stay in the log and are ignored by the read models
		}
		var err error
		buf, err = sp.write(slices.Index(Models, m), r.Position, r.ID, r.Type, r.ObjectID, r.Payload, buf)
		return err
	})
	if err == nil {
		err = sp.flush()
	}
	if err != nil {
		return err
	}
	progress()
	return nil
}

// replay is one rebuild's fold of the spilled log into the shadow tables.
type replay struct {
	tx     pgx.Tx
	sp     *spill
	cfg    Config
	e      *engine
	total  int64
	folded int64
	rows   map[string]int
	poison []Poison
	held   []eventstore.Record // held events up to the position read, left out of the fold
}

// maxRefusedRounds bounds the attempts at writing a partition after Postgres refused rows; each
// round quarantines at least one more event.
const maxRefusedRounds = 20

// partitionFold is one partition of one model, decoded and folded but not yet written.
type partitionFold struct {
	mi, p     int
	m         *Model
	events    []spilled
	byObject  map[string][]domain.Fact
	where     map[string]*spilled // event ID -> where it sits, for quarantining it
	ids       []string
	undecoded []Poison // events whose payload could not be decoded
	out       []folded
	poison    []Poison
	err       error
}

// foldAll folds every partition of every model into the shadow tables, in dependency order, in
// two stages that overlap: the partitions are read back, decoded and folded (the reducers: CPU,
// on foldWorkers workers) one ahead of the partition being written (its related rows read from the
// shadow tables, derived, COPYed: Postgres's work, on the transaction's connection). Each model
// is indexed once its last partition is written, before the models that read it are written.
func (r *replay) foldAll(ctx context.Context, partitions int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Unbuffered: one partition is folded while the one before it is written, no more, so two
	// partitions at most are in memory.
	folds := make(chan *partitionFold)
	go func() {
		defer close(folds)
		for mi, m := range Models {
			for p := range partitions {
				pf := r.foldPartition(mi, m, p)
				select {
				case folds <- pf:
				case <-ctx.Done():
					return
				}
				if pf.err != nil {
					return
				}
			}
		}
	}()
	for pf := range folds {
		if pf.err != nil {
			return pf.err
		}
		if err := r.writePartition(ctx, pf); err != nil {
			return err
		}
		if pf.p == partitions-1 {
			// Indexed as soon as they are full: the models after this one read its rows by key.
			if err := r.index(ctx, pf.m.tables()); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// foldPartition reads partition p of model m back from the spill, decodes it and folds its
// objects, on foldWorkers workers.
func (r *replay) foldPartition(mi int, m *Model, p int) *partitionFold {
	pf := &partitionFold{mi: mi, p: p, m: m}
	if pf.events, pf.err = r.sp.read(mi, p); pf.err != nil {
		return pf
	}
	facts := make([]domain.Fact, len(pf.events))
	errs := make([]error, len(pf.events))
	var wg sync.WaitGroup
	for w := range foldWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(pf.events); i += foldWorkers {
				facts[i], errs[i] = domain.DecodeStoredFact(pf.events[i].payload)
			}
		}()
	}
	wg.Wait()
	pf.byObject = map[string][]domain.Fact{}
	pf.where = make(map[string]*spilled, len(pf.events))
	for i := range pf.events {
		ev := &pf.events[i]
		if errs[i] != nil {
			pf.undecoded = append(pf.undecoded, Poison{EventID: ev.id, Position: ev.position, EventType: ev.typ, ObjectID: ev.object, Err: errs[i]})
			continue
		}
		pf.byObject[ev.object] = append(pf.byObject[ev.object], facts[i])
		pf.where[ev.id] = ev
	}
	pf.ids = slices.Sorted(maps.Keys(pf.byObject))
	pf.fold(nil)
	return pf
}

// fold folds the partition's objects leaving out the excluded events.
func (pf *partitionFold) fold(excluded map[string]bool) {
	position := func(eventID string) int64 { return pf.where[eventID].position }
	pf.out, pf.poison = foldObjects(pf.m, pf.ids, pf.byObject, excluded, position)
	for i := range pf.poison {
		if ev := pf.where[pf.poison[i].EventID]; ev != nil {
			pf.poison[i].Position, pf.poison[i].EventType, pf.poison[i].ObjectID = ev.position, ev.typ, ev.object
		}
	}
	pf.poison = append(pf.poison, pf.undecoded...)
}

// writePartition derives the partition's related columns and writes its rows into the shadow
// tables.
func (r *replay) writePartition(ctx context.Context, pf *partitionFold) error {
	if len(pf.events) == 0 {
		return nil
	}
	m := pf.m
	// A row Postgres refuses (a timestamp out of its range, a NUL byte, …) is the fault of the
	// event whose snapshot it holds: that event is quarantined and its object folded without it,
	// as the live runner does.
	excluded := map[string]bool{}
	for round := 0; ; round++ {
		in, err := r.e.readInputs(ctx, r.tx, m, pf.out)
		if err != nil {
			return err
		}
		r.e.histories(m, pf.out, in)
		batch := r.rowsOf(m, pf.out, in)
		err = inSavepoint(ctx, r.tx, func(sp pgx.Tx) error { return batch.copy(ctx, sp) })
		if err == nil {
			r.poison = append(r.poison, pf.poison...)
			for _, t := range batch.tables {
				r.rows[t.table] += len(t.rows)
			}
			break
		}
		if !poisonous(r.tx, err) || round == maxRefusedRounds {
			return fmt.Errorf("could not fill ledger.%s: %w", m.Table, err)
		}
		blamed, err := batch.refused(ctx, r.tx)
		if err != nil {
			return err
		}
		progress := false
		for id, why := range blamed {
			if !excluded[id] {
				excluded[id] = true
				progress = true
				p := Poison{EventID: id, Err: fmt.Errorf("could not write the read models: %w", why)}
				if ev := pf.where[id]; ev != nil {
					p.Position, p.EventType, p.ObjectID = ev.position, ev.typ, ev.object
				}
				r.poison = append(r.poison, p)
			}
		}
		if !progress {
			return fmt.Errorf("could not fill ledger.%s: %w", m.Table, err)
		}
		pf.fold(excluded)
	}
	r.folded += int64(len(pf.events))
	if r.cfg.Progress != nil {
		r.cfg.Progress(Progress{Phase: "fold", Done: min(r.folded, r.total), Total: r.total})
	}
	return nil
}

// foldObjects folds the objects on foldWorkers workers, leaving out the excluded events.
// Each object's whole history is computed with its row (position says where an event sits in
// the log).
func foldObjects(m *Model, ids []string, byObject map[string][]domain.Fact, excluded map[string]bool, position func(string) int64) ([]folded, []Poison) {
	out := make([]folded, len(ids))
	poisons := make([][]Poison, foldWorkers)
	var wg sync.WaitGroup
	for w := range foldWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += foldWorkers {
				facts := byObject[ids[i]]
				if len(excluded) > 0 {
					facts = slices.DeleteFunc(slices.Clone(facts), func(f domain.Fact) bool { return excluded[f.EventID] })
				}
				var p []Poison
				out[i], p = foldObject(m, ids[i], facts)
				if !historyOff.Load() {
					out[i].evs = arrivals(facts, position, p)
				}
				poisons[w] = append(poisons[w], p...)
			}
		}()
	}
	wg.Wait()
	var poison []Poison
	for _, p := range poisons {
		poison = append(poison, p...)
	}
	return out, poison
}

// histories computes the whole history of each folded object on foldWorkers workers, once the
// relation inputs its valuation reads are read (folded.evs: nil when history is off).
func (e *engine) histories(m *Model, out []folded, in inputs) {
	value := e.valuer(m, in)
	var wg sync.WaitGroup
	for w := range foldWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(out); i += foldWorkers {
				if out[i].evs == nil {
					continue
				}
				h := historyOf(m, out[i].evs, 0, out[i].row, value)
				out[i].history = &h
			}
		}()
	}
	wg.Wait()
}

// tableRows is rows for one table, each with the event to blame if Postgres refuses it.
type tableRows struct {
	table   string // the table's name
	name    string // its shadow's
	columns []string
	rows    [][]any
	blame   []string
}

// partitionRows is a partition's rows for every table the model writes.
type partitionRows struct{ tables []*tableRows }

// rowsOf derives the folded objects' related columns and lays out their rows.
func (r *replay) rowsOf(m *Model, out []folded, in inputs) partitionRows {
	pr := partitionRows{}
	for _, t := range slices.Concat(m.tables(), m.historyTables(), []table{ambiguitiesTable}) {
		pr.tables = append(pr.tables, &tableRows{table: t.name, name: t.name + "_rebuild", columns: columnNames(t.columns)})
	}
	amb := pr.tables[len(pr.tables)-1]
	hist := pr.tables[1+len(m.Children) : len(pr.tables)-1] // the model's history, then its children's
	for _, f := range out {
		if f.history == nil {
			continue
		}
		// A version is blamed on the event whose snapshot it holds, its child rows on the
		// version's latest event.
		blame := ""
		for _, row := range f.history.rows {
			blame = versionEvent(m, row)
			hist[0].rows, hist[0].blame = append(hist[0].rows, row), append(hist[0].blame, blame)
		}
		for i, rows := range f.history.children {
			for _, row := range rows {
				hist[1+i].rows, hist[1+i].blame = append(hist[1+i].rows, row), append(hist[1+i].blame, blame)
			}
		}
	}
	for _, f := range out {
		if f.row == nil {
			continue
		}
		m.impl.derive(f.row, in, r.e.env)
		blame := m.impl.source(f.row).EventID
		for _, row := range ambiguityRows(m, f) {
			amb.rows = append(amb.rows, row)
			amb.blame = append(amb.blame, blame)
		}
		pr.tables[0].rows = append(pr.tables[0].rows, m.impl.values(f.row))
		pr.tables[0].blame = append(pr.tables[0].blame, blame)
		for i, rows := range m.impl.childRows(f.row) {
			t := pr.tables[1+i]
			for _, row := range rows {
				t.rows = append(t.rows, row)
				t.blame = append(t.blame, childBlame(m.Children[i], row, blame))
			}
		}
	}
	return pr
}

// childBlame is the event a child row is blamed on: its own event_id column when it has one (a
// movement's cause), else its parent's row's event.
func childBlame(c *Child, row []any, parent string) string {
	if i := slices.IndexFunc(c.Columns, func(col Column) bool { return col.Name == "event_id" }); i >= 0 {
		if id, ok := row[i].(string); ok {
			return id
		}
	}
	return parent
}

func (pr partitionRows) copy(ctx context.Context, tx pgx.Tx) error {
	for _, t := range pr.tables {
		if len(t.rows) == 0 {
			continue
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger", t.name}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
			return err
		}
	}
	return nil
}

// refused finds, by halving each table's COPY in savepoints, the rows Postgres refuses, and
// blames each on its event.
func (pr partitionRows) refused(ctx context.Context, tx pgx.Tx) (map[string]error, error) {
	blamed := map[string]error{}
	for _, t := range pr.tables {
		var halve func(lo, hi int) error
		halve = func(lo, hi int) error {
			err := inSavepoint(ctx, tx, func(sp pgx.Tx) error {
				if _, err := sp.CopyFrom(ctx, pgx.Identifier{"ledger", t.name}, t.columns, pgx.CopyFromRows(t.rows[lo:hi])); err != nil {
					return err
				}
				return errLooked // only looking: nothing is kept
			})
			switch {
			case errors.Is(err, errLooked):
				return nil
			case !poisonous(tx, err):
				return fmt.Errorf("could not check the rows of ledger.%s: %w", t.name, err)
			case hi-lo == 1:
				blamed[t.blame[lo]] = err
				return nil
			}
			mid := (lo + hi) / 2
			if err := halve(lo, mid); err != nil {
				return err
			}
			return halve(mid, hi)
		}
		if len(t.rows) > 0 {
			if err := halve(0, len(t.rows)); err != nil {
				return nil, err
			}
		}
	}
	return blamed, nil
}

// errLooked rolls back a savepoint whose COPY went through: refused only looks.
var errLooked = errors.New("rows accepted (rolled back)")

// index builds the tables' primary keys and indexes on their shadows, in one round trip.
func (r *replay) index(ctx context.Context, tables []table) error {
	var ddl []string
	for _, t := range tables {
		ddl = append(ddl, t.indexSQL(t.name+"_rebuild", "_rebuild")...)
	}
	if _, err := r.tx.Exec(ctx, strings.Join(ddl, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("could not index the rebuilt tables: %w", err)
	}
	return nil
}

// createShadows creates an empty ledger.X_rebuild for every table the engine owns, from the
// declarations. The DDL goes as one simple-protocol statement list: one round trip, and nothing
// prepared for statements that run once.
func createShadows(ctx context.Context, tx pgx.Tx) error {
	var ddl []string
	for _, t := range allTables() {
		ddl = append(ddl, t.createSQL(t.name+"_rebuild"))
	}
	if _, err := tx.Exec(ctx, strings.Join(ddl, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("could not create the rebuild's tables: %w", err)
	}
	return nil
}

// swap renames the shadow tables into place in the rebuild's transaction, folds in what was
// appended meanwhile, records the position and commits. The live tables are locked only for the
// renames; the projection's transaction lock is taken first so a live runner's batch and the
// swap never wait on each other's tables (which would deadlock).
func (r *replay) swap(ctx context.Context, position int64) (int64, error) {
	tx := r.tx
	if err := lockProjection(ctx, tx, StateName); err != nil {
		return 0, err
	}
	var ddl, renames []string
	for _, t := range allTables() {
		ddl = append(ddl,
			fmt.Sprintf(`ALTER TABLE IF EXISTS ledger.%s RENAME TO %s_old`, t.name, t.name),
			fmt.Sprintf(`ALTER TABLE ledger.%s_rebuild RENAME TO %s`, t.name, t.name),
			fmt.Sprintf(`DROP TABLE IF EXISTS ledger.%s_old`, t.name))
		for _, ix := range t.indexNames() {
			renames = append(renames, fmt.Sprintf(`ALTER INDEX ledger.%s_rebuild RENAME TO %s`, ix, ix))
		}
		renames = append(renames, t.commentSQL(t.name)...)
	}
	// The old tables go first, then the new ones' indexes take the names theirs had.
	ddl = append(ddl, renames...)
	if _, err := tx.Exec(ctx, strings.Join(ddl, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return 0, fmt.Errorf("could not swap the rebuilt tables in: %w", err)
	}
	// The new movement log has no rollup triggers yet: sum it once and put them on, before the
	// catch-up below folds more movements into it.
	if err := attachRollup(ctx, tx); err != nil {
		return 0, err
	}
	// A replay folds every event up to position again, quarantined ones included: those that
	// folded this time are resolved, those that did not are (still) quarantined. Held events
	// were not folded, and stay listed as held until an operator releases them.
	if _, err := tx.Exec(ctx, `UPDATE ledger.projection_quarantine SET resolved_at = now(), last_attempt_at = now()
		WHERE projection = $1 AND resolved_at IS NULL AND position <= $2 AND hold_reason IS NULL`, StateName, position); err != nil {
		return 0, fmt.Errorf("could not update the quarantine: %w", err)
	}
	for _, p := range r.poison {
		if err := quarantine(ctx, tx, StateName, p); err != nil {
			return 0, err
		}
	}
	// An event held when the log was read may have been released since (a retry that committed
	// while the replay ran): under the projection's lock now, it is folded into the new tables
	// rather than listed as held again.
	stillHeld, released, err := sinceReleased(ctx, tx, r.held)
	if err != nil {
		return 0, err
	}
	if err := hold(ctx, tx, StateName, stillHeld); err != nil {
		return 0, err
	}
	if len(released) > 0 {
		e := &engine{projection: StateName, env: r.e.env}
		if err := inSavepoint(ctx, tx, func(sp pgx.Tx) error { return e.foldChanges(ctx, sp, changesOf(released)) }); err != nil {
			return 0, fmt.Errorf("could not fold the events released during the rebuild: %w", err)
		}
	}
	reached, err := catchUp(ctx, tx, position, r.e.env)
	if err != nil {
		return 0, err
	}
	if err := eventstore.SetCheckpoint(ctx, tx, StateName, reached); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE ledger.projection_state SET rebuilt_at = now(), schema = $2 WHERE name = $1`,
		StateName, Fingerprint()); err != nil {
		return 0, fmt.Errorf("could not record the rebuild: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("could not commit the rebuild: %w", err)
	}
	return reached, nil
}

// sinceReleased splits the events that were held when the log was read into those still held
// and those an operator has released since.
func sinceReleased(ctx context.Context, tx pgx.Tx, held []eventstore.Record) (still, released []eventstore.Record, err error) {
	if len(held) == 0 {
		return nil, nil, nil
	}
	ids := make([]string, len(held))
	for i, r := range held {
		ids[i] = r.ID
	}
	rows, err := tx.Query(ctx, `SELECT event_id FROM ledger.event_releases WHERE event_id = ANY($1)`, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("could not read the releases: %w", err)
	}
	now, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("could not read the releases: %w", err)
	}
	for _, r := range held {
		if slices.Contains(now, r.ID) {
			r.Released = true
			released = append(released, r)
		} else {
			still = append(still, r)
		}
	}
	return still, released, nil
}

// catchUp folds the events appended since the log was read (after position) into the new
// tables, now under the live names, the way the live runner folds a batch: the swap then lands
// at the head, not where the read began. It runs under the projection's lock, so no runner batch
// interleaves; events appended after it are the live runner's. If Postgres refuses the batch,
// the events are left to the live runner, which finds and quarantines the culprit.
func catchUp(ctx context.Context, tx pgx.Tx, position int64, env env) (int64, error) {
	recs, err := eventstore.On(tx).List(ctx, eventstore.Filter{AfterPosition: position})
	if err != nil {
		return 0, fmt.Errorf("could not read the events appended during the rebuild: %w", err)
	}
	if len(recs) == 0 {
		return position, nil
	}
	if err := hold(ctx, tx, StateName, recs); err != nil {
		return 0, err
	}
	// A redaction committed while the log was read: the tables hold its events' objects as they
	// were before it.
	changes, err := withRedacted(ctx, tx, recs)
	if err != nil {
		return 0, fmt.Errorf("could not read the events redacted during the rebuild: %w", err)
	}
	e := &engine{projection: StateName, env: env}
	err = inSavepoint(ctx, tx, func(sp pgx.Tx) error { return e.foldChanges(ctx, sp, changes) })
	switch {
	case err == nil:
		return recs[len(recs)-1].Position, nil
	case poisonous(tx, err):
		return position, nil
	default:
		return 0, fmt.Errorf("could not fold the events appended during the rebuild: %w", err)
	}
}
