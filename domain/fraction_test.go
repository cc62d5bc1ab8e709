package domain

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// The int64 fast path values every state exactly as math/big does, overflow or not.
func TestFastValuationIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	amounts := []int64{0, 1, 7, 999, 2900, 123456789, math.MaxInt64 / 3, math.MaxInt64}
	ratOf := func() *big.Rat {
		n := amounts[rng.IntN(len(amounts))] + rng.Int64N(1000)
		if n < 0 {
			n = math.MaxInt64
		}
		return big.NewRat(n, []int64{1, 3, 12, 36, 1000, 7919}[rng.IntN(6)])
	}
	percents := []Decimal{"12.5", "33.3333", "100", "0.0001", "150", "1e2", "99.999999999999999"}
	discount := func() Discount {
		d := Discount{ID: "di", Coupon: "co", Duration: []string{"forever", "once", "repeating"}[rng.IntN(3)]}
		if rng.IntN(2) == 0 {
			p := percents[rng.IntN(len(percents))]
			d.PercentOff = &p
		} else {
			a, cur := amounts[rng.IntN(len(amounts))], "usd"
			d.AmountOff, d.Currency = &a, &cur
		}
		if rng.IntN(3) == 0 {
			end := int64(500)
			d.End = &end
		}
		d.Prepare()
		return d
	}
	factors := []*big.Rat{big.NewRat(1, 1), big.NewRat(1, 12), big.NewRat(52, 12), big.NewRat(365, 36)}
	for i := range 20000 {
		s := MRRState{Status: "active", OwnDiscounts: rng.IntN(2) == 0}
		for range 1 + rng.IntN(3) {
			it := ItemValue{Monthly: ratOf(), Factor: factors[rng.IntN(len(factors))]}
			for range rng.IntN(3) {
				it.Discounts = append(it.Discounts, discount())
			}
			s.Items = append(s.Items, it)
		}
		for range rng.IntN(3) {
			s.Discounts = append(s.Discounts, discount())
		}
		cust := discount()
		set := MRRSettings{Discounts: []string{DiscountsRecurring, DiscountsOneTime, DiscountsBoth}[rng.IntN(3)]}
		at := rng.Int64N(1000)
		customer := func(int64) *Discount { return &cust }
		fast, fastWhy := s.valueAt(at, "usd", set, customer)
		fastFractions = false
		exact, exactWhy := s.valueAt(at, "usd", set, customer)
		fastFractions = true
		if fast != exact || fastWhy != exactWhy {
			t.Fatalf("case %d: fast %d %q, math/big %d %q: %s", i, fast, fastWhy, exact, exactWhy, fmt.Sprint(s))
		}
	}
}
