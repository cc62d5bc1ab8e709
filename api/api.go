// Package api is the ledger's HTTP API under /api/v1: JSON (or CSV) for finance tools and
// operators, behind a bearer token. It is a thin layer over package query, which `ledger query`
// and the dashboard use too: this package only reads requests and writes answers.
package api

import (
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/reconcile"
)

// Config configures the API.
type Config struct {
	// Tokens are the accepted tokens and their roles (LEDGER_API_TOKEN, LEDGER_TOKENS_FILE). None:
	// the API answers without a token, which serve allows only on a loopback address.
	Tokens *auth.Tokens
	// Audit takes a record of every request that presents a token; nil: none.
	Audit auth.Recorder
	// Proxies are the reverse proxies whose X-Forwarded-For names the client in the audit log.
	Proxies  *auth.Proxies
	Identity domain.Identity // the runner's: as-of answers and retries derive app user IDs with it
	// FX is the reporting currency (LEDGER_REPORTING_CURRENCY, LEDGER_FX_RATE_DATE): metrics
	// with reporting=true answer 400 without one.
	FX     query.FX
	Logger *slog.Logger
	// Stripe is how reconcile runs and endpoints setup started over the API reach Stripe; without
	// an API key those routes answer 503.
	Stripe     reconcile.StripeConfig
	WebhookURL string // LEDGER_WEBHOOK_URL: the endpoints job's filter and setup's default URL
	// Notifications says this server sends notifications (LEDGER_NOTIFY_CONFIG is set): the
	// deliveries list says so, and the dashboard shows "notifications are off" otherwise.
	Notifications bool
	// Runs is the context reconcile runs started over the API run in: they outlive the request
	// that started them and end with this (serve's shutdown). Default: context.Background().
	Runs context.Context
	// CheckpointKey (serve's LEDGER_CHECKPOINT_KEY) signs every redaction's record; nil: POST
	// /api/v1/redactions answers 503.
	CheckpointKey ed25519.PrivateKey
	// Stream is the live stream's hub (GET /api/v1/stream); nil: the route answers 503 and the
	// dashboard polls.
	Stream *Hub
}

// Route is one registered route and the role it needs.
type Route struct {
	Pattern string // as registered with the mux, e.g. "GET /api/v1/charges/{id}"
	Role    auth.Role
}

// API serves /api/v1.
type API struct {
	pool   *pgxpool.Pool
	q      *query.Queries
	cfg    Config
	mux    *http.ServeMux
	guard  *auth.Guard
	rec    *reconcile.Reconciler // nil without a Stripe key
	routes []Route
}

// New makes the API.
func New(pool *pgxpool.Pool, cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Runs == nil {
		cfg.Runs = context.Background()
	}
	a := &API{pool: pool, q: query.New(pool, query.Config{Identity: cfg.Identity, FX: cfg.FX}), cfg: cfg, mux: http.NewServeMux(),
		guard: &auth.Guard{Tokens: cfg.Tokens, Audit: cfg.Audit, Proxies: cfg.Proxies}}
	if cfg.Stripe.APIKey != "" {
		a.rec = reconcile.New(pool, reconcile.Config{Stripe: cfg.Stripe, WebhookURL: cfg.WebhookURL, Logger: cfg.Logger})
	}
	for _, m := range projections.Models {
		a.handle("GET /api/v1/"+m.Table, auth.Read, a.list(m))
		a.handle("GET /api/v1/"+m.Table+"/{id}", auth.Read, a.get(m))
	}
	a.handle("GET /api/v1/openapi.json", auth.Public, a.openapi)
	a.handle("GET /api/v1/metrics/{name}", auth.Read, a.metric)
	a.handle("GET /api/v1/events/{id}", auth.Read, a.event)
	a.handle("GET /api/v1/summary", auth.Read, a.summary)
	a.handle("GET /api/v1/projections/status", auth.Read, a.projectionStatus)
	a.handle("POST /api/v1/projections/retry", auth.Operate, a.retryQuarantined)
	a.handle("GET /api/v1/reconcile/runs", auth.Read, a.listRuns)
	a.handle("POST /api/v1/reconcile/runs", auth.Operate, a.startRun)
	a.handle("GET /api/v1/reconcile/runs/{id}", auth.Read, a.getRun)
	a.handle("POST /api/v1/endpoints/setup", auth.Admin, a.setupEndpoint)
	a.handle("POST /api/v1/redactions", auth.Admin, a.redact)
	a.handle("GET /api/v1/stream", auth.Read, a.stream)
	a.notifyRoutes()
	a.closeRoutes()
	a.handle("/api/v1/", auth.Read, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a
}

// handle registers a route with the role it needs: the only way a route is added, so none can
// be added without one. The role is checked first (401/403 before anything is read), then the
// path and query are checked for text Postgres cannot hold.
func (a *API) handle(pattern string, need auth.Role, h http.HandlerFunc) {
	a.routes = append(a.routes, Route{Pattern: pattern, Role: need})
	a.mux.Handle(pattern, a.guard.Require(pattern, need, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := query.CheckID(r.URL.Path); err != nil {
			a.fail(w, &query.BadRequest{Code: "invalid_text", Message: "the path holds a NUL byte or is not valid UTF-8"})
			return
		}
		if err := query.CheckValues(r.URL.Query()); err != nil {
			a.fail(w, err)
			return
		}
		h(w, r)
	})))
}

// Routes are every registered route with its role, in registration order.
func (a *API) Routes() []Route { return slices.Clone(a.routes) }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func wantsCSV(r *http.Request, chosen, set bool) bool {
	if set {
		return chosen
	}
	return strings.Contains(r.Header.Get("Accept"), "text/csv")
}

