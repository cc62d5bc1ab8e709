package api

import (
	"bytes"
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/query"
)

// Payout reconciliation (role read) and the month-end close (closing: role operate; reading:
// read): thin layers over package query, which `ledger query payouts` and `ledger close` call
// too.

func (a *API) closeRoutes() {
	a.handle("GET /api/v1/payouts/reconciliation", auth.Read, a.payoutReconciliation)
	a.handle("GET /api/v1/payouts/reconciliation/{id}", auth.Read, a.payoutDetail)
	a.handle("GET /api/v1/payouts/unreconciled", auth.Read, a.unreconciled)
	a.handle("GET /api/v1/closes", auth.Read, a.listCloses)
	a.handle("POST /api/v1/closes", auth.Operate, a.closePeriod)
	a.handle("GET /api/v1/closes/{period}", auth.Read, a.getClose)
	a.handle("GET /api/v1/closes/{period}/report", auth.Read, a.closeReport)
}

// payoutReconciliation serves GET /api/v1/payouts/reconciliation: every payout with its parts and
// match, newest arrival first (JSON, a page of limit; CSV, every row).
func (a *API) payoutReconciliation(w http.ResponseWriter, r *http.Request) {
	p, err := query.ParsePayouts(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	asCSV := wantsCSV(r, p.CSV, p.FormatSet)
	rows, more, err := a.q.ReconcilePayouts(r.Context(), p, asCSV)
	if err != nil {
		a.fail(w, err)
		return
	}
	if asCSV {
		out := [][]string{query.PayoutColumns}
		for _, row := range rows {
			out = append(out, row.Cells())
		}
		writeCSV(w, "payout-reconciliation.csv", out)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "includes": p.Scope.Describe(), "data": rows, "has_more": more})
}

// payoutDetail serves GET /api/v1/payouts/reconciliation/{id}: one payout's reconciliation and
// every balance transaction it listed.
func (a *API) payoutDetail(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		a.fail(w, &query.BadRequest{Code: "unknown_parameter", Message: "one payout's reconciliation takes no parameters"})
		return
	}
	d, err := a.q.Payout(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// unreconciled serves GET /api/v1/payouts/unreconciled?kind=&livemode=&account=&format=.
func (a *API) unreconciled(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	scope, err := query.ParseCloseScope(without(v, "kind", "format"), "kind", "format")
	if err != nil {
		a.fail(w, err)
		return
	}
	if f := v.Get("format"); f != "" && f != "json" && f != "csv" {
		a.fail(w, &query.BadRequest{Code: "invalid_format", Message: "format is json or csv"})
		return
	}
	found, err := a.q.Unreconciled(r.Context(), scope, v.Get("kind"), time.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	if wantsCSV(r, v.Get("format") == "csv", v.Get("format") != "") {
		out := [][]string{query.FindingColumns}
		for _, f := range found {
			out = append(out, f.Cells())
		}
		writeCSV(w, "unreconciled.csv", out)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "includes": scope.Describe(), "data": found})
}

// without is v less the named parameters (checked apart).
func without(v url.Values, names ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	for _, n := range names {
		if _, ok := out[n]; ok {
			out.Del(n)
		}
	}
	return out
}

func (a *API) listCloses(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		a.fail(w, &query.BadRequest{Code: "unknown_parameter", Message: "the list of closes takes no parameters"})
		return
	}
	cs, err := a.q.Closes(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	if cs == nil {
		cs = []query.Close{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": cs})
}

type closeRequest struct {
	Period   string `json:"period"`    // YYYY-MM
	ClosedBy string `json:"closed_by"` // default: the token's name
}

// closePeriod serves POST /api/v1/closes {"period":"2026-11"}: 201 with the close; 409 when the
// period is closed already (the message says when), 422 when it has not ended.
func (a *API) closePeriod(w http.ResponseWriter, r *http.Request) {
	var req closeRequest
	if !readBody(w, r, &req) {
		return
	}
	if req.Period == "" {
		writeError(w, http.StatusBadRequest, "invalid_body", `period is required: {"period":"2026-11"}`)
		return
	}
	p, err := query.ParsePeriod(req.Period)
	if err != nil {
		a.fail(w, err)
		return
	}
	by := req.ClosedBy
	if id, ok := auth.FromContext(r.Context()); ok && by == "" {
		by = id.Name
	}
	c, err := a.q.ClosePeriod(r.Context(), p, time.Now(), by)
	var closed *query.AlreadyClosedError
	var open *query.NotEndedError
	switch {
	case errors.As(err, &closed):
		writeJSON(w, http.StatusConflict, map[string]any{"error": map[string]any{"code": "already_closed", "message": closed.Error(),
			"closed_at": closed.ClosedAt, "position": closed.Position}})
	case errors.Is(err, query.ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, "read_models_not_ready", err.Error())
	case errors.As(err, &open):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": map[string]any{"code": "period_not_ended", "message": open.Error(),
			"ends_at": open.Period.End()}})
	case err != nil:
		a.fail(w, err)
	default:
		w.Header().Set("Location", "/api/v1/closes/"+c.Period)
		writeJSON(w, http.StatusCreated, c)
	}
}

