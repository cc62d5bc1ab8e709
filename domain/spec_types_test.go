package domain

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/internal/stripemock"
)

// Every numeric field the subscription, price, coupon and discount decoders read has the type
// Stripe's spec gives it, at 2023-10-16 (stripe-mock v0.183.0) and dahlia (v0.203.0): int64 for
// an integer, Decimal for a number or a decimal string (coupon.percent_off is a number: 12.5 is
// valid and once quarantined every event of its subscription).
func TestDecodersReadStripesNumericTypes(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"v0.183.0", "v0.203.0"} {
		raw := stripemock.Spec(t, version)
		var spec struct {
			Components struct {
				Schemas map[string]*schema `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatal(err)
		}
		c := &typeCheck{t: t, version: version, schemas: spec.Components.Schemas}
		for name, typ := range map[string]reflect.Type{
			"subscription": reflect.TypeFor[rawSubscription](), "price": reflect.TypeFor[rawPrice](),
			"coupon": reflect.TypeFor[rawCoupon](), "discount": reflect.TypeFor[rawDiscount](),
			"promotion_code": reflect.TypeFor[rawPromotionCode](),
		} {
			c.check(name, c.schemas[name], typ)
		}
		if c.numeric < 20 {
			t.Fatalf("%s: only %d numeric fields checked", version, c.numeric)
		}
	}
}

type schema struct {
	Type                 string             `json:"type"`
	Ref                  string             `json:"$ref"`
	AnyOf                []*schema          `json:"anyOf"`
	Items                *schema            `json:"items"`
	Properties           map[string]*schema `json:"properties"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
}

type typeCheck struct {
	t       *testing.T
	version string
	schemas map[string]*schema
	numeric int
}

// resolve is s's alternatives with their references followed.
func (c *typeCheck) resolve(s *schema) []*schema {
	if s == nil {
		return nil
	}
	if s.Ref != "" {
		return c.resolve(c.schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")])
	}
	out := []*schema{s}
	for _, a := range s.AnyOf {
		out = append(out, c.resolve(a)...)
	}
	return out
}

func (c *typeCheck) check(path string, s *schema, typ reflect.Type) {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		if typ == reflect.TypeFor[json.RawMessage]() {
			return // a string or an object: read by hand
		}
		typ = typ.Elem()
		if s != nil && s.Items != nil {
			s = s.Items
		}
	}
	alts := c.resolve(s)
	var types []string
	for _, a := range alts {
		types = append(types, a.Type)
		if a.Items != nil {
			for _, i := range c.resolve(a.Items) {
				types = append(types, i.Type)
			}
		}
	}
	switch {
	case typ == reflect.TypeFor[Decimal]():
		c.numeric++
		if !slices.Contains(types, "number") && !slices.Contains(types, "string") {
			c.t.Errorf("%s: %s is a Decimal, the spec says %v", c.version, path, types)
		}
	case typ.Kind() == reflect.Int64:
		c.numeric++
		if !slices.Contains(types, "integer") {
			c.t.Errorf("%s: %s is an int64, the spec says %v", c.version, path, types)
		}
	case typ.Kind() == reflect.Map && typ.Elem().Kind() == reflect.Struct:
		for _, a := range alts {
			var ap schema
			if json.Unmarshal(a.AdditionalProperties, &ap) == nil {
				c.check(path+"[*]", &ap, typ.Elem())
			}
		}
	case typ.Kind() == reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			var prop *schema
			for _, a := range alts {
				if p, ok := a.Properties[name]; ok {
					prop = p
				}
			}
			if prop == nil {
				continue // not in this version (discount.source before dahlia, say)
			}
			c.check(path+"."+name, prop, f.Type)
		}
	}
}
