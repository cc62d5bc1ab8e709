package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
)

// Discounts as Stripe sends them. A discount carries its coupon: at 2023-10-16 in
// discount.coupon, at dahlia in discount.source.coupon; a promotion code's discount carries the
// code's coupon the same way (and the code itself, expanded, carries it too). Lists of discounts
// (subscription.discounts, subscription_item.discounts) hold discount objects or, unexpanded,
// their di_… IDs: an ID is resolved against the discount objects of the same subscription (the
// legacy single discount, the items' expanded ones), and one that cannot be resolved cannot be
// valued.

// Discount is one discount as the valuation reads it (and the row shows it).
type Discount struct {
	ID               string   `json:"id"`
	Coupon           string   `json:"coupon,omitempty"`
	PromotionCode    *string  `json:"promotion_code"`
	Duration         string   `json:"duration,omitempty"` // forever, once, repeating
	DurationInMonths *int64   `json:"duration_in_months,omitempty"`
	PercentOff       *Decimal `json:"percent_off,omitempty"`
	AmountOff        *int64   `json:"amount_off,omitempty"` // minor units of Currency
	Currency         *string  `json:"currency,omitempty"`
	// AmountOffIn is amount_off in the coupon's other currencies (coupon.currency_options).
	AmountOffIn map[string]int64 `json:"amount_off_in,omitempty"`
	Start       *int64           `json:"start,omitempty"`
	End         *int64           `json:"end"`
	// Unvalued says why the discount cannot be valued (an unexpanded ID, a coupon left as its
	// ID, a coupon with neither percent_off nor amount_off); "" when it can.
	Unvalued string   `json:"unvalued,omitempty"`
	pct      *big.Rat // PercentOff parsed once (SetPercentOff); nil: parsed when applied
}

// Percent is PercentOff's exact value, parsed once: a recompute applies a discount at every
// instant of a subscription's time line.
func (d *Discount) Percent() *big.Rat {
	if d.pct != nil {
		return d.pct
	}
	if d.PercentOff == nil {
		return nil
	}
	p, _ := d.PercentOff.Rat()
	return p
}

// Prepare parses what the valuation reads of the discount once (see Percent).
func (d *Discount) Prepare() {
	if d.PercentOff != nil && d.pct == nil {
		d.pct, _ = d.PercentOff.Rat()
	}
}

type rawCoupon struct {
	ID               string   `json:"id"`
	Duration         string   `json:"duration"`
	DurationInMonths *int64   `json:"duration_in_months"`
	PercentOff       *Decimal `json:"percent_off"`
	AmountOff        *int64   `json:"amount_off"`
	Currency         *string  `json:"currency"`
	CurrencyOptions  map[string]struct {
		AmountOff int64 `json:"amount_off"`
	} `json:"currency_options"`
}

type rawDiscount struct {
	ID     string          `json:"id"`
	Start  *int64          `json:"start"`
	End    *int64          `json:"end"`
	Coupon json.RawMessage `json:"coupon"`
	Source *struct {
		Coupon json.RawMessage `json:"coupon"`
	} `json:"source"`
	PromotionCode json.RawMessage `json:"promotion_code"`
}

