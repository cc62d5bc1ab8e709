// Package api is the ledger's HTTP API under /api/v1: JSON (or CSV) for finance tools and
// operators, behind a bearer token. It is a thin layer over package query, which `ledger query`
// and the dashboard use too: this package only reads requests and writes answers.
package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	// Tokens are the accepted bearer tokens (LEDGER_API_TOKEN, comma-separated to rotate). None:
	// the API answers without a token, which serve allows only on a loopback address.
	Tokens   auth.Tokens
	Identity domain.Identity // the runner's: as-of answers derive app user IDs with it
	Logger   *slog.Logger
}

// API serves /api/v1.
type API struct {
	pool *pgxpool.Pool
	q    *query.Queries
	cfg  Config
	mux  *http.ServeMux
}

// New makes the API.
func New(pool *pgxpool.Pool, cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{pool: pool, q: query.New(pool, query.Config{Identity: cfg.Identity}), cfg: cfg, mux: http.NewServeMux()}
	for _, m := range projections.Models {
		a.mux.HandleFunc("GET /api/v1/"+m.Table, a.list(m))
		a.mux.HandleFunc("GET /api/v1/"+m.Table+"/{id}", a.get(m))
	}
	a.mux.HandleFunc("GET /api/v1/openapi.json", a.openapi)
	a.mux.HandleFunc("GET /api/v1/metrics/{name}", a.metric)
	a.mux.HandleFunc("GET /api/v1/events/{id}", a.event)
	a.mux.HandleFunc("GET /api/v1/summary", a.summary)
	a.mux.HandleFunc("GET /api/v1/projections/status", a.projectionStatus)
	a.mux.HandleFunc("GET /api/v1/reconcile/runs", a.listRuns)
	a.mux.HandleFunc("GET /api/v1/reconcile/runs/{id}", a.getRun)
	a.mux.HandleFunc("POST /api/v1/redactions", a.redact)
	a.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The API's description is public; everything else needs the token.
	if r.URL.Path != "/api/v1/openapi.json" && !a.cfg.Tokens.Allowed(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ledger"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required: Authorization: Bearer <LEDGER_API_TOKEN>")
		return
	}
	if err := query.CheckID(r.URL.Path); err != nil {
		a.fail(w, &query.BadRequest{Code: "invalid_text", Message: "the path holds a NUL byte or is not valid UTF-8"})
		return
	}
	if err := query.CheckValues(r.URL.Query()); err != nil {
		a.fail(w, err)
		return
	}
	a.mux.ServeHTTP(w, r)
}

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
	n := 0
	started := false
	err := a.q.Rows(r.Context(), l, func(cells []string) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, l.Model.Table))
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
		var asOf time.Time
		for k := range r.URL.Query() {
			if k != "as_of" {
				a.fail(w, &query.BadRequest{Code: "unknown_parameter", Message: fmt.Sprintf("unknown parameter %q; one %s takes as_of", k, strings.TrimSuffix(m.Table, "s"))})
				return
			}
		}
		if v := r.URL.Query().Get("as_of"); v != "" {
			t, err := query.ParseTime("as_of", v)
			if err != nil {
				a.fail(w, err)
				return
			}
			asOf = t
		}
		obj, err := a.q.Get(r.Context(), m, r.PathValue("id"), asOf)
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
	data, err := a.q.Series(r.Context(), m)
	if err != nil {
		a.fail(w, err)
		return
	}
	if wantsCSV(r, m.CSV, m.FormatSet) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		_ = cw.WriteAll(query.SeriesRows(m, data))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "metric": m.Name, "interval": m.Interval, "data": data})
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
	s, err := a.q.Summary(r.Context())
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
