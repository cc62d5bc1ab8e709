package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/domain"
)

// EndpointProblem is one thing wrong with a webhook endpoint.
type EndpointProblem struct {
	Endpoint string   `json:"endpoint"` // we_…, "" when there is no endpoint at all
	Livemode bool     `json:"livemode"`
	Connect  bool     `json:"connect"` // a Connect endpoint (connected accounts' events)
	URL      string   `json:"url"`
	Problem  string   `json:"problem"` // none, disabled, missing_events, unpinned, api_version
	Detail   string   `json:"detail"`
	Missing  []string `json:"missing_events,omitempty"`
}

// listEndpoints reads every webhook endpoint of the account.
func listEndpoints(ctx context.Context, api *stripeAPI) ([]*stripe.WebhookEndpoint, error) {
	var out []*stripe.WebhookEndpoint
	lp := stripe.ListParams{Limit: stripe.Int64(100), Context: ctx}
	it := api.WebhookEndpoints.List(&stripe.WebhookEndpointListParams{ListParams: lp})
	for it.Next() {
		out = append(out, it.WebhookEndpoint())
	}
	if err := it.Err(); err != nil {
		return nil, apiError(ctx, "could not list webhook endpoints", err)
	}
	return out, nil
}

// CheckEndpoint lists what is wrong with one endpoint for the ledger's purposes.
func CheckEndpoint(ep *stripe.WebhookEndpoint) []EndpointProblem {
	var out []EndpointProblem
	p := func(problem, detail string) EndpointProblem {
		return EndpointProblem{Endpoint: ep.ID, URL: ep.URL, Problem: problem, Detail: detail}
	}
	if ep.Status != "enabled" {
		out = append(out, p("disabled", "Stripe sends nothing to a disabled endpoint, and never sends the events created meanwhile; "+
			"enable it, then run the events job over the gap"))
	}
	if !slices.Contains(ep.EnabledEvents, "*") {
		var missing []string
		for _, t := range domain.ReadModelEventTypes {
			if !slices.Contains(ep.EnabledEvents, t) {
				missing = append(missing, t)
			}
		}
		if len(missing) > 0 {
			e := p("missing_events", fmt.Sprintf("%d event types the read models need are not enabled", len(missing)))
			e.Missing = missing
			out = append(out, e)
		}
	}
	switch ep.APIVersion {
	case domain.PinnedAPIVersion:
	case "":
		// Unpinned: each event comes at the account's default when it was created, so an
		// account upgrade changes the shapes the endpoint sends without any change to it.
		out = append(out, p("unpinned", fmt.Sprintf("no API version is pinned: events are rendered at the account's default version, "+
			"which an upgrade changes; the read models read %s; `ledger endpoints setup` creates a pinned endpoint", domain.PinnedAPIVersion)))
	default:
		out = append(out, p("api_version", fmt.Sprintf("events are rendered at API version %s, the read models read %s; "+
			"Stripe cannot change an endpoint's version: `ledger endpoints setup` creates a new endpoint", ep.APIVersion, domain.PinnedAPIVersion)))
	}
	return out
}

// replaceHint names the endpoint a new one would replace, for the limit's error.
func replaceHint(replaces string) string {
	if replaces != "" {
		return "such as " + replaces + ", the endpoint at this URL on another API version"
	}
	return "the Dashboard lists them"
}

// MaxEndpoints is how many webhook endpoints Stripe lets an account have in a mode.
const MaxEndpoints = 16

// runEndpoints reports a mode's endpoints that are disabled, miss event types or use another API
// version (only those pointing at URL when the reconciler is given the ledger's public URL). A
// mode needs an endpoint for the platform's own events and, when it has connected accounts, a
// Connect endpoint for theirs: Stripe shows a Connect endpoint with its platform's application
// (ca_…) set, and an account endpoint without one. A missing one is a finding ("none").
func (r *Reconciler) runEndpoints(ctx context.Context, api *stripeAPI, rec *recorder, sc Scope) error {
	eps, err := listEndpoints(ctx, api)
	if err != nil {
		return err
	}
	wantConnect, err := r.wantsConnect(ctx, api)
	if err != nil {
		return err
	}
	if rec.run.Drift == nil {
		rec.run.Drift = map[string]int{}
	}
	ours := map[bool]int{} // by connect
	for _, ep := range eps {
		if r.cfg.WebhookURL != "" && ep.URL != r.cfg.WebhookURL {
			continue
		}
		connect := ep.Application != ""
		ours[connect]++
		rec.run.ObjectsChecked++
		for _, problem := range CheckEndpoint(ep) {
			problem.Livemode, problem.Connect = sc.Livemode, connect
			rec.run.Drift["endpoints."+problem.Problem]++
			rec.find(problem)
		}
	}
	mode := "test"
	if sc.Livemode {
		mode = "live"
	}
	for _, connect := range []bool{false, true} {
		if ours[connect] > 0 || (connect && !wantConnect) {
			continue
		}
		what, fix := "no "+mode+" webhook endpoint for the account's own events", "run `ledger endpoints setup --url URL`"
		if connect {
			what, fix = "no "+mode+" Connect webhook endpoint for the connected accounts' events",
				"create one with connect=true (POST /v1/webhook_endpoints) at the same URL"
		}
		if r.cfg.WebhookURL != "" {
			what += " points at " + r.cfg.WebhookURL
			fix = strings.ReplaceAll(fix, "URL", r.cfg.WebhookURL)
		}
		detail := what + ": Stripe sends none of them; " + fix
		rec.run.Drift["endpoints.none"]++
		rec.find(EndpointProblem{URL: r.cfg.WebhookURL, Livemode: sc.Livemode, Connect: connect, Problem: "none", Detail: detail})
	}
	return rec.save(ctx)
}

