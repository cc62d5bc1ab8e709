package stripesim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WebhookEndpoint is a webhook endpoint as Stripe's API renders it (GET /v1/webhook_endpoints).
type WebhookEndpoint struct {
	ID         string  `json:"id"`
	Object     string  `json:"object"`
	URL        string  `json:"url"`
	APIVersion *string `json:"api_version"` // null: the account's default version
	// Application is the platform's Connect application (ca_…) on an endpoint that receives
	// connected accounts' events (created with connect=true); null on an account's own endpoint.
	Application   *string           `json:"application"`
	EnabledEvents []string          `json:"enabled_events"`
	Status        string            `json:"status"` // enabled or disabled
	Description   *string           `json:"description"`
	Livemode      bool              `json:"livemode"`
	Created       int64             `json:"created"`
	Metadata      map[string]string `json:"metadata"`
	Secret        string            `json:"secret,omitempty"` // only in the answer to its creation
}

// endpoints is the account's webhook endpoints. The simulator's own deliveries do not consult
// them (their URL is configured); the API serves them for health checks and setup.
type endpoints struct {
	mu   sync.Mutex
	byID map[string]*WebhookEndpoint
}

// AddWebhookEndpoint adds an endpoint to the account (tests use it to set up unhealthy ones). A
// platform server lists it to the keys of its mode (ep.Livemode).
func (s *Server) AddWebhookEndpoint(ep WebhookEndpoint) WebhookEndpoint {
	return s.addEndpoint(ep, s.now().Unix())
}

// now is the simulated time of the account (or platform) served.
func (s *Server) now() time.Time {
	if s.platform != nil {
		return s.platform.Now()
	}
	return s.sim.Now()
}

func (s *Server) addEndpoint(ep WebhookEndpoint, created int64) WebhookEndpoint {
	s.eps.mu.Lock()
	defer s.eps.mu.Unlock()
	if ep.ID == "" {
		ep.ID = "we_" + randomHex(12)
	}
	ep.Object = "webhook_endpoint"
	if ep.Status == "" {
		ep.Status = "enabled"
	}
	if ep.Metadata == nil {
		ep.Metadata = map[string]string{}
	}
	if ep.EnabledEvents == nil {
		ep.EnabledEvents = []string{}
	}
	ep.Created = created
	ep.Secret = ""
	s.eps.byID[ep.ID] = &ep
	return ep
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// formList reads a Stripe form array: name[]=a&name[]=b or name[0]=a&name[1]=b.
func formList(form url.Values, name string) ([]string, bool) {
	if vs, ok := form[name+"[]"]; ok {
		return vs, true
	}
	type kv struct {
		i int
		v string
	}
	var items []kv
	for k, vs := range form {
		if idx, ok := strings.CutPrefix(k, name+"["); ok {
			if i, err := strconv.Atoi(strings.TrimSuffix(idx, "]")); err == nil && len(vs) > 0 {
				items = append(items, kv{i, vs[0]})
			}
		}
	}
	if len(items) == 0 {
		return nil, false
	}
	sort.Slice(items, func(a, b int) bool { return items[a].i < items[b].i })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out, true
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) {
	p, aerr := parseList(r.URL.Query())
	if aerr != nil {
		stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
		return
	}
	// A platform's endpoints are per mode; a connected account reached through Stripe-Account
	// has none of its own here.
	t, platform := r.Context().Value(targetKey{}).(target)
	platform = platform && s.platform != nil
	s.eps.mu.Lock()
	var all []*WebhookEndpoint
	for _, ep := range s.eps.byID {
		if platform && (ep.Livemode != t.livemode || t.account != "") {
			continue
		}
		all = append(all, ep)
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].Created != all[b].Created {
			return all[a].Created > all[b].Created
		}
		return all[a].ID > all[b].ID
	})
	var items []item
	for _, ep := range all {
		raw, _ := json.Marshal(ep)
		items = append(items, item{id: ep.ID, created: ep.Created, raw: func() json.RawMessage { return raw }})
	}
	s.eps.mu.Unlock()
	pg, aerr := paginate(items, p, "webhook_endpoint")
	if aerr != nil {
		stripeError(w, http.StatusBadRequest, aerr.code, aerr.message, aerr.param)
		return
	}
	writeList(w, "/v1/webhook_endpoints", pg)
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		stripeError(w, http.StatusBadRequest, "", "Invalid request body.", "")
		return
	}
	u := r.PostForm.Get("url")
	if u == "" {
		stripeError(w, http.StatusBadRequest, "parameter_missing", "Missing required param: url.", "url")
		return
	}
	events, ok := formList(r.PostForm, "enabled_events")
	if !ok || len(events) == 0 {
		stripeError(w, http.StatusBadRequest, "parameter_missing", "Missing required param: enabled_events.", "enabled_events")
		return
	}
	ep := WebhookEndpoint{URL: u, EnabledEvents: events}
	if t, ok := r.Context().Value(targetKey{}).(target); ok && s.platform != nil {
		ep.Livemode = t.livemode
		if v := r.PostForm.Get("connect"); v != "" {
			connect, err := strconv.ParseBool(v)
			if err != nil {
				stripeError(w, http.StatusBadRequest, "", "Invalid boolean: "+v, "connect")
				return
			}
			if connect {
				ep.Application = ptr(s.platform.app)
			}
		}
	} else {
		ep.Livemode = s.sim.cfg.Livemode
	}
	if v := r.PostForm.Get("api_version"); v != "" {
		ep.APIVersion = &v
	}
	if v := r.PostForm.Get("description"); v != "" {
		ep.Description = &v
	}
	ep = s.AddWebhookEndpoint(ep)
	ep.Secret = "whsec_" + randomHex(24)
	writeJSON(w, http.StatusOK, ep)
}

func (s *Server) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		stripeError(w, http.StatusBadRequest, "", "Invalid request body.", "")
		return
	}
	id := r.PathValue("id")
	s.eps.mu.Lock()
	defer s.eps.mu.Unlock()
	ep, ok := s.eps.byID[id]
	if t, scoped := r.Context().Value(targetKey{}).(target); ok && scoped && s.platform != nil {
		ok = ep.Livemode == t.livemode && t.account == "" // another mode's endpoint does not exist for this key
	}
	if !ok {
		stripeError(w, http.StatusNotFound, "resource_missing", fmt.Sprintf("No such webhook endpoint: '%s'", id), "id")
		return
	}
	if r.PostForm.Has("api_version") {
		stripeError(w, http.StatusBadRequest, "", "Received unknown parameter: api_version", "api_version")
		return
	}
	if events, ok := formList(r.PostForm, "enabled_events"); ok {
		ep.EnabledEvents = events
	}
	if v := r.PostForm.Get("url"); v != "" {
		ep.URL = v
	}
	if v := r.PostForm.Get("disabled"); v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			ep.Status = map[bool]string{true: "disabled", false: "enabled"}[b]
		}
	}
	writeJSON(w, http.StatusOK, ep)
}
