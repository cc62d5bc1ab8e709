package reconcile

import (
	"context"
	"fmt"
	"slices"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/domain"
)

// EndpointProblem is one thing wrong with a webhook endpoint.
type EndpointProblem struct {
	Endpoint string   `json:"endpoint"` // we_…, "" when there is no endpoint at all
	URL      string   `json:"url"`
	Problem  string   `json:"problem"` // none, disabled, missing_events, api_version
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
	if ep.APIVersion != domain.PinnedAPIVersion {
		v := ep.APIVersion
		if v == "" {
			v = "the account's default"
		}
		out = append(out, p("api_version", fmt.Sprintf("events are rendered at API version %s, the read models read %s; "+
			"Stripe cannot change an endpoint's version: `ledger endpoints setup` creates a new endpoint", v, domain.PinnedAPIVersion)))
	}
	return out
}

// runEndpoints reports endpoints that are disabled, miss event types or use another API version
// (only those pointing at URL when the reconciler is given the ledger's public URL).
func (r *Reconciler) runEndpoints(ctx context.Context, api *stripeAPI, rec *recorder) error {
	eps, err := listEndpoints(ctx, api)
	if err != nil {
		return err
	}
	rec.run.Drift = map[string]int{}
	var ours int
	for _, ep := range eps {
		if r.cfg.WebhookURL != "" && ep.URL != r.cfg.WebhookURL {
			continue
		}
		ours++
		rec.run.ObjectsChecked++
		for _, problem := range CheckEndpoint(ep) {
			rec.run.Drift["endpoints."+problem.Problem]++
			rec.find(problem)
		}
	}
	if ours == 0 {
		detail := "the account has no webhook endpoint: Stripe sends no events; run `ledger endpoints setup --url URL`"
		if r.cfg.WebhookURL != "" {
			detail = "no webhook endpoint points at " + r.cfg.WebhookURL + "; run `ledger endpoints setup --url " + r.cfg.WebhookURL + "`"
		}
		rec.run.Drift["endpoints.none"]++
		rec.find(EndpointProblem{URL: r.cfg.WebhookURL, Problem: "none", Detail: detail})
	}
	return rec.save(ctx)
}

// SetupResult is what `ledger endpoints setup` did.
type SetupResult struct {
	Endpoint *stripe.WebhookEndpoint
	Created  bool   // a new endpoint: Secret is its signing secret, shown once by Stripe
	Replaces string // an endpoint at the same URL with another API version, to delete once the new one works
	Secret   string
}

// SetupEndpoint makes sure a webhook endpoint at url is enabled with the events the read models
// need at API version 2023-10-16: it updates an existing one at that URL and version, or creates
// one (Stripe cannot change an endpoint's API version, so one of another version is replaced by
// a new endpoint, which the caller must confirm and then delete the old one).
func SetupEndpoint(ctx context.Context, cfg StripeConfig, url string) (SetupResult, error) {
	if url == "" {
		return SetupResult{}, fmt.Errorf("--url is required: the public HTTPS URL of POST /webhooks/stripe")
	}
	api, err := newStripeAPI(cfg, &Counters{})
	if err != nil {
		return SetupResult{}, err
	}
	eps, err := listEndpoints(ctx, api)
	if err != nil {
		return SetupResult{}, err
	}
	events := stripe.StringSlice(domain.ReadModelEventTypes)
	var res SetupResult
	for _, ep := range eps {
		if ep.URL != url {
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
	params := &stripe.WebhookEndpointParams{URL: stripe.String(url), EnabledEvents: events,
		APIVersion: stripe.String(domain.PinnedAPIVersion), Description: stripe.String("stripe ledger")}
	params.Context = ctx
	created, err := api.WebhookEndpoints.New(params)
	if err != nil {
		return res, apiError(ctx, "could not create the webhook endpoint", err)
	}
	res.Endpoint, res.Created, res.Secret = created, true, created.Secret
	return res, nil
}
