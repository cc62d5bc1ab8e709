package stripesim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripeledger/ledger/stripesim"
)

var end = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type apiBundle struct {
	sim    *stripesim.Sim
	srv    *httptest.Server
	stripe *client.API
}

// setupAPI plays a 90-day account (no webhooks) and serves it; stripe-go talks to it unchanged.
func setupAPI(t *testing.T, cfg stripesim.Config, scfg stripesim.ServerConfig) *apiBundle {
	t.Helper()
	if cfg.End.IsZero() {
		cfg.End = end
	}
	if scfg.RateLimit == 0 {
		scfg.RateLimit = -1
	}
	sim := stripesim.New(cfg)
	sim.Run(time.Time{})
	srv := httptest.NewServer(stripesim.NewServer(sim, nil, scfg))
	t.Cleanup(srv.Close)
	sc := client.New("sk_test_sim", stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(srv.URL), MaxNetworkRetries: stripe.Int64(0), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}))
	return &apiBundle{sim: sim, srv: srv, stripe: sc}
}

// retained is the simulator's own list of events the API should serve, oldest first.
func retained(sim *stripesim.Sim) []*stripesim.Event {
	horizon := sim.Now().Add(-stripesim.Retention).Unix()
	var out []*stripesim.Event
	for _, ev := range sim.Events() {
		if ev.Created >= horizon {
			out = append(out, ev)
		}
	}
	return out
}

func ids(evs []*stripesim.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

func TestEventsPaginateWithStripeGo(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, stripesim.Config{Seed: 7, Customers: 60}, stripesim.ServerConfig{})
	want := retained(b.sim)
	if len(want) < 150 {
		t.Fatalf("only %d events in the last 30 days", len(want))
	}

	// Newest first, following starting_after, 100 a page.
	params := &stripe.EventListParams{}
	params.Limit = stripe.Int64(100)
	it := b.stripe.Events.List(params)
	var got []string
	var raw []byte
	for it.Next() {
		got = append(got, it.Event().ID)
		if raw == nil {
			raw = it.EventList().LastResponse.RawJSON
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	newestFirst := ids(want)
	slices.Reverse(newestFirst)
	if !slices.Equal(got, newestFirst) {
		t.Fatalf("newest-first walk: %d events, want %d", len(got), len(newestFirst))
	}
	if !strings.Contains(string(raw), `"object":"list"`) {
		t.Fatalf("raw page JSON not kept: %.80s", raw)
	}

	// Oldest first: ending_before the oldest retained event walks forward in time.
	params = &stripe.EventListParams{}
	params.Limit = stripe.Int64(37)
	params.EndingBefore = stripe.String(want[0].ID)
	it = b.stripe.Events.List(params)
	got = got[:0]
	for it.Next() {
		got = append(got, it.Event().ID)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, ids(want[1:])) {
		t.Fatalf("oldest-first walk: %d events, want %d", len(got), len(want)-1)
	}

	// Each event decodes, and GET /v1/events/{id} returns the same bytes as the list.
	ev, err := b.stripe.Events.Get(want[10].ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != want[10].ID || string(ev.Type) != want[10].Type || ev.Data == nil || len(ev.Data.Raw) == 0 {
		t.Fatalf("got %+v", ev)
	}
}

func TestEventFilters(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, stripesim.Config{Seed: 3, Customers: 60}, stripesim.ServerConfig{})
	all := retained(b.sim)
	list := func(p *stripe.EventListParams) []string {
		t.Helper()
		var out []string
		it := b.stripe.Events.List(p)
		for it.Next() {
			out = append(out, it.Event().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Reverse(out)
		return out
	}
	filter := func(keep func(*stripesim.Event) bool) []string {
		var out []string
		for _, ev := range all {
			if keep(ev) {
				out = append(out, ev.ID)
			}
		}
		return out
	}
	mid := all[len(all)/2].Created
	cases := map[string]struct {
		params *stripe.EventListParams
		keep   func(*stripesim.Event) bool
	}{
		"type":     {&stripe.EventListParams{Type: stripe.String("invoice.paid")}, func(e *stripesim.Event) bool { return e.Type == "invoice.paid" }},
		"wildcard": {&stripe.EventListParams{Type: stripe.String("customer.subscription.*")}, func(e *stripesim.Event) bool { return strings.HasPrefix(e.Type, "customer.subscription.") }},
		"types": {&stripe.EventListParams{Types: stripe.StringSlice([]string{"charge.failed", "charge.refunded"})}, func(e *stripesim.Event) bool {
			return e.Type == "charge.failed" || e.Type == "charge.refunded"
		}},
		"created gte": {&stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: mid}}, func(e *stripesim.Event) bool { return e.Created >= mid }},
		"created lt":  {&stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{LesserThan: mid}}, func(e *stripesim.Event) bool { return e.Created < mid }},
		"created gt and lte": {&stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThan: mid - 86400, LesserThanOrEqual: mid}}, func(e *stripesim.Event) bool {
			return e.Created > mid-86400 && e.Created <= mid
		}},
		// Nothing was delivered: no deliverer.
		"delivery_success=false": {&stripe.EventListParams{DeliverySuccess: stripe.Bool(false)}, func(*stripesim.Event) bool { return true }},
		"delivery_success=true":  {&stripe.EventListParams{DeliverySuccess: stripe.Bool(true)}, func(*stripesim.Event) bool { return false }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.params.Limit = stripe.Int64(100)
			got, want := list(tc.params), filter(tc.keep)
			if !slices.Equal(got, want) {
				t.Fatalf("got %d events, want %d", len(got), len(want))
			}
		})
	}

	// Retention: older events are gone from the API, by list and by ID.
	oldest := b.sim.Events()[0]
	if oldest.Created >= b.sim.Now().Add(-stripesim.Retention).Unix() {
		t.Fatal("the account is younger than the retention window")
	}
	_, err := b.stripe.Events.Get(oldest.ID, nil)
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != 404 || se.Code != stripe.ErrorCodeResourceMissing {
		t.Fatalf("event past retention: %v", err)
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, stripesim.Config{Seed: 5, Customers: 10}, stripesim.ServerConfig{})
	get := func(path, key string) (int, map[string]string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Error map[string]string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error, resp.Header
	}
	types21 := strings.Repeat("types[]=charge.failed&", 21)
	cases := []struct {
		name, path, key string
		status          int
		param, code     string
	}{
		{"limit 0", "/v1/events?limit=0", "sk_test_x", 400, "limit", ""},
		{"limit 101", "/v1/events?limit=101", "sk_test_x", 400, "limit", ""},
		{"type and types", "/v1/events?type=a&types[]=b", "sk_test_x", 400, "types", ""},
		{"21 types", "/v1/events?" + types21, "sk_test_x", 400, "types", ""},
		{"both cursors", "/v1/events?starting_after=evt_1&ending_before=evt_2", "sk_test_x", 400, "ending_before", ""},
		{"unknown cursor", "/v1/events?starting_after=evt_nope", "sk_test_x", 400, "starting_after", "resource_missing"},
		{"bad created", "/v1/events?created[gte]=yesterday", "sk_test_x", 400, "created[gte]", ""},
		{"no key", "/v1/events", "", 401, "", ""},
		{"bad key", "/v1/events", "pk_test_publishable", 401, "", ""},
		{"unknown event", "/v1/events/evt_nope", "sk_test_x", 404, "id", "resource_missing"},
		{"unknown charge", "/v1/charges/ch_nope", "sk_test_x", 404, "id", "resource_missing"},
		{"unknown path", "/v1/nothing", "sk_test_x", 404, "", ""},
	}
	for _, tc := range cases {
		status, e, _ := get(tc.path, tc.key)
		if status != tc.status || e["type"] != "invalid_request_error" || e["message"] == "" || e["param"] != tc.param || e["code"] != tc.code {
			t.Errorf("%s: %d %v", tc.name, status, e)
		}
	}

	limited := setupAPI(t, stripesim.Config{Seed: 5, Customers: 5}, stripesim.ServerConfig{RateLimit: 5})
	b = limited
	var got429 bool
	for range 20 {
		status, e, h := get("/v1/events?limit=1", "sk_test_x")
		if status == 429 {
			got429 = e["code"] == "rate_limit" && h.Get("Stripe-Rate-Limited-Reason") != ""
			break
		}
	}
	if !got429 {
		t.Fatal("20 requests at once never met the 5/s rate limit with code rate_limit and its header")
	}
	// stripe-go surfaces it as a rate_limit error (and does not retry it).
	_, err := limited.stripe.Events.Get("evt_nope", nil)
	var se *stripe.Error
	if !errors.As(err, &se) || (se.HTTPStatusCode != 429 && se.HTTPStatusCode != 404) {
		t.Fatalf("%v", err)
	}
}

