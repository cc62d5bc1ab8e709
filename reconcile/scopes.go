package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"

	"github.com/stripeledger/ledger/domain"
)

// Scope is one of the books a Stripe key reads: a mode (the key's) and an account, the platform's
// own ("") or a connected account's (acct_…, read with the Stripe-Account header). Stripe keeps
// them apart — objects, events, cursors — and so does every job: each scope has its own window,
// proven coverage and cursor.
type Scope struct {
	Livemode bool
	Account  string
}

func (sc Scope) String() string {
	mode, acct := "test", sc.Account
	if sc.Livemode {
		mode = "live"
	}
	if acct == "" {
		acct = "platform"
	}
	return mode + "/" + acct
}

// account is the scope's account as the database holds it: NULL for the platform's own.
func (sc Scope) account() *string {
	if sc.Account == "" {
		return nil
	}
	return &sc.Account
}

// ScopeRun is what a run did in one scope: an element of the run's `scopes` JSON column. Its
// counters are the scope's share of the run's totals.
type ScopeRun struct {
	Livemode bool    `json:"livemode"`
	Account  *string `json:"account"` // null for the platform's own account
	// Status is running, succeeded, failed (Error says why; the run goes on with the other
	// scopes and ends partial), cancelled, or skipped (the run it resumes had finished it).
	Status     string     `json:"status"`
	Error      string     `json:"error,omitempty"`
	WindowFrom *time.Time `json:"window_from,omitempty"`
	WindowTo   *time.Time `json:"window_to,omitempty"`
	Cursor     string     `json:"cursor,omitempty"`
	// Explicit marks a window asked for by hand (--from, --to, --since): a scheduled run does
	// not resume it, since its window is not contiguous with the proven coverage.
	Explicit       bool           `json:"explicit,omitempty"`
	KindsDone      []domain.Kind  `json:"kinds_done,omitempty"` // objects job: kinds listed in full
	Requests       int            `json:"requests"`
	RateLimited    int            `json:"rate_limited"`
	EventsSeen     int            `json:"events_seen"`
	MissingFound   int            `json:"missing_found"`
	Repaired       int            `json:"repaired"`
	ObjectsChecked int            `json:"objects_checked"`
	Drift          map[string]int `json:"drift,omitempty"`

	// base is the run's totals when the scope began: the scope's counters are the difference.
	base scopeBase
}

type scopeBase struct {
	requests, rateLimited, eventsSeen, missing, repaired, checked int
	drift                                                         map[string]int
}

// Scope is the scope the record is of.
func (s ScopeRun) Scope() Scope {
	sc := Scope{Livemode: s.Livemode}
	if s.Account != nil {
		sc.Account = *s.Account
	}
	return sc
}

// done reports whether a resumed run need not do the scope again.
func (s ScopeRun) done() bool { return s.Status == "succeeded" || s.Status == "skipped" }

// ScopeFilter limits a run to some scopes: a mode (nil: every configured one) and an account
// ("" or "all": every account; "platform": the platform's own; acct_…: that connected account).
type ScopeFilter struct {
	Livemode *bool
	Account  string
}

// accountID is what a connected account's ID looks like (the API's and the CLI's bound).
var accountID = regexp.MustCompile(`^acct_[A-Za-z0-9]{1,64}$`)

// ParseAccountFilter checks an --account value.
func ParseAccountFilter(s string) (string, error) {
	switch {
	case s == "" || s == "all" || s == "platform":
		return s, nil
	case accountID.MatchString(s):
		return s, nil
	}
	return "", fmt.Errorf("account %q: want all, platform or a connected account's acct_…", s)
}

func (f ScopeFilter) keeps(sc Scope) bool {
	if f.Livemode != nil && *f.Livemode != sc.Livemode {
		return false
	}
	switch f.Account {
	case "", "all":
		return true
	case "platform":
		return sc.Account == ""
	}
	return sc.Account == f.Account
}

// AccountsProblem is a finding of a run that could not list a mode's connected accounts.
type AccountsProblem struct {
	Livemode bool   `json:"livemode"`
	Problem  string `json:"problem"` // accounts_unlisted
	Detail   string `json:"detail"`
}

// connectedAccount is what the reconciler reads of GET /v1/accounts.
type connectedAccount struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
}

// errAccountsUnlisted is a mode whose connected accounts could not be listed for a reason other
// than the key's: the run covers the platform and ends partial.
var errAccountsUnlisted = errors.New("connected accounts could not be listed")

