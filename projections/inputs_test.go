package projections

import (
	"encoding/json"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/stripesim"
)

// The kept inputs give every subscription of a simulated account the movement log and figures
// its events give, under every setting; a damaged encoding is refused, never misread.
func TestInputsRoundTrip(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 31, Customers: 120, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	byObject := map[string][]domain.Fact{}
	for _, ev := range sim.Events() {
		f, err := domain.DecodeFact(ev.Webhook)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Field("object")) == `"subscription"` {
			byObject[ev.ObjectID] = append(byObject[ev.ObjectID], f)
		}
	}
	settings := []domain.MRRSettings{{}, {Discounts: domain.DiscountsBoth, ChurnAt: domain.ChurnAtPeriodEnd, PastDueDays: 2, Paused: domain.PausedZero}}
	customer := []domain.CustomerDiscount{{At: 1_770_000_000, Discount: &domain.Discount{ID: "di_c", Duration: "forever", PercentOff: ptrTo(domain.Decimal("12.5"))}}}
	// And a subscription with every discount field.
	byObject["sub_d"] = []domain.Fact{mustFact(`{"id":"evt_d","object":"event","type":"customer.subscription.updated","created":1000,"api_version":"2023-10-16","data":{"object":
		{"id":"sub_d","object":"subscription","customer":"cus_d","status":"active","currency":"usd","current_period_start":0,"current_period_end":2592000,
		"discounts":[{"id":"di_1","start":500,"end":90000,"promotion_code":"promo_1","coupon":{"id":"co_1","duration":"repeating","duration_in_months":3,"percent_off":12.5}},
		             {"id":"di_2","start":500,"end":null,"coupon":{"id":"co_2","duration":"forever","amount_off":300,"currency":"eur","currency_options":{"usd":{"amount_off":350},"gbp":{"amount_off":250}}}}],
		"items":{"data":[{"id":"si_1","quantity":4,"discounts":[{"id":"di_3","start":1,"end":null,"coupon":{"id":"co_3","duration":"once","percent_off":10}}],
		  "price":{"id":"p","billing_scheme":"per_unit","unit_amount_decimal":"999.5","recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]}}}}`)}
	// Decoded alone and with the numbers shared across every subscription's inputs, as a
	// recompute decodes them (decodeInputsWith); the damaged encodings go through the shared
	// map too, which must not keep anything of them.
	shared := map[string]*big.Rat{}
	checked := 0
	for id, facts := range byObject {
		row, h, err := domain.FoldSubscriptionHistory(facts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := encodeInputs(row.Attention, &h)
		if err != nil {
			t.Fatal(err)
		}
		for _, rats := range []map[string]*big.Rat{nil, shared} {
			attention, back, err := decodeInputsWith(b, rats)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			for _, set := range settings {
				want, got := row, domain.SubscriptionRow{Attention: attention}
				wantMoves, gotMoves := h.Value(&want, customer, set), back.Value(&got, customer, set)
				a, _ := json.Marshal([]any{wantMoves, want.MRR, want.Attention})
				z, _ := json.Marshal([]any{gotMoves, got.MRR, got.Attention})
				if string(a) != string(z) {
					t.Fatalf("%s under %s (shared numbers: %t): from events %s, from inputs %s", id, set, rats != nil, a, z)
				}
			}
			kept := len(rats)
			for cut := 0; cut < len(b); cut += 7 {
				if _, _, err := decodeInputsWith(b[:cut], rats); err == nil {
					t.Fatalf("%s: %d of %d bytes decoded", id, cut, len(b))
				}
			}
			if len(rats) != kept {
				t.Fatalf("%s: damaged encodings left %d numbers in the shared map", id, len(rats)-kept)
			}
		}
		checked++
	}
	if checked < 50 || len(shared) == 0 || reflect.DeepEqual(settings[0], settings[1]) {
		t.Fatalf("only %d subscriptions", checked)
	}
}

func mustFact(raw string) domain.Fact {
	f, err := domain.DecodeFact([]byte(raw))
	if err != nil {
		panic(err)
	}
	return f
}

func ptrTo[T any](v T) *T { return &v }
