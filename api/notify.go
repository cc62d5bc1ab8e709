package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/notify"
	"github.com/stripeledger/ledger/query"
)

// The notification history (role read) and retry of failed notifications (role operate): thin
// layers over what `ledger notify deliveries` and `ledger notify retry` do.

func (a *API) notifyRoutes() {
	a.handle("GET /api/v1/notify/deliveries", auth.Read, a.notifyDeliveries)
	a.handle("POST /api/v1/notify/retry", auth.Operate, a.notifyRetry)
}

// notifyDeliveries serves GET /api/v1/notify/deliveries?rule=&status=&since=&limit=: outbox rows
// newest first, each with latency_ms (null until delivered).
func (a *API) notifyDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := notify.DeliveryFilter{Rule: q.Get("rule"), Status: q.Get("status")}
	for k := range q {
		switch k {
		case "rule", "status", "since", "limit":
		default:
			a.fail(w, &query.BadRequest{Code: "unknown_parameter", Message: "unknown parameter " + strconv.Quote(k) + "; deliveries take rule, status, since and limit"})
			return
		}
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			if d, derr := time.ParseDuration(s); derr == nil && d > 0 {
				t = time.Now().Add(-d)
			} else {
				a.fail(w, &query.BadRequest{Code: "invalid_since", Message: "since " + strconv.Quote(s) + ": want an RFC 3339 time or a duration such as 24h"})
				return
			}
		}
		f.Since = t
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			a.fail(w, &query.BadRequest{Code: "invalid_limit", Message: "limit " + strconv.Quote(l) + ": between 1 and 1000"})
			return
		}
		f.Limit = n
	}
	list, err := notify.Deliveries(r.Context(), a.pool, f)
	var bad *notify.BadFilter
	if errors.As(err, &bad) {
		a.fail(w, &query.BadRequest{Code: "invalid_filter", Message: bad.Msg})
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	if list == nil {
		list = []notify.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "enabled": a.cfg.Notifications, "data": list})
}

type notifyRetryRequest struct {
	IDs       []int64 `json:"ids"`
	AllFailed bool    `json:"all_failed"`
}

// notifyRetry serves POST /api/v1/notify/retry {"ids":[…]} or {"all_failed":true}.
func (a *API) notifyRetry(w http.ResponseWriter, r *http.Request) {
	var req notifyRetryRequest
	if !readBody(w, r, &req) {
		return
	}
	ids, err := notify.Retry(r.Context(), a.pool, notify.RetryRequest{IDs: req.IDs, AllFailed: req.AllFailed}, time.Now())
	var bad *notify.BadFilter
	var nf *notify.NotFailedError
	switch {
	case errors.As(err, &bad):
		writeError(w, http.StatusBadRequest, "invalid_body", `name the notifications ({"ids":[41]}) or retry every failed one ({"all_failed":true}), not both`)
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, "not_failed", nf.Error())
	case err != nil:
		a.fail(w, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"object": "notify_retry", "retried": ids})
	}
}

// notifyPaths documents the routes above in the OpenAPI document.
func notifyPaths(paths map[string]any, errs map[string]any) {
	nullable := func(t, format string) map[string]any {
		m := map[string]any{"type": t, "nullable": true}
		if format != "" {
			m["format"] = format
		}
		return m
	}
	ts := map[string]any{"type": "string", "format": "date-time"}
	integer := map[string]any{"type": "integer"}
	boolean := map[string]any{"type": "boolean"}
	delivery := map[string]any{"type": "object", "properties": map[string]any{
		"id": integer, "rule": str, "event_id": str, "position": nullable("integer", ""), "channel": str,
		"idempotency_key": str, "message": map[string]any{"type": "object", "description": "subject, text, blocks, fields (notify.Message)"},
		"late": boolean, "digest": boolean, "backfill": boolean, "digest_of": nullable("string", ""),
		"status":   map[string]any{"type": "string", "enum": notify.Statuses},
		"attempts": integer, "not_before": ts, "last_error": nullable("string", ""),
		"event_created": nullable("string", "date-time"), "enqueued_at": ts, "delivered_at": nullable("string", "date-time"),
		"latency_ms": map[string]any{"type": "integer", "nullable": true, "description": "delivered_at − event_created; null until delivered"},
	}}
	responses := map[string]any{"200": jsonResponse(map[string]any{"type": "object", "required": []string{"object", "enabled", "data"},
		"properties": map[string]any{"object": str, "enabled": map[string]any{"type": "boolean", "description": "this server sends notifications (LEDGER_NOTIFY_CONFIG is set)"},
			"data": map[string]any{"type": "array", "items": delivery}}}, "Notifications, newest first.")}
	for k, v := range errs {
		responses[k] = v
	}
	paths["/api/v1/notify/deliveries"] = map[string]any{"get": map[string]any{
		"summary": "Notification history, newest first, as ledger notify deliveries",
		"parameters": []any{param("rule", "query", "only this rule", str),
			param("status", "query", "pending, delivered, failed or digested", str),
			param("since", "query", "enqueued from then on: RFC 3339 or a duration such as 24h", str),
			param("limit", "query", "1–1000 (default 100)", integer)},
		"responses": responses}}
	retryResponses := map[string]any{
		"200": jsonResponse(map[string]any{"type": "object", "properties": map[string]any{"object": str,
			"retried": map[string]any{"type": "array", "items": integer}}}, "The notifications put back to pending."),
		"404": jsonResponse(ref("Error"), "A named notification is not failed (or does not exist); nothing was retried."),
		"403": jsonResponse(ref("Error"), "The token's role is below operate."),
	}
	for k, v := range errs {
		retryResponses[k] = v
	}
	paths["/api/v1/notify/retry"] = map[string]any{"post": map[string]any{
		"summary": "Send failed notifications again, as ledger notify retry (role operate)",
		"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
			"type": "object", "additionalProperties": false,
			"properties": map[string]any{"ids": map[string]any{"type": "array", "items": integer}, "all_failed": boolean}}}}},
		"responses": retryResponses}}
}
