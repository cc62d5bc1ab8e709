package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/stripemock"
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
// is a nullable column: checked against the OpenAPI specs embedded in stripe-mock v0.183.0 (API
// 2023-10-16) and v0.203.0 (2026-08-26.dahlia). A field one of them does not have at all (an
// invoice's charge at dahlia) is absent from events at that version, so its column must be
// nullable too; every column's field is in one of them, and every model's object in dahlia.
func TestColumnsAreNullableWhereStripeIs(t *testing.T) {
	t.Parallel()
	type schema struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Nullable bool `json:"nullable"`
		} `json:"properties"`
	}
	specs := map[string]map[string]schema{}
	for _, version := range []string{"v0.183.0", "v0.203.0"} {
		raw := stripemock.Spec(t, version)
		var spec struct {
			Components struct {
				Schemas map[string]schema `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatal(err)
		}
		specs[version] = spec.Components.Schemas
	}
	checked := 0
	for _, m := range projections.Models {
		found := map[string]bool{} // the columns whose field some spec has
		for version, schemas := range specs {
			schema, ok := schemas[m.ObjectType]
			if !ok {
				schema, ok = schemas[strings.ReplaceAll(m.ObjectType, ".", "_")]
			}
			if !ok {
				if version == "v0.203.0" {
					t.Errorf("no schema %q in the dahlia spec", m.ObjectType)
				}
				continue // an object of a later version (invoice_payment)
			}
			for _, c := range m.Columns {
				if c.Stripe == "" || c.Name == "id" { // a row is an object with an ID: events without one are left out
					continue
				}
				prop, ok := schema.Properties[c.Stripe]
				if ok {
					found[c.Name] = true
				}
				absent := !ok || prop.Nullable || !slices.Contains(schema.Required, c.Stripe)
				if absent && !c.Null {
					t.Errorf("ledger.%s.%s is NOT NULL, but Stripe's %s.%s can be null or absent (stripe-mock %s)", m.Table, c.Name, m.ObjectType, c.Stripe, version)
				}
				checked++
			}
		}
		for _, c := range m.Columns {
			if c.Stripe != "" && c.Name != "id" && !found[c.Name] {
				t.Errorf("ledger.%s.%s comes from %s.%s, which neither spec has", m.Table, c.Name, m.ObjectType, c.Stripe)
			}
		}
	}
	if checked < 120 {
		t.Fatalf("only %d columns checked", checked)
	}
}