// readClose reads the close a GET names, with the livemode and account of its query.
func (a *API) readClose(w http.ResponseWriter, r *http.Request) (query.Close, bool) {
	p, err := query.ParsePeriod(r.PathValue("period"))
	if err != nil {
		a.fail(w, err)
		return query.Close{}, false
	}
	v := r.URL.Query()
	scope, err := query.ParseCloseScope(without(v, "format"), "format")
	if err != nil {
		a.fail(w, err)
		return query.Close{}, false
	}
	c, err := a.q.ReadClose(r.Context(), p, scope)
	if err != nil {
		a.fail(w, err)
		return query.Close{}, false
	}
	return c, true
}

// getClose serves GET /api/v1/closes/{period}: the close, its adjustments and the adjusted
// figures (JSON; format=csv or html for the report).
func (a *API) getClose(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" && format != "html" {
		a.fail(w, &query.BadRequest{Code: "invalid_format", Message: "format is json, csv or html"})
		return
	}
	c, ok := a.readClose(w, r)
	if !ok {
		return
	}
	switch {
	case format == "html":
		writeCloseHTML(w, c)
	case wantsCSV(r, format == "csv", format != ""):
		writeCSV(w, "close-"+c.Period+".csv", query.CloseReportRows(c))
	default:
		writeJSON(w, http.StatusOK, c)
	}
}

// closeReport serves GET /api/v1/closes/{period}/report: the printable page (format=csv: the
// CSV report).
func (a *API) closeReport(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "" && format != "html" && format != "csv" {
		a.fail(w, &query.BadRequest{Code: "invalid_format", Message: "the report's format is html (default) or csv"})
		return
	}
	c, ok := a.readClose(w, r)
	if !ok {
		return
	}
	if format == "csv" {
		writeCSV(w, "close-"+c.Period+".csv", query.CloseReportRows(c))
		return
	}
	writeCloseHTML(w, c)
}

