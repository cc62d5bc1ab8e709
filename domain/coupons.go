package domain

import (
	"cmp"
	"fmt"
	"slices"
)

// Coupons come by coupon.created, coupon.updated and coupon.deleted. From 2025-09-30.clover a
// discount names its coupon by ID (discount.source.coupon) instead of embedding it, so a log
// rendered at clover or later values its discounts from these events: the coupons read model
// holds each coupon's terms, and a subscription's or customer's discount that names a coupon
// takes the terms of the coupon of that ID in its own mode and account.
//
// A coupon's terms (percent_off, amount_off, currency, duration, duration_in_months) never
// change once it is created; only its name, metadata and currency_options can be updated, and a
// deleted coupon goes on discounting the discounts that already use it. So a coupon's terms are
// the same at every time it has existed, and the latest event's are the ones used.
//
// Stripe lets each account, in each mode, choose its coupons' IDs ("LAUNCH20"), so one ID can
// name a test-mode and a live-mode coupon, or one coupon of each connected account. The read
// models key objects by ID, so a coupon ID is one row; the row's columns are its latest event's
// coupon, and Scopes holds the terms of each mode and account the ID exists in.

// CouponRow is a coupon as of its latest event, with the terms of each coupon of its ID.
type CouponRow struct {
	ID               string
	Name             *string
	Duration         string
	DurationInMonths *int64
	PercentOff       *string // an exact decimal string
	AmountOff        *int64
	Currency         *string
	// AmountOffIn is amount_off in the coupon's other currencies (currency_options); nil when
	// the event carried none.
	AmountOffIn map[string]int64
	Valid       *bool
	Deleted     bool
	Created     int64
	Metadata    map[string]string
	// Scopes are the coupons of this ID, one per mode and account, each as of its own latest
	// event: what a discount of that mode and account is valued with.
	Scopes []CouponScope
	Provenance
}

// CouponScope is the coupon of one ID in one mode and account.
type CouponScope struct {
	Livemode bool    `json:"livemode"`
	Account  *string `json:"account"`
	Deleted  bool    `json:"deleted"`
	EventID  string  `json:"event_id"`
	// Terms is the coupon's terms as a discount that embeds it reads them (its Unvalued says
	// why they cannot be valued, when they cannot).
	Terms Discount `json:"terms"`
}

type rawCouponObject struct {
	rawCoupon
	Name     *string           `json:"name"`
	Valid    *bool             `json:"valid"`
	Created  int64             `json:"created"`
	Metadata map[string]string `json:"metadata"`
	Deleted  bool              `json:"deleted"`
}

// FoldCoupon is a coupon ID's row from its events, of every mode and account.
func FoldCoupon(facts []Fact) (CouponRow, error) {
	type scopeKey struct {
		livemode bool
		account  string
	}
	byScope := map[scopeKey][]Fact{}
	for _, f := range facts {
		k := scopeKey{f.Livemode, f.Account}
		byScope[k] = append(byScope[k], f)
	}
	keys := make([]scopeKey, 0, len(byScope))
	for k := range byScope {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b scopeKey) int {
		if a.livemode != b.livemode {
			return cmp.Compare(fmt.Sprint(a.livemode), fmt.Sprint(b.livemode))
		}
		return cmp.Compare(a.account, b.account)
	})
	var row CouponRow
	latest, ok := Latest(facts)
	if !ok {
		return row, fmt.Errorf("no events")
	}
	for _, k := range keys {
		// The latest event's coupon, and the terms of the latest that carries them: a deletion
		// answer ({"deleted":true}, DeletedCoupon) carries none, and the coupon's terms go on.
		var o rawCouponObject
		var f Fact
		deleted := false
		for _, e := range Order(byScope[k]) {
			var x rawCouponObject
			if err := decodeObject(e, &x); err != nil {
				return CouponRow{}, err
			}
			deleted = deleted || terminal(e.Type) || x.Deleted
			if x.Duration == "" && x.Deleted {
				x.rawCoupon, x.Name, x.Valid, x.Created, x.Metadata = o.rawCoupon, o.Name, o.Valid, o.Created, o.Metadata
			}
			o, f = x, e
		}
		p := provenance(f)
		s := CouponScope{Livemode: f.Livemode, Account: p.Account, Deleted: deleted, EventID: f.EventID, Terms: couponTerms(&o.rawCoupon)}
		row.Scopes = append(row.Scopes, s)
		if k.livemode == latest.Livemode && k.account == latest.Account {
			row = CouponRow{ID: o.ID, Name: o.Name, Duration: o.Duration, DurationInMonths: o.DurationInMonths, PercentOff: (*string)(o.PercentOff),
				AmountOff: o.AmountOff, Currency: o.Currency, AmountOffIn: s.Terms.AmountOffIn, Valid: o.Valid, Deleted: s.Deleted,
				Created: o.Created, Metadata: o.Metadata, Scopes: row.Scopes, Provenance: p}
		}
	}
	return row, nil
}