// scopesFor is every scope a run of job covers, in order: per mode (live first), the platform's
// account, then each connected account (newest first, as Stripe lists them). The endpoints job
// covers each mode's platform account only: webhook endpoints belong to the platform.
//
// With Accounts "auto" the connected accounts are listed once per mode and run. A key that may
// not list accounts (Stripe answers 401, 403 or 404: a standard account's own key, or a
// restricted key without Connect access) has no connected accounts: the run covers the platform
// and says so in a finding. Any other failure to list them also leaves the platform alone
// reconciled, and the run ends partial (errAccountsUnlisted).
func (r *Reconciler) scopesFor(ctx context.Context, rec *recorder, job Job, apis map[bool]*stripeAPI, filter ScopeFilter) ([]Scope, map[Scope]int64, error) {
	var out []Scope
	created := map[Scope]int64{}
	var unlisted error
	for _, live := range []bool{true, false} {
		api := apis[live]
		if api == nil || (filter.Livemode != nil && *filter.Livemode != live) {
			continue
		}
		out = append(out, Scope{Livemode: live})
		if job == JobEndpoints {
			continue
		}
		spec := strings.TrimSpace(r.cfg.Stripe.Accounts)
		switch {
		case spec == "none":
		case spec == "" || spec == "auto":
			if filter.Account == "platform" {
				continue // no need to list them
			}
			accts, err := listAccounts(ctx, api)
			if err != nil {
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				refused := false
				var se *stripe.Error
				if errors.As(err, &se) {
					switch se.HTTPStatusCode {
					case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
						refused = true
					}
				}
				detail := "GET /v1/accounts failed (" + err.Error() + "): only the platform's own account is reconciled in this mode"
				if refused {
					detail = "the key may not list connected accounts (" + err.Error() + "): it is not a Connect platform's, " +
						"so only its own account is reconciled in this mode"
				} else {
					unlisted = errAccountsUnlisted
				}
				r.cfg.Logger.Warn("reconcile: connected accounts not listed", "livemode", live, "detail", detail)
				rec.find(AccountsProblem{Livemode: live, Problem: "accounts_unlisted", Detail: detail})
				continue
			}
			for _, a := range accts {
				sc := Scope{Livemode: live, Account: a.ID}
				out = append(out, sc)
				created[sc] = a.Created
			}
		default:
			for a := range strings.SplitSeq(spec, ",") {
				a = strings.TrimSpace(a)
				if a != "" {
					out = append(out, Scope{Livemode: live, Account: a})
				}
			}
		}
	}
	out = slices.DeleteFunc(out, func(sc Scope) bool { return !filter.keeps(sc) })
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("no scope to reconcile: the filter (%s) matches none of the configured modes and accounts", filterString(filter))
	}
	return out, created, unlisted
}

func filterString(f ScopeFilter) string {
	mode := "every mode"
	if f.Livemode != nil {
		mode = "live"
		if !*f.Livemode {
			mode = "test"
		}
	}
	acct := f.Account
	if acct == "" {
		acct = "all"
	}
	return mode + ", account " + acct
}

// listAccounts pages through GET /v1/accounts.
func listAccounts(ctx context.Context, api *stripeAPI) ([]connectedAccount, error) {
	var out []connectedAccount
	after := ""
	for {
		lp := &stripe.ListParams{Limit: stripe.Int64(100), Context: ctx}
		if after != "" {
			lp.StartingAfter = stripe.String(after)
		}
		var pg struct {
			Data    []connectedAccount `json:"data"`
			HasMore bool               `json:"has_more"`
		}
		if err := getRaw(ctx, api, "/v1/accounts", lp, &pg); err != nil {
			return nil, err
		}
		out = append(out, pg.Data...)
		if !pg.HasMore || len(pg.Data) == 0 {
			return out, nil
		}
		after = pg.Data[len(pg.Data)-1].ID
	}
}

// rawResponse keeps a response's bytes.
type rawResponse struct {
	stripe.APIResource
}

// getRaw makes one GET with stripe-go's backend (its headers, Stripe-Account from params, error
// decoding) and decodes the body into v. params is a list's parameters (ListParams, or a struct
// embedding it), form-encoded into the query as stripe-go's own iterators do.
func getRaw(ctx context.Context, api *stripeAPI, path string, params stripe.ListParamsContainer, v any) error {
	body := &form.Values{}
	form.AppendTo(body, params)
	common := params.GetListParams().ToParams()
	common.Context = ctx
	raw, err := callGet(api, path, body, common)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("could not read %s: %w", path, err)
	}
	return nil
}

// callGet is one GET; the body is returned as Stripe sent it.
func callGet(api *stripeAPI, path string, body *form.Values, params *stripe.Params) ([]byte, error) {
	var resp rawResponse
	if err := api.Customers.B.CallRaw(http.MethodGet, path, api.Customers.Key, body, params, &resp); err != nil {
		return nil, err
	}
	if resp.LastResponse == nil {
		return nil, errors.New("no response")
	}
	return resp.LastResponse.RawJSON, nil
}

// beginScope makes sc the scope the recorder's counters go to.
func (rec *recorder) beginScope(sr *ScopeRun) {
	r := rec.run
	sr.base = scopeBase{requests: int(rec.counters.Requests.Load()), rateLimited: int(rec.counters.RateLimited.Load()),
		eventsSeen: r.EventsSeen, missing: r.MissingFound, repaired: r.Repaired, checked: r.ObjectsChecked, drift: maps.Clone(r.Drift)}
	sr.Status = "running"
	rec.cur = sr
}

// tally brings the current scope's counters up to date.
func (rec *recorder) tally() {
	sr := rec.cur
	if sr == nil {
		return
	}
	r := rec.run
	b := sr.base
	sr.Requests, sr.RateLimited = int(rec.counters.Requests.Load())-b.requests, int(rec.counters.RateLimited.Load())-b.rateLimited
	sr.EventsSeen, sr.MissingFound, sr.Repaired, sr.ObjectsChecked = r.EventsSeen-b.eventsSeen, r.MissingFound-b.missing,
		r.Repaired-b.repaired, r.ObjectsChecked-b.checked
	sr.Drift = nil
	for k, v := range r.Drift {
		if d := v - b.drift[k]; d > 0 {
			if sr.Drift == nil {
				sr.Drift = map[string]int{}
			}
			sr.Drift[k] = d
		}
	}
	if sr.Cursor != "" {
		r.Cursor = sr.Scope().String() + " " + sr.Cursor
	}
	// The run's window spans its scopes'.
	for _, s := range r.Scopes {
		if s.WindowFrom != nil && (r.WindowFrom == nil || s.WindowFrom.Before(*r.WindowFrom)) {
			r.WindowFrom = s.WindowFrom
		}
		if s.WindowTo != nil && (r.WindowTo == nil || s.WindowTo.After(*r.WindowTo)) {
			r.WindowTo = s.WindowTo
		}
	}
}

// AccountOrNil is the scope's account as the read models hold it: nil for the platform's own.
func (sc Scope) AccountOrNil() *string { return sc.account() }
