package projections

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stripeledger/ledger/domain"
)

// A read model is declared once, in models.go: the Stripe object it holds, the events it folds,
// its reducer, the read models it reads and the key that links them, and its columns. The engine
// runs the declarations two ways — a batch at a time for the live runner (engine.go), the whole
// log for replay (rebuild.go) — and derives everything else from them: the tables' DDL and
// comments, the API's columns and OpenAPI schemas, `ledger query`'s columns, as-of answers.

// Column is one column of a read model.
type Column struct {
	Name string
	// Type is the SQL type: text, bigint, numeric (an exact decimal, a decimal string in Go and
	// in JSON), boolean, timestamptz or jsonb.
	Type string
	// Null says the column holds NULL when Stripe's value is null or absent.
	Null    bool
	Comment string
	// Stripe names the field of data.object the column comes from ("" for columns the ledger
	// derives): the nullability test holds the column to Stripe's spec.
	Stripe string
}

// Model is one read model: a table of Stripe objects of one kind, each folded from its events.
type Model struct {
	Table      string      // in schema ledger
	Kind       domain.Kind // the events it folds are those domain.Route sends to Kind...
	ObjectType string      // ...whose data.object.object is this
	Comment    string
	Columns    []Column // the primary key "id" first, then the object's fields, then provenance
	// Indexes are the table's indexes besides the primary key, each a column list such as
	// "created DESC, id DESC". Columns that relations link by are indexed without being listed.
	Indexes []string
	// Reads are the read models whose rows this one's rows are derived from (see Relation).
	Reads    []Relation
	Children []*Child
	// Filters are the columns the API and `ledger query` filter lists by (equality).
	Filters []string
	// Brief are the columns `ledger query --format table` shows.
	Brief []string
	impl  impl
}

// Relation links a read model to one it reads. Exactly one of Column and Via is set:
//   - Column: the rows of Model whose Column holds this object's ID (a charge reads the
//     disputes whose charge is the charge's ID);
//   - Via: the row of Model whose ID this object's Via column holds (a subscription reads the
//     customer whose ID is its customer), or the rows whose IDs it holds when the column is a
//     jsonb array of IDs (a subscription reads the coupons its discounts name).
//
// An object is folded again whenever a row it reads changes, and its reads are served from the
// tables as written so far in the same transaction, so live and replayed rows agree.
type Relation struct {
	Model  *Model
	Column string
	Via    string
	// Values says the model's valuation (spec.value) reads the related rows: a change of them
	// values every version of the reader's history again (a customer's discount changes its
	// subscriptions' MRR at every time it is in force), so the history is written again.
	Values bool
}

// Child is a table whose rows are folded with their parent's (a subscription's movements):
// replaced as a whole whenever the parent is folded.
type Child struct {
	Table   string
	Comment string
	// Key is the child's column holding the parent's ID.
	Key        string
	PrimaryKey []string
	Columns    []Column
	Indexes    []string
}

// scopeColumns and provenanceColumns end every model's columns: the mode and account the
// object lives in (which no figure may sum across by accident), and the event its row's state
// comes from.
var scopeColumns = []Column{
	{Name: "livemode", Type: "boolean", Comment: "True for a live-mode object, false for test mode (the event's livemode). Metrics never add the two."},
	{Name: "account", Type: "text", Null: true, Comment: "The Connect account the object belongs to (acct_...); NULL for the platform's own objects. Metrics never add accounts together unless asked to (account=all), and then say so."},
}

// scopeIndex leads with the scope every list and metric filters by.
const scopeIndex = "livemode, account, created DESC, id DESC"

var provenanceColumns = []Column{
	{Name: "event_id", Type: "text", Comment: "The log event this row's state comes from (the latest of the object's events by the ordering rule)."},
	{Name: "event_created", Type: "timestamptz", Comment: "That event's Stripe created time (one-second resolution)."},
}

// Column returns the named column.
func (m *Model) Column(name string) (Column, bool) {
	i := slices.IndexFunc(m.Columns, func(c Column) bool { return c.Name == name })
	if i < 0 {
		return Column{}, false
	}
	return m.Columns[i], true
}

