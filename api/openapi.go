package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
)

// The OpenAPI document is built from the read models' declarations (projections.Models) and the
// metric tables the handlers serve, so it cannot drift from them; the tests validate real
// responses against it.

// columnSchema is a read-model column's JSON schema: its SQL type's JSON type, nullable when the
// column can hold NULL, with the column's comment as its description.
func columnSchema(c projections.Column) map[string]any {
	var s map[string]any
	switch c.Type {
	case "bigint":
		s = map[string]any{"type": "integer", "format": "int64"}
	case "numeric":
		// An exact decimal, as a string: a JSON number would be read as a float.
		s = map[string]any{"type": "string", "format": "decimal", "pattern": `^-?[0-9]+(\.[0-9]+)?$`}
	case "boolean":
		s = map[string]any{"type": "boolean"}
	case "timestamptz":
		s = map[string]any{"type": "string", "format": "date-time"}
	case "jsonb":
		switch c.Name {
		case "metadata":
			s = map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
		case "items":
			s = map[string]any{"type": "array", "items": map[string]any{"type": "object"}}
		default:
			s = map[string]any{}
		}
	default:
		s = map[string]any{"type": "string"}
	}
	if c.Comment != "" {
		s["description"] = c.Comment
	}
	if c.Null {
		s["nullable"] = true
	}
	return s
}

func objectSchema(m *projections.Model) map[string]any {
	props := map[string]any{}
	for _, c := range m.Columns {
		props[c.Name] = columnSchema(c)
	}
	return map[string]any{"type": "object", "description": m.Comment, "required": m.ColumnNames(), "properties": props, "additionalProperties": false}
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func jsonResponse(schema any, desc string) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": schema}}}
}

func param(name, in, desc string, schema map[string]any) map[string]any {
	return map[string]any{"name": name, "in": in, "description": desc, "required": in == "path", "schema": schema}
}

var str = map[string]any{"type": "string"}

