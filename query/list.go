package query

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/projections"
)

// List is a parsed list request over one read model: newest first, filtered, a page at a time
// (or every row, for CSV).
type List struct {
	Model *projections.Model
	// Filters are equality filters on the model's declared filter columns.
	Filters [][2]string
	// Scope is the mode and account listed (default: both modes, every account).
	Scope Scope
	// CreatedGTE and CreatedLT bound created (zero: unbounded).
	CreatedGTE, CreatedLT time.Time
	Limit                 int     // rows per page, 1–1000; default 100
	After                 *Cursor // the page after this row
	// AsOf, when set, answers with the objects as Stripe's timeline had them then (the events
	// created at or before it); KnownAt, when set, as the ledger knew them then (the events it
	// held). Both are read from the history tables (see At).
	AsOf    time.Time
	KnownAt *KnownAt
	// CSV is format=csv; FormatSet says the request chose a format (else an HTTP caller may
	// look at Accept).
	CSV, FormatSet bool
}

// Cursor is where a page ends: its last row's (created, id), newest first.
type Cursor struct {
	Created time.Time `json:"c"`
	ID      string    `json:"i"`
}

// Encode is the cursor as the next_cursor text a client passes back.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a next_cursor back.
func DecodeCursor(s string) (*Cursor, error) { return decodeCursor(s) }

func decodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c Cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return nil, badRequest("invalid_cursor", "cursor is not one this API returned (pass next_cursor unchanged)")
	}
	return &c, nil
}

// ParseTime reads an RFC 3339 time or a date (UTC midnight) given as parameter name.
func ParseTime(name, v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, badRequest("invalid_"+name, "%s must be an RFC 3339 time (2026-05-01T00:00:00Z) or a date (2026-05-01), not %q", name, v)
}

var listParams = []string{"limit", "cursor", "created_gte", "created_lt", "as_of", "known_at", "format", "livemode", "account"}

// KnownAt is a known_at parameter: a log position (position:N), or a time, which stands for the
// position the log had reached then (eventstore.Store.PositionAt).
type KnownAt struct {
	Position int64
	Time     time.Time // zero when a position was given
}

// ParseKnownAt reads known_at: position:N, an RFC 3339 time or a date.
func ParseKnownAt(v string) (*KnownAt, error) {
	if n, ok := strings.CutPrefix(v, "position:"); ok {
		p, err := strconv.ParseInt(n, 10, 64)
		if err != nil || p < 0 {
			return nil, badRequest("invalid_known_at", "known_at=position:N takes a log position (an integer from 0), not %q", n)
		}
		return &KnownAt{Position: p}, nil
	}
	t, err := ParseTime("known_at", v)
	if err != nil {
		return nil, badRequest("invalid_known_at", "known_at must be a log position (position:1234), an RFC 3339 time (2026-05-01T00:00:00Z) or a date (2026-05-01), not %q", v)
	}
	return &KnownAt{Time: t}, nil
}

// At is a parsed as_of and known_at: zero values are unset.
type At struct {
	AsOf    time.Time
	KnownAt *KnownAt
}

// IsZero says neither is set: the current rows answer.
func (a At) IsZero() bool { return a.AsOf.IsZero() && a.KnownAt == nil }

// ParseAt reads as_of and known_at from v.
func ParseAt(v url.Values) (At, error) {
	var a At
	var err error
	if val := v.Get("as_of"); val != "" {
		if a.AsOf, err = ParseTime("as_of", val); err != nil {
			return a, err
		}
	}
	if val := v.Get("known_at"); val != "" {
		if a.KnownAt, err = ParseKnownAt(val); err != nil {
			return a, err
		}
	}
	return a, nil
}

// cut resolves a's known_at time to a log position.
func (q *Queries) cut(ctx context.Context, a At) (projections.Cut, error) {
	c := projections.Cut{AsOf: a.AsOf}
	if a.KnownAt != nil {
		c.Known, c.KnownAt = true, a.KnownAt.Position
		if !a.KnownAt.Time.IsZero() {
			p, err := q.store.PositionAt(ctx, a.KnownAt.Time)
			if err != nil {
				return c, err
			}
			c.KnownAt = p
		}
	}
	return c, nil
}