// ColumnNames are the model's column names in table order.
func (m *Model) ColumnNames() []string { return columnNames(m.Columns) }

func columnNames(cols []Column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
}

// impl is what the engine needs of a model's row type, with the type erased: rows travel as
// pointers to the model's row struct.
type impl interface {
	fold(facts []domain.Fact) (any, error)
	derive(row any, in inputs, env env)
	// value fills the columns a model values from its fold and related rows (a subscription's
	// mrr, attention and movements): every history version carries them. Nil without.
	valuer() func(row any, in inputs, env env)
	// historyColumns are the columns a model's history table holds beyond its own (what a
	// version is valued from at a cut), with their values and scan targets.
	historyColumns() []Column
	historyValues(row any) []any
	historyScan(row any) []any
	values(row any) []any
	childRows(row any) [][][]any // per child, its rows' values
	newRow() (row any, scan []any)
	id(row any) string
	source(row any) *domain.Provenance
}

// env is what derivations need besides the rows: the identity setting and the MRR settings.
type env struct {
	identity domain.Identity
	mrr      domain.MRRSettings
}

// inputs are the rows an object's derivation reads, by relation: for a Column relation the
// related rows keyed by this object's ID, for a Via relation by the Via value.
type inputs map[*Model]map[string][]any

// related is the rows of model m that relate to key, as their row type.
func related[D any](in inputs, m *Model, key string) []D {
	rows := in[m][key]
	out := make([]D, len(rows))
	for i, r := range rows {
		out[i] = *r.(*D)
	}
	return out
}

// spec declares a model with row type R (see models.go).
type spec[R any] struct {
	table, objectType, comment string
	kind                       domain.Kind
	columns                    []column[R]
	indexes                    []string
	reads                      []Relation
	filters, brief             []string
	fold                       func(facts []domain.Fact) (R, error)
	// derive fills the columns that come from related rows (nil when there are none).
	derive func(r *R, in inputs, env env)
	// value fills the columns valued from the fold's own state and related rows, which every
	// history version stores (derive, at a cut, re-derives only what value leaves out); nil
	// when there are none. derive calls it for the current row.
	value func(r *R, in inputs, env env)
	// valuation, with value, is the history table's column of what value reads of the fold (a
	// subscription's valuation inputs), so a reader at a cut values a version with the related
	// rows at the cut.
	valuation *column[R]
	children  []child[R]
	// source is the row's provenance.
	source func(r *R) *domain.Provenance
}

// column is a declared column and how it reads and writes the row type.
type column[R any] struct {
	Column
	get  func(*R) any // the value to write
	scan func(*R) any // where to scan a stored value
}

// child declares a child table and the rows a parent row carries for it.
type child[R any] struct {
	Child
	rows func(*R) [][]any
}

// declare turns a spec into a Model. The first column must be the text primary key "id";
// the provenance columns are added at the end.
func declare[R any](s spec[R]) *Model {
	if len(s.columns) == 0 || s.columns[0].Name != "id" || s.columns[0].Type != "text" || s.columns[0].Null {
		panic("projections: a model's first column is its text primary key id: " + s.table)
	}
	// Every brief ends with the row's mode and account: a table of rows of several modes and
	// accounts must say which each is.
	m := &Model{Table: s.table, Kind: s.kind, ObjectType: s.objectType, Comment: s.comment, Indexes: s.indexes, Reads: s.reads,
		Filters: s.filters, Brief: append(slices.Clone(s.brief), "livemode", "account")}
	for _, c := range s.columns {
		m.Columns = append(m.Columns, c.Column)
	}
	m.Columns = append(m.Columns, scopeColumns...)
	m.Columns = append(m.Columns, provenanceColumns...)
	if !slices.Contains(m.Indexes, scopeIndex) {
		m.Indexes = append(slices.Clone(m.Indexes), scopeIndex)
	}
	for i := range s.children {
		m.Children = append(m.Children, &s.children[i].Child)
	}
	for _, name := range append(slices.Clone(s.filters), m.Brief...) {
		if _, ok := m.Column(name); !ok {
			panic("projections: " + s.table + " filters or shows an undeclared column " + name)
		}
	}
	m.impl = &typed[R]{spec: s}
	return m
}

