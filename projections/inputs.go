package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"

	"github.com/stripeledger/ledger/domain"
)

// A subscription's valuation inputs (domain.SubscriptionHistory) are kept beside its row in
// ledger.subscription_mrr_inputs, so that a change of the MRR settings recomputes every
// movement log without replaying the events (Recompute). The encoding is the ledger's own and
// compact: a subscription's events mostly repeat the same items and discounts, so each distinct
// discount and each distinct list of items is written once and the states refer to them.
//
//	version 2 | attention | id | customer | currency
//	| discounts: n × (id, coupon, promotion code, duration, …) | item lists: n × (n × (monthly, factor, discount refs))
//	| states: n × (event, at, status, flags, period start, period end, item list ref, discount refs, unvalued, metered)

const inputsVersion = 2

type enc struct{ b []byte }

func (e *enc) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) rat(r *big.Rat) {
	e.int(int64(r.Sign()))
	e.str(string(r.Num().Bytes()))
	e.str(string(r.Denom().Bytes()))
}

func (e *enc) optStr(s *string) {
	if s == nil {
		e.uint(0)
		return
	}
	e.uint(1)
	e.str(*s)
}

func (e *enc) optInt(v *int64) {
	if v == nil {
		e.uint(0)
		return
	}
	e.uint(1)
	e.int(*v)
}

func (e *enc) discount(d *domain.Discount) {
	e.str(d.ID)
	e.str(d.Coupon)
	e.optStr(d.PromotionCode)
	e.str(d.Duration)
	e.optInt(d.DurationInMonths)
	e.optStr((*string)(d.PercentOff))
	e.optInt(d.AmountOff)
	e.optStr(d.Currency)
	e.uint(uint64(len(d.AmountOffIn)))
	for _, cur := range slices.Sorted(maps.Keys(d.AmountOffIn)) {
		e.str(cur)
		e.int(d.AmountOffIn[cur])
	}
	e.optInt(d.Start)
	e.optInt(d.End)
	e.str(d.Unvalued)
}

func encodeInputs(attention *string, h *domain.SubscriptionHistory) ([]byte, error) {
	e := &enc{b: make([]byte, 0, 256)}
	e.uint(inputsVersion)
	if attention != nil {
		e.uint(1)
		e.str(*attention)
	} else {
		e.uint(0)
	}
	e.str(h.ID)
	e.str(h.Customer)
	e.str(h.Currency)
	// Distinct discounts, then distinct item lists, each numbered in order of first use.
	discounts, dIndex := []string{}, map[string]int{}
	ref := func(ds []domain.Discount) ([]int, error) {
		out := make([]int, len(ds))
		for i := range ds {
			de := &enc{}
			de.discount(&ds[i])
			b := de.b
			k, ok := dIndex[string(b)]
			if !ok {
				k = len(discounts)
				dIndex[string(b)], discounts = k, append(discounts, string(b))
			}
			out[i] = k
		}
		return out, nil
	}
	lists, lIndex := [][]byte{}, map[string]int{}
	type stateRefs struct {
		list      int
		discounts []int
	}
	refs := make([]stateRefs, len(h.States))
	for i := range h.States {
		s := &h.States[i]
		le := &enc{}
		le.uint(uint64(len(s.Items)))
		for _, it := range s.Items {
			le.rat(it.Monthly)
			le.rat(it.Factor)
			ds, err := ref(it.Discounts)
			if err != nil {
				return nil, err
			}
			le.uint(uint64(len(ds)))
			for _, d := range ds {
				le.uint(uint64(d))
			}
		}
		k, ok := lIndex[string(le.b)]
		if !ok {
			k = len(lists)
			lIndex[string(le.b)], lists = k, append(lists, le.b)
		}
		ds, err := ref(s.Discounts)
		if err != nil {
			return nil, err
		}
		refs[i] = stateRefs{k, ds}
	}
	e.uint(uint64(len(discounts)))
	for _, d := range discounts {
		e.b = append(e.b, d...)
	}
	e.uint(uint64(len(lists)))
	for _, l := range lists {
		e.b = append(e.b, l...)
	}
	e.uint(uint64(len(h.States)))
	for i := range h.States {
		s := &h.States[i]
		e.str(s.EventID)
		e.int(s.At)
		e.str(s.Status)
		var flags uint64
		for bit, on := range []bool{s.Paused, s.Terminal, s.OwnDiscounts, s.PeriodStart != nil, s.PeriodEnd != nil} {
			if on {
				flags |= 1 << bit
			}
		}
		e.uint(flags)
		if s.PeriodStart != nil {
			e.int(*s.PeriodStart)
		}
		if s.PeriodEnd != nil {
			e.int(*s.PeriodEnd)
		}
		e.uint(uint64(refs[i].list))
		e.uint(uint64(len(refs[i].discounts)))
		for _, d := range refs[i].discounts {
			e.uint(uint64(d))
		}
		e.str(s.Unvalued)
		e.uint(uint64(len(s.Metered)))
		for _, m := range s.Metered {
			e.str(m)
		}
	}
	return e.b, nil
}

var errInputs = errors.New("malformed subscription_mrr_inputs")

