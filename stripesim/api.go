package stripesim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Retention is how long the Events API keeps events (on the simulated clock).
const Retention = 30 * 24 * time.Hour

// ServerConfig configures the API. Zero values take the documented defaults.
type ServerConfig struct {
	// APIKey, when set, is the only key a single account's server accepts; otherwise any sk_… or
	// rk_… key is.
	APIKey string
	// LiveKey and TestKey are a platform server's keys: sk_live_… or rk_live_… reaches the live
	// scopes, sk_test_… or rk_test_… the test ones, and no other key is accepted. When both are
	// empty any key with a live or test prefix is accepted in its mode.
	LiveKey, TestKey string
	// RateLimit is requests per second before 429 (Stripe's test mode: 25). Default 25; < 0 off.
	// A platform server keeps one limiter per key, and RateLimit is its test keys' rate.
	RateLimit float64
	// LiveRateLimit is a platform server's rate per live key (Stripe's live mode: 100). Default
	// 100; < 0 off. Requests made for a connected account (Stripe-Account) count against the
	// key that makes them.
	LiveRateLimit float64
	// Burst is how many requests may arrive at once before the rate applies. Default: one
	// second's worth of the rate.
	Burst int
}

// Server serves the account over Stripe's API (GET /v1/…) and the simulator's own views
// (/sim/truth, /sim/deliveries). stripe-go works against it unchanged. A server made with
// NewPlatformServer serves a whole Connect platform instead (see there).
type Server struct {
	sim       *Sim // a single account's server; nil for a platform's
	deliverer *Deliverer
	platform  *Platform
	pds       PlatformDeliverers
	cfg       ServerConfig
	limiter   *rate.Limiter
	mux       *http.ServeMux
	eps       endpoints

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // a platform's, per key
	revoked  map[string]bool          // connected accounts whose access is revoked
	faults   map[string]int           // path prefix: the status every request under it answers (Fail)
}

// NewServer serves sim; deliverer may be nil. The Stripe-Account header is ignored: the sim is
// the only account.
func NewServer(sim *Sim, deliverer *Deliverer, cfg ServerConfig) *Server {
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 25
	}
	s := newServer(cfg)
	s.sim, s.deliverer = sim, deliverer
	s.limiter = newLimiter(cfg.RateLimit, cfg.Burst)
	return s
}

// NewPlatformServer serves a Connect platform. The key's mode picks the live or the test scopes;
// a Stripe-Account: acct_… header routes a request to that connected account's scope in the
// key's mode (403 account_invalid, as Stripe answers, for an account that is not connected or
// whose access was revoked: see Revoke); without it the request reaches the platform's own
// account. GET /v1/accounts lists the connected accounts; GET /v1/webhook_endpoints lists the
// key's mode's endpoints, the four deliverers' among them (the Connect ones with the platform's
// application). /sim/truth?livemode=true|false&account=acct_…|platform picks a scope (default
// the platform's live one) and /sim/deliveries?endpoint=connect-live an endpoint's log (default
// platform-live).
func NewPlatformServer(p *Platform, ds PlatformDeliverers, cfg ServerConfig) (*Server, error) {
	for _, k := range []struct{ key, mode string }{{cfg.LiveKey, "live"}, {cfg.TestKey, "test"}} {
		if k.key == "" {
			continue
		}
		if m, ok := keyMode(k.key); !ok || m != (k.mode == "live") {
			return nil, fmt.Errorf("stripesim: the %s key must start with sk_%s_ or rk_%s_ (got %s)", k.mode, k.mode, k.mode, maskKey(k.key))
		}
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 25
	}
	if cfg.LiveRateLimit == 0 {
		cfg.LiveRateLimit = 100
	}
	s := newServer(cfg)
	s.platform, s.pds = p, ds
	s.limiters, s.revoked = map[string]*rate.Limiter{}, map[string]bool{}
	for _, e := range Endpoints {
		d := ds[e]
		if d == nil {
			continue
		}
		created := d.cfg.Since
		if created.IsZero() {
			created = p.cfg.Start
		}
		ep := WebhookEndpoint{URL: d.cfg.URL, APIVersion: ptr(APIVersion), EnabledEvents: []string{"*"}, Livemode: e.Livemode(),
			Description: ptr(e.String())}
		if e.Connect() {
			ep.Application = ptr(p.app)
		}
		s.addEndpoint(ep, created.Unix())
	}
	return s, nil
}

