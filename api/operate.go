package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
)

// The operators' routes (role operate) and the admin's (role admin): thin layers over what
// `ledger reconcile run`, `ledger projections retry` and `ledger endpoints setup` do.

// readBody decodes a JSON request body into v: at most 64 KiB, no unknown fields; an empty
// body is an empty object.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_body", "the body must be a JSON object of the documented fields: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_body", "the body must be one JSON object")
		return false
	}
	return true
}

type startRunRequest struct {
	Job    string `json:"job"`   // events (default), events-fast, objects, balance, endpoints
	Since  string `json:"since"` // a duration such as 96h; or From/To
	From   string `json:"from"`  // RFC 3339
	To     string `json:"to"`
	DryRun bool   `json:"dry_run"`
	// Livemode and Account limit the run to one mode and/or account (platform, acct_…, all);
	// absent: every configured mode and account.
	Livemode *bool  `json:"livemode"`
	Account  string `json:"account"`
}

// startRun serves POST /api/v1/reconcile/runs: it starts a reconciliation job and answers 202
// with the run as recorded once it has begun; the run goes on after the answer (GET
// /api/v1/reconcile/runs/{id} follows it) and ends, resumable, if the server stops.
func (a *API) startRun(w http.ResponseWriter, r *http.Request) {
	var req startRunRequest
	if !readBody(w, r, &req) {
		return
	}
	opts := reconcile.Options{Job: reconcile.JobEvents, DryRun: req.DryRun, Trigger: "api",
		Scopes: reconcile.ScopeFilter{Livemode: req.Livemode, Account: req.Account}}
	if _, err := reconcile.ParseAccountFilter(req.Account); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_account", err.Error())
		return
	}
	if req.Job != "" {
		j, err := reconcile.ParseJob(req.Job)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_job", err.Error())
			return
		}
		opts.Job = j
	}
	for _, f := range []struct {
		name, v string
		t       *time.Time
	}{{"from", req.From, &opts.From}, {"to", req.To, &opts.To}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_time", fmt.Sprintf("%s %q: want an RFC 3339 time such as 2026-05-01T00:00:00Z", f.name, f.v))
			return
		}
		*f.t = t.UTC()
	}
	if req.Since != "" {
		d, err := time.ParseDuration(req.Since)
		switch {
		case req.From != "":
			writeError(w, http.StatusBadRequest, "invalid_window", "since and from go separately")
			return
		case err != nil || d <= 0:
			writeError(w, http.StatusBadRequest, "invalid_window", fmt.Sprintf("since %q: want a duration such as 96h", req.Since))
			return
		}
		opts.From = time.Now().UTC().Add(-d)
	}
	if a.rec == nil {
		writeError(w, http.StatusServiceUnavailable, "stripe_not_configured", "reconciliation is off: this server has no STRIPE_SECRET_KEY")
		return
	}
	started := make(chan reconcile.Run, 1)
	ended := make(chan error, 1)
	opts.Started = func(run reconcile.Run) { started <- run }
	go func() {
		_, err := a.rec.Run(a.cfg.Runs, opts)
		ended <- err
	}()
	select {
	case run := <-started:
		w.Header().Set("Location", "/api/v1/reconcile/runs/"+strconv.FormatInt(run.ID, 10))
		writeJSON(w, http.StatusAccepted, run)
	case err := <-ended:
		// It ended before it began: another run of the job holds it, or it could not be recorded.
		switch {
		case errors.Is(err, reconcile.ErrAlreadyRunning):
			writeError(w, http.StatusConflict, "already_running", err.Error())
		default:
			a.fail(w, err)
		}
	case <-r.Context().Done():
	}
}

type retryRequest struct {
	EventIDs []string `json:"event_ids"`
	All      bool     `json:"all"`
}

// retryQuarantined serves POST /api/v1/projections/retry: the quarantined events named (or all
// of them) are let back in and their objects re-folded, as `ledger projections retry` does. A
// held event (it disagrees with its endpoint) is released only when named; "all" leaves held
// ones held and counts them.
func (a *API) retryQuarantined(w http.ResponseWriter, r *http.Request) {
	var req retryRequest
	if !readBody(w, r, &req) {
		return
	}
	if req.All == (len(req.EventIDs) > 0) {
		writeError(w, http.StatusBadRequest, "invalid_body", `name the events ({"event_ids":["evt_…"]}) or retry them all ({"all":true}), not both`)
		return
	}
	res, err := projections.Retry(r.Context(), a.pool, projections.RetryConfig{EventIDs: req.EventIDs, Identity: a.cfg.Identity})
	if errors.Is(err, projections.ErrNotQuarantined) {
		writeError(w, http.StatusNotFound, "not_quarantined", err.Error())
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "retry", "resolved": res.Resolved, "failed": res.Failed,
		"released": res.Released, "held": res.Held, "errors": res.Errors})
}

type setupRequest struct {
	URL string `json:"url"` // default LEDGER_WEBHOOK_URL
	// Livemode is the endpoint's mode (default: the first key's); Connect makes it the Connect
	// endpoint, which receives the connected accounts' events.
	Livemode *bool `json:"livemode"`
	Connect  bool  `json:"connect"`
}

// setupEndpoint serves POST /api/v1/endpoints/setup, as `ledger endpoints setup`: a new
// endpoint's signing secret is in the answer, once (Stripe shows it only at creation).
func (a *API) setupEndpoint(w http.ResponseWriter, r *http.Request) {
	var req setupRequest
	if !readBody(w, r, &req) {
		return
	}
	if req.URL == "" {
		req.URL = a.cfg.WebhookURL
	}
	if req.URL == "" {
		writeError(w, http.StatusBadRequest, "invalid_body", `url is required (or LEDGER_WEBHOOK_URL): the public URL of POST /webhooks/stripe`)
		return
	}
	if a.cfg.Stripe.APIKey == "" {
		writeError(w, http.StatusServiceUnavailable, "stripe_not_configured", "endpoints setup needs STRIPE_SECRET_KEY on this server")
		return
	}
	res, err := reconcile.SetupEndpoint(r.Context(), a.cfg.Stripe, reconcile.Setup{URL: req.URL, Livemode: req.Livemode, Connect: req.Connect})
	if err != nil {
		a.cfg.Logger.Warn("api: endpoints setup failed", "error", err)
		writeError(w, http.StatusBadGateway, "stripe_error", err.Error())
		return
	}
	ep := res.Endpoint
	out := map[string]any{"object": "endpoint_setup", "created": res.Created, "replaces": nullable(res.Replaces),
		"livemode": res.Livemode, "connect": res.Connect, "secret_variable": res.Variable,
		"endpoint": map[string]any{"id": ep.ID, "url": ep.URL, "api_version": ep.APIVersion, "enabled_events": ep.EnabledEvents, "status": ep.Status},
		"secret":   nullable(res.Secret)}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