type dec struct {
	b   []byte
	err error
	// rats, when not nil, are the numbers decoded so far by their encoding: a recompute decodes
	// hundreds of thousands of inputs over the same few prices, and building each big.Rat again
	// (two big.Ints and a GCD) is most of a decode. The valuation never changes an input's
	// numbers (it copies before it computes), so one may be shared by every input of a worker.
	rats map[string]*big.Rat
}

func (d *dec) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errInputs, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errInputs, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.err, d.b = errInputs, nil
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *dec) str() string { return string(d.bytes()) }

func (d *dec) rat() *big.Rat {
	if d.rats == nil {
		return d.newRat()
	}
	start := d.b
	d.int()
	d.bytes()
	d.bytes()
	if d.err != nil {
		return new(big.Rat)
	}
	raw := start[:len(start)-len(d.b)]
	if r, ok := d.rats[string(raw)]; ok {
		return r
	}
	d.b = start
	r := d.newRat()
	if d.err == nil {
		if len(d.rats) >= maxSharedRats {
			clear(d.rats) // bounded: an account of many distinct amounts starts again
		}
		d.rats[string(raw)] = r
	}
	return r
}

// maxSharedRats bounds dec.rats.
const maxSharedRats = 1 << 16

func (d *dec) newRat() *big.Rat {
	sign := d.int()
	num := new(big.Int).SetBytes(d.bytes())
	if sign < 0 {
		num.Neg(num)
	}
	den := new(big.Int).SetBytes(d.bytes())
	if den.Sign() == 0 {
		d.err = errInputs
		return new(big.Rat)
	}
	return new(big.Rat).SetFrac(num, den)
}

// count is a length that the remaining bytes can hold (each element takes at least one byte).
func (d *dec) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.err, d.b = errInputs, nil
		return 0
	}
	return int(n)
}

func (d *dec) optStr() *string {
	if d.uint() == 0 {
		return nil
	}
	s := d.str()
	return &s
}

func (d *dec) optInt() *int64 {
	if d.uint() == 0 {
		return nil
	}
	v := d.int()
	return &v
}

func (d *dec) discount(o *domain.Discount) {
	o.ID, o.Coupon, o.PromotionCode, o.Duration = d.str(), d.str(), d.optStr(), d.str()
	o.DurationInMonths = d.optInt()
	if p := d.optStr(); p != nil {
		v := domain.Decimal(*p)
		o.PercentOff = &v
	}
	o.AmountOff, o.Currency = d.optInt(), d.optStr()
	if n := d.count(); n > 0 {
		o.AmountOffIn = make(map[string]int64, n)
		for range n {
			cur := d.str()
			o.AmountOffIn[cur] = d.int()
		}
	}
	o.Start, o.End, o.Unvalued = d.optInt(), d.optInt(), d.str()
	o.Prepare()
}

func decodeInputs(b []byte) (attention *string, h domain.SubscriptionHistory, err error) {
	return decodeInputsWith(b, nil)
}

// decodeInputsWith is decodeInputs sharing the numbers in rats (dec.rats) with the inputs
// decoded before with the same map; the map is not safe for concurrent use.
func decodeInputsWith(b []byte, rats map[string]*big.Rat) (attention *string, h domain.SubscriptionHistory, err error) {
	d := &dec{b: b, rats: rats}
	if v := d.uint(); v != inputsVersion {
		return nil, h, fmt.Errorf("%w: version %d", errInputs, v)
	}
	if d.uint() == 1 {
		a := d.str()
		attention = &a
	}
	h.ID, h.Customer, h.Currency = d.str(), d.str(), d.str()
	discounts := make([]domain.Discount, d.count())
	for i := range discounts {
		d.discount(&discounts[i])
	}
	refs := func() []domain.Discount {
		n := d.count()
		if n == 0 {
			return nil
		}
		out := make([]domain.Discount, n)
		for i := range out {
			k := d.uint()
			if k >= uint64(len(discounts)) {
				d.err = errInputs
				return nil
			}
			out[i] = discounts[k]
		}
		return out
	}
	lists := make([][]domain.ItemValue, d.count())
	for i := range lists {
		items := make([]domain.ItemValue, d.count())
		for j := range items {
			items[j] = domain.ItemValue{Monthly: d.rat(), Factor: d.rat(), Discounts: refs()}
		}
		lists[i] = items
	}
	h.States = make([]domain.MRRState, d.count())
	for i := range h.States {
		s := &h.States[i]
		s.EventID, s.At, s.Status = d.str(), d.int(), d.str()
		flags := d.uint()
		s.Paused, s.Terminal, s.OwnDiscounts = flags&1 != 0, flags&2 != 0, flags&4 != 0
		if flags&8 != 0 {
			v := d.int()
			s.PeriodStart = &v
		}
		if flags&16 != 0 {
			v := d.int()
			s.PeriodEnd = &v
		}
		if k := d.uint(); k < uint64(len(lists)) {
			s.Items = lists[k]
		} else {
			d.err = errInputs
		}
		s.Discounts = refs()
		s.Unvalued = d.str()
		for range d.count() {
			s.Metered = append(s.Metered, d.str())
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, h, errInputs
	}
	return attention, h, nil
}
