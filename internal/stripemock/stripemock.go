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
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/stripe/stripe-mock@"+version).Output()
	if err != nil {
		t.Fatalf("go mod download stripe-mock@%s: %v", version, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download stripe-mock@%s: %s %v", version, out, err)
	}
	raw, err := os.ReadFile(filepath.Join(mod.Dir, "embedded", "openapi", "spec3.json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