// wantsConnect reports whether a mode has connected accounts to receive events of: named ones,
// or (auto) any that GET /v1/accounts lists; a key that may not list accounts has none.
func (r *Reconciler) wantsConnect(ctx context.Context, api *stripeAPI) (bool, error) {
	switch spec := strings.TrimSpace(r.cfg.Stripe.Accounts); spec {
	case "none":
		return false, nil
	case "", "auto":
		accts, err := listAccounts(ctx, api)
		if err != nil {
			var se *stripe.Error
			if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != 429 {
				return false, nil
			}
			return false, apiError(ctx, "could not list connected accounts", err)
		}
		return len(accts) > 0, nil
	}
	return true, nil
}

// SetupResult is what `ledger endpoints setup` did.
type SetupResult struct {
	Endpoint *stripe.WebhookEndpoint
	Created  bool   // a new endpoint: Secret is its signing secret, shown once by Stripe
	Replaces string // an endpoint at the same URL with another API version, to delete once the new one works
	Secret   string
	// Livemode and Connect say which of Stripe's endpoints it is; Variable is the
	// STRIPE_WEBHOOK_SECRET_… variable its secret belongs in.
	Livemode, Connect bool
	Variable          string
}

// Setup says which endpoint to set up: the URL, the mode (nil: the first key's mode, the test
// key when only STRIPE_SECRET_KEY_TEST is set) and whether it is the Connect endpoint, which
// receives the connected accounts' events (Stripe's connect=true).
type Setup struct {
	URL      string
	Livemode *bool
	Connect  bool
}

// SecretVariable is the variable an endpoint's signing secret goes in.
func SecretVariable(livemode, connect bool) string {
	v := "STRIPE_WEBHOOK_SECRET_"
	if connect {
		v += "CONNECT_"
	}
	if livemode {
		return v + "LIVE"
	}
	return v + "TEST"
}

// SetupEndpoint makes sure a webhook endpoint at the URL is enabled with the events the read
// models need at API version 2023-10-16, in the mode and of the kind asked: it updates an existing
// one at that URL, version and kind, or creates one (Stripe cannot change an endpoint's API
// version, so one of another version is replaced by a new endpoint, which the caller must confirm
// and then delete the old one).
func SetupEndpoint(ctx context.Context, cfg StripeConfig, setup Setup) (SetupResult, error) {
	url := setup.URL
	if url == "" {
		return SetupResult{}, fmt.Errorf("--url is required: the public HTTPS URL of POST /webhooks/stripe")
	}
	keys, err := cfg.Keys()
	if err != nil {
		return SetupResult{}, err
	}
	var key string
	var live bool
	if setup.Livemode != nil {
		live = *setup.Livemode
		if key = keys[live]; key == "" {
			return SetupResult{}, fmt.Errorf("no %s key: STRIPE_SECRET_KEY (or STRIPE_SECRET_KEY_TEST) holds none, and an endpoint is set up with its mode's key",
				map[bool]string{true: "live", false: "test"}[live])
		}
	} else {
		// The first key's mode (the test key when only STRIPE_SECRET_KEY_TEST is set).
		key, live = keys[false], false
		if first := strings.TrimSpace(strings.Split(cfg.APIKey, ",")[0]); first != "" {
			key = first
			live, _ = KeyMode(first)
		}
	}
	api := newStripeAPI(cfg, key, nil, &Counters{})
	eps, err := listEndpoints(ctx, api)
	if err != nil {
		return SetupResult{}, err
	}
	events := stripe.StringSlice(domain.ReadModelEventTypes)
	res := SetupResult{Livemode: live, Connect: setup.Connect, Variable: SecretVariable(live, setup.Connect)}
	for _, ep := range eps {
		// A Connect endpoint names the platform's application; an account endpoint none.
		if ep.URL != url || (ep.Application != "") != setup.Connect {
			continue
		}
		if ep.APIVersion != domain.PinnedAPIVersion {
			res.Replaces = ep.ID
			continue
		}
		params := &stripe.WebhookEndpointParams{EnabledEvents: events, Disabled: stripe.Bool(false)}
		params.Context = ctx
		updated, err := api.WebhookEndpoints.Update(ep.ID, params)
		if err != nil {
			return res, apiError(ctx, "could not update webhook endpoint "+ep.ID, err)
		}
		res.Endpoint = updated
		return res, nil
	}
	if len(eps) >= MaxEndpoints {
		return res, fmt.Errorf("the %s account already has %d webhook endpoints, Stripe's limit: delete one it no longer needs (%s) before `ledger endpoints setup` can create one",
			map[bool]string{true: "live", false: "test"}[live], len(eps), replaceHint(res.Replaces))
	}
	params := &stripe.WebhookEndpointParams{URL: stripe.String(url), EnabledEvents: events,
		APIVersion: stripe.String(domain.PinnedAPIVersion), Description: stripe.String("stripe ledger")}
	if setup.Connect {
		params.Connect = stripe.Bool(true)
		params.Description = stripe.String("stripe ledger (Connect)")
	}
	params.Context = ctx
	created, err := api.WebhookEndpoints.New(params)
	if err != nil {
		return res, apiError(ctx, "could not create the webhook endpoint", err)
	}
	res.Endpoint, res.Created, res.Secret = created, true, created.Secret
	return res, nil
}
