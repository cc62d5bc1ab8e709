// Package projections folds the event log into the read models finance queries
// (ledger.subscriptions, ledger.charges, …), using the reducers and the ordering rule in domain.
package projections

import (
	"context"
	"errors"
	"fmt"
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
	Identity  domain.Identity // how app user IDs are found; default metadata key app_user_id
	BatchSize int             // events between Progress calls; default 5,000
	// Progress, if set, is called every BatchSize events with the number of events read so far and the
	// position the rebuild goes up to.
	Progress func(done, total int64)
}

// Stats says what a rebuild did.
type Stats struct {
	Position int64          // the log position the read models now reflect
	Events   int64          // events read and folded in bulk
	CaughtUp int64          // events appended meanwhile, folded in before the swap
	Rows     map[string]int // rows written, by table
	// Quarantined is how many events could not be folded: they are in
	// ledger.projection_quarantine and left out of the read models.
	Quarantined int
	Took        time.Duration
}

// StateName is the row of ledger.projection_state the read models' position is kept under.
const StateName = "read_models"

// Rebuild replays the whole log into new tables beside the live ones and swaps them in, all in one
// transaction: queries keep answering from the old tables until the commit and then see the new
// ones — never an empty or half-built table. Interrupting it (ctx) rolls everything back; it is
// safe to run again at any time. Events appended while the log is read are folded into the new
// tables before the swap, under the projection's lock, so the swap lands at the head.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, cfg Config) (Stats, error) {
	start := time.Now()
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 5000
	}
	if err := cfg.Identity.Validate(); err != nil {
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
	// The shadow tables are created while the log is read: that is Postgres's work on a
	// connection of its own, and the read is mostly ours.
	var shadows []shadowTable
	prepared := make(chan error, 1)
	go func() {
		var err error
		shadows, err = createShadows(ctx, tx)
		prepared <- err
	}()
	set, err := readFacts(ctx, store, head.Position, cfg)
	if perr := <-prepared; err == nil {
		err = perr
	}
	if err != nil {
		return Stats{}, err
	}
	// A row Postgres refuses (a timestamp out of its range, a NUL byte, …) is the fault of the
	// event whose snapshot it holds: that event is quarantined and its object folded without it,
	// as the live runner does, and the swap is tried again in a new transaction.
	excluded := map[string]bool{}
	var refusedPoison []Poison
	for attempt := 0; ; attempt++ {
		out, err := set.without(excluded).fold(cfg.Identity)
		if err != nil {
			return Stats{}, err
		}
		out.poison = append(out.poison, set.undecoded...)
		out.poison = append(out.poison, refusedPoison...)
		reached, err := swapIn(ctx, tx, shadows, out, head.Position, cfg.Identity)
		var refused *refusedRowsError
		if errors.As(err, &refused) && attempt < maxRefusedRounds {
			_ = tx.Rollback(ctx)
			bad, err := findRefused(ctx, pool, refused)
			if err != nil {
				return Stats{}, err
			}
			progress := false
			for _, p := range bad {
				if !excluded[p.EventID] {
					excluded[p.EventID] = true
					refusedPoison = append(refusedPoison, p)
					progress = true
				}
			}
			if !progress {
				return Stats{}, refused // leaving those events out did not help: not theirs
			}
			if tx, err = pool.Begin(ctx); err != nil {
				return Stats{}, fmt.Errorf("could not begin rebuild: %w", err)
			}
			if shadows, err = createShadows(ctx, tx); err != nil {
				return Stats{}, err
			}
			continue
		}
		if err != nil {
			return Stats{}, err
		}
		st := Stats{Position: reached, Events: head.Position, CaughtUp: reached - head.Position,
			Rows: map[string]int{}, Quarantined: len(out.poison), Took: time.Since(start)}
		for _, t := range out.tables {
			st.Rows[t.name] = len(t.rows)
		}
		return st, nil
	}
}