func newServer(cfg ServerConfig) *Server {
	s := &Server{cfg: cfg, mux: http.NewServeMux(), eps: endpoints{byID: map[string]*WebhookEndpoint{}}}
	s.mux.HandleFunc("GET /v1/events", s.listEvents)
	s.mux.HandleFunc("GET /v1/events/{id}", s.getEvent)
	s.mux.HandleFunc("GET /v2/core/events/{id}", s.getV2Event)
	for _, kind := range []string{"customers", "subscriptions", "invoices", "charges", "refunds", "disputes", "coupons"} {
		s.mux.HandleFunc("GET /v1/"+kind, s.listObjects(kind))
		s.mux.HandleFunc("GET /v1/"+kind+"/{id}", s.getObject(kind))
	}
	s.mux.HandleFunc("GET /v1/checkout/sessions", s.listObjects("checkout_sessions"))
	s.mux.HandleFunc("GET /v1/checkout/sessions/{id}", s.getObject("checkout_sessions"))
	s.moneyRoutes()
	s.mux.HandleFunc("GET /v1/accounts", s.listAccounts)
	s.mux.HandleFunc("GET /v1/accounts/{id}", s.getAccount)
	s.mux.HandleFunc("GET /v1/webhook_endpoints", s.listEndpoints)
	s.mux.HandleFunc("POST /v1/webhook_endpoints", s.createEndpoint)
	s.mux.HandleFunc("POST /v1/webhook_endpoints/{id}", s.updateEndpoint)
	s.mux.HandleFunc("GET /sim/truth", s.truth)
	s.mux.HandleFunc("GET /sim/mrr", s.mrrTruth)
	s.mux.HandleFunc("GET /sim/deliveries", s.deliveries)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		stripeError(w, http.StatusNotFound, "", fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, r.URL.Path), "")
	})
	return s
}

func newLimiter(perSecond float64, burst int) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(perSecond))
	}
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

// keyMode reads a secret or restricted key's mode from its prefix.
func keyMode(key string) (live, ok bool) {
	switch {
	case strings.HasPrefix(key, "sk_live_"), strings.HasPrefix(key, "rk_live_"):
		return true, true
	case strings.HasPrefix(key, "sk_test_"), strings.HasPrefix(key, "rk_test_"):
		return false, true
	}
	return false, false
}

// Revoke makes a connected account unreachable through the API (both modes answer 403
// account_invalid), as when it disconnects from the platform; Restore undoes it.
func (s *Server) Revoke(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[account] = true
}

// Restore gives the platform its access to a revoked account back.
func (s *Server) Restore(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.revoked, account)
}

// target is what a /v1/ request reaches: a scope's account, chosen by the key's mode and the
// Stripe-Account header.
type target struct {
	sim      *Sim
	livemode bool
	account  string // the Stripe-Account header's connected account; "" for the platform's own
}

type targetKey struct{}

// simFor is the account a request reaches.
func (s *Server) simFor(r *http.Request) *Sim {
	if t, ok := r.Context().Value(targetKey{}).(target); ok {
		return t.sim
	}
	return s.sim
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasPrefix(r.URL.Path, "/v2/") {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || key == "" {
			stripeError(w, http.StatusUnauthorized, "", "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').", "")
			return
		}
		if s.platform != nil {
			t, ok := s.routePlatform(w, r, key)
			if !ok {
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), targetKey{}, t))
		} else {
			if s.cfg.APIKey != "" && key != s.cfg.APIKey ||
				s.cfg.APIKey == "" && !strings.HasPrefix(key, "sk_") && !strings.HasPrefix(key, "rk_") {
				stripeError(w, http.StatusUnauthorized, "", "Invalid API Key provided: "+maskKey(key), "")
				return
			}
			if s.limiter != nil && !s.limiter.Allow() {
				rateLimited(w)
				return
			}
		}
		if s.fault(w, r) {
			return
		}
	}
	w.Header().Set("Request-Id", "req_sim")
	s.mux.ServeHTTP(w, r)
}