// list serves GET /api/v1/{resource}: newest first, cursor-paginated, JSON or streamed CSV.
func (a *API) list(m *projections.Model) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l, err := query.ParseList(m, r.URL.Query())
		if err != nil {
			a.fail(w, err)
			return
		}
		if wantsCSV(r, l.CSV, l.FormatSet) {
			a.streamCSV(w, r, l)
			return
		}
		p, err := a.q.Page(r.Context(), l)
		if err != nil {
			a.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	}
}

// streamCSV writes every matching row (no pagination) as CSV, flushing as it goes: memory stays
// flat however many rows there are.
func (a *API) streamCSV(w http.ResponseWriter, r *http.Request, l query.List) {
	cw := csv.NewWriter(w)
	safe := query.CSVSafe(l.Model)
	n := 0
	started := false
	err := a.q.Rows(r.Context(), l, func(cells []string) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, l.Model.Table))
		} else {
			safe(cells) // the header is the declared column names
		}
		if err := cw.Write(cells); err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			cw.Flush()
		}
		return cw.Error()
	})
	if err != nil {
		if !started {
			a.fail(w, err)
			return
		}
		panic(http.ErrAbortHandler) // the status is sent: break the transfer, never a short "complete" file
	}
	cw.Flush()
	if cw.Error() != nil {
		panic(http.ErrAbortHandler)
	}
}

// get serves GET /api/v1/{resource}/{id}: the row and the events that produced it.
func (a *API) get(m *projections.Model) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k := range r.URL.Query() {
			if k != "as_of" && k != "known_at" {
				a.fail(w, &query.BadRequest{Code: "unknown_parameter", Message: fmt.Sprintf("unknown parameter %q; one %s takes as_of and known_at", k, strings.TrimSuffix(m.Table, "s"))})
				return
			}
		}
		at, err := query.ParseAt(r.URL.Query())
		if err != nil {
			a.fail(w, err)
			return
		}
		obj, err := a.q.Get(r.Context(), m, r.PathValue("id"), at)
		if err != nil {
			a.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, obj)
	}
}

func (a *API) metric(w http.ResponseWriter, r *http.Request) {
	m, err := query.ParseMetric(r.PathValue("name"), r.URL.Query(), time.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	ans, err := a.q.Answer(r.Context(), m)
	if err != nil {
		a.fail(w, err)
		return
	}
	data := ans.Data
	if wantsCSV(r, m.CSV, m.FormatSet) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		// What a CSV cannot carry in its rows travels in headers: the unvalued count and the
		// missing rates are never silently dropped.
		w.Header().Set("Ledger-Unvalued", strconv.FormatInt(ans.Unvalued, 10))
		if ans.Reporting != "" {
			w.Header().Set("Ledger-Reporting-Currency", ans.Reporting)
			w.Header().Set("Ledger-Missing-Rates", query.MissingRatesText(ans))
		}
		cw := csv.NewWriter(w)
		rows := query.SeriesRows(m, data)
		for _, row := range rows[1:] {
			row[1] = query.SpreadsheetSafe(row[1]) // currency, the one text column
		}
		_ = cw.WriteAll(rows)
		return
	}
	body := map[string]any{"object": "list", "metric": m.Name, "interval": m.Interval,
		"livemode": *m.Scope.Livemode, "account": m.Scope.AccountParam(), "includes": m.Scope.Describe(), "data": data,
		"definitions": query.ColumnDefinitions(m.Name)}
	if m.Name != "revenue" && m.Name != "refunds" {
		body["unvalued"] = ans.Unvalued
	}
	if ans.Reporting != "" {
		body["reporting_currency"], body["fx_rate_date"] = ans.Reporting, ans.RateDate
		body["missing_rates"], body["missing_rates_total"] = ans.MissingRates, ans.MissingRatesTotal
	}
	writeJSON(w, http.StatusOK, body)
}

// event serves GET /api/v1/events/{id}: the log row, its payload as stored.
func (a *API) event(w http.ResponseWriter, r *http.Request) {
	ev, err := a.q.Event(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

// summary serves GET /api/v1/summary: what the dashboard's header shows.
func (a *API) summary(w http.ResponseWriter, r *http.Request) {
	scope, err := query.ParseSummary(r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	s, err := a.q.Summary(r.Context(), scope)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) projectionStatus(w http.ResponseWriter, r *http.Request) {
	st, err := projections.ReadStatus(r.Context(), a.pool)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

type listResponse struct {
	Object string `json:"object"`
	Data   any    `json:"data"`
}

// listRuns is the reconciliation history, newest first: ?job=events&limit=20.
func (a *API) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var job reconcile.Job
	if v := q.Get("job"); v != "" {
		j, err := reconcile.ParseJob(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_job", err.Error())
			return
		}
		job = j
	}
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to 500")
			return
		}
		limit = n
	}
	runs, err := reconcile.ListRuns(r.Context(), a.pool, job, limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, listResponse{Object: "list", Data: runs})
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "invalid_id", "a run ID is a positive integer")
		return
	}
	run, err := reconcile.GetRun(r.Context(), a.pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		writeError(w, http.StatusNotFound, "not_found", "no reconcile run "+strconv.FormatInt(id, 10))
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// fail maps an error to its answer, in one place: a bad request precisely (400 with its code),
// something the ledger does not hold as 404, anything else as the database's trouble (503).
func (a *API) fail(w http.ResponseWriter, err error) {
	var br *query.BadRequest
	switch {
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, br.Code, br.Message)
	case errors.Is(err, query.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", strings.TrimPrefix(err.Error(), query.ErrNotFound.Error()+": "))
	default:
		a.cfg.Logger.Warn("api: database unavailable", "error", err)
		writeError(w, http.StatusServiceUnavailable, "database_unavailable", "the database did not answer; try again")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}