var openAPI = sync.OnceValue(func() []byte {
	schemas := map[string]any{
		"Error": map[string]any{"type": "object", "required": []string{"error"}, "properties": map[string]any{
			"error": map[string]any{"type": "object", "required": []string{"code", "message"}, "properties": map[string]any{
				"code": str, "message": str}}}},
		"Event": map[string]any{"type": "object", "required": []string{"position", "event_id", "type", "created", "source"},
			"properties": map[string]any{"position": map[string]any{"type": "integer"}, "event_id": str, "type": str,
				"created": map[string]any{"type": "string", "format": "date-time"}, "source": str,
				"received_at": map[string]any{"type": "string", "format": "date-time"}, "previous_attributes": map[string]any{"type": "object", "nullable": true}}},
	}
	errors := map[string]any{
		"400": jsonResponse(ref("Error"), "A parameter is wrong; the message says which and why."),
		"401": jsonResponse(ref("Error"), "No valid bearer token."),
		"503": jsonResponse(ref("Error"), "The database did not answer."),
	}
	with := func(ok map[string]any, extra ...string) map[string]any {
		out := map[string]any{"200": ok}
		for k, v := range errors {
			out[k] = v
		}
		for _, code := range extra {
			out[code] = jsonResponse(ref("Error"), "Not found.")
		}
		return out
	}
	paths := map[string]any{}
	for _, res := range projections.Models {
		name := strings.TrimSuffix(res.Table, "s")
		schemaName := camel(name)
		schemas[schemaName] = objectSchema(res)
		params := []any{
			param("limit", "query", "rows per page, 1–1000 (default 100)", map[string]any{"type": "integer"}),
			param("cursor", "query", "next_cursor of the previous page", str),
			param("created_gte", "query", "created at or after (RFC 3339 or date)", str),
			param("created_lt", "query", "created before (RFC 3339 or date)", str),
			param("format", "query", "json (default) or csv; or send Accept: text/csv", str),
		}
		params = append(params,
			param("livemode", "query", "true (live mode), false (test mode) or all (default: both, each row says which)", str),
			param("account", "query", "platform (the platform's own objects), a connected account acct_..., or all (default)", str))
		for _, f := range res.Filters {
			params = append(params, param(f, "query", "only rows whose "+f+" equals this", str))
		}
		params = append(params, asOfParam, knownAtParam)
		list := map[string]any{"type": "object", "required": []string{"object", "data", "has_more"}, "properties": map[string]any{
			"object": str, "data": map[string]any{"type": "array", "items": ref(schemaName)},
			"has_more": map[string]any{"type": "boolean"}, "next_cursor": str}}
		ok := jsonResponse(list, "Newest first.")
		ok["content"].(map[string]any)["text/csv"] = map[string]any{"schema": str}
		paths["/api/v1/"+res.Table] = map[string]any{"get": map[string]any{"summary": "List " + res.Table, "parameters": params,
			"responses": with(ok)}}
		getParams := []any{param("id", "path", "Stripe ID", str), asOfParam, knownAtParam}
		one := map[string]any{"type": "object", "required": []string{"object", "events"}, "properties": map[string]any{
			"object": ref(schemaName), "events": map[string]any{"type": "array", "items": ref("Event")}}}
		paths["/api/v1/"+res.Table+"/{id}"] = map[string]any{"get": map[string]any{"summary": "One " + name + " and the events that produced it",
			"parameters": getParams, "responses": with(jsonResponse(one, "The row and its events."), "404")}}
	}
	for _, name := range query.MetricNames() {
		cols, _ := query.MetricColumns(name)
		props := map[string]any{"period": map[string]any{"type": "string", "format": "date"}, "currency": str,
			"livemode": map[string]any{"type": "boolean"},
			"account":  map[string]any{"type": "string", "nullable": true, "description": "null: the platform's own; acct_...: a connected account; all: the total of every account (account=all only)"}}
		for _, c := range cols {
			if query.IsRate(c) {
				props[c] = map[string]any{"type": "string", "nullable": true, "description": query.Definitions[c] + " An exact decimal string (0.012500 is 1.25 %)."}
			} else {
				props[c] = map[string]any{"type": "integer", "format": "int64", "nullable": true, "description": query.Definitions[c]}
			}
		}
		row := map[string]any{"type": "object", "required": append([]string{"period", "currency", "livemode", "account"}, cols...), "properties": props, "additionalProperties": false}
		body := map[string]any{"type": "object", "required": []string{"object", "metric", "interval", "livemode", "account", "includes", "data"}, "properties": map[string]any{
			"object": str, "metric": str, "interval": str, "livemode": map[string]any{"type": "boolean"}, "account": str,
			"includes":           map[string]any{"type": "string", "description": "What the figures include, in words: the mode and the account(s)."},
			"data":               map[string]any{"type": "array", "items": row},
			"definitions":        map[string]any{"type": "object", "additionalProperties": str, "description": "Each column's definition, in a line."},
			"unvalued":           map[string]any{"type": "integer", "description": "Subscriptions of the scope whose MRR could not be valued (mrr NULL, attention says why): left out of every figure."},
			"reporting_currency": map[string]any{"type": "string", "description": "reporting=true: the currency the figures are converted into."},
			"fx_rate_date":       map[string]any{"type": "string", "description": "reporting=true: period_start or report_date (LEDGER_FX_RATE_DATE)."},
			"missing_rates": map[string]any{"type": "array", "description": "reporting=true: the (currency, date) pairs no rate was found for (at most 100); every figure that needed one is null.",
				"items": map[string]any{"type": "object", "required": []string{"currency", "date"}, "properties": map[string]any{"currency": str, "date": str}}},
			"missing_rates_total": map[string]any{"type": "integer", "description": "reporting=true: how many pairs are missing in all."}}}
		ok := jsonResponse(body, "One row per period, currency and account, of one mode.")
		ok["content"].(map[string]any)["text/csv"] = map[string]any{"schema": str}
		paths["/api/v1/metrics/"+name] = map[string]any{"get": map[string]any{"summary": "Metric " + name, "parameters": []any{
			param("from", "query", "first period (date)", str), param("to", "query", "last period (date)", str),
			param("interval", "query", "day or month (default)", str), param("currency", "query", "one currency", str),
			param("livemode", "query", "true (live mode, default) or false (test mode); never both: livemode=all is a 400", str),
			param("account", "query", "platform (default: the platform's own), a connected account acct_..., or all (one row per account and their total)", str),
			param("format", "query", "json or csv", str),
			param("reporting", "query", "true: the MRR figures converted into the reporting currency (LEDGER_REPORTING_CURRENCY), one row per period and account; not with currency", str),
			asOfParam, knownAtParam}, "responses": with(ok)}}
	}
	anyObject := map[string]any{"type": "object"}
	paths["/api/v1/events/{id}"] = map[string]any{"get": map[string]any{"summary": "One event of the log, payload as stored",
		"parameters": []any{param("id", "path", "event ID", str)}, "responses": with(jsonResponse(anyObject, "The event."), "404")}}
	paths["/api/v1/summary"] = map[string]any{"get": map[string]any{"summary": "Subscriptions by status of one mode and account, the modes and accounts there are, events per minute, log size, projection lag (the dashboard's header)",
		"parameters": []any{param("livemode", "query", "true (default) or false", str), param("account", "query", "platform (default), acct_... or all", str)},
		"responses":  with(jsonResponse(anyObject, "Summary."))}}
	paths["/api/v1/projections/status"] = map[string]any{"get": map[string]any{"summary": "The live projection's position, lag and quarantine, and the thin events' fetches",
		"responses": with(jsonResponse(anyObject, "Status."))}}
	paths["/api/v1/reconcile/runs"] = map[string]any{"get": map[string]any{"summary": "Reconciliation runs, newest first",
		"parameters": []any{param("job", "query", "events, events-fast, objects, balance or endpoints", str), param("limit", "query", "1–500", map[string]any{"type": "integer"})},
		"responses": with(jsonResponse(map[string]any{"type": "object", "required": []string{"object", "data"}, "properties": map[string]any{
			"object": str, "data": map[string]any{"type": "array", "items": anyObject}}}, "Runs."))}}
	paths["/api/v1/reconcile/runs/{id}"] = map[string]any{"get": map[string]any{"summary": "One reconciliation run",
		"parameters": []any{param("id", "path", "run ID", str)}, "responses": with(jsonResponse(anyObject, "The run."), "404")}}
	paths["/api/v1/stream"] = map[string]any{"get": map[string]any{"summary": "Server-Sent Events: one \"appended\" event per event of the log (id = its position; data: position, event_id, type, livemode, account, object_type, object_id, source), one \"folded\" event when the read models have caught up to a position, a heartbeat comment every 15 s; Last-Event-ID resumes (up to 1000 events back, else \"reset\"); a client too slow to keep up gets \"dropped\" and is disconnected",
		"parameters": []any{param("Last-Event-ID", "header", "the last position received: the stream resends what came after it", str)},
		"responses":  with(map[string]any{"description": "The stream.", "content": map[string]any{"text/event-stream": map[string]any{"schema": str}}})}}
	paths["/api/v1/openapi.json"] = map[string]any{"get": map[string]any{"summary": "This document (no token needed)",
		"security": []any{}, "responses": map[string]any{"200": jsonResponse(anyObject, "The OpenAPI 3 document.")}}}
	// The routes that act, each with the role it needs (the 403 names it).
	post := func(summary, role string, body map[string]any, codes map[string]string) map[string]any {
		responses := map[string]any{}
		for code, desc := range codes {
			if strings.HasPrefix(code, "2") {
				responses[code] = jsonResponse(anyObject, desc)
			} else {
				responses[code] = jsonResponse(ref("Error"), desc)
			}
		}
		for k, v := range errors {
			responses[k] = v
		}
		responses["403"] = jsonResponse(ref("Error"), "The token's role is below "+role+".")
		op := map[string]any{"summary": summary + " (role " + role + ")", "responses": responses}
		if body != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": body}}}
		}
		return map[string]any{"post": op}
	}
	object := func(required []string, props map[string]any) map[string]any {
		return map[string]any{"type": "object", "required": required, "properties": props, "additionalProperties": false}
	}
	get := paths["/api/v1/reconcile/runs"].(map[string]any)
	get["post"] = post("Start a reconciliation run, as ledger reconcile run", "operate",
		object([]string{}, map[string]any{"job": str, "since": str, "from": str, "to": str, "dry_run": map[string]any{"type": "boolean"},
			"livemode": map[string]any{"type": "boolean", "description": "only this mode (default: every configured mode)"},
			"account":  map[string]any{"type": "string", "description": "platform, a connected account acct_..., or all (default)"}}),
		map[string]string{"202": "The run as recorded; it goes on after the answer (Location: its URL).", "409": "A run of that job is in progress.",
			"503": "STRIPE_SECRET_KEY is not set."})["post"]
	paths["/api/v1/projections/retry"] = post("Let quarantined events back in, as ledger projections retry; a held event named in event_ids is released, all leaves held ones held", "operate",
		object([]string{}, map[string]any{"event_ids": map[string]any{"type": "array", "items": str}, "all": map[string]any{"type": "boolean"}}),
		map[string]string{"200": "How many were folded and which still fail.", "404": "No such quarantined event."})
	paths["/api/v1/endpoints/setup"] = post("Create or update the Stripe webhook endpoint, as ledger endpoints setup", "admin",
		object([]string{}, map[string]any{"url": str, "livemode": map[string]any{"type": "boolean", "description": "the endpoint's mode (default: the first key's)"},
			"connect": map[string]any{"type": "boolean", "description": "the Connect endpoint, for connected accounts' events"}}),
		map[string]string{"200": "The endpoint; a new one's signing secret once.", "503": "STRIPE_SECRET_KEY is not set."})
	paths["/api/v1/redactions"] = post("Erase a customer's personal data, as ledger redact", "admin",
		object([]string{"customer", "reason"}, map[string]any{"customer": str, "reason": str, "requested_by": str}),
		map[string]string{"201": "What was redacted.", "200": "Nothing was left to redact.", "404": "The log knows no such customer.",
			"409": "An event in scope fails its digest: run ledger verify.", "415": "The body is not JSON.",
			"503": "No checkpoint key to sign the redaction with."})
	notifyPaths(paths, errors)
	closePaths(paths, errors)
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Stripe ledger API", "version": "1",
			"description": "Read models, metrics and run history of the event-sourced Stripe ledger. Money is integer minor units with the currency beside it."},
		"components": map[string]any{"schemas": schemas, "securitySchemes": map[string]any{
			"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
		"security": []any{map[string]any{"bearer": []any{}}},
		"paths":    paths,
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return b
})

func (a *API) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI())
}

// OpenAPI is the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPI() }

// camel is a table name's singular as a schema name: checkout_session -> CheckoutSession.
func camel(name string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(name, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// The bitemporal parameters of every list and get (query.At): both are answered from the read
// models' history tables and may be given together.
var (
	asOfParam    = param("as_of", "query", "Stripe's timeline at this time (RFC 3339 or date): each object folded from its events created at or before it; objects created after it are absent", str)
	knownAtParam = param("known_at", "query", "what the ledger knew then: position:N (the log up to position N) or a time (RFC 3339 or date: the log as it stood then); events appended later, such as reconciliation's repairs, are left out", str)
)