func rateLimited(w http.ResponseWriter) {
	w.Header().Set("Stripe-Rate-Limited-Reason", "global-rate")
	stripeError(w, http.StatusTooManyRequests, "rate_limit", "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.", "")
}

// routePlatform authenticates a platform request, spends from its key's limiter and picks its
// scope; it has answered the request when ok is false.
func (s *Server) routePlatform(w http.ResponseWriter, r *http.Request, key string) (t target, ok bool) {
	live, known := keyMode(key)
	if s.cfg.LiveKey != "" || s.cfg.TestKey != "" {
		known = key == s.cfg.LiveKey || key == s.cfg.TestKey
	}
	if !known {
		stripeError(w, http.StatusUnauthorized, "", "Invalid API Key provided: "+maskKey(key), "")
		return t, false
	}
	s.mu.Lock()
	lim, seen := s.limiters[key]
	if !seen {
		perSecond := s.cfg.RateLimit
		if live {
			perSecond = s.cfg.LiveRateLimit
		}
		lim = newLimiter(perSecond, s.cfg.Burst)
		s.limiters[key] = lim
	}
	acct := r.Header.Get("Stripe-Account")
	if strings.HasPrefix(r.URL.Path, "/v2/") {
		acct = r.Header.Get("Stripe-Context") // v2's name for it
	}
	revoked := s.revoked[acct]
	s.mu.Unlock()
	if lim != nil && !lim.Allow() {
		rateLimited(w)
		return t, false
	}
	t = target{sim: s.platform.Sim(Scope{Livemode: live}), livemode: live}
	if acct == "" || acct == s.platform.id {
		return t, true
	}
	if _, connected := s.platform.account(acct); !connected || revoked {
		stripeError(w, http.StatusForbidden, "account_invalid", fmt.Sprintf("The provided key '%s' does not have access to account '%s' (or that account does not exist). Application access may have been revoked.", maskKey(key), acct), "")
		return t, false
	}
	t.sim, t.account = s.platform.Sim(Scope{live, acct}), acct
	return t, true
}

// maskKey shows a key the way Stripe's errors do: never whole.
func maskKey(k string) string {
	if len(k) <= 8 {
		return "****"
	}
	return k[:min(8, len(k)-4)] + "****" + k[len(k)-4:]
}

func stripeError(w http.ResponseWriter, status int, code, message, param string) {
	e := map[string]string{"type": "invalid_request_error", "message": message}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	if status == http.StatusUnauthorized {
		e["type"] = "invalid_request_error"
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// page is one page of a list, newest first.
type page struct {
	data    []json.RawMessage
	hasMore bool
}

type item struct {
	id      string
	created int64
	raw     func() json.RawMessage
}

// listParams are the pagination and created filters every list takes.
type listParams struct {
	limit         int
	startingAfter string
	endingBefore  string
	created       func(int64) bool
}

func parseList(q url.Values) (listParams, *apiError) {
	p := listParams{limit: 10, created: func(int64) bool { return true }}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, &apiError{"This value must be between 1 and 100.", "limit", ""}
		}
		p.limit = n
	}
	p.startingAfter, p.endingBefore = q.Get("starting_after"), q.Get("ending_before")
	if p.startingAfter != "" && p.endingBefore != "" {
		return p, &apiError{"You may only specify one of these parameters: ending_before, starting_after.", "ending_before", ""}
	}
	var preds []func(int64) bool
	for _, op := range []string{"gt", "gte", "lt", "lte"} {
		v := q.Get("created[" + op + "]")
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return p, &apiError{"Invalid integer: " + v, "created[" + op + "]", ""}
		}
		switch op {
		case "gt":
			preds = append(preds, func(c int64) bool { return c > n })
		case "gte":
			preds = append(preds, func(c int64) bool { return c >= n })
		case "lt":
			preds = append(preds, func(c int64) bool { return c < n })
		case "lte":
			preds = append(preds, func(c int64) bool { return c <= n })
		}
	}
	if v := q.Get("created"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return p, &apiError{"Invalid integer: " + v, "created", ""}
		}
		preds = append(preds, func(c int64) bool { return c == n })
	}
	p.created = func(c int64) bool {
		for _, f := range preds {
			if !f(c) {
				return false
			}
		}
		return true
	}
	return p, nil
}