func TestObjectLists(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, stripesim.Config{Seed: 11, Customers: 80}, stripesim.ServerConfig{})
	var truth struct {
		Subscriptions []stripe.Subscription `json:"subscriptions"`
		Charges       []stripe.Charge       `json:"charges"`
		Customers     []stripe.Customer     `json:"customers"`
	}
	tr := b.sim.Truth()
	for kind, dst := range map[string]any{"subscriptions": &truth.Subscriptions, "charges": &truth.Charges, "customers": &truth.Customers} {
		if err := json.Unmarshal(tr.Objects[kind], dst); err != nil {
			t.Fatal(err)
		}
	}
	canceled := 0
	for _, s := range truth.Subscriptions {
		if s.Status == stripe.SubscriptionStatusCanceled {
			canceled++
		}
	}
	if canceled == 0 {
		t.Fatal("no canceled subscriptions in the account")
	}
	count := func(status string) int {
		p := &stripe.SubscriptionListParams{}
		p.Limit = stripe.Int64(7)
		if status != "" {
			p.Status = stripe.String(status)
		}
		n := 0
		it := b.stripe.Subscriptions.List(p)
		for it.Next() {
			if it.Subscription().Items == nil || len(it.Subscription().Items.Data) == 0 {
				t.Fatal("subscription without items")
			}
			n++
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := count(""); got != len(truth.Subscriptions)-canceled {
		t.Fatalf("default list: %d, want %d (canceled left out)", got, len(truth.Subscriptions)-canceled)
	}
	if got := count("all"); got != len(truth.Subscriptions) {
		t.Fatalf("status=all: %d, want %d", got, len(truth.Subscriptions))
	}
	n := 0
	it := b.stripe.Charges.List(&stripe.ChargeListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(100)}})
	for it.Next() {
		n++
	}
	if it.Err() != nil || n != len(truth.Charges) {
		t.Fatalf("charges: %d of %d (%v)", n, len(truth.Charges), it.Err())
	}
	c, err := b.stripe.Customers.Get(truth.Customers[3].ID, nil)
	if err != nil || c.ID != truth.Customers[3].ID || c.Email == "" {
		t.Fatalf("customer: %+v %v", c, err)
	}
	for _, path := range []string{"/v1/invoices", "/v1/refunds", "/v1/disputes", "/v1/checkout/sessions"} {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, b.srv.URL+path+"?limit=3", nil)
		req.Header.Set("Authorization", "Bearer sk_test_x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
}