// ParseList reads a list request's parameters (the API's query string, or `ledger query`'s
// flags).
func ParseList(m *projections.Model, v url.Values) (List, error) {
	l := List{Model: m, Limit: 100}
	if err := checkValues(v); err != nil {
		return l, err
	}
	for k := range v {
		if !slices.Contains(listParams, k) && !slices.Contains(m.Filters, k) {
			return l, badRequest("unknown_parameter", "unknown parameter %q; %s filters by %s, livemode, account, created_gte, created_lt, as_of, known_at", k, m.Table,
				strings.Join(m.Filters, ", "))
		}
	}
	var err error
	if l.Scope, err = parseScope(v, false); err != nil {
		return l, err
	}
	for _, f := range m.Filters {
		if val := v.Get(f); val != "" {
			if f == "currency" && !isCurrency(val) {
				return l, badRequest("invalid_currency", "currency is a lowercase ISO 4217 code such as usd")
			}
			l.Filters = append(l.Filters, [2]string{f, val})
		}
	}
	if val := v.Get("created_gte"); val != "" {
		if l.CreatedGTE, err = ParseTime("created_gte", val); err != nil {
			return l, err
		}
	}
	if val := v.Get("created_lt"); val != "" {
		if l.CreatedLT, err = ParseTime("created_lt", val); err != nil {
			return l, err
		}
	}
	if val := v.Get("limit"); val != "" {
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 1000 {
			return l, badRequest("invalid_limit", "limit must be an integer from 1 to 1000")
		}
		l.Limit = n
	}
	if val := v.Get("cursor"); val != "" {
		if l.After, err = decodeCursor(val); err != nil {
			return l, err
		}
	}
	at, err := ParseAt(v)
	if err != nil {
		return l, err
	}
	l.AsOf, l.KnownAt = at.AsOf, at.KnownAt
	l.CSV, l.FormatSet, err = parseFormat(v)
	return l, err
}