type apiError struct{ message, param, code string }

// paginate cuts one page out of items (already filtered, newest first) as Stripe does:
// starting_after gives the next older items, ending_before the newer items closest to the cursor.
func paginate(items []item, p listParams, noun string) (page, *apiError) {
	index := func(id string) int {
		for i, it := range items {
			if it.id == id {
				return i
			}
		}
		return -1
	}
	var from, to int
	switch {
	case p.startingAfter != "":
		i := index(p.startingAfter)
		if i < 0 {
			return page{}, &apiError{fmt.Sprintf("No such %s: '%s'", noun, p.startingAfter), "starting_after", "resource_missing"}
		}
		from = i + 1
		to = min(from+p.limit, len(items))
	case p.endingBefore != "":
		i := index(p.endingBefore)
		if i < 0 {
			return page{}, &apiError{fmt.Sprintf("No such %s: '%s'", noun, p.endingBefore), "ending_before", "resource_missing"}
		}
		to = i
		from = max(0, to-p.limit)
	default:
		to = min(p.limit, len(items))
	}
	pg := page{hasMore: (p.endingBefore != "" && from > 0) || (p.endingBefore == "" && to < len(items))}
	for _, it := range items[from:to] {
		pg.data = append(pg.data, it.raw())
	}
	if pg.data == nil {
		pg.data = []json.RawMessage{}
	}
	return pg, nil
}

func writeList(w http.ResponseWriter, path string, pg page) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": pg.data, "has_more": pg.hasMore, "url": path})
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, aerr := parseList(q)
	if aerr != nil {
		stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
		return
	}
	var types []string
	for k, vs := range q {
		if k == "types[]" || (strings.HasPrefix(k, "types[") && strings.HasSuffix(k, "]")) {
			types = append(types, vs...)
		}
	}
	typ := q.Get("type")
	switch {
	case typ != "" && len(types) > 0:
		stripeError(w, http.StatusBadRequest, "", "You may only specify one of these parameters: type, types.", "types")
		return
	case len(types) > 20:
		stripeError(w, http.StatusBadRequest, "", "You may specify at most 20 types.", "types")
		return
	}
	match := func(t string) bool { return true }
	if typ != "" {
		types = []string{typ}
	}
	if len(types) > 0 {
		match = func(t string) bool {
			for _, want := range types {
				if prefix, ok := strings.CutSuffix(want, "*"); ok && strings.HasPrefix(t, prefix) || want == t {
					return true
				}
			}
			return false
		}
	}
	var delivery *bool
	if v := q.Get("delivery_success"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			stripeError(w, http.StatusBadRequest, "", "Invalid boolean: "+v, "delivery_success")
			return
		}
		delivery = &b
	}

	sim := s.simFor(r)
	sim.mu.RLock()
	horizon := sim.now.Add(-Retention).Unix()
	var items []item
	for i := len(sim.events) - 1; i >= 0; i-- {
		ev := sim.events[i]
		if ev.Created < horizon || !p.created(ev.Created) || !match(ev.Type) {
			continue
		}
		if delivery != nil && ev.Delivered != *delivery {
			continue
		}
		items = append(items, item{id: ev.ID, created: ev.Created, raw: func() json.RawMessage { return ev.API }})
	}
	pg, aerr := paginate(items, p, "event")
	sim.mu.RUnlock()
	if aerr != nil {
		stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
		return
	}
	writeList(w, "/v1/events", pg)
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sim := s.simFor(r)
	sim.mu.RLock()
	ev, ok := sim.byID[id]
	expired := ok && ev.Created < sim.now.Add(-Retention).Unix()
	sim.mu.RUnlock()
	if !ok || expired {
		stripeError(w, http.StatusNotFound, "resource_missing", fmt.Sprintf("No such event: '%s'", id), "id")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(ev.API)
}