// typed implements impl for row type R.
type typed[R any] struct{ spec spec[R] }

func (t *typed[R]) fold(facts []domain.Fact) (any, error) {
	r, err := t.spec.fold(facts)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (t *typed[R]) derive(row any, in inputs, env env) {
	if t.spec.derive != nil {
		t.spec.derive(row.(*R), in, env)
	}
}

func (t *typed[R]) valuer() func(row any, in inputs, env env) {
	if t.spec.value == nil {
		return nil
	}
	return func(row any, in inputs, env env) { t.spec.value(row.(*R), in, env) }
}

func (t *typed[R]) historyColumns() []Column {
	if t.spec.valuation == nil {
		return nil
	}
	return []Column{t.spec.valuation.Column}
}

func (t *typed[R]) historyValues(row any) []any {
	if t.spec.valuation == nil {
		return nil
	}
	return []any{t.spec.valuation.get(row.(*R))}
}

func (t *typed[R]) historyScan(row any) []any {
	if t.spec.valuation == nil {
		return nil
	}
	return []any{t.spec.valuation.scan(row.(*R))}
}

func (t *typed[R]) values(row any) []any {
	r := row.(*R)
	out := make([]any, 0, len(t.spec.columns)+4)
	for _, c := range t.spec.columns {
		out = append(out, c.get(r))
	}
	p := t.spec.source(r)
	return append(out, p.Livemode, p.Account, p.EventID, ts(p.EventCreated))
}

func (t *typed[R]) childRows(row any) [][][]any {
	r := row.(*R)
	out := make([][][]any, len(t.spec.children))
	for i, c := range t.spec.children {
		out[i] = c.rows(r)
	}
	return out
}

func (t *typed[R]) newRow() (any, []any) {
	r := new(R)
	scan := make([]any, 0, len(t.spec.columns)+4)
	for _, c := range t.spec.columns {
		scan = append(scan, c.scan(r))
	}
	p := t.spec.source(r)
	return r, append(scan, &p.Livemode, &p.Account, &p.EventID, unixScan{&p.EventCreated})
}

func (t *typed[R]) id(row any) string { return t.spec.columns[0].get(row.(*R)).(string) }

func (t *typed[R]) source(row any) *domain.Provenance { return t.spec.source(row.(*R)) }

// Column constructors: each binds a column to a field of the row type.

func text[R any](name, comment, stripe string, f func(*R) *string) column[R] {
	return column[R]{Column{name, "text", false, comment, stripe}, func(r *R) any { return *f(r) }, func(r *R) any { return f(r) }}
}

func nullText[R any](name, comment, stripe string, f func(*R) **string) column[R] {
	return column[R]{Column{name, "text", true, comment, stripe}, func(r *R) any { return *f(r) }, func(r *R) any { return f(r) }}
}

func integer[R any](name, comment, stripe string, f func(*R) *int64) column[R] {
	return column[R]{Column{name, "bigint", false, comment, stripe}, func(r *R) any { return *f(r) }, func(r *R) any { return f(r) }}
}

func nullInteger[R any](name, comment, stripe string, f func(*R) **int64) column[R] {
	return column[R]{Column{name, "bigint", true, comment, stripe}, func(r *R) any { return *f(r) }, func(r *R) any { return f(r) }}
}

func boolean[R any](name, comment, stripe string, f func(*R) *bool) column[R] {
	return column[R]{Column{name, "boolean", false, comment, stripe}, func(r *R) any { return *f(r) }, func(r *R) any { return f(r) }}
}

func nullBoolean[R any](name, comment, stripe string, f func(*R) **bool) column[R] {
	return column[R]{Column{name, "boolean", true, comment, stripe}, func(r *R) any { return *f(r) }, func(r *R) any { return f(r) }}
}

// timestamp is a timestamptz column over Unix seconds.
func timestamp[R any](name, comment, stripe string, f func(*R) *int64) column[R] {
	return column[R]{Column{name, "timestamptz", false, comment, stripe},
		func(r *R) any { return ts(*f(r)) }, func(r *R) any { return unixScan{f(r)} }}
}

func nullTimestamp[R any](name, comment, stripe string, f func(*R) **int64) column[R] {
	return column[R]{Column{name, "timestamptz", true, comment, stripe},
		func(r *R) any { return tsp(*f(r)) }, func(r *R) any { return nullUnixScan{f(r)} }}
}

// nullDecimal is a nullable numeric column over an exact decimal string (domain.Decimal): a
// rate such as exchange_rate must never pass through float64.
func nullDecimal[R any](name, comment, stripe string, f func(*R) **string) column[R] {
	return column[R]{Column{name, "numeric", true, comment, stripe},
		func(r *R) any {
			p := *f(r)
			if p == nil {
				return nil
			}
			var n pgtype.Numeric
			if err := n.Scan(*p); err != nil {
				return *p // Postgres refuses it with the value in its error
			}
			return n
		}, func(r *R) any { return decimalScan{f(r)} }}
}

// decimalScan scans a numeric into its exact decimal string, with the scale Postgres kept
// ("1.085120" stays so), nil for NULL.
type decimalScan struct{ p **string }

func (d decimalScan) ScanNumeric(v pgtype.Numeric) error {
	if !v.Valid {
		*d.p = nil
		return nil
	}
	if v.NaN || v.InfinityModifier != pgtype.Finite {
		return fmt.Errorf("numeric %v is not a decimal", v)
	}
	digits := new(big.Int).Abs(v.Int).String()
	if v.Exp >= 0 {
		digits += strings.Repeat("0", int(v.Exp))
	} else {
		places := int(-v.Exp)
		if len(digits) <= places {
			digits = strings.Repeat("0", places-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-places] + "." + digits[len(digits)-places:]
	}
	if v.Int.Sign() < 0 {
		digits = "-" + digits
	}
	*d.p = &digits
	return nil
}

// metadata is a jsonb column of Stripe metadata: NULL when the object carries none.
func metadata[R any](name, comment, stripe string, f func(*R) *map[string]string) column[R] {
	return column[R]{Column{name, "jsonb", true, comment, stripe},
		func(r *R) any {
			if m := *f(r); m != nil {
				return m
			}
			return nil
		}, func(r *R) any { return f(r) }}
}

// nullJSON is a jsonb column holding a pointer or slice as JSON: NULL when it is nil.
func nullJSON[R any, V any](name, comment, stripe string, f func(*R) *V) column[R] {
	return column[R]{Column{name, "jsonb", true, comment, stripe},
		func(r *R) any {
			if v := reflect.ValueOf(*f(r)); v.IsNil() {
				return nil
			}
			return *f(r)
		}, func(r *R) any { return f(r) }}
}

// jsonColumn is a NOT NULL jsonb column holding a Go value as JSON.
func jsonColumn[R any, V any](name, comment, stripe string, f func(*R) *V) column[R] {
	return column[R]{Column{name, "jsonb", false, comment, stripe},
		func(r *R) any { return *f(r) }, func(r *R) any { return f(r) }}
}

func ts(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func tsp(sec *int64) *time.Time {
	if sec == nil {
		return nil
	}
	t := ts(*sec)
	return &t
}

// unixScan scans a timestamptz into Unix seconds.
type unixScan struct{ p *int64 }

func (u unixScan) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		return fmt.Errorf("NULL in a NOT NULL timestamp")
	}
	*u.p = v.Time.Unix()
	return nil
}

// nullUnixScan scans a nullable timestamptz into Unix seconds, nil for NULL.
type nullUnixScan struct{ p **int64 }

func (u nullUnixScan) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*u.p = nil
		return nil
	}
	sec := v.Time.Unix()
	*u.p = &sec
	return nil
}

