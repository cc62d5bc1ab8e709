package api

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// resource is a read model served as a list and by ID.
type resource struct {
	name    string   // URL segment and table
	columns []string // in the table's order: JSON keys and CSV header
	filters []string // equality filters (query parameter = column)
	asOf    bool     // ?as_of= folds the state at that time from the log
}

var resources = []resource{
	{name: "subscriptions", columns: []string{"id", "customer", "app_user_id", "status", "currency", "items", "trial_start", "trial_end",
		"current_period_start", "current_period_end", "cancel_at_period_end", "cancel_at", "canceled_at", "ended_at", "pause_behavior",
		"coupon_duration", "coupon_percent_off", "metadata", "mrr", "attention", "created", "event_id", "event_created"},
		filters: []string{"status", "customer", "app_user_id", "currency"}, asOf: true},
	{name: "charges", columns: []string{"id", "amount", "amount_captured", "amount_refunded", "refunded", "currency", "status",
		"paid", "failure_code", "failure_message", "payment_intent", "invoice", "customer", "dispute_id", "dispute_status", "created", "event_id", "event_created"},
		filters: []string{"status", "customer", "currency", "invoice"}, asOf: true},
	{name: "invoices", columns: []string{"id", "customer", "subscription", "status", "billing_reason", "currency", "amount_due",
		"amount_paid", "amount_remaining", "total", "attempt_count", "charge", "payment_intent", "period_start", "period_end", "created", "event_id", "event_created"},
		filters: []string{"status", "customer", "currency", "subscription"}},
	{name: "refunds", columns: []string{"id", "charge", "amount", "currency", "status", "reason", "created", "event_id", "event_created"},
		filters: []string{"status", "currency", "charge"}},
	{name: "disputes", columns: []string{"id", "charge", "amount", "currency", "status", "reason", "created", "event_id", "event_created"},
		filters: []string{"status", "currency", "charge"}},
	{name: "customers", columns: []string{"id", "email", "name", "currency", "metadata", "deleted", "created", "event_id", "event_created"},
		filters: []string{"email", "currency"}},
}

// badRequest is a 400 with a stable code.
type badRequest struct{ code, message string }

func (e *badRequest) Error() string { return e.message }

// listQuery is a list request's parsed parameters.
type listQuery struct {
	where  []string
	args   []any
	limit  int
	after  *cursor
	asOf   time.Time
	csv    bool
	cutoff struct{ gte, lt time.Time }
}