func writeCloseHTML(w http.ResponseWriter, c query.Close) {
	var b bytes.Buffer
	if err := query.WriteCloseReport(&b, c); err != nil {
		writeError(w, http.StatusInternalServerError, "report_failed", "the report could not be rendered")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page is self-contained: its one inline style sheet, no script.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(b.Bytes())
}

func writeCSV(w http.ResponseWriter, filename string, rows [][]string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	cw := csv.NewWriter(w)
	_ = cw.WriteAll(rows)
}

// closePaths documents the routes above in the OpenAPI document.
func closePaths(paths map[string]any, errs map[string]any) {
	integer := map[string]any{"type": "integer", "format": "int64"}
	boolean := map[string]any{"type": "boolean"}
	ts := map[string]any{"type": "string", "format": "date-time"}
	nullStr := map[string]any{"type": "string", "nullable": true}
	obj := func(props map[string]any) map[string]any {
		req := make([]string, 0, len(props))
		for k := range props {
			req = append(req, k)
		}
		return map[string]any{"type": "object", "required": req, "properties": props, "additionalProperties": false}
	}
	with := func(ok map[string]any, extra map[string]string) map[string]any {
		out := map[string]any{"200": ok}
		for k, v := range errs {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = jsonResponse(ref("Error"), v)
		}
		return out
	}
	payoutProps := map[string]any{"payout": str, "livemode": boolean, "account": nullStr, "currency": str, "amount": integer, "status": str,
		"arrival_date": ts, "automatic": boolean, "method": str,
		"charges":     map[string]any{"type": "integer", "format": "int64", "description": "amount of its charge-category transactions"},
		"refunds":     map[string]any{"type": "integer", "format": "int64", "description": "amount of its refund and refund_failure transactions"},
		"disputes":    map[string]any{"type": "integer", "format": "int64", "description": "amount of its dispute and dispute_reversal transactions"},
		"fees":        map[string]any{"type": "integer", "format": "int64", "description": "minus every transaction's fee, plus fee-category amounts"},
		"adjustments": integer, "transfers": integer, "other": integer,
		"transactions": map[string]any{"type": "integer", "description": "balance transactions it listed (its own excluded)"},
		"total":        map[string]any{"type": "integer", "format": "int64", "description": "sum of their net; the parts add up to it"},
		"difference":   map[string]any{"type": "integer", "format": "int64", "description": "total - amount"},
		"match":        map[string]any{"type": "boolean", "description": "total equals amount, to the cent"}, "created": ts}
	payout := obj(payoutProps)
	scopeParams := []any{
		param("livemode", "query", "true (live mode), false (test mode) or all (default: both, each row says which)", str),
		param("account", "query", "platform (the platform's own), a connected account acct_..., or all (default)", str)}
	csvOK := func(schema map[string]any, desc string) map[string]any {
		ok := jsonResponse(schema, desc)
		ok["content"].(map[string]any)["text/csv"] = map[string]any{"schema": str}
		return ok
	}
	list := func(item map[string]any, extra ...string) map[string]any {
		props := map[string]any{"object": str, "includes": str, "data": map[string]any{"type": "array", "items": item}}
		for _, e := range extra {
			props[e] = boolean
		}
		return obj(props)
	}
	paths["/api/v1/payouts/reconciliation"] = map[string]any{"get": map[string]any{
		"summary": "Every payout against the balance transactions it paid out, by reporting category, with match (as ledger query payouts and the ledger.payout_reconciliation view), newest arrival first",
		"parameters": append(slices.Clone(scopeParams), param("status", "query", "paid, pending, in_transit, canceled or failed", str),
			param("currency", "query", "one currency", str), param("match", "query", "true or false", str),
			param("arrival_gte", "query", "arrival_date at or after (RFC 3339 or date)", str),
			param("arrival_lt", "query", "arrival_date before: the next page is arrival_lt = the last row's arrival_date", str),
			param("limit", "query", "rows, 1–1000 (default 100; CSV has every row)", map[string]any{"type": "integer"}),
			param("format", "query", "json (default) or csv", str)),
		"responses": with(csvOK(list(payout, "has_more"), "Newest arrival first."), nil)}}
	txn := obj(map[string]any{"id": str, "type": str, "reporting_category": str, "amount": integer, "fee": integer, "net": integer,
		"currency": str, "source": nullStr, "status": str, "available_on": ts, "created": ts,
		"counted":      map[string]any{"type": "boolean", "description": "false for the payout's own transaction"},
		"source_known": map[string]any{"type": "boolean", "nullable": true, "description": "the ledger holds the source; null without one"}})
	detailProps := map[string]any{"object": str, "balance_transactions": map[string]any{"type": "array", "items": txn}}
	for k, v := range payoutProps {
		detailProps[k] = v
	}
	paths["/api/v1/payouts/reconciliation/{id}"] = map[string]any{"get": map[string]any{
		"summary":    "One payout's reconciliation and every balance transaction it listed (the drill-down)",
		"parameters": []any{param("id", "path", "payout ID (po_...)", str)},
		"responses":  with(jsonResponse(obj(detailProps), "The payout and its transactions, oldest first."), map[string]string{"404": "The ledger holds no such payout."})}}
	finding := obj(map[string]any{"kind": map[string]any{"type": "string", "enum": query.FindingKinds}, "object": str, "livemode": boolean,
		"account": nullStr, "currency": str, "amount": integer, "expected": map[string]any{"type": "integer", "nullable": true},
		"difference": map[string]any{"type": "integer", "nullable": true}, "since": ts, "detail": str})
	paths["/api/v1/payouts/unreconciled"] = map[string]any{"get": map[string]any{
		"summary": "What does not reconcile now (as the ledger.unreconciled view): paid payouts whose parts do not add up, succeeded charges with no balance transaction 2 days on, balance transactions whose source the ledger does not hold",
		"parameters": append(slices.Clone(scopeParams), param("kind", "query", "payout_mismatch, charge_without_balance_transaction or unmatched_balance_transaction", str),
			param("format", "query", "json (default) or csv", str)),
		"responses": with(csvOK(list(finding), "By kind, then since."), nil)}}
	figures := obj(map[string]any{"livemode": boolean, "account": nullStr, "currency": str, "gross_revenue": integer, "refunds": integer,
		"dispute_losses": integer, "fees": integer, "net": integer, "payouts": integer, "open_receivables": integer, "mrr": integer})
	nullTS := map[string]any{"type": "string", "format": "date-time", "nullable": true}
	adjustment := obj(map[string]any{"event_id": nullStr, "event_type": nullStr, "position": map[string]any{"type": "integer", "nullable": true},
		"created": nullTS, "received_at": nullTS, "source": nullStr, "object_type": nullStr, "object": nullStr, "livemode": boolean,
		"account": nullStr, "currency": nullStr, "effect": figures})
	nullInt := map[string]any{"type": "integer", "format": "int64", "nullable": true}
	repFigures := obj(map[string]any{"livemode": boolean, "account": nullStr, "currency": str, "gross_revenue": nullInt, "refunds": nullInt,
		"dispute_losses": nullInt, "fees": nullInt, "net": nullInt, "payouts": nullInt, "open_receivables": nullInt, "mrr": nullInt})
	reporting := obj(map[string]any{"currency": str, "rate_date": map[string]any{"type": "string", "format": "date"},
		"rates": map[string]any{"type": "array", "items": obj(map[string]any{"currency": str,
			"rate": map[string]any{"type": "string", "nullable": true, "description": "units of the reporting currency per unit, exact; null: none found"}})},
		"missing_rates": map[string]any{"type": "array", "items": str, "description": "currencies with no frozen rate (none found at the close, or in the adjustments only): the figures needing one are null"},
		"figures":       map[string]any{"type": "array", "items": repFigures, "description": "per mode and account, as closed, at the frozen rates"},
		"adjusted":      map[string]any{"type": "array", "items": repFigures, "description": "with the adjustments, at the frozen rates"}})
	reporting["nullable"] = true
	reporting["description"] = "the close in the reporting currency at the rates frozen with it; null for a close made without LEDGER_REPORTING_CURRENCY"
	closeSchema := obj(map[string]any{"object": str, "period": str, "start": ts, "end": ts, "reporting": reporting,
		"position":  map[string]any{"type": "integer", "description": "the figures are of every event up to this log position"},
		"head":      map[string]any{"type": "integer", "description": "the highest committed position at the close"},
		"closed_at": ts, "closed_by": nullStr, "includes": str,
		"figures":     map[string]any{"type": "array", "items": figures, "description": "as closed: never change"},
		"adjustments": map[string]any{"type": "array", "items": adjustment, "description": "events after the close that fall in the period, with their effect on each figure"},
		"adjusted":    map[string]any{"type": "array", "items": figures, "description": "the figures with the adjustments applied"}})
	summary := obj(map[string]any{"object": str, "period": str, "start": ts, "end": ts, "position": integer, "head": integer, "closed_at": ts,
		"closed_by": nullStr, "includes": str, "reporting": reporting, "figures": map[string]any{"type": "array", "nullable": true, "items": figures},
		"adjustments": map[string]any{"type": "array", "nullable": true, "items": adjustment},
		"adjusted":    map[string]any{"type": "array", "nullable": true, "items": figures}})
	post := map[string]any{"summary": "Close a month (UTC) as known now, as ledger close (role operate)",
		"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
			"type": "object", "required": []string{"period"}, "additionalProperties": false,
			"properties": map[string]any{"period": map[string]any{"type": "string", "description": "YYYY-MM"},
				"closed_by": map[string]any{"type": "string", "description": "who closes it (default: the token's name)"}}}}}},
		"responses": map[string]any{}}
	for k, v := range errs {
		post["responses"].(map[string]any)[k] = v
	}
	for code, desc := range map[string]string{"409": "The period is closed already; the message and closed_at say when.",
		"422": "The period has not ended yet.", "403": "The token's role is below operate.",
		"503": "The database did not answer, or the read models are not built (yet) from this version's declarations: read_models_not_ready."} {
		post["responses"].(map[string]any)[code] = jsonResponse(map[string]any{"type": "object"}, desc)
	}
	post["responses"].(map[string]any)["201"] = jsonResponse(closeSchema, "The close (Location: its URL).")
	paths["/api/v1/closes"] = map[string]any{
		"get": map[string]any{"summary": "Every closed period, newest first (without figures)",
			"responses": with(jsonResponse(obj(map[string]any{"object": str, "data": map[string]any{"type": "array", "items": summary}}), "Closes."), nil)},
		"post": post}
	periodParams := append([]any{param("period", "path", "YYYY-MM", str)}, scopeParams...)
	getOK := csvOK(closeSchema, "The close, its adjustments and the adjusted figures.")
	getOK["content"].(map[string]any)["text/html"] = map[string]any{"schema": str}
	paths["/api/v1/closes/{period}"] = map[string]any{"get": map[string]any{
		"summary":    "A closed period as closed, its adjustments since and its figures today, as ledger close show; format=csv or html is the report",
		"parameters": append(slices.Clone(periodParams), param("format", "query", "json (default), csv or html", str)),
		"responses":  with(getOK, map[string]string{"404": "The period is not closed."})}}
	report := map[string]any{"description": "The printable report (CSV with format=csv).", "content": map[string]any{
		"text/html": map[string]any{"schema": str}, "text/csv": map[string]any{"schema": str}}}
	paths["/api/v1/closes/{period}/report"] = map[string]any{"get": map[string]any{
		"summary":    "The close report finance files: a printable HTML page (format=csv: CSV)",
		"parameters": append(slices.Clone(periodParams), param("format", "query", "html (default) or csv", str)),
		"responses":  with(report, map[string]string{"404": "The period is not closed."})}}
}