// DDL. Tables are created from the declarations, never by hand-written migrations: a change of
// a declaration changes the schema's fingerprint, and the runner rebuilds the read models by
// replaying the log before it folds another batch (see Runner).

// table is anything the engine creates: a model's table or a child's.
type table struct {
	name, comment string
	columns       []Column
	primaryKey    []string
	indexes       []string // column lists
	// labels name indexes whose column lists would make a name past Postgres's 63 bytes
	// (column list -> label): the index is <table>_<label>_idx.
	labels map[string]string
}

func (m *Model) tables() []table {
	indexes := slices.Clone(m.Indexes)
	for _, other := range Models {
		for _, r := range other.Reads {
			if r.Model == m && r.Column != "" && !slices.Contains(indexes, r.Column) {
				indexes = append(indexes, r.Column) // what a relation looks rows up by
			}
		}
	}
	for _, r := range m.Reads {
		ix := r.Via
		if c, _ := m.Column(r.Via); c.Type == "jsonb" {
			ix = ginIndex + r.Via // an array of IDs is searched by its elements
		}
		if r.Via != "" && !slices.Contains(indexes, ix) {
			indexes = append(indexes, ix) // what a change of the related row finds its dependents by
		}
	}
	out := []table{{name: m.Table, comment: m.Comment, columns: m.Columns, primaryKey: []string{"id"}, indexes: indexes}}
	for _, c := range m.Children {
		out = append(out, table{name: c.Table, comment: c.Comment, columns: c.Columns, primaryKey: c.PrimaryKey, indexes: c.Indexes})
	}
	return out
}

