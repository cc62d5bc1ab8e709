package stripesim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

const (
	liveKey = "sk_live_platformsimkey0001"
	testKey = "sk_test_platformsimkey0002"
)

// small is a platform that plays in well under a second.
func small(seed uint64) stripesim.PlatformConfig {
	return stripesim.PlatformConfig{Seed: seed, End: end, Duration: 40 * 24 * time.Hour, Accounts: 3,
		Customers: 12, TestCustomers: 6, AccountCustomers: 8, AccountTestCustomers: 4}
}

type platformBundle struct {
	p      *stripesim.Platform
	ds     stripesim.PlatformDeliverers
	server *stripesim.Server
	url    string
	live   *client.API
	test   *client.API
}

// setupPlatform plays a platform to its end (delivering to the endpoints dc names) and serves it
// with the two keys.
func setupPlatform(t *testing.T, cfg stripesim.PlatformConfig, dc stripesim.PlatformDelivery, scfg stripesim.ServerConfig) *platformBundle {
	t.Helper()
	p := stripesim.NewPlatform(cfg)
	ds := p.Deliverers(dc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Runner(ds).Run(ctx); err != nil {
		t.Fatal(err)
	}
	scfg.LiveKey, scfg.TestKey = liveKey, testKey
	if scfg.RateLimit == 0 {
		scfg.RateLimit, scfg.LiveRateLimit = -1, -1
	}
	server, err := stripesim.NewPlatformServer(p, ds, scfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	return &platformBundle{p: p, ds: ds, server: server, url: srv.URL, live: stripeClient(srv.URL, liveKey), test: stripeClient(srv.URL, testKey)}
}

func stripeClient(url, key string) *client.API {
	return client.New(key, stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(url), MaxNetworkRetries: stripe.Int64(0), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}))
}

func (b *platformBundle) client(live bool) *client.API {
	if live {
		return b.live
	}
	return b.test
}

func TestEnvelopeCarriesConnectedAccount(t *testing.T) {
	t.Parallel()
	const acct = "acct_1ConnectedSim01"
	for _, account := range []string{"", acct} {
		sim := stripesim.New(stripesim.Config{Seed: 8, Customers: 10, End: end, Account: account, AccountAPIVersion: "2020-08-27"})
		sim.Run(time.Time{})
		if len(sim.Events()) == 0 {
			t.Fatal("no events")
		}
		for _, ev := range sim.Events() {
			for _, body := range [][]byte{ev.Webhook, ev.API} {
				var env map[string]json.RawMessage
				if err := json.Unmarshal(body, &env); err != nil {
					t.Fatal(err)
				}
				got, has := env["account"]
				switch {
				case account == "" && has:
					t.Fatalf("%s: an account's own event carries account %s", ev.ID, got)
				case account != "" && string(got) != `"`+acct+`"`:
					t.Fatalf("%s: account %s, want %q", ev.ID, got, acct)
				}
				var se stripe.Event
				if err := json.Unmarshal(body, &se); err != nil || se.Account != account || se.ID != ev.ID {
					t.Fatalf("stripe-go reads account %q (%v)", se.Account, err)
				}
			}
		}
	}
}

func TestPlatformIsStableBySeed(t *testing.T) {
	t.Parallel()
	render := func(seed uint64) (ids []string, bodies [][]byte) {
		p := stripesim.NewPlatform(small(seed))
		p.Run(time.Time{})
		ids = append(ids, p.ID(), p.Application())
		for _, a := range p.Accounts() {
			ids = append(ids, a.ID)
		}
		for _, s := range p.Sims() {
			for _, ev := range s.Events() {
				bodies = append(bodies, ev.Webhook)
			}
		}
		return ids, bodies
	}
	a, ea := render(4)
	b, eb := render(4)
	c, _ := render(5)
	if !slices.Equal(a, b) || len(ea) != len(eb) {
		t.Fatalf("two runs of seed 4: %v vs %v", a, b)
	}
	for i := range ea {
		if !bytes.Equal(ea[i], eb[i]) {
			t.Fatalf("event %d differs between runs", i)
		}
	}
	if slices.Equal(a, c) {
		t.Fatal("seeds 4 and 5 gave the same IDs")
	}
	for _, id := range a[2:] {
		if !strings.HasPrefix(id, "acct_") || len(id) != len("acct_")+16 {
			t.Fatalf("account ID %q", id)
		}
	}
	if !strings.HasPrefix(a[1], "ca_") {
		t.Fatalf("application %q", a[1])
	}
}