// maxRefusedRounds bounds the swaps retried after Postgres refused rows; each round quarantines at
// least one more event.
const maxRefusedRounds = 20

// refusedRowsError is Postgres refusing the rows of one read model's COPY.
type refusedRowsError struct {
	table table
	err   error
}

func (e *refusedRowsError) Error() string {
	return fmt.Sprintf("could not fill ledger.%s: %v", e.table.name, e.err)
}

func (e *refusedRowsError) Unwrap() error { return e.err }

// findRefused finds, by halving the COPY in savepoints of a scratch transaction, the rows
// Postgres refuses, and blames each on the event that produced it.
func findRefused(ctx context.Context, pool *pgxpool.Pool, refused *refusedRowsError) ([]Poison, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("could not begin rebuild: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // scratch work only
	t := refused.table
	scratch := t.name + "_refused"
	if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TEMP TABLE %s (LIKE ledger.%s INCLUDING ALL) ON COMMIT DROP`, scratch, t.name)); err != nil {
		return nil, fmt.Errorf("could not check the rows of ledger.%s: %w", t.name, err)
	}
	eventCol := slices.Index(t.columns, "event_id")
	if eventCol < 0 {
		return nil, refused
	}
	var bad []Poison
	var halve func(rows [][]any) error
	halve = func(rows [][]any) error {
		err := inSavepoint(ctx, tx, func(sp pgx.Tx) error {
			_, err := sp.CopyFrom(ctx, pgx.Identifier{scratch}, t.columns, pgx.CopyFromRows(rows))
			return err
		})
		switch {
		case err == nil:
			return nil
		case !poisonous(tx, err):
			return fmt.Errorf("could not check the rows of ledger.%s: %w", t.name, err)
		case len(rows) == 1:
			id, _ := rows[0][eventCol].(string)
			bad = append(bad, Poison{EventID: id, Err: fmt.Errorf("could not write the read models: %w", err)})
			return nil
		}
		if err := halve(rows[:len(rows)/2]); err != nil {
			return err
		}
		return halve(rows[len(rows)/2:])
	}
	if err := halve(t.rows); err != nil {
		return nil, err
	}
	if len(bad) == 0 {
		// Refused together, accepted apart (a uniqueness the rows break between them): not an
		// event's fault that one row can show.
		return nil, refused
	}
	return bad, nil
}

// readFacts streams the log up to position upTo and decodes it on two workers while Postgres is
// still sending: the fold needs the *set* of each object's facts, so the order in which they are
// grouped does not matter.
func readFacts(ctx context.Context, store *eventstore.Store, upTo int64, cfg Config) (*factSet, error) {
	type raw struct {
		pos           int64
		typ, objectID string
		payload       []byte
	}
	type decoded struct {
		kind     domain.Kind
		objectID string
		fact     domain.Fact
		poison   *Poison // the payload could not be decoded
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	raws := make(chan raw, 512)
	facts := make(chan decoded, 512)
	var workers sync.WaitGroup
	for range 2 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for r := range raws {
				kind := domain.Route(r.typ)
				if kind == "" || r.objectID == "" {
					continue // unknown types stay in the log and are ignored here
				}
				f, err := domain.DecodeStoredFact(r.payload)
				d := decoded{kind: kind, objectID: r.objectID, fact: f}
				if err != nil {
					d.poison = &Poison{Position: r.pos, Err: err}
				}
				select {
				case facts <- d:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	set := newFactSet()
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for d := range facts {
			if d.poison != nil {
				set.undecoded = append(set.undecoded, *d.poison)
				continue
			}
			set.add(d.kind, d.objectID, d.fact)
		}
	}()
	var read int64
	err := store.Scan(ctx, eventstore.Filter{UpToPosition: upTo, Payload: true, Unordered: true}, func(r *eventstore.Record) error {
		select {
		case raws <- raw{r.Position, r.Type, r.ObjectID, r.Payload}:
		case <-ctx.Done():
			return ctx.Err()
		}
		// The read is in no particular order: progress is the count of events read.
		if read++; cfg.Progress != nil && read%int64(cfg.BatchSize) == 0 {
			cfg.Progress(min(read, upTo), upTo)
		}
		return nil
	})
	close(raws)
	workers.Wait()
	close(facts)
	<-collected
	if err != nil {
		return nil, err
	}
	if cfg.Progress != nil {
		cfg.Progress(upTo, upTo)
	}
	return set, nil
}

// factSet is the log grouped by read model and object, and the events that could not even be
// decoded.
type factSet struct {
	byKind    map[domain.Kind]map[string][]domain.Fact
	undecoded []Poison
}

func newFactSet() *factSet {
	return &factSet{byKind: map[domain.Kind]map[string][]domain.Fact{}}
}

func (s *factSet) add(kind domain.Kind, objectID string, f domain.Fact) {
	if s.byKind[kind] == nil {
		s.byKind[kind] = map[string][]domain.Fact{}
	}
	s.byKind[kind][objectID] = append(s.byKind[kind][objectID], f)
}

// without is the set less the excluded events (the set itself when there are none).
func (s *factSet) without(excluded map[string]bool) *factSet {
	if len(excluded) == 0 {
		return s
	}
	out := &factSet{byKind: map[domain.Kind]map[string][]domain.Fact{}, undecoded: s.undecoded}
	for kind, objects := range s.byKind {
		out.byKind[kind] = make(map[string][]domain.Fact, len(objects))
		for id, facts := range objects {
			if slices.ContainsFunc(facts, func(f domain.Fact) bool { return excluded[f.EventID] }) {
				facts = slices.DeleteFunc(slices.Clone(facts), func(f domain.Fact) bool { return excluded[f.EventID] })
				if len(facts) == 0 {
					continue
				}
			}
			out.byKind[kind][id] = facts
		}
	}
	return out
}

// table is one read model's new contents.
type table struct {
	spec
	rows [][]any
}

// folded is the read models' new contents and the events that could not be folded.
type folded struct {
	tables []table
	poison []Poison
}

func (s *factSet) fold(id domain.Identity) (folded, error) {
	var out folded
	customers := table{spec: customersTable}
	customerMeta := map[string]map[string]string{}
	for _, facts := range s.byKind[domain.KindCustomers] {
		c, ok, poison := foldClean(facts, domain.FoldCustomer)
		out.poison = append(out.poison, poison...)
		if !ok {
			continue
		}
		customerMeta[c.ID] = c.Metadata
		customers.rows = append(customers.rows, customerRow(c))
	}

	sessions := table{spec: sessionsTable}
	sessionsOf := map[string][]domain.CheckoutSessionRow{}
	for _, facts := range s.byKind[domain.KindCheckoutSessions] {
		cs, ok, poison := foldClean(facts, domain.FoldCheckoutSession)
		out.poison = append(out.poison, poison...)
		if !ok {
			continue
		}
		if cs.Subscription != "" {
			sessionsOf[cs.Subscription] = append(sessionsOf[cs.Subscription], cs)
		}
		user := id.AppUserID(domain.IdentityInput{Customer: cs.Customer, CustomerMeta: customerMeta[cs.Customer], Session: &cs})
		sessions.rows = append(sessions.rows, sessionRow(cs, user))
	}

	// The remaining tables depend only on the above: fold them concurrently.
	var subs, moves, invoices, charges, refunds, disputes table
	var wg sync.WaitGroup
	poisons := make([][]Poison, 3)
	run := func(i int, fn func() []Poison) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			poisons[i] = fn()
		}()
	}
	run(0, func() []Poison {
		subs, moves = table{spec: subscriptionsTable}, table{spec: movementsTable}
		var all []Poison
		for _, facts := range s.byKind[domain.KindSubscriptions] {
			f, ok, poison := foldClean(facts, foldSubscription)
			all = append(all, poison...)
			if !ok {
				continue
			}
			user := id.AppUserID(domain.IdentityInput{Customer: f.row.Customer, SubscriptionMeta: f.row.Metadata,
				CustomerMeta: customerMeta[f.row.Customer], Session: sessionForSubscription(sessionsOf[f.row.ID])})
			subs.rows = append(subs.rows, subscriptionRow(f.row, user))
			moves.rows = append(moves.rows, movementRows(f.moves)...)
		}
		return all
	})
	run(1, func() []Poison {
		invoices = table{spec: invoicesTable}
		var all []Poison
		for _, facts := range s.byKind[domain.KindInvoices] {
			r, ok, poison := foldClean(facts, domain.FoldInvoice)
			all = append(all, poison...)
			if ok {
				invoices.rows = append(invoices.rows, invoiceRow(r))
			}
		}
		refunds = table{spec: refundsTable}
		for _, facts := range s.byKind[domain.KindRefunds] {
			r, ok, poison := foldClean(facts, domain.FoldRefund)
			all = append(all, poison...)
			if ok {
				refunds.rows = append(refunds.rows, refundRow(r))
			}
		}
		return all
	})
	run(2, func() []Poison {
		// A charge's row carries its latest dispute's status, so disputes are folded first and a
		// poisoned dispute event is kept out of its charge too, as the live runner does.
		disputes = table{spec: disputesTable}
		var all []Poison
		byCharge := map[string][]domain.Fact{}
		for _, facts := range s.byKind[domain.KindDisputes] {
			r, ok, poison := foldClean(facts, domain.FoldDispute)
			all = append(all, poison...)
			if !ok {
				continue
			}
			disputes.rows = append(disputes.rows, disputeRow(r))
			byCharge[r.Charge] = append(byCharge[r.Charge], without(facts, poison)...)
		}
		charges = table{spec: chargesTable}
		for chargeID, facts := range s.byKind[domain.KindCharges] {
			r, ok, poison := foldClean(facts, func(fs []domain.Fact) (domain.ChargeRow, error) {
				return domain.FoldCharge(fs, byCharge[chargeID])
			})
			all = append(all, poison...)
			if ok {
				charges.rows = append(charges.rows, chargeRow(r))
			}
		}
		return all
	})
	wg.Wait()
	for _, p := range poisons {
		out.poison = append(out.poison, p...)
	}
	out.tables = []table{customers, sessions, subs, moves, invoices, charges, refunds, disputes}
	return out, nil
}

// without is facts less the poisoned ones.
func without(facts []domain.Fact, poison []Poison) []domain.Fact {
	if len(poison) == 0 {
		return facts
	}
	bad := map[string]bool{}
	for _, p := range poison {
		bad[p.EventID] = true
	}
	var keep []domain.Fact
	for _, f := range facts {
		if !bad[f.EventID] {
			keep = append(keep, f)
		}
	}
	return keep
}

// rebuiltTables is every read model a rebuild replaces, in the order fold returns them.
var rebuiltTables = []spec{customersTable, sessionsTable, subscriptionsTable, movementsTable,
	invoicesTable, chargesTable, refundsTable, disputesTable}

// shadowTable is an empty table shaped like a live read model, and the indexes it gets once full.
type shadowTable struct {
	live, name string
	indexes    []indexStatement
}

// createShadows creates an empty ledger.X_rebuild beside each live read model X. It has the live
// table's columns, defaults, constraints and column comments, not yet its indexes: building an
// index from the loaded rows (one sort) costs a fraction of inserting every row into it. The DDL
// goes as one simple-protocol statement list: one round trip, and nothing prepared for statements
// that run once.
func createShadows(ctx context.Context, tx pgx.Tx) ([]shadowTable, error) {
	var ddl []string
	var out []shadowTable
	for _, t := range rebuiltTables {
		sh := shadowTable{live: t.name, name: t.name + "_rebuild"}
		ddl = append(ddl, fmt.Sprintf(`CREATE TABLE ledger.%s (LIKE ledger.%s INCLUDING ALL EXCLUDING INDEXES)`, sh.name, t.name))
		out = append(out, sh)
	}
	if _, err := tx.Exec(ctx, strings.Join(ddl, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return nil, fmt.Errorf("could not create the rebuild's tables: %w", err)
	}
	for i := range out {
		idx, err := indexStatements(ctx, tx, out[i].live, out[i].name)
		if err != nil {
			return nil, err
		}
		out[i].indexes = idx
	}
	return out, nil
}

// swapIn fills the shadow tables, indexes them and renames them into place, in the rebuild's
// transaction. The live tables are locked only for the renames, after the COPYs; the projection's
// transaction lock is taken first so a live runner's batch and the swap never wait on each
// other's tables (which would deadlock).
func swapIn(ctx context.Context, tx pgx.Tx, shadows []shadowTable, out folded, position int64, identity domain.Identity) (int64, error) {
	var indexes, swaps, renames []string
	for i, t := range out.tables {
		sh := shadows[i]
		if sh.live != t.name {
			return 0, fmt.Errorf("internal error: rebuilt %s into the shadow of %s", t.name, sh.live)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger", sh.name}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
			if poisonous(tx, err) {
				return 0, &refusedRowsError{table: t, err: err}
			}
			return 0, fmt.Errorf("could not fill ledger.%s: %w", sh.name, err)
		}
		for _, ix := range sh.indexes {
			indexes = append(indexes, ix.create)
			renames = append(renames, ix.rename)
		}
		swaps = append(swaps,
			fmt.Sprintf(`ALTER TABLE ledger.%s RENAME TO %s_old`, t.name, t.name),
			fmt.Sprintf(`ALTER TABLE ledger.%s RENAME TO %s`, sh.name, t.name),
			// LIKE … INCLUDING ALL copies the column comments, not the table's: carry it over.
			fmt.Sprintf(`DO $$ BEGIN EXECUTE format('COMMENT ON TABLE ledger.%%I IS %%L', '%s',
				obj_description('ledger.%s_old'::regclass, 'pg_class')); END $$`, t.name, t.name),
			fmt.Sprintf(`DROP TABLE ledger.%s_old`, t.name))
	}
	if _, err := tx.Exec(ctx, strings.Join(indexes, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return 0, fmt.Errorf("could not index the rebuilt tables: %w", err)
	}
	if err := lockProjection(ctx, tx, StateName); err != nil {
		return 0, err
	}
	// The old tables go first, then the new ones' indexes take the names theirs had.
	swaps = append(swaps, renames...)
	if _, err := tx.Exec(ctx, strings.Join(swaps, ";\n"), pgx.QueryExecModeSimpleProtocol); err != nil {
		return 0, fmt.Errorf("could not swap the rebuilt tables in: %w", err)
	}
	// A replay folds every event up to position again, quarantined ones included: those that
	// folded this time are resolved, those that did not are (still) quarantined.
	if _, err := tx.Exec(ctx, `UPDATE ledger.projection_quarantine SET resolved_at = now(), last_attempt_at = now()
		WHERE projection = $1 AND resolved_at IS NULL AND position <= $2`, StateName, position); err != nil {
		return 0, fmt.Errorf("could not update the quarantine: %w", err)
	}
	for _, p := range out.poison {
		if err := quarantine(ctx, tx, StateName, p); err != nil {
			return 0, err
		}
	}
	reached, err := catchUp(ctx, tx, position, identity)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger.projection_state (name, position, rebuilt_at, updated_at) VALUES ($1, $2, now(), now())
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, rebuilt_at = EXCLUDED.rebuilt_at, updated_at = EXCLUDED.updated_at`,
		StateName, reached); err != nil {
		return 0, fmt.Errorf("could not record the rebuilt position: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("could not commit the rebuild: %w", err)
	}
	return reached, nil
}

// catchUp folds the events appended since the log was read (after position) into the new
// tables, now under the live names, the way the live runner folds a batch: the swap then lands
// at the head, not where the read began. It runs under the projection's lock, so no runner batch
// interleaves; events appended after it are the live runner's. If Postgres refuses the batch,
// the events are left to the live runner, which finds and quarantines the culprit.
func catchUp(ctx context.Context, tx pgx.Tx, position int64, identity domain.Identity) (int64, error) {
	rows, err := tx.Query(ctx, `SELECT position, type, object_id FROM ledger.events WHERE position > $1 ORDER BY position`, position)
	if err != nil {
		return 0, fmt.Errorf("could not read the events appended during the rebuild: %w", err)
	}
	var changes []change
	last := position
	var c change
	_, err = pgx.ForEachRow(rows, []any{&last, &c.eventType, &c.objectID}, func() error {
		changes = append(changes, c)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("could not read the events appended during the rebuild: %w", err)
	}
	if len(changes) == 0 {
		return position, nil
	}
	a := applier{projection: StateName, identity: identity}
	err = inSavepoint(ctx, tx, func(sp pgx.Tx) error { return a.fold(ctx, sp, changes) })
	switch {
	case err == nil:
		return last, nil
	case poisonous(tx, err):
		return position, nil
	default:
		return 0, fmt.Errorf("could not fold the events appended during the rebuild: %w", err)
	}
}

// indexStatement creates one of a live table's indexes (or the primary key or unique constraint
// it backs) on its shadow table under a temporary name, and renames it to the live name once the
// live table is dropped.
type indexStatement struct{ create, rename string }

// indexStatements reads the live table's indexes from the catalog, so that a rebuilt table has
// exactly the indexes the migrations gave the live one, whatever they are.
func indexStatements(ctx context.Context, tx pgx.Tx, live, shadow string) ([]indexStatement, error) {
	rows, err := tx.Query(ctx, `SELECT i.relname, pg_get_indexdef(x.indexrelid), coalesce(pg_get_constraintdef(c.oid), '')
		FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u')
		WHERE x.indrelid = $1::regclass
		ORDER BY i.relname`, "ledger."+live)
	if err != nil {
		return nil, fmt.Errorf("could not read the indexes of ledger.%s: %w", live, err)
	}
	var out []indexStatement
	var name, def, constraint string
	_, err = pgx.ForEachRow(rows, []any{&name, &def, &constraint}, func() error {
		tmp := name + "_rebuild"
		var create string
		if constraint != "" {
			create = fmt.Sprintf(`ALTER TABLE ledger.%s ADD CONSTRAINT %s %s`, shadow, pgx.Identifier{tmp}.Sanitize(), constraint)
		} else {
			// "CREATE [UNIQUE] INDEX name ON ledger.t USING btree (cols) [WHERE …]": keep what
			// follows USING, put the temporary name and the shadow table before it.
			using := strings.Index(def, " USING ")
			if using < 0 {
				return fmt.Errorf("unexpected definition of index %s: %s", name, def)
			}
			unique := ""
			if strings.HasPrefix(def, "CREATE UNIQUE ") {
				unique = "UNIQUE "
			}
			create = fmt.Sprintf(`CREATE %sINDEX %s ON ledger.%s%s`, unique, pgx.Identifier{tmp}.Sanitize(), shadow, def[using:])
		}
		// Renaming an index that backs a constraint renames the constraint too.
		rename := fmt.Sprintf(`ALTER INDEX ledger.%s RENAME TO %s`, pgx.Identifier{tmp}.Sanitize(), pgx.Identifier{name}.Sanitize())
		out = append(out, indexStatement{create: create, rename: rename})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("could not read the indexes of ledger.%s: %w", live, err)
	}
	return out, nil
}
