package domain

import (
	"math"
	"math/big"
	"math/bits"
)

// frac is an exact fraction n/d in int64s (d > 0, in lowest terms): the valuation's fast path.
// Nearly every price and coupon fits, and int64 arithmetic with overflow checks is an order of
// magnitude faster than math/big; any operation that would overflow reports it, and the
// valuation starts again with math/big (valueAt), so the result is always exact.
type frac struct{ n, d int64 }

func gcd(a, b int64) int64 {
	if a < 0 {
		a = -a
	}
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func mul64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	neg := (a < 0) != (b < 0)
	ua, ub := uint64(a), uint64(b)
	if a < 0 {
		ua = uint64(-a)
	}
	if b < 0 {
		ub = uint64(-b)
	}
	if a == math.MinInt64 || b == math.MinInt64 {
		return 0, false
	}
	hi, lo := bits.Mul64(ua, ub)
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(lo), true
	}
	return int64(lo), true
}

func add64(a, b int64) (int64, bool) {
	c := a + b
	if (c > a) != (b > 0) {
		return 0, false
	}
	return c, true
}

func norm(n, d int64) (frac, bool) {
	if d == 0 || d == math.MinInt64 || n == math.MinInt64 {
		return frac{}, false
	}
	if d < 0 {
		n, d = -n, -d
	}
	if g := gcd(n, d); g > 1 {
		n, d = n/g, d/g
	}
	return frac{n, d}, true
}

func (a frac) add(b frac) (frac, bool) {
	g := gcd(a.d, b.d)
	// a.n·(b.d/g) + b.n·(a.d/g) over a.d·(b.d/g)
	x, ok1 := mul64(a.n, b.d/g)
	y, ok2 := mul64(b.n, a.d/g)
	d, ok3 := mul64(a.d, b.d/g)
	n, ok4 := add64(x, y)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return frac{}, false
	}
	return norm(n, d)
}

func (a frac) mul(b frac) (frac, bool) {
	g1, g2 := gcd(a.n, b.d), gcd(b.n, a.d)
	if g1 == 0 {
		g1 = 1
	}
	if g2 == 0 {
		g2 = 1
	}
	n, ok1 := mul64(a.n/g1, b.n/g2)
	d, ok2 := mul64(a.d/g2, b.d/g1)
	if !ok1 || !ok2 {
		return frac{}, false
	}
	return norm(n, d)
}

// fracOf is r as a frac, when it fits.
func fracOf(r *big.Rat) (frac, bool) {
	if r == nil || !r.Num().IsInt64() || !r.Denom().IsInt64() {
		return frac{}, false
	}
	return frac{r.Num().Int64(), r.Denom().Int64()}, true
}

// floor is ⌊a⌋.
func (a frac) floor() int64 {
	q := a.n / a.d
	if a.n%a.d != 0 && a.n < 0 {
		q--
	}
	return q
}