// Each scope is its own account: with the key of its mode and Stripe-Account set, stripe-go sees
// exactly that scope's events and objects, and nothing of the others'.
func TestStripeAccountRoutesToTheScope(t *testing.T) {
	t.Parallel()
	b := setupPlatform(t, small(2), stripesim.PlatformDelivery{}, stripesim.ServerConfig{})
	seenCustomers := map[string]stripesim.Scope{}
	for _, sc := range b.p.Scopes() {
		t.Run(sc.String(), func(t *testing.T) {
			sim := b.p.Sim(sc)
			c := b.client(sc.Livemode)

			ep := &stripe.EventListParams{}
			ep.Limit = stripe.Int64(100)
			if sc.Account != "" {
				ep.SetStripeAccount(sc.Account)
			}
			var got []string
			it := c.Events.List(ep)
			for it.Next() {
				ev := it.Event()
				if ev.Account != sc.Account || ev.Livemode != sc.Livemode {
					t.Fatalf("%s: account %q livemode %v", ev.ID, ev.Account, ev.Livemode)
				}
				got = append(got, ev.ID)
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			want := ids(retained(sim))
			slices.Reverse(want)
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("events: got %d, want %d", len(got), len(want))
			}

			cp := &stripe.CustomerListParams{}
			cp.Limit = stripe.Int64(100)
			if sc.Account != "" {
				cp.SetStripeAccount(sc.Account)
			}
			n := 0
			ci := c.Customers.List(cp)
			for ci.Next() {
				cus := ci.Customer()
				if cus.Livemode != sc.Livemode {
					t.Fatalf("customer %s livemode %v", cus.ID, cus.Livemode)
				}
				n++
			}
			if ci.Err() != nil || n != sim.TruthMetrics().Counts["customers"] {
				t.Fatalf("customers: %d of %d (%v)", n, sim.TruthMetrics().Counts["customers"], ci.Err())
			}

			// By ID: an event and a charge of this scope, reached through it.
			last := want[0]
			gp := &stripe.EventParams{}
			if sc.Account != "" {
				gp.SetStripeAccount(sc.Account)
			}
			if ev, err := c.Events.Get(last, gp); err != nil || ev.ID != last {
				t.Fatalf("event by ID: %v", err)
			}
			var tr struct {
				Customers []stripe.Customer `json:"customers"`
			}
			if err := json.Unmarshal(sim.Truth().Objects["customers"], &tr.Customers); err != nil {
				t.Fatal(err)
			}
			for _, cus := range tr.Customers {
				seenCustomers[cus.ID] = sc
			}
		})
	}
	if len(seenCustomers) == 0 {
		t.Fatal("no customers")
	}

	// An object of one scope does not exist in another: the platform's live customer, asked of
	// each connected account in live mode and of the platform in test mode.
	var probe string
	for id, sc := range seenCustomers {
		if sc == (stripesim.Scope{Livemode: true}) {
			probe = id
			break
		}
	}
	for _, a := range b.p.Accounts() {
		params := &stripe.CustomerParams{}
		params.SetStripeAccount(a.ID)
		_, err := b.live.Customers.Get(probe, params)
		var se *stripe.Error
		if !errors.As(err, &se) || se.HTTPStatusCode != 404 {
			t.Fatalf("%s's customer read through %s: %v", probe, a.ID, err)
		}
	}
	if _, err := b.test.Customers.Get(probe, nil); err == nil {
		t.Fatalf("a live customer read with the test key")
	}
	// The platform's own account ID in Stripe-Account is the platform itself.
	params := &stripe.CustomerParams{}
	params.SetStripeAccount(b.p.ID())
	if c, err := b.live.Customers.Get(probe, params); err != nil || c.ID != probe {
		t.Fatalf("the platform through its own ID: %v", err)
	}
}