// Tables are the names of every read-model table the engine makes, in dependency order: each
// model's, its children's, and ordering_ambiguities — a function of the set of events, whatever
// order they arrived in. The history tables, which say when the ledger learned each event, are
// HistoryTables.
func Tables() []string {
	var out []string
	for _, m := range Models {
		for _, t := range m.tables() {
			out = append(out, t.name)
		}
	}
	return append(out, ambiguitiesTable.name)
}

// HistoryTables are the names of the history tables (history.go): a function of the log, in
// its order.
func HistoryTables() []string {
	var out []string
	for _, t := range historyTables() {
		out = append(out, t.name)
	}
	return out
}

// allTables is every table the engine owns, in dependency order.
func allTables() []table {
	var out []table
	for _, m := range Models {
		out = append(out, m.tables()...)
	}
	out = append(out, historyTables()...)
	return append(out, ambiguitiesTable, settingsTable)
}

// createSQL creates the table under the given name, without its indexes (built once it is full,
// which costs one sort instead of an insert into every index per row).
func (t table) createSQL(name string) string {
	var cols []string
	for _, c := range t.columns {
		def := c.Name + " " + c.Type
		if !c.Null {
			def += " NOT NULL"
		}
		cols = append(cols, def)
	}
	return fmt.Sprintf("CREATE TABLE ledger.%s (%s)", name, strings.Join(cols, ", "))
}

// indexSQL are the statements creating the table's primary key and indexes on the table named
// name, each under its final name plus suffix (renamed once the table takes its final name).
func (t table) indexSQL(name, suffix string) []string {
	out := []string{fmt.Sprintf("ALTER TABLE ledger.%s ADD CONSTRAINT %s_pkey%s PRIMARY KEY (%s)", name, t.name, suffix, strings.Join(t.primaryKey, ", "))}
	for _, ix := range t.indexes {
		using := ""
		if cols, ok := strings.CutPrefix(ix, ginIndex); ok {
			using, ix = "USING gin ", cols
		}
		out = append(out, fmt.Sprintf("CREATE INDEX %s%s ON ledger.%s %s(%s)", t.indexName(ix), suffix, name, using, ix))
	}
	return out
}

// indexNames are the final names of the table's primary key and indexes.
func (t table) indexNames() []string {
	out := []string{t.name + "_pkey"}
	for _, ix := range t.indexes {
		out = append(out, t.indexName(ix))
	}
	return out
}