// cursor is where a page ends: the last row's (created, id), newest first.
type cursor struct {
	Created time.Time `json:"c"`
	ID      string    `json:"i"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return nil, &badRequest{"invalid_cursor", "cursor is not one this API returned (pass next_cursor unchanged)"}
	}
	return &c, nil
}

// parseTimeParam reads an RFC 3339 time or a date (UTC midnight).
func parseTimeParam(name, v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, &badRequest{"invalid_" + name, fmt.Sprintf("%s must be an RFC 3339 time (2026-05-01T00:00:00Z) or a date (2026-05-01), not %q", name, v)}
}

var knownListParams = map[string]bool{"limit": true, "cursor": true, "created_gte": true, "created_lt": true, "as_of": true, "format": true}

func parseList(res resource, r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{limit: 100}
	for k := range q {
		if !knownListParams[k] && !contains(res.filters, k) {
			return lq, &badRequest{"unknown_parameter", fmt.Sprintf("unknown parameter %q; %s filters by %s, created_gte, created_lt%s", k, res.name,
				strings.Join(res.filters, ", "), map[bool]string{true: ", as_of", false: ""}[res.asOf])}
		}
	}
	for _, f := range res.filters {
		if v := q.Get(f); v != "" {
			lq.args = append(lq.args, v)
			lq.where = append(lq.where, fmt.Sprintf("t.%s = $%d", f, len(lq.args)))
		}
	}
	if v := q.Get("currency"); v != "" && contains(res.filters, "currency") && (len(v) != 3 || strings.ToLower(v) != v) {
		return lq, &badRequest{"invalid_currency", "currency is a lowercase ISO 4217 code such as usd"}
	}
	for _, p := range []string{"created_gte", "created_lt"} {
		if v := q.Get(p); v != "" {
			t, err := parseTimeParam(p, v)
			if err != nil {
				return lq, err
			}
			op := map[string]string{"created_gte": ">=", "created_lt": "<"}[p]
			lq.args = append(lq.args, t)
			lq.where = append(lq.where, fmt.Sprintf("t.created %s $%d", op, len(lq.args)))
			if p == "created_gte" {
				lq.cutoff.gte = t
			} else {
				lq.cutoff.lt = t
			}
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return lq, &badRequest{"invalid_limit", "limit must be an integer from 1 to 1000"}
		}
		lq.limit = n
	}
	if v := q.Get("cursor"); v != "" {
		c, err := decodeCursor(v)
		if err != nil {
			return lq, err
		}
		lq.after = c
	}
	if v := q.Get("as_of"); v != "" {
		if !res.asOf {
			return lq, &badRequest{"unknown_parameter", "as_of is offered on subscriptions and charges"}
		}
		t, err := parseTimeParam("as_of", v)
		if err != nil {
			return lq, err
		}
		lq.asOf = t
	}
	switch f := q.Get("format"); f {
	case "", "json":
		lq.csv = f == "" && wantsCSV(r)
	case "csv":
		lq.csv = true
	default:
		return lq, &badRequest{"invalid_format", "format is json or csv"}
	}
	return lq, nil
}

func wantsCSV(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/csv")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// list serves GET /api/v1/{resource}: newest first, cursor-paginated, JSON or streamed CSV.
func (a *API) list(res resource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lq, err := parseList(res, r)
		if err != nil {
			a.fail(w, err)
			return
		}
		if !lq.asOf.IsZero() {
			a.listAsOf(w, r, res, lq)
			return
		}
		where := append([]string(nil), lq.where...)
		args := append([]any(nil), lq.args...)
		if lq.after != nil {
			args = append(args, lq.after.Created, lq.after.ID)
			where = append(where, fmt.Sprintf("(t.created, t.id) < ($%d, $%d)", len(args)-1, len(args)))
		}
		cond := ""
		if len(where) > 0 {
			cond = "WHERE " + strings.Join(where, " AND ")
		}
		if lq.csv {
			a.streamCSV(w, r, res, cond, args)
			return
		}
		args = append(args, lq.limit+1)
		rows, err := a.pool.Query(r.Context(), fmt.Sprintf(`SELECT row_to_json(t)::text, t.created, t.id FROM ledger.%s t %s
			ORDER BY t.created DESC, t.id DESC LIMIT $%d`, res.name, cond, len(args)), args...)
		if err != nil {
			a.unavailable(w, err)
			return
		}
		var data []json.RawMessage
		var last cursor
		for rows.Next() {
			var js string
			if err := rows.Scan(&js, &last.Created, &last.ID); err != nil {
				rows.Close()
				a.unavailable(w, err)
				return
			}
			data = append(data, json.RawMessage(js))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			a.unavailable(w, err)
			return
		}
		page := listPage{Object: "list", Data: []json.RawMessage{}}
		if len(data) > lq.limit {
			data = data[:lq.limit]
			var lastRow struct {
				Created time.Time `json:"created"`
				ID      string    `json:"id"`
			}
			_ = json.Unmarshal(data[len(data)-1], &lastRow)
			page.HasMore, page.NextCursor = true, cursor{lastRow.Created, lastRow.ID}.encode()
		}
		if data != nil {
			page.Data = data
		}
		writeJSON(w, http.StatusOK, page)
	}
}

// listPage is a page of a list.
type listPage struct {
	Object     string            `json:"object"`
	Data       []json.RawMessage `json:"data"`
	HasMore    bool              `json:"has_more"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// streamCSV writes every matching row (no pagination) as CSV, flushing as it goes: memory stays
// flat however many rows there are. Money is integer minor units with the currency beside it.
func (a *API) streamCSV(w http.ResponseWriter, r *http.Request, res resource, cond string, args []any) {
	cols := make([]string, len(res.columns))
	for i, c := range res.columns {
		cols[i] = "t." + c + "::text"
	}
	rows, err := a.pool.Query(r.Context(), fmt.Sprintf(`SELECT %s FROM ledger.%s t %s ORDER BY t.created DESC, t.id DESC`,
		strings.Join(cols, ", "), res.name, cond), args...)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	defer rows.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, res.name))
	cw := csv.NewWriter(w)
	_ = cw.Write(res.columns)
	vals := make([]*string, len(res.columns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	rec := make([]string, len(vals))
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			panic(http.ErrAbortHandler) // the status is sent: break the transfer, never a short "complete" file
		}
		for i, v := range vals {
			rec[i] = ""
			if v != nil {
				rec[i] = *v
			}
		}
		_ = cw.Write(rec)
		if n++; n%1000 == 0 {
			cw.Flush()
		}
	}
	if rows.Err() != nil {
		panic(http.ErrAbortHandler) // the query failed mid-stream: the client must see a broken transfer
	}
	cw.Flush()
	if cw.Error() != nil {
		panic(http.ErrAbortHandler)
	}
}

// get serves GET /api/v1/{resource}/{id}: the row and the events that produced it.
func (a *API) get(res resource) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var asOf time.Time
		if v := r.URL.Query().Get("as_of"); v != "" {
			if !res.asOf {
				a.fail(w, &badRequest{"unknown_parameter", "as_of is offered on subscriptions and charges"})
				return
			}
			t, err := parseTimeParam("as_of", v)
			if err != nil {
				a.fail(w, err)
				return
			}
			asOf = t
		}
		var object json.RawMessage
		if asOf.IsZero() {
			var js string
			err := a.pool.QueryRow(r.Context(), fmt.Sprintf(`SELECT row_to_json(t)::text FROM ledger.%s t WHERE t.id = $1`, res.name), id).Scan(&js)
			if errors.Is(err, pgx.ErrNoRows) {
				writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s %q", strings.TrimSuffix(res.name, "s"), id))
				return
			}
			if err != nil {
				a.unavailable(w, err)
				return
			}
			object = json.RawMessage(js)
		} else {
			rows, err := a.foldAsOf(r.Context(), res, asOf, id)
			if err != nil {
				a.unavailable(w, err)
				return
			}
			if len(rows) == 0 {
				writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %s %q as of %s", strings.TrimSuffix(res.name, "s"), id, asOf.Format(time.RFC3339)))
				return
			}
			object, _ = json.Marshal(rows[0])
		}
		events, err := a.jsonRows(r.Context(), `SELECT json_build_object('position', position, 'event_id', event_id, 'type', type,
			'created', created, 'source', source, 'received_at', received_at, 'previous_attributes', previous_attributes)::text
			FROM ledger.object_history WHERE object_id = $1 AND ($2::timestamptz IS NULL OR created <= $2) ORDER BY position`,
			id, nullTime(asOf))
		if err != nil {
			a.unavailable(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": object, "events": events})
	}
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fail answers a bad request precisely, anything else as the database's trouble.
func (a *API) fail(w http.ResponseWriter, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		writeError(w, http.StatusBadRequest, br.code, br.message)
		return
	}
	a.unavailable(w, err)
}