// Page is one page of a list.
type Page struct {
	Object     string            `json:"object"`
	Data       []json.RawMessage `json:"data"`
	HasMore    bool              `json:"has_more"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// where is the list's filter as SQL over alias t, and its arguments.
func (l List) where(withCursor bool) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds = l.Scope.conds("t", arg)
	for _, f := range l.Filters {
		conds = append(conds, "t."+f[0]+" = "+arg(f[1]))
	}
	if !l.CreatedGTE.IsZero() {
		conds = append(conds, "t.created >= "+arg(l.CreatedGTE))
	}
	if !l.CreatedLT.IsZero() {
		conds = append(conds, "t.created < "+arg(l.CreatedLT))
	}
	if withCursor && l.After != nil {
		conds = append(conds, fmt.Sprintf("(t.created, t.id) < (%s, %s)", arg(l.After.Created), arg(l.After.ID)))
	}
	if len(conds) == 0 {
		return "", args
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

// selectList is the model's columns as the list reads them: jsonb as its JSON text, numeric as
// its exact decimal text (a JSON string, as the as-of answers give it, never a float).
func selectList(m *projections.Model) string {
	cols := make([]string, len(m.Columns))
	for i, c := range m.Columns {
		cols[i] = "t." + c.Name
		if c.Type == "jsonb" || c.Type == "numeric" {
			cols[i] += "::text"
		}
	}
	return strings.Join(cols, ", ")
}

// Page answers one page, newest first.
func (q *Queries) Page(ctx context.Context, l List) (Page, error) {
	if !l.at().IsZero() {
		return q.pageAt(ctx, l)
	}
	cond, args := l.where(true)
	args = append(args, l.Limit+1)
	rows, err := q.pool.Query(ctx, fmt.Sprintf(`SELECT %s FROM ledger.%s t %s ORDER BY t.created DESC, t.id DESC LIMIT $%d`,
		selectList(l.Model), l.Model.Table, cond, len(args)), args...)
	if err != nil {
		return Page{}, fmt.Errorf("could not list %s: %w", l.Model.Table, err)
	}
	var objects [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return Page{}, fmt.Errorf("could not list %s: %w", l.Model.Table, err)
		}
		objects = append(objects, vals)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("could not list %s: %w", l.Model.Table, err)
	}
	return page(l, objects, true), nil
}

// page lays out rows (the model's column values, newest first) as a page of JSON objects.
func page(l List, rows [][]any, fromSQL bool) Page {
	p := Page{Object: "list", Data: []json.RawMessage{}}
	if len(rows) > l.Limit {
		rows = rows[:l.Limit]
		last := rows[len(rows)-1]
		p.HasMore = true
		p.NextCursor = Cursor{Created: createdOf(l.Model, last), ID: last[0].(string)}.Encode()
	}
	for _, r := range rows {
		p.Data = append(p.Data, objectJSON(l.Model, r, fromSQL))
	}
	return p
}

func createdOf(m *projections.Model, row []any) time.Time {
	i := slices.IndexFunc(m.Columns, func(c projections.Column) bool { return c.Name == "created" })
	switch t := row[i].(type) {
	case time.Time:
		return t.UTC()
	case *time.Time:
		if t != nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// objectJSON is one row as a JSON object in column order: times in UTC (RFC 3339), absent
// values null, jsonb as stored.
func objectJSON(m *projections.Model, row []any, fromSQL bool) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range m.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c.Name)
		b.Write(k)
		b.WriteByte(':')
		b.Write(valueJSON(c, row[i], fromSQL))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func valueJSON(c projections.Column, v any, fromSQL bool) []byte {
	switch x := v.(type) {
	case nil:
		return []byte("null")
	case time.Time:
		v = x.UTC()
	case *time.Time:
		if x == nil {
			return []byte("null")
		}
		v = x.UTC()
	case string:
		if fromSQL && c.Type == "jsonb" {
			return []byte(x) // selected as its JSON text
		}
	}
	out, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return out
}

func (l List) at() At { return At{AsOf: l.AsOf, KnownAt: l.KnownAt} }

// pageAt answers a page at the list's cut, filtered and ordered like the live list.
func (q *Queries) pageAt(ctx context.Context, l List) (Page, error) {
	var rows [][]any
	err := q.rowsAt(ctx, l, l.Limit+1, func(r []any) bool {
		rows = append(rows, r)
		return len(rows) <= l.Limit
	})
	if err != nil {
		return Page{}, err
	}
	return page(l, rows, false), nil
}

// rowsAt hands fn the list's rows at its cut, newest first, until fn returns false. They are
// read from the model's history (projections.ReadAt), want rows at a time (0: all at once). The
// filters on columns read from data.object are SQL conditions on the version at the cut; those
// on columns derived from other models are checked once the rows are derived at the cut, so
// their pages are read until enough rows pass.
func (q *Queries) rowsAt(ctx context.Context, l List, want int, fn func([]any) bool) error {
	cut, err := q.cut(ctx, l.at())
	if err != nil {
		return err
	}
	if cut.Known && cut.KnownAt <= 0 {
		return nil // the ledger knew nothing yet
	}
	sel := projections.Select{}
	arg := func(v any) string {
		sel.Args = append(sel.Args, v)
		return "$" + strconv.Itoa(len(sel.Args))
	}
	sel.Pre = l.Scope.conds("h", arg)
	if !l.CreatedGTE.IsZero() {
		sel.Pre = append(sel.Pre, "h.created >= "+arg(l.CreatedGTE))
	}
	if !l.CreatedLT.IsZero() {
		sel.Pre = append(sel.Pre, "h.created < "+arg(l.CreatedLT))
	}
	var derived [][2]string
	for _, f := range l.Filters {
		if l.Model.Derived(f[0]) {
			derived = append(derived, f)
		} else {
			sel.Post = append(sel.Post, "t."+f[0]+" = "+arg(f[1]))
		}
	}
	if len(derived) > 0 && want > 0 {
		want = max(want*4, 500) // read ahead: some rows will not pass
	}
	sel.Limit = want
	index := func(name string) int {
		return slices.IndexFunc(l.Model.Columns, func(c projections.Column) bool { return c.Name == name })
	}
	after := l.After
	for {
		page := sel
		page.Pre = slices.Clone(sel.Pre)
		page.Args = slices.Clone(sel.Args)
		if after != nil {
			n := len(page.Args)
			page.Args = append(page.Args, after.Created, after.ID)
			page.Pre = append(page.Pre, fmt.Sprintf("(h.created, h.id) < ($%d, $%d)", n+1, n+2))
		}
		rows, err := projections.ReadAt(ctx, q.pool, l.Model, cut, page, q.cfg.Identity)
		if err != nil {
			return err
		}
		for _, r := range rows {
			ok := true
			for _, f := range derived {
				if textOf(r[index(f[0])]) != f[1] {
					ok = false
				}
			}
			if ok && !fn(r) {
				return nil
			}
		}
		if want == 0 || len(rows) < want {
			return nil
		}
		last := rows[len(rows)-1]
		after = &Cursor{Created: createdOf(l.Model, last), ID: last[0].(string)}
	}
}

// textOf is a folded value as a filter compares it.
func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case *string:
		if x != nil {
			return *x
		}
	}
	return ""
}

// Object is one object and the events that produced it.
type Object struct {
	Object json.RawMessage `json:"object"`
	Events []HistoryEvent  `json:"events"`
}

// HistoryEvent is one event of an object's history.
type HistoryEvent struct {
	Position           int64           `json:"position"`
	EventID            string          `json:"event_id"`
	Type               string          `json:"type"`
	Created            time.Time       `json:"created"`
	Source             string          `json:"source"`
	ReceivedAt         time.Time       `json:"received_at"`
	PreviousAttributes json.RawMessage `json:"previous_attributes"`
}

// Get is one object (at the cut of at, when set) and the events of its history up to then.
func (q *Queries) Get(ctx context.Context, m *projections.Model, id string, at At) (Object, error) {
	if err := CheckID(id); err != nil {
		return Object{}, err
	}
	var obj json.RawMessage
	cut, err := q.cut(ctx, at)
	if err != nil {
		return Object{}, err
	}
	if at.IsZero() {
		rows, err := q.pool.Query(ctx, fmt.Sprintf(`SELECT %s FROM ledger.%s t WHERE t.id = $1`, selectList(m), m.Table), id)
		if err != nil {
			return Object{}, fmt.Errorf("could not read %s %s: %w", m.Table, id, err)
		}
		vals, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		if errors.Is(err, pgx.ErrNoRows) {
			return Object{}, fmt.Errorf("%w: no %s %q", ErrNotFound, singular(m), id)
		}
		if err != nil {
			return Object{}, fmt.Errorf("could not read %s %s: %w", m.Table, id, err)
		}
		obj = objectJSON(m, vals, true)
	} else {
		var rows [][]any
		if !cut.Known || cut.KnownAt > 0 {
			rows, err = projections.ReadAt(ctx, q.pool, m, cut, projections.Select{Pre: []string{"h.id = $1"}, Args: []any{id}}, q.cfg.Identity)
			if err != nil {
				return Object{}, err
			}
		}
		if len(rows) == 0 {
			return Object{}, fmt.Errorf("%w: no %s %q %s", ErrNotFound, singular(m), id, describeCut(at, cut))
		}
		obj = objectJSON(m, rows[0], false)
	}
	events, err := q.history(ctx, id, cut)
	if err != nil {
		return Object{}, err
	}
	return Object{Object: obj, Events: events}, nil
}

// describeCut says where a cut is, for a message.
func describeCut(at At, cut projections.Cut) string {
	var parts []string
	if !at.AsOf.IsZero() {
		parts = append(parts, "as of "+at.AsOf.Format(time.RFC3339))
	}
	if cut.Known {
		parts = append(parts, fmt.Sprintf("known at log position %d", cut.KnownAt))
	}
	return strings.Join(parts, ", ")
}

// history is every event of an object in log order (those of the cut, when set), with what
// each changed.
func (q *Queries) history(ctx context.Context, id string, cut projections.Cut) ([]HistoryEvent, error) {
	out := []HistoryEvent{}
	if cut.Known && cut.KnownAt <= 0 {
		return out, nil
	}
	err := q.store.Scan(ctx, eventsFilter(id, cut.AsOf, cut.KnownAt), func(r *eventsRecord) error {
		out = append(out, HistoryEvent{Position: r.Position, EventID: r.ID, Type: r.Type, Created: time.Unix(r.Created, 0).UTC(),
			Source: string(r.Source), ReceivedAt: r.ReceivedAt, PreviousAttributes: previousAttributes(r.Payload)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func singular(m *projections.Model) string { return strings.TrimSuffix(m.Table, "s") }

// Rows streams every row of the list (no paging) as text cells, the header first: what CSV
// exports are made of. Absent values are empty cells; money stays integer minor units beside its
// currency.
func (q *Queries) Rows(ctx context.Context, l List, fn func(cells []string) error) error {
	header := l.Model.ColumnNames()
	if !l.at().IsZero() {
		if err := fn(header); err != nil {
			return err
		}
		cells := make([]string, len(header))
		var ferr error
		err := q.rowsAt(ctx, l, 5000, func(r []any) bool {
			for i, v := range r {
				cells[i] = cellOf(v)
			}
			ferr = fn(cells)
			return ferr == nil
		})
		return cmp.Or(err, ferr)
	}
	cols := make([]string, len(header))
	for i, c := range header {
		cols[i] = "t." + c + "::text"
	}
	cond, args := l.where(true)
	rows, err := q.pool.Query(ctx, fmt.Sprintf(`SELECT %s FROM ledger.%s t %s ORDER BY t.created DESC, t.id DESC`,
		strings.Join(cols, ", "), l.Model.Table, cond), args...)
	if err != nil {
		return fmt.Errorf("could not list %s: %w", l.Model.Table, err)
	}
	defer rows.Close()
	if err := fn(header); err != nil {
		return err
	}
	vals := make([]*string, len(header))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	cells := make([]string, len(vals))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("could not list %s: %w", l.Model.Table, err)
		}
		for i, v := range vals {
			cells[i] = ""
			if v != nil {
				cells[i] = *v
			}
		}
		if err := fn(cells); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("could not list %s: %w", l.Model.Table, err)
	}
	return nil
}

// cellOf renders a folded value as Postgres' ::text would, near enough for a spreadsheet.
func cellOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case *string:
		if x == nil {
			return ""
		}
		return *x
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05+00")
	case *time.Time:
		if x == nil {
			return ""
		}
		return x.UTC().Format("2006-01-02 15:04:05+00")
	case *int64:
		if x == nil {
			return ""
		}
		return strconv.FormatInt(*x, 10)
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int64, int:
		return fmt.Sprint(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
