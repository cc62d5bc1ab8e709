package stripesim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/stripesim"
)

// A thin destination is sent one signed, unversioned notification per event, naming an object
// the API serves at the URL it gives; GET /v2/core/events/{id} adds the changes.
func TestThinDestination(t *testing.T) {
	t.Parallel()
	const secret = "whsec_sim_thin"
	var mu sync.Mutex
	bodies := map[string][]byte{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := stripewebhook.ValidatePayload(body, r.Header.Get("Stripe-Signature"), secret); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var n struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &n)
		mu.Lock()
		bodies[n.ID] = body
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	sim, d := play(t, stripesim.Config{Seed: 8, Customers: 30, Duration: 20 * 24 * time.Hour},
		stripesim.DeliveryConfig{URL: hook.URL, Secrets: []string{secret}, Thin: true})
	api := httptest.NewServer(stripesim.NewServer(sim, d, stripesim.ServerConfig{RateLimit: -1}))
	t.Cleanup(api.Close)
	get := func(path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, api.URL+path, nil)
		req.Header.Set("Authorization", "Bearer sk_test_thin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	type thin struct {
		ID            string `json:"id"`
		Object        string `json:"object"`
		Type          string `json:"type"`
		Created       string `json:"created"`
		Livemode      bool   `json:"livemode"`
		RelatedObject struct {
			ID, Type, URL string
		} `json:"related_object"`
		Changes *struct {
			Before map[string]json.RawMessage `json:"before"`
			After  map[string]json.RawMessage `json:"after"`
		} `json:"changes"`
		APIVersion *string `json:"api_version"`
		Data       any     `json:"data"`
	}
	events := sim.Events()
	if len(bodies) != len(events) {
		t.Fatalf("%d thin events delivered for %d events", len(bodies), len(events))
	}
	updates, discounts := 0, 0
	for _, ev := range events {
		var n thin
		if err := json.Unmarshal(bodies[stripesim.ThinID(ev, false)], &n); err != nil {
			t.Fatalf("%s: %v", ev.ID, err)
		}
		at, err := time.Parse(time.RFC3339Nano, n.Created)
		if n.Object != "v2.core.event" || n.Type != "v1."+ev.Type || err != nil || at.Unix() != ev.Created || n.Livemode ||
			n.APIVersion != nil || n.Data != nil || n.Changes != nil || !strings.HasPrefix(n.ID, "evt_test_65") {
			t.Fatalf("%s: thin event %+v", ev.ID, n)
		}
		if n.RelatedObject.URL != "" && n.RelatedObject.ID != ev.ObjectID {
			if !strings.HasPrefix(ev.Type, "customer.discount.") {
				t.Fatalf("%s names %s, not its object %s", ev.Type, n.RelatedObject.ID, ev.ObjectID)
			}
			discounts++ // a discount names what it discounts
		}
		status, obj := get(n.RelatedObject.URL)
		var o struct{ ID, Object string }
		_ = json.Unmarshal(obj, &o)
		if status != http.StatusOK || o.ID != n.RelatedObject.ID || o.Object != n.RelatedObject.Type {
			t.Fatalf("%s: GET %s: %d %s", ev.ID, n.RelatedObject.URL, status, obj)
		}
		status, full := get("/v2/core/events/" + n.ID)
		var v2 thin
		if err := json.Unmarshal(full, &v2); status != http.StatusOK || err != nil || v2.ID != n.ID {
			t.Fatalf("%s: GET /v2/core/events: %d %s", ev.ID, status, full)
		}
		if strings.HasSuffix(ev.Type, ".updated") {
			var e struct {
				Data struct {
					Prev map[string]json.RawMessage `json:"previous_attributes"`
				} `json:"data"`
			}
			_ = json.Unmarshal(ev.Webhook, &e)
			if v2.Changes == nil || len(v2.Changes.Before) != len(e.Data.Prev) || len(v2.Changes.After) != len(e.Data.Prev) {
				t.Fatalf("%s: changes %+v for previous_attributes %s", ev.ID, v2.Changes, e.Data.Prev)
			}
			for k, v := range e.Data.Prev {
				if string(v2.Changes.Before[k]) != string(v) {
					t.Fatalf("%s: changes.before.%s = %s, previous_attributes %s", ev.ID, k, v2.Changes.Before[k], v)
				}
			}
			updates++
		}
	}
	if updates == 0 {
		t.Fatal("no updates to check the changes of")
	}
	t.Logf("%d thin events, %d updates, %d discounts", len(events), updates, discounts)
	if status, _ := get("/v2/core/events/evt_test_65nosuch"); status != http.StatusNotFound {
		t.Fatalf("an unknown thin event: %d", status)
	}
}
