package stripesim_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/stripemock"
	"github.com/stripeledger/ledger/stripesim"
)

// Dahlia is the newest API version the simulator renders, the one stripe-mock v0.203.0 embeds.
const dahlia = "2026-08-26.dahlia"

// dahliaSchemas are the component schemas of Stripe's OpenAPI spec at 2026-08-26.dahlia, from
// stripe-mock v0.203.0 in the module cache (fetched from the module proxy when missing).
func dahliaSchemas(t *testing.T) map[string]*specSchema {
	t.Helper()
	raw := stripemock.Spec(t, "v0.203.0")
	var spec struct {
		Components struct {
			Schemas map[string]*specSchema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	return spec.Components.Schemas
}

type specSchema struct {
	Ref        string                 `json:"$ref"`
	AnyOf      []*specSchema          `json:"anyOf"`
	Items      *specSchema            `json:"items"`
	Properties map[string]*specSchema `json:"properties"`
}

// The Events API copy of an account whose default version is dahlia is rendered as the dahlia
// spec describes each object: every field the simulator renders, at any depth the spec
// describes, is a property there (so a field basil removed, such as an invoice's subscription,
// charge, payment_intent, paid or tax, or a charge's invoice, is not rendered), and the fields
// that replaced them are (invoice.parent, total_taxes, a line's parent and pricing).
func TestDahliaShapesFollowStripe(t *testing.T) {
	t.Parallel()
	schemas := dahliaSchemas(t)
	resolve := func(s *specSchema) []*specSchema {
		var out []*specSchema
		var add func(s *specSchema)
		add = func(s *specSchema) {
			switch {
			case s == nil:
			case s.Ref != "":
				add(schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")])
			case len(s.AnyOf) > 0:
				for _, a := range s.AnyOf {
					add(a)
				}
			default:
				out = append(out, s)
			}
		}
		add(s)
		return out
	}
	seen := map[string]int{}
	var walk func(where string, v any, alts []*specSchema)
	walk = func(where string, v any, alts []*specSchema) {
		switch x := v.(type) {
		case map[string]any:
			if obj, ok := x["object"].(string); ok && obj != "list" {
				s, ok := schemas[obj]
				if !ok {
					t.Fatalf("%s: no dahlia schema for object %q", where, obj)
				}
				alts = []*specSchema{s}
				seen[obj]++
			}
			var objects []*specSchema
			for _, a := range alts {
				if a.Properties != nil {
					objects = append(objects, a)
				}
			}
			if len(objects) == 0 {
				return // a map the spec leaves open (metadata, say)
			}
			for k, child := range x {
				var next []*specSchema
				for _, o := range objects {
					if p, ok := o.Properties[k]; ok {
						next = append(next, resolve(p)...)
					}
				}
				if next == nil {
					t.Errorf("%s: field %q is not in the dahlia spec", where, k)
					continue
				}
				if k != "previous_attributes" {
					walk(where+"."+k, child, next)
				}
			}
		case []any:
			var items []*specSchema
			for _, a := range alts {
				items = append(items, resolve(a.Items)...)
			}
			for _, child := range x {
				walk(where+"[]", child, items)
			}
		}
	}
	sim := stripesim.New(stripesim.Config{Seed: 99, Customers: 80, End: end, AccountAPIVersion: dahlia})
	sim.Run(time.Time{})
	parents := 0
	for _, ev := range sim.Events() {
		var v map[string]any
		if err := json.Unmarshal(ev.API, &v); err != nil {
			t.Fatal(err)
		}
		if v["api_version"] != dahlia {
			t.Fatalf("%s rendered at %v", ev.ID, v["api_version"])
		}
		walk(ev.Type, v, nil)
		obj := v["data"].(map[string]any)["object"].(map[string]any)
		if obj["object"] == "invoice" {
			if _, ok := obj["parent"]; !ok {
				t.Fatalf("%s: a dahlia invoice without parent", ev.ID)
			}
			if p, ok := obj["parent"].(map[string]any); ok && p["subscription_details"] != nil {
				parents++
			}
		}
	}
	if parents == 0 {
		t.Fatal("no dahlia invoice names its subscription through parent")
	}
	for _, obj := range []string{"subscription", "invoice", "line_item", "charge", "refund", "invoice_payment", "discount", "credit_note"} {
		if seen[obj] == 0 {
			t.Errorf("no %s was rendered", obj)
		}
	}
}

// An account upgraded partway through renders each event at the default in force when it was
// created, in the Events API and, for an endpoint with no version of its own, in its webhooks;
// a pinned endpoint keeps its version.
func TestUpgradePartwayThrough(t *testing.T) {
	t.Parallel()
	at := end.Add(-45 * 24 * time.Hour)
	for _, webhook := range []string{stripesim.Unpinned, ""} {
		sim := stripesim.New(stripesim.Config{Seed: 3, Customers: 30, End: end, UpgradeTo: dahlia, UpgradeAt: at, WebhookAPIVersion: webhook})
		sim.Run(time.Time{})
		counts := map[string]int{}
		for _, ev := range sim.Events() {
			want := "2023-10-16"
			if !time.Unix(ev.Created, 0).Before(at) {
				want = dahlia
			}
			wantWebhook := want
			if webhook == "" {
				wantWebhook = "2023-10-16"
			}
			for _, r := range []struct {
				raw  []byte
				want string
			}{{ev.API, want}, {ev.Webhook, wantWebhook}} {
				var v struct {
					APIVersion string `json:"api_version"`
				}
				if err := json.Unmarshal(r.raw, &v); err != nil || v.APIVersion != r.want {
					t.Fatalf("%s created %d (upgrade at %d), webhook %q: rendered at %q, want %q", ev.ID, ev.Created, at.Unix(), webhook, v.APIVersion, r.want)
				}
			}
			counts[want]++
		}
		if counts["2023-10-16"] == 0 || counts[dahlia] == 0 {
			t.Fatalf("events by version: %v", counts)
		}
	}
}
