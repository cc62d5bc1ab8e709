// Package stripemock reads Stripe's OpenAPI spec as stripe-mock embeds it, for the tests that
// hold the ledger and the simulator to Stripe's shapes: v0.183.0 embeds API 2023-10-16 and
// v0.203.0 2026-08-26.dahlia. Both come from the Go module proxy (go.mod pins v0.183.0 as a
// tool; v0.203.0 is fetched into the module cache on first use).
package stripemock

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Spec is embedded/openapi/spec3.json of stripe-mock at version (v0.183.0, v0.203.0).
func Spec(t testing.TB, version string) []byte {
	t.Helper()
	return embedded(t, version, "spec3.json")
}

// Fixtures are the resources of embedded/openapi/fixtures3.json of stripe-mock at version:
// one example of each object, by its `object` (invoice, checkout.session, …).
func Fixtures(t testing.TB, version string) map[string]json.RawMessage {
	t.Helper()
	var f struct {
		Resources map[string]json.RawMessage `json:"resources"`
	}
	if err := json.Unmarshal(embedded(t, version, "fixtures3.json"), &f); err != nil || len(f.Resources) == 0 {
		t.Fatalf("stripe-mock@%s fixtures3.json: %v", version, err)
	}
	return f.Resources
}

func embedded(t testing.TB, version, name string) []byte {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/stripe/stripe-mock@"+version).Output()
	if err != nil {
		t.Fatalf("go mod download stripe-mock@%s: %v", version, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download stripe-mock@%s: %s %v", version, out, err)
	}
	raw, err := os.ReadFile(filepath.Join(mod.Dir, "embedded", "openapi", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
