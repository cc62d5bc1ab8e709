// Package api is the ledger's HTTP API under /api/v1: JSON for finance tools and operators,
// behind a bearer token.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/dashboard"
	"github.com/stripeledger/ledger/reconcile"
)

// Config configures the API.
type Config struct {
	// Tokens are the accepted bearer tokens (LEDGER_API_TOKEN, comma-separated to rotate). None:
	// the API answers without a token, which serve allows only on a loopback address.
	Tokens []string
	Logger *slog.Logger
}

// API serves /api/v1.
type API struct {
	pool *pgxpool.Pool
	cfg  Config
	mux  *http.ServeMux
}

// New makes the API.
func New(pool *pgxpool.Pool, cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{pool: pool, cfg: cfg, mux: http.NewServeMux()}
	for _, res := range resources {
		a.mux.HandleFunc("GET /api/v1/"+res.name, a.list(res))
		a.mux.HandleFunc("GET /api/v1/"+res.name+"/{id}", a.get(res))
	}
	a.mux.HandleFunc("GET /api/v1/openapi.json", a.openapi)
	a.mux.HandleFunc("GET /api/v1/metrics/{name}", a.metric)
	a.mux.HandleFunc("GET /api/v1/events/{id}", a.event)
	a.mux.HandleFunc("GET /api/v1/summary", a.summary)
	a.mux.HandleFunc("GET /api/v1/projections/status", a.projectionStatus)
	a.mux.HandleFunc("GET /api/v1/reconcile/runs", a.listRuns)
	a.mux.HandleFunc("GET /api/v1/reconcile/runs/{id}", a.getRun)
	a.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a
}

// ParseTokens splits LEDGER_API_TOKEN.
func ParseTokens(s string) []string {
	var out []string
	for t := range strings.SplitSeq(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The API's description is public; everything else needs the token.
	if len(a.cfg.Tokens) > 0 && r.URL.Path != "/api/v1/openapi.json" && !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ledger"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required: Authorization: Bearer <LEDGER_API_TOKEN>")
		return
	}
	if msg := unstorable(r); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_text", msg)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// unstorable names a path or query value Postgres could not take as text (a NUL byte, or bytes
// that are not UTF-8). Every value reaches SQL as a parameter, but Postgres refuses such a
// parameter outright, which would otherwise read as the database failing rather than the request.
func unstorable(r *http.Request) string {
	ok := func(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
	if !ok(r.URL.Path) {
		return "the path holds a NUL byte or is not valid UTF-8"
	}
	for k, vs := range r.URL.Query() {
		if !ok(k) {
			return "a parameter name holds a NUL byte or is not valid UTF-8"
		}
		for _, v := range vs {
			if !ok(v) {
				return fmt.Sprintf("parameter %q holds a NUL byte or is not valid UTF-8", k)
			}
		}
	}
	return ""
}

// authorized compares the bearer token (or the dashboard's session cookie) with every
// configured one in constant time, so the answer's timing says nothing about how much of a
// guess was right.
func (a *API) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		if c, err := r.Cookie(dashboard.CookieName); err == nil {
			got = c.Value
		}
	}
	return dashboard.Valid(a.cfg.Tokens, got)
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
		a.unavailable(w, err)
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
		a.unavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// jsonRows runs a query that yields one JSON text per row; never nil.
func (a *API) jsonRows(ctx context.Context, sql string, args ...any) ([]json.RawMessage, error) {
	rows, err := a.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (json.RawMessage, error) {
		var s string
		err := row.Scan(&s)
		return json.RawMessage(s), err
	})
	if out == nil {
		out = []json.RawMessage{}
	}
	return out, err
}

func (a *API) unavailable(w http.ResponseWriter, err error) {
	a.cfg.Logger.Warn("api: database unavailable", "error", err)
	writeError(w, http.StatusServiceUnavailable, "database_unavailable", "the database did not answer; try again")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}
