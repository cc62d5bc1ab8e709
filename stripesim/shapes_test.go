package stripesim_test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/stripesim"
)

// The simulator's objects use Stripe's field names: every field of every event and object it
// renders must be a property of that object in Stripe's OpenAPI spec for 2023-10-16, as shipped in
// stripe-mock v0.183.0. testdata/stripe-mock-v0.183.0-properties.json holds those property names,
// extracted with:
//
//	python3 -c 'import json; s=json.load(open("embedded/openapi/spec3.json"))["components"]["schemas"]; …'
//
// (run in the stripe-mock module; see the file's _source note). The money side's objects are in
// testdata/stripe-mock-v0.183.0-money-properties.json, with their required properties, which
// must all be rendered.
func TestShapesFollowStripe(t *testing.T) {
	t.Parallel()
	props := map[string][]string{}
	required := map[string][]string{}
	for _, file := range []string{"testdata/stripe-mock-v0.183.0-properties.json", "testdata/stripe-mock-v0.183.0-money-properties.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var spec map[string]any
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatal(err)
		}
		for k, v := range spec {
			if list, ok := v.([]any); ok {
				for _, p := range list {
					props[k] = append(props[k], p.(string))
				}
			}
		}
		if req, ok := spec["required"].(map[string]any); ok {
			for k, v := range req {
				for _, p := range v.([]any) {
					required[k] = append(required[k], p.(string))
				}
			}
		}
	}
	// Stripe added multiple discounts to 2023-10-16 after the spec stripe-mock v0.183.0 embeds:
	// stripe-go v76.25.0 (the SDK this module pins, same API version) decodes them, and
	// v0.203.0's spec (2026-08-26.dahlia) has them.
	for object, fields := range map[string][]string{
		"subscription": {"discounts"}, "subscription_item": {"discounts"}, "discount": {"subscription_item"},
	} {
		props[object] = append(props[object], fields...)
	}
	check := func(where, object string, fields map[string]any) {
		t.Helper()
		known, ok := props[object]
		if !ok {
			t.Fatalf("%s: no spec for object %q", where, object)
		}
		for f := range fields {
			if !slices.Contains(known, f) {
				t.Errorf("%s: %s has field %q, which Stripe's %s does not", where, object, f, object)
			}
		}
		for _, f := range required[object] {
			if _, ok := fields[f]; !ok {
				t.Errorf("%s: %s lacks %q, which Stripe's %s requires", where, object, f, object)
			}
		}
	}
	sim := stripesim.New(stripesim.Config{Seed: 99, Customers: 80, End: end})
	sim.Run(time.Time{})
	seen := map[string]bool{}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if obj, ok := x["object"].(string); ok && obj != "list" {
				seen[obj] = true
				check(where, obj, x)
			}
			for k, child := range x {
				if k == "previous_attributes" || k == "metadata" {
					continue
				}
				walk(where+"."+k, child)
			}
		case []any:
			for _, child := range x {
				walk(where, child)
			}
		}
	}
	for _, ev := range sim.Events() {
		var v map[string]any
		if err := json.Unmarshal(ev.Webhook, &v); err != nil {
			t.Fatal(err)
		}
		walk(ev.Type, v)
	}
	// Balance transactions have no events: they are read from the truth's objects, as the API
	// renders them.
	var bts []any
	if err := json.Unmarshal(sim.Truth().MoneyObjects["balance_transactions"], &bts); err != nil {
		t.Fatal(err)
	}
	walk("balance transactions", bts)
	// A platform's connected accounts and webhook endpoints, as its API renders them.
	p := stripesim.NewPlatform(stripesim.PlatformConfig{Seed: 99, Accounts: 4, Customers: 2, AccountCustomers: 2, End: end})
	for _, a := range p.Accounts() {
		raw, _ := json.Marshal(a)
		var v map[string]any
		_ = json.Unmarshal(raw, &v)
		walk("account "+a.ID, v)
	}
	raw, _ := json.Marshal(stripesim.WebhookEndpoint{ID: "we_x", Object: "webhook_endpoint", Application: stripe.String(p.Application())})
	var ep map[string]any
	_ = json.Unmarshal(raw, &ep)
	walk("webhook endpoint", ep)
	for _, obj := range []string{"account", "webhook_endpoint", "event", "customer", "subscription", "subscription_item", "price", "invoice", "line_item", "charge", "refund", "dispute", "checkout.session",
		"discount", "coupon", "balance_transaction", "payout", "payment_intent", "credit_note", "credit_note_line_item"} {
		if !seen[obj] {
			t.Errorf("no %s was rendered", obj)
		}
	}
}