func TestAccountsList(t *testing.T) {
	t.Parallel()
	b := setupPlatform(t, small(3), stripesim.PlatformDelivery{}, stripesim.ServerConfig{})
	want := b.p.Accounts()
	for _, live := range []bool{true, false} {
		params := &stripe.AccountListParams{}
		params.Limit = stripe.Int64(2) // pages, following starting_after
		it := b.client(live).Accounts.List(params)
		got := map[string]*stripe.Account{}
		var order []int64
		for it.Next() {
			a := it.Account()
			got[a.ID] = a
			order = append(order, a.Created)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || !slices.IsSortedFunc(order, func(a, b int64) int { return int(b - a) }) {
			t.Fatalf("live=%v: %d accounts (want %d), created %v", live, len(got), len(want), order)
		}
		for _, w := range want {
			a := got[w.ID]
			if a == nil || a.Object != "account" || string(a.Type) != w.Type || !a.ChargesEnabled || a.Created != w.Created ||
				a.Capabilities == nil || a.Capabilities.CardPayments != stripe.AccountCapabilityStatusActive {
				t.Fatalf("account %s: %+v", w.ID, a)
			}
		}
	}
	// A connected account has no connected accounts of its own.
	params := &stripe.AccountListParams{}
	params.SetStripeAccount(want[0].ID)
	it := b.live.Accounts.List(params)
	if it.Next() || it.Err() != nil {
		t.Fatalf("a connected account lists accounts (%v)", it.Err())
	}
	if a, err := b.live.Accounts.GetByID(want[1].ID, nil); err != nil || a.ID != want[1].ID {
		t.Fatalf("account by ID: %v", err)
	}
}

func TestUnreachableAccountIs403(t *testing.T) {
	t.Parallel()
	b := setupPlatform(t, small(6), stripesim.PlatformDelivery{}, stripesim.ServerConfig{})
	accts := b.p.Accounts()
	listOne := func(c *client.API, acct string) error {
		p := &stripe.EventListParams{}
		p.Limit = stripe.Int64(1)
		p.SetStripeAccount(acct)
		it := c.Events.List(p)
		for it.Next() {
		}
		return it.Err()
	}
	want403 := func(err error, key, acct string) {
		t.Helper()
		var se *stripe.Error
		if !errors.As(err, &se) || se.HTTPStatusCode != 403 || se.Type != stripe.ErrorTypeInvalidRequest ||
			se.Code != stripe.ErrorCodeAccountInvalid {
			t.Fatalf("%s: %v", acct, err)
		}
		wantMsg := fmt.Sprintf("The provided key '%s****%s' does not have access to account '%s'", key[:8], key[len(key)-4:], acct)
		if !strings.HasPrefix(se.Msg, wantMsg) || strings.Contains(se.Msg, key) {
			t.Fatalf("message %q", se.Msg)
		}
	}
	want403(listOne(b.test, "acct_NotConnected00001"), testKey, "acct_NotConnected00001")

	// Revoking one account leaves the others (and the platform) reachable, in both modes.
	b.server.Revoke(accts[1].ID)
	for _, c := range []*client.API{b.live, b.test} {
		key := liveKey
		if c == b.test {
			key = testKey
		}
		want403(listOne(c, accts[1].ID), key, accts[1].ID)
		for _, a := range []string{accts[0].ID, accts[2].ID, b.p.ID()} {
			if err := listOne(c, a); err != nil {
				t.Fatalf("%s after revoking %s: %v", a, accts[1].ID, err)
			}
		}
		params := &stripe.ChargeParams{}
		params.SetStripeAccount(accts[1].ID)
		_, err := c.Charges.Get("ch_any", params)
		want403(err, key, accts[1].ID)
	}
	b.server.Restore(accts[1].ID)
	if err := listOne(b.live, accts[1].ID); err != nil {
		t.Fatalf("after restoring: %v", err)
	}

	// Only the two configured keys are accepted.
	for _, key := range []string{"sk_test_someoneelse00001", "sk_live_someoneelse00001", "pk_test_x"} {
		_, err := stripeClient(b.url, key).Events.Get("evt_x", nil)
		var se *stripe.Error
		if !errors.As(err, &se) || se.HTTPStatusCode != 401 || strings.Contains(se.Msg, key) {
			t.Fatalf("%s: %v", key, err)
		}
	}
	if _, err := stripesim.NewPlatformServer(b.p, b.ds, stripesim.ServerConfig{LiveKey: testKey}); err == nil {
		t.Fatal("a test key accepted as the live key")
	}
}

// The limiter is the key's: requests for connected accounts spend from it, the other mode's key
// has its own.
func TestRateLimitIsPerKeySharedByAccounts(t *testing.T) {
	t.Parallel()
	// A rate so low that no token comes back during the test: exactly Burst requests pass.
	b := setupPlatform(t, small(7), stripesim.PlatformDelivery{},
		stripesim.ServerConfig{RateLimit: 0.0001, LiveRateLimit: 0.0001, Burst: 3})
	accts := b.p.Accounts()
	get := func(c *client.API, acct string) error {
		p := &stripe.EventParams{}
		if acct != "" {
			p.SetStripeAccount(acct)
		}
		_, err := c.Events.Get("evt_none", p)
		var se *stripe.Error
		if errors.As(err, &se) && se.HTTPStatusCode == 404 {
			return nil // allowed through, and the event does not exist
		}
		return err
	}
	for i, acct := range []string{accts[0].ID, accts[1].ID, ""} {
		if err := get(b.test, acct); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	for _, acct := range []string{accts[2].ID, ""} {
		err := get(b.test, acct)
		var se *stripe.Error
		if !errors.As(err, &se) || se.HTTPStatusCode != 429 || se.Code != stripe.ErrorCodeRateLimit {
			t.Fatalf("fourth test-key request (account %q): %v", acct, err)
		}
	}
	if err := get(b.live, accts[2].ID); err != nil {
		t.Fatalf("the live key is limited by the test key's requests: %v", err)
	}
}

func TestWebhookEndpointsPerMode(t *testing.T) {
	t.Parallel()
	var dc stripesim.PlatformDelivery
	for _, e := range stripesim.Endpoints {
		_, url := newEndpoint(t, "whsec_"+e.String())
		dc[e] = stripesim.DeliveryConfig{URL: url + "/" + e.String(), Secrets: []string{"whsec_" + e.String()}}
	}
	b := setupPlatform(t, small(9), dc, stripesim.ServerConfig{})
	for _, live := range []bool{true, false} {
		it := b.client(live).WebhookEndpoints.List(&stripe.WebhookEndpointListParams{})
		got := map[string]*stripe.WebhookEndpoint{}
		for it.Next() {
			got[it.WebhookEndpoint().URL] = it.WebhookEndpoint()
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("live=%v: %d endpoints", live, len(got))
		}
		for _, e := range stripesim.Endpoints {
			ep := got[dc[e].URL]
			if e.Livemode() != live {
				if ep != nil {
					t.Fatalf("%s listed with the other mode's key", e)
				}
				continue
			}
			wantApp := ""
			if e.Connect() {
				wantApp = b.p.Application()
			}
			if ep == nil || ep.Livemode != live || ep.Application != wantApp || ep.Secret != "" {
				t.Fatalf("%s: %+v", e, ep)
			}
		}
	}
	// Created with connect=true, an endpoint carries the application, in the key's mode only.
	created, err := b.test.WebhookEndpoints.New(&stripe.WebhookEndpointParams{URL: stripe.String("https://example.com/hook"),
		EnabledEvents: stripe.StringSlice([]string{"*"}), Connect: stripe.Bool(true)})
	if err != nil || created.Application != b.p.Application() || created.Livemode {
		t.Fatalf("created: %+v %v", created, err)
	}
	if _, err := b.live.WebhookEndpoints.Update(created.ID, &stripe.WebhookEndpointParams{Disabled: stripe.Bool(true)}); err == nil {
		t.Fatal("a test endpoint updated with the live key")
	}
}

// Four endpoints, four secrets: each receives exactly its scopes' events, signed with its own
// secret (stripe-go's ConstructEvent verifies them against that secret only).
func TestDeliveriesReachTheirEndpoints(t *testing.T) {
	t.Parallel()
	var dc stripesim.PlatformDelivery
	eps := map[stripesim.Endpoint]*endpoint{}
	for _, e := range stripesim.Endpoints {
		secret := "whsec_" + strings.ReplaceAll(e.String(), "-", "_")
		ep, url := newEndpoint(t, secret)
		eps[e] = ep
		dc[e] = stripesim.DeliveryConfig{URL: url, Secrets: []string{secret}}
	}
	b := setupPlatform(t, small(11), dc, stripesim.ServerConfig{})
	for _, e := range stripesim.Endpoints {
		ep, d := eps[e], b.ds[e]
		want := map[string]bool{}
		accounts := map[string]bool{}
		for _, sim := range b.p.EndpointSims(e) {
			for _, ev := range sim.Events() {
				want[ev.ID] = true
			}
		}
		ep.mu.Lock()
		for id, body := range ep.bodies {
			if !want[id] {
				t.Fatalf("%s received %s, another scope's event", e, id)
			}
			var se stripe.Event
			_ = json.Unmarshal(body, &se)
			if se.Livemode != e.Livemode() || (se.Account != "") != e.Connect() {
				t.Fatalf("%s received livemode=%v account=%q", e, se.Livemode, se.Account)
			}
			accounts[se.Account] = true
		}
		received := len(ep.received)
		ep.mu.Unlock()
		st := d.Stats()
		if received != len(want) || st.Delivered != len(want) || st.GaveUp != 0 {
			t.Fatalf("%s: received %d of %d, %+v", e, received, len(want), st)
		}
		if e.Connect() && len(accounts) != len(b.p.Accounts()) {
			t.Fatalf("%s heard from %d accounts", e, len(accounts))
		}
		wantRetries := stripesim.TestRetries
		if e.Livemode() {
			wantRetries = stripesim.LiveRetries
		}
		if !slices.Equal(d.Config().Retries, wantRetries) {
			t.Fatalf("%s retries %v", e, d.Config().Retries)
		}
	}
}

// The connect scenario's outage is the connect-live endpoint's alone: it loses exactly the events
// whose whole live retry schedule falls inside it; the other three endpoints lose nothing.
func TestConnectOutageLosesOnlyConnectLiveEvents(t *testing.T) {
	t.Parallel()
	var dc stripesim.PlatformDelivery
	eps := map[stripesim.Endpoint]*endpoint{}
	for _, e := range stripesim.Endpoints {
		ep, url := newEndpoint(t, "whsec_c")
		eps[e] = ep
		dc[e] = stripesim.DeliveryConfig{URL: url, Secrets: []string{"whsec_c"}}
	}
	cfg, dc, err := stripesim.SetupPlatform("connect", stripesim.PlatformConfig{Seed: 13, End: end}, dc)
	if err != nil {
		t.Fatal(err)
	}
	b := setupPlatform(t, cfg, dc, stripesim.ServerConfig{})
	outage := dc[stripesim.ConnectLive].Outages[0]
	var lastRetry time.Duration
	for _, r := range stripesim.LiveRetries {
		lastRetry += r
	}
	for _, e := range stripesim.Endpoints {
		d := b.ds[e]
		first := map[string]time.Time{}
		for _, a := range d.Log() {
			if a.N == 1 {
				first[a.EventID] = a.SimTime
			}
		}
		lost := 0
		eps[e].mu.Lock()
		for _, sim := range b.p.EndpointSims(e) {
			for _, ev := range sim.Events() {
				f := first[ev.ID]
				shouldBeLost := e == stripesim.ConnectLive && !f.Before(outage.From) && f.Add(lastRetry).Before(outage.To)
				if got := eps[e].received[ev.ID] > 0; got == shouldBeLost {
					t.Fatalf("%s: %s first attempted %s: delivered=%v", e, ev.ID, f, got)
				}
				if shouldBeLost {
					lost++
					if !ev.GaveUp {
						t.Fatalf("%s lost but not given up", ev.ID)
					}
				}
			}
		}
		eps[e].mu.Unlock()
		if st := d.Stats(); st.GaveUp != lost || (e == stripesim.ConnectLive) != (lost > 0) {
			t.Fatalf("%s: lost %d, %+v", e, lost, st)
		}
	}
	// The lost events are still in each account's Events API, as not delivered.
	lostInAPI := 0
	for _, a := range b.p.Accounts() {
		p := &stripe.EventListParams{DeliverySuccess: stripe.Bool(false)}
		p.Limit = stripe.Int64(100)
		p.SetStripeAccount(a.ID)
		it := b.live.Events.List(p)
		for it.Next() {
			lostInAPI++
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	if lostInAPI != b.ds[stripesim.ConnectLive].Stats().GaveUp {
		t.Fatalf("%d undelivered events in the connected accounts' Events APIs, %d given up", lostInAPI, b.ds[stripesim.ConnectLive].Stats().GaveUp)
	}
}

// An endpoint created late is never sent what came before it.
func TestLateEndpointsSendNothingOlder(t *testing.T) {
	t.Parallel()
	var dc stripesim.PlatformDelivery
	eps := map[stripesim.Endpoint]*endpoint{}
	for _, e := range stripesim.Endpoints {
		ep, url := newEndpoint(t, "whsec_l")
		eps[e] = ep
		dc[e] = stripesim.DeliveryConfig{URL: url, Secrets: []string{"whsec_l"}}
	}
	cfg, dc, err := stripesim.SetupPlatform("connect-late", stripesim.PlatformConfig{Seed: 17, End: end}, dc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Customers, cfg.AccountCustomers = 30, 10
	b := setupPlatform(t, cfg, dc, stripesim.ServerConfig{})
	for _, e := range stripesim.Endpoints {
		since := dc[e].Since
		if since.IsZero() || !since.Equal(cfg.End.Add(-2*24*time.Hour)) {
			t.Fatalf("%s since %s", e, since)
		}
		older, newer := 0, 0
		eps[e].mu.Lock()
		for _, sim := range b.p.EndpointSims(e) {
			for _, ev := range sim.Events() {
				got := eps[e].received[ev.ID] > 0
				isOld := ev.Created < since.Unix()
				if got == isOld {
					t.Fatalf("%s: %s created %d (endpoint since %d): delivered=%v", e, ev.ID, ev.Created, since.Unix(), got)
				}
				if isOld {
					older++
				} else {
					newer++
				}
			}
		}
		eps[e].mu.Unlock()
		st := b.ds[e].Stats()
		if older == 0 || st.BeforeEndpoint != older || st.Events != newer || st.Delivered != newer {
			t.Fatalf("%s: %d older, %d newer, %+v", e, older, newer, st)
		}
	}
	// The endpoints say when they were created.
	it := b.live.WebhookEndpoints.List(&stripe.WebhookEndpointListParams{})
	for it.Next() {
		if it.WebhookEndpoint().Created != dc[stripesim.PlatformLive].Since.Unix() {
			t.Fatalf("endpoint created %d", it.WebhookEndpoint().Created)
		}
	}
}

func TestPlatformTruthByScope(t *testing.T) {
	t.Parallel()
	b := setupPlatform(t, small(19), stripesim.PlatformDelivery{}, stripesim.ServerConfig{})
	get := func(q string) (int, stripesim.Truth) {
		t.Helper()
		resp, err := http.Get(b.url + "/sim/truth" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr stripesim.Truth
		_ = json.NewDecoder(resp.Body).Decode(&tr)
		return resp.StatusCode, tr
	}
	acct := b.p.Accounts()[2].ID
	for q, sc := range map[string]stripesim.Scope{
		"":                                   {Livemode: true},
		"?livemode=false":                    {},
		"?livemode=false&account=platform":   {},
		"?account=" + acct:                   {Livemode: true, Account: acct},
		"?livemode=false&account=" + acct:    {Account: acct},
		"?livemode=true&account=" + b.p.ID(): {Livemode: true},
	} {
		status, tr := get(q)
		want, _ := b.p.Truth(sc)
		if status != 200 || tr.Livemode != sc.Livemode || tr.Account != sc.Account || len(tr.Events) != len(want.Events) ||
			tr.Metrics.Counts["customers"] != want.Metrics.Counts["customers"] {
			t.Fatalf("%q: %d, livemode %v account %q, %d events (want %s, %d)", q, status, tr.Livemode, tr.Account, len(tr.Events), sc, len(want.Events))
		}
	}
	if status, _ := get("?livemode=maybe"); status != 400 {
		t.Fatalf("bad livemode: %d", status)
	}
	if status, _ := get("?account=acct_nope"); status != 404 {
		t.Fatalf("unknown account: %d", status)
	}
	if _, ok := b.p.Truth(stripesim.Scope{Account: "acct_nope"}); ok {
		t.Fatal("a truth for an unknown scope")
	}
}

// TruthMetrics agree with the objects stripe-go decodes from the truth: counts per kind and
// succeeded charges per currency; MRR is non-zero in a played account and only in its currencies.
func TestTruthMetricsMatchTheObjects(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 23, Customers: 60, End: end})
	sim.Run(time.Time{})
	tr := sim.Truth()
	m := tr.Metrics
	for _, kind := range stripesim.Kinds {
		var objs []json.RawMessage
		if err := json.Unmarshal(tr.Objects[kind], &objs); err != nil {
			t.Fatal(err)
		}
		if m.Counts[kind] != len(objs) {
			t.Fatalf("%s: %d counted, %d objects", kind, m.Counts[kind], len(objs))
		}
	}
	var charges []stripe.Charge
	_ = json.Unmarshal(tr.Objects["charges"], &charges)
	sums := map[string]int64{}
	for _, c := range charges {
		if c.Status == stripe.ChargeStatusSucceeded {
			sums[string(c.Currency)] += c.Amount
		}
	}
	if len(sums) == 0 || fmt.Sprint(sums) != fmt.Sprint(m.SucceededCharges) {
		t.Fatalf("succeeded charges %v, metrics %v", sums, m.SucceededCharges)
	}
	var subs []stripe.Subscription
	_ = json.Unmarshal(tr.Objects["subscriptions"], &subs)
	currencies, counting := map[string]bool{}, 0
	for _, s := range subs {
		if s.Status == stripe.SubscriptionStatusActive || s.Status == stripe.SubscriptionStatusPastDue {
			currencies[string(s.Currency)] = true
			counting++
		}
	}
	if counting == 0 || counting != m.MRRSubscriptions || len(m.MRR) != len(currencies) {
		t.Fatalf("%d subscriptions count, metrics %d, MRR %v", counting, m.MRRSubscriptions, m.MRR)
	}
	for cur, v := range m.MRR {
		if v <= 0 || !currencies[cur] {
			t.Fatalf("MRR %s %d", cur, v)
		}
	}
}