var nouns = map[string]string{
	"customers": "customer", "subscriptions": "subscription", "invoices": "invoice", "charges": "charge",
	"refunds": "refund", "disputes": "dispute", "checkout_sessions": "checkout.session", "coupons": "coupon",
}

func (s *Server) listObjects(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p, aerr := parseList(q)
		if aerr != nil {
			stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
			return
		}
		status := q.Get("status")
		customer := q.Get("customer")
		sim := s.simFor(r)
		sim.mu.RLock()
		var items []item
		for _, o := range sim.objs.list(kind) {
			if !p.created(o.created) {
				continue
			}
			if customer != "" && !hasCustomer(o.v, customer) {
				continue
			}
			if kind == "subscriptions" {
				st := o.v.(*Subscription).Status
				// Stripe leaves canceled subscriptions out unless asked: status=all or canceled.
				if (status == "" && st == "canceled") || (status != "" && status != "all" && status != st) {
					continue
				}
			}
			raw, _ := json.Marshal(o.v)
			items = append(items, item{id: o.id, created: o.created, raw: func() json.RawMessage { return raw }})
		}
		pg, aerr := paginate(items, p, nouns[kind])
		sim.mu.RUnlock()
		if aerr != nil {
			stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
			return
		}
		writeList(w, r.URL.Path, pg)
	}
}

func hasCustomer(v any, customer string) bool {
	switch o := v.(type) {
	case *Subscription:
		return o.Customer == customer
	case *Invoice:
		return o.Customer == customer
	case *Charge:
		return o.Customer != nil && *o.Customer == customer
	case *CheckoutSession:
		return o.Customer != nil && *o.Customer == customer
	}
	return false
}

func (s *Server) getObject(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		sim := s.simFor(r)
		sim.mu.RLock()
		var raw []byte
		for _, o := range sim.objs.list(kind) {
			if o.id == id {
				raw, _ = json.Marshal(o.v)
				break
			}
		}
		sim.mu.RUnlock()
		if raw == nil {
			stripeError(w, http.StatusNotFound, "resource_missing", fmt.Sprintf("No such %s: '%s'", nouns[kind], id), "id")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(raw)
	}
}

// Truth is everything the account knows: every object's current state and every event.
type Truth struct {
	Livemode   bool                       `json:"livemode"`
	Account    string                     `json:"account,omitempty"` // Config.Account
	Now        time.Time                  `json:"now"`
	Done       bool                       `json:"done"` // the simulated clock has reached the account's end
	Objects    map[string]json.RawMessage `json:"objects"`
	Events     []TruthEvent               `json:"events"`
	Deliveries *DeliveryStats             `json:"deliveries,omitempty"`
	Metrics    TruthMetrics               `json:"metrics"`
	// MoneyObjects are the current objects of MoneyKinds, by kind, newest first. They are
	// apart from Objects, whose kinds all have events a ledger folds: balance transactions
	// have none.
	MoneyObjects map[string]json.RawMessage `json:"money_objects"`
	Money        MoneyTruth                 `json:"money"` // fees, net and payouts (money_truth.go)
}

// TruthEvent summarises one event.
type TruthEvent struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Created   int64  `json:"created"`
	Object    string `json:"object_id"`
	Delivered bool   `json:"delivered"`
	GaveUp    bool   `json:"gave_up"`
	Attempts  int    `json:"attempts"`
}