// CouponTerms are the terms of the coupons of rows (coupon rows as read) in one mode and
// account, by coupon ID, for FillCoupons; nil when none has any there.
func CouponTerms(rows []CouponRow, livemode bool, account *string) map[string]Discount {
	var out map[string]Discount
	for _, r := range rows {
		for _, s := range r.Scopes {
			if s.Livemode != livemode || Deref(s.Account) != Deref(account) {
				continue
			}
			if out == nil {
				out = map[string]Discount{}
			}
			t := s.Terms
			t.Coupon = r.ID
			t.Prepare()
			out[r.ID] = t
		}
	}
	return out
}

// FillCoupons gives every discount in ds that names its coupon by ID only the terms of that
// coupon in known (CouponTerms); a coupon whose terms cannot be valued leaves it unvalued, saying
// why. It reports whether it filled any.
func FillCoupons(ds []Discount, known map[string]Discount) bool {
	filled := false
	for i := range ds {
		d := &ds[i]
		c, ok := known[d.Coupon]
		if !ok || !d.needsCoupon() {
			continue
		}
		if c.Unvalued != "" {
			d.Unvalued = fmt.Sprintf("discount %s: %s", d.ID, c.Unvalued)
			continue
		}
		d.Duration, d.DurationInMonths, d.PercentOff, d.AmountOff = c.Duration, c.DurationInMonths, c.PercentOff, c.AmountOff
		d.Currency, d.AmountOffIn, d.Unvalued, d.pct = c.Currency, c.AmountOffIn, "", c.pct
		d.Prepare()
		filled = true
	}
	return filled
}

// FillCoupons values the discounts of every state (and of its items) that name their coupon by
// ID only from known (CouponTerms). It reports whether it filled any.
func (h *SubscriptionHistory) FillCoupons(known map[string]Discount) bool {
	filled := false
	for i := range h.States {
		s := &h.States[i]
		filled = FillCoupons(s.Discounts, known) || filled
		for k := range s.Items {
			filled = FillCoupons(s.Items[k].Discounts, known) || filled
		}
	}
	return filled
}

// FillCoupons values the row's discounts (its own and its items') that name their coupon by ID
// only from known.
func (r *SubscriptionRow) FillCoupons(known map[string]Discount) {
	FillCoupons(r.Discounts, known)
	for i := range r.Items {
		FillCoupons(r.Items[i].Discounts, known)
	}
}

// FillCoupons values the customer's discount and discount history from known.
func (r *CustomerRow) FillCoupons(known map[string]Discount) {
	// Each entry is filled in a copy: the history read may be shared with other readers.
	for i := range r.DiscountHistory {
		if d := r.DiscountHistory[i].Discount; d != nil && d.needsCoupon() {
			ds := []Discount{*d}
			FillCoupons(ds, known)
			r.DiscountHistory[i].Discount = &ds[0]
		}
	}
	if n := len(r.DiscountHistory); n > 0 {
		r.Discount = r.DiscountHistory[n-1].Discount
	}
}

// couponIDs are the coupon IDs ds name, added to ids (sorted, each once).
func couponIDs(ids []string, ds []Discount) []string {
	for _, d := range ds {
		if d.Coupon == "" {
			continue
		}
		if i, found := slices.BinarySearch(ids, d.Coupon); !found {
			ids = slices.Insert(ids, i, d.Coupon)
		}
	}
	return ids
}

// Coupons are the IDs of every coupon the history's discounts (its own and its items') name,
// sorted; nil when none.
func (h *SubscriptionHistory) Coupons() []string {
	var ids []string
	for i := range h.States {
		ids = couponIDs(ids, h.States[i].Discounts)
		for _, it := range h.States[i].Items {
			ids = couponIDs(ids, it.Discounts)
		}
	}
	return ids
}

// couponsOfHistory are the IDs of every coupon a customer's discount history names, sorted;
// nil when none.
func couponsOfHistory(h []CustomerDiscount) []string {
	var ids []string
	for _, c := range h {
		if c.Discount != nil {
			ids = couponIDs(ids, []Discount{*c.Discount})
		}
	}
	return ids
}
