package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// Absent is NULL: over the simulated account, no nullable text column holds an empty string for
// "none", and the columns whose Stripe value is often absent (a guest's charge has no customer,
// a one-off charge no invoice, a row needing nobody's attention no attention) hold NULL.
func TestAbsentIsNULL(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 79, Customers: 200, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	ctx := context.Background()
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, m := range projections.Models {
		for _, c := range m.Columns {
			if !c.Null || c.Type != "text" {
				continue
			}
			var empty int
			if err := db.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM ledger.%s WHERE %s = ''`, m.Table, c.Name)).Scan(&empty); err != nil {
				t.Fatal(err)
			}
			if empty > 0 {
				t.Errorf("ledger.%s.%s holds '' in %d rows: absent must be NULL", m.Table, c.Name, empty)
			}
			checked++
		}
	}
	for _, q := range []string{
		`SELECT count(*) FROM ledger.charges WHERE customer IS NULL`,
		`SELECT count(*) FROM ledger.charges WHERE invoice IS NULL`,
		`SELECT count(*) FROM ledger.checkout_sessions WHERE customer IS NULL`,
		`SELECT count(*) FROM ledger.subscriptions WHERE attention IS NULL`,
		`SELECT count(*) FROM ledger.charges WHERE dispute_id IS NULL AND dispute_status IS NULL`,
	} {
		var n int
		if err := db.Pool.QueryRow(ctx, q).Scan(&n); err != nil || n == 0 {
			t.Errorf("%s: %d (%v): the account should have rows with the value absent", q, n, err)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d nullable text columns checked", checked)
	}
}

// Every column that comes from a field Stripe's API spec says can be null, or may be left out,
// is a nullable column: checked against the OpenAPI spec embedded in stripe-mock v0.183.0 (API
// 2023-10-16), the version the reducers read.
func TestColumnsAreNullableWhereStripeIs(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/stripe/stripe-mock@v0.183.0").Output()
	if err != nil {
		t.Fatalf("go mod download stripe-mock: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download stripe-mock: %s %v", out, err)
	}
	raw, err := os.ReadFile(filepath.Join(mod.Dir, "embedded", "openapi", "spec3.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string `json:"required"`
				Properties map[string]struct {
					Nullable bool `json:"nullable"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, m := range projections.Models {
		schema, ok := spec.Components.Schemas[m.ObjectType]
		if !ok {
			schema, ok = spec.Components.Schemas[strings.ReplaceAll(m.ObjectType, ".", "_")]
		}
		if !ok {
			t.Fatalf("no schema %q in the spec", m.ObjectType)
		}
		for _, c := range m.Columns {
			if c.Stripe == "" || c.Name == "id" { // a row is an object with an ID: events without one are left out
				continue
			}
			prop, ok := schema.Properties[c.Stripe]
			if !ok {
				t.Errorf("ledger.%s.%s comes from %s.%s, which the spec does not have", m.Table, c.Name, m.ObjectType, c.Stripe)
				continue
			}
			absent := prop.Nullable || !slices.Contains(schema.Required, c.Stripe)
			if absent && !c.Null {
				t.Errorf("ledger.%s.%s is NOT NULL, but Stripe's %s.%s can be null or absent", m.Table, c.Name, m.ObjectType, c.Stripe)
			}
			checked++
		}
	}
	if checked < 60 {
		t.Fatalf("only %d columns checked", checked)
	}
}