type rawPromotionCode struct {
	ID        string          `json:"id"`
	Coupon    json.RawMessage `json:"coupon"`
	Promotion *struct {
		Coupon json.RawMessage `json:"coupon"`
	} `json:"promotion"`
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// discountRef is an element of a discounts list: an expanded discount or its ID.
type discountRef struct {
	ID  string
	Obj *rawDiscount
}

func (d *discountRef) UnmarshalJSON(b []byte) error {
	if isObject(b) {
		d.Obj = new(rawDiscount)
		if err := json.Unmarshal(b, d.Obj); err != nil {
			return err
		}
		d.ID = d.Obj.ID
		return nil
	}
	return json.Unmarshal(b, &d.ID)
}

// readDiscount is the valuation's view of a discount object.
func readDiscount(d *rawDiscount) Discount {
	out := Discount{ID: d.ID, Start: d.Start, End: d.End}
	var promo rawPromotionCode
	if len(d.PromotionCode) > 0 && string(d.PromotionCode) != "null" {
		if isObject(d.PromotionCode) {
			if err := json.Unmarshal(d.PromotionCode, &promo); err == nil {
				out.PromotionCode = &promo.ID
			}
		} else {
			var id string
			if json.Unmarshal(d.PromotionCode, &id) == nil {
				out.PromotionCode = &id
			}
		}
	}
	coupon := d.Coupon
	for _, c := range []json.RawMessage{sourceCoupon(d), promo.Coupon, promoCoupon(&promo)} {
		if !isObject(coupon) && isObject(c) {
			coupon = c
		}
	}
	if !isObject(coupon) {
		// The coupon's ID: the discount's coupon, or from 2025-09-30.clover its source's.
		var id string
		for _, c := range []json.RawMessage{coupon, sourceCoupon(d)} {
			if id == "" && len(c) > 0 {
				_ = json.Unmarshal(c, &id)
			}
		}
		out.Coupon = id
		out.Unvalued = fmt.Sprintf("discount %s: its coupon %q is not expanded", d.ID, id)
		return out
	}
	var c rawCoupon
	if err := json.Unmarshal(coupon, &c); err != nil {
		out.Unvalued = fmt.Sprintf("discount %s: coupon: %v", d.ID, err)
		return out
	}
	terms := couponTerms(&c)
	terms.ID, terms.PromotionCode, terms.Start, terms.End = out.ID, out.PromotionCode, out.Start, out.End
	return terms
}

// couponTerms is a discount of coupon c's terms, as a discount that embeds c reads: its ID and
// times are the discount's, left to the caller.
func couponTerms(c *rawCoupon) Discount {
	var out Discount
	out.Coupon, out.Duration, out.DurationInMonths = c.ID, c.Duration, c.DurationInMonths
	out.PercentOff, out.AmountOff, out.Currency = c.PercentOff, c.AmountOff, c.Currency
	for cur, o := range c.CurrencyOptions {
		if out.AmountOffIn == nil {
			out.AmountOffIn = map[string]int64{}
		}
		out.AmountOffIn[cur] = o.AmountOff
	}
	switch {
	case c.PercentOff == nil && c.AmountOff == nil:
		out.Unvalued = fmt.Sprintf("coupon %s has neither percent_off nor amount_off", c.ID)
	case c.PercentOff != nil:
		if _, ok := c.PercentOff.Rat(); !ok {
			out.Unvalued = fmt.Sprintf("coupon %s: percent_off %q", c.ID, string(*c.PercentOff))
		}
	}
	if c.Duration != "forever" && c.Duration != "once" && c.Duration != "repeating" && out.Unvalued == "" {
		out.Unvalued = fmt.Sprintf("coupon %s has duration %q", c.ID, c.Duration)
	}
	out.Prepare()
	return out
}

func sourceCoupon(d *rawDiscount) json.RawMessage {
	if d.Source == nil {
		return nil
	}
	return d.Source.Coupon
}

func promoCoupon(p *rawPromotionCode) json.RawMessage {
	if p.Promotion == nil {
		return nil
	}
	return p.Promotion.Coupon
}

// Coupons from the object's earlier events. A coupon's terms (percent_off, amount_off,
// duration) never change once it is created, so a coupon embedded in an event of an object
// values a discount that the same or a later event names by the coupon's ID alone (from
// 2025-09-30.clover, discount.source.coupon). A log that holds an object's events at two
// versions — webhooks of an endpoint pinned to 2023-10-16 beside the Events API's repairs at the
// account's dahlia — is so valued from the first event that embeds the coupon on. Never from a
// later event: a state is valued, and a movement timed, as a fold of the log cut there would. An
// object none of whose events so far embeds the coupon stays unvalued, and says so. The terms
// taken are those of the latest embedding event, in the ordering rule's order.

// needsCoupon says the discount names its coupon by ID only, so it carries no terms.
func (d *Discount) needsCoupon() bool {
	return d.Coupon != "" && d.Unvalued != "" && d.Duration == "" && d.PercentOff == nil && d.AmountOff == nil
}

// coupons adds to known the coupons ds embed with their terms, and returns it: nil until one is
// found, so an object with no discount (most, on a replay) allocates nothing.
func coupons(known map[string]Discount, ds []Discount) map[string]Discount {
	for _, d := range ds {
		if d.Coupon != "" && d.Unvalued == "" {
			if known == nil {
				known = map[string]Discount{}
			}
			known[d.Coupon] = d
		}
	}
	return known
}

// fillCoupons gives each discount of ds that names its coupon by ID only the coupon's known
// terms.
func fillCoupons(ds []Discount, known map[string]Discount) {
	for i := range ds {
		d := &ds[i]
		if c, ok := known[d.Coupon]; ok && d.needsCoupon() {
			d.Duration, d.DurationInMonths, d.PercentOff, d.AmountOff = c.Duration, c.DurationInMonths, c.PercentOff, c.AmountOff
			d.Currency, d.AmountOffIn, d.Unvalued, d.pct = c.Currency, c.AmountOffIn, "", c.pct
			d.Prepare()
		}
	}
}

// resolve turns a discounts list into discounts, looking unexpanded IDs up in known.
func resolve(refs []discountRef, known map[string]Discount) []Discount {
	out := make([]Discount, 0, len(refs))
	for _, r := range refs {
		if r.Obj != nil {
			out = append(out, readDiscount(r.Obj))
			continue
		}
		if d, ok := known[r.ID]; ok {
			out = append(out, d)
			continue
		}
		out = append(out, Discount{ID: r.ID, Unvalued: fmt.Sprintf("discount %s is not expanded", r.ID)})
	}
	return out
}

// counts says whether the discounts setting subtracts a coupon of this duration.
func (s MRRSettings) counts(d *Discount) bool {
	switch s.Discounts {
	case DiscountsBoth:
		return true
	case DiscountsOneTime:
		return d.Duration == "once"
	default:
		return d.Duration == "forever" || d.Duration == "repeating"
	}
}

// inForce says whether d applies at t: start ≤ t and t < end (a discount that says neither
// applies while it is on the object).
func (d *Discount) inForce(t int64) bool {
	return (d.Start == nil || *d.Start <= t) && (d.End == nil || t < *d.End)
}

var hundred = big.NewRat(100, 1)

// apply takes d off what remains (exact, never below 0). factor is the month factor of the
// items the discount applies to, for amount_off (an amount per billing period).
func (d *Discount) apply(remains *big.Rat, currency string, factor *big.Rat) error {
	switch {
	case d.PercentOff != nil:
		off := new(big.Rat).Mul(remains, d.Percent())
		remains.Sub(remains, off.Quo(off, hundred))
	case d.AmountOff != nil:
		amt, ok := int64(0), false
		if d.Currency != nil && *d.Currency == currency {
			amt, ok = *d.AmountOff, true
		} else if v, in := d.AmountOffIn[currency]; in {
			amt, ok = v, true
		}
		if !ok {
			return fmt.Errorf("coupon %s has no amount_off in %s", d.Coupon, currency)
		}
		off := new(big.Rat).SetInt64(amt)
		if factor != nil {
			off.Mul(off, factor)
		}
		remains.Sub(remains, off)
	}
	if remains.Sign() < 0 {
		remains.SetInt64(0)
	}
	return nil
}