// ginIndex starts an index's column list for a GIN index (a jsonb array searched by element).
const ginIndex = "gin:"

func (t table) indexName(cols string) string {
	cols = strings.TrimPrefix(cols, ginIndex)
	if l := t.labels[cols]; l != "" {
		return t.name + "_" + l + "_idx"
	}
	r := strings.NewReplacer(" DESC", "", " ASC", "", ", ", "_", ",", "_", " ", "_")
	return t.name + "_" + r.Replace(cols) + "_idx"
}

// commentSQL describes the table and its columns in the catalog, for BI tools and psql's \d+.
func (t table) commentSQL(name string) []string {
	out := []string{fmt.Sprintf("COMMENT ON TABLE ledger.%s IS %s", name, quote(t.comment))}
	for _, c := range t.columns {
		out = append(out, fmt.Sprintf("COMMENT ON COLUMN ledger.%s.%s IS %s", name, c.Name, quote(c.Comment)))
	}
	return out
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Fingerprint identifies the read models' shape: every table's columns, types, nullability,
// keys and indexes (not the comments, which the runner updates in place). Stored with the
// projection's checkpoint, it tells a runner whether the tables are the ones its declarations
// describe.
func Fingerprint() string {
	h := sha256.New()
	for _, t := range allTables() {
		fmt.Fprintln(h, t.createSQL(t.name))
		for _, ix := range t.indexSQL(t.name, "") {
			fmt.Fprintln(h, ix)
		}
	}
	return "v1:" + hex.EncodeToString(h.Sum(nil)[:12])
}

// ambiguitiesTable records, for every object, the same-second groups of its events whose order
// the ordering rule could not decide from previous_attributes (and fell back to event IDs for):
// `ledger projections status` counts them. The engine writes it with every model's rows.
var ambiguitiesTable = table{
	name:    "ordering_ambiguities",
	comment: "Same-second groups of an object's events whose order the previous_attributes chain could not decide: the ordering rule fell back to event IDs there. Rewritten with the object's row.",
	columns: []Column{
		{Name: "model", Type: "text", Comment: "The read model (table) of the object."},
		{Name: "object_id", Type: "text", Comment: "The Stripe object."},
		{Name: "created", Type: "timestamptz", Comment: "The second the undecided events share."},
		{Name: "event_ids", Type: "jsonb", Comment: "The events whose order was undecided (JSON array of IDs)."},
	},
	primaryKey: []string{"model", "object_id", "created", "event_ids"},
}

// settingsTable records the MRR settings the read models were computed under (one row): a
// runner started with other settings recomputes the movement log (Recompute) before it folds,
// and whatever folds outside the runner (a retry, a redaction's re-fold, an as-of answer) folds
// under the recorded settings, so that every row of the tables agrees with every other.
var settingsTable = table{
	name:       "mrr_settings",
	comment:    "The MRR settings the read models were computed under (one row, domain.MRRSettings' canonical form). A runner with other settings recomputes subscriptions.mrr and subscription_movements from subscription_mrr_inputs and rewrites it.",
	columns:    []Column{{Name: "settings", Type: "text", Comment: "e.g. discounts=recurring churn_at=cancellation past_due_days=0 paused=count."}},
	primaryKey: []string{"settings"},
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// storedSettings are the MRR settings the read models were computed under: the defaults for
// tables older than the record.
func storedSettings(ctx context.Context, q querier) (domain.MRRSettings, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('ledger.mrr_settings') IS NOT NULL`).Scan(&exists); err != nil {
		return domain.MRRSettings{}, fmt.Errorf("could not read the MRR settings of the read models: %w", err)
	}
	if !exists {
		return domain.DefaultMRRSettings(), nil
	}
	var s string
	err := q.QueryRow(ctx, `SELECT settings FROM ledger.mrr_settings LIMIT 1`).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.DefaultMRRSettings(), nil
	}
	if err != nil {
		return domain.MRRSettings{}, fmt.Errorf("could not read the MRR settings of the read models: %w", err)
	}
	return domain.ParseMRRSettingsString(s)
}