// Truth snapshots the account.
func (s *Sim) Truth() Truth {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := Truth{Livemode: s.cfg.Livemode, Account: s.cfg.Account, Now: s.now, Done: !s.now.Before(s.cfg.End),
		Objects: map[string]json.RawMessage{}, MoneyObjects: map[string]json.RawMessage{}, Metrics: s.truthMetrics(), Money: s.moneyTruth()}
	for _, kind := range append(slices.Clone(Kinds), MoneyKinds...) {
		var vs []any
		for _, o := range s.objs.list(kind) {
			vs = append(vs, o.v)
		}
		if vs == nil {
			vs = []any{}
		}
		raw, _ := json.Marshal(vs)
		if slices.Contains(MoneyKinds, kind) {
			t.MoneyObjects[kind] = raw
		} else {
			t.Objects[kind] = raw
		}
	}
	for _, ev := range s.events {
		t.Events = append(t.Events, TruthEvent{ev.ID, ev.Type, ev.Created, ev.ObjectID, ev.Delivered, ev.GaveUp, ev.Attempts})
	}
	return t
}

// Events returns every event emitted so far, oldest first.
func (s *Sim) Events() []*Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Event(nil), s.events...)
}

func (s *Server) truth(w http.ResponseWriter, r *http.Request) {
	sim, d := s.sim, s.deliverer
	if s.platform != nil {
		q := r.URL.Query()
		sc := Scope{Livemode: true}
		if v := q.Get("livemode"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				stripeError(w, http.StatusBadRequest, "", "Invalid boolean: "+v, "livemode")
				return
			}
			sc.Livemode = b
		}
		if v := q.Get("account"); v != "" && v != "platform" && v != s.platform.id {
			sc.Account = v
		}
		if sim = s.platform.Sim(sc); sim == nil {
			stripeError(w, http.StatusNotFound, "resource_missing", fmt.Sprintf("No such account: '%s'", sc.Account), "account")
			return
		}
		d = s.pds[sc.Endpoint()]
	}
	t := sim.Truth()
	if d != nil {
		st := d.Stats()
		t.Deliveries = &st
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) deliveries(w http.ResponseWriter, r *http.Request) {
	d := s.deliverer
	if s.platform != nil {
		e := PlatformLive
		if v := r.URL.Query().Get("endpoint"); v != "" {
			var err error
			if e, err = ParseEndpoint(v); err != nil {
				stripeError(w, http.StatusBadRequest, "", err.Error(), "endpoint")
				return
			}
		}
		d = s.pds[e]
	}
	if d == nil {
		writeJSON(w, http.StatusOK, []Attempt{})
		return
	}
	writeJSON(w, http.StatusOK, d.Log())
}

// listAccounts is GET /v1/accounts: the platform's connected accounts, newest first. An account
// (a single one, or a connected one reached through Stripe-Account) has none.
func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	p, aerr := parseList(r.URL.Query())
	if aerr != nil {
		stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
		return
	}
	var all []Account
	if t, ok := r.Context().Value(targetKey{}).(target); ok && s.platform != nil && t.account == "" {
		all = s.platform.Accounts()
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Created != all[j].Created {
			return all[i].Created > all[j].Created
		}
		return all[i].ID > all[j].ID
	})
	var items []item
	for _, a := range all {
		if !p.created(a.Created) {
			continue
		}
		raw, _ := json.Marshal(a)
		items = append(items, item{id: a.ID, created: a.Created, raw: func() json.RawMessage { return raw }})
	}
	pg, aerr := paginate(items, p, "account")
	if aerr != nil {
		stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
		return
	}
	writeList(w, "/v1/accounts", pg)
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if t, ok := r.Context().Value(targetKey{}).(target); ok && s.platform != nil && t.account == "" {
		if a, ok := s.platform.account(id); ok {
			writeJSON(w, http.StatusOK, a)
			return
		}
	}
	stripeError(w, http.StatusNotFound, "resource_missing", fmt.Sprintf("No such account: '%s'", id), "id")
}
