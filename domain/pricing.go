package domain

import (
	"fmt"
	"math/big"
)

// The price shapes Stripe sends on a subscription item (API 2023-10-16 and 2026-08-26.dahlia
// agree on these fields): per_unit with unit_amount or the exact unit_amount_decimal, package
// pricing as per_unit with transform_quantity, and tiered prices (volume or graduated) whose
// tiers give an up_to (null = infinity), a unit and a flat amount, each as an integer or a
// decimal string. Stripe leaves tiers out of a price unless they are expanded, which no webhook
// does: such a price cannot be valued and says so.

type rawPrice struct {
	ID                string                `json:"id"`
	Product           string                `json:"product"`
	Currency          string                `json:"currency"`
	BillingScheme     *string               `json:"billing_scheme"`
	UnitAmount        *int64                `json:"unit_amount"`
	UnitAmountDecimal *Decimal              `json:"unit_amount_decimal"`
	TiersMode         *string               `json:"tiers_mode"`
	Tiers             []PriceTier           `json:"tiers"`
	TransformQuantity *TransformQuantity    `json:"transform_quantity"`
	CurrencyOptions   map[string]priceShape `json:"currency_options"`
	Recurring         *struct {
		Interval      string `json:"interval"`
		IntervalCount int64  `json:"interval_count"`
		UsageType     string `json:"usage_type"`
	} `json:"recurring"`
}

// priceShape is what a price's currency option overrides.
type priceShape struct {
	UnitAmount        *int64      `json:"unit_amount"`
	UnitAmountDecimal *Decimal    `json:"unit_amount_decimal"`
	Tiers             []PriceTier `json:"tiers"`
}

// PriceTier is one tier of a tiered price; amounts in minor units.
type PriceTier struct {
	UpTo              *int64   `json:"up_to"` // nil: infinity
	UnitAmount        *int64   `json:"unit_amount"`
	UnitAmountDecimal *Decimal `json:"unit_amount_decimal"`
	FlatAmount        *int64   `json:"flat_amount"`
	FlatAmountDecimal *Decimal `json:"flat_amount_decimal"`
}

// TransformQuantity is package pricing: the quantity divided before it is priced.
type TransformQuantity struct {
	DivideBy int64  `json:"divide_by"`
	Round    string `json:"round"` // up or down
}

// amount is an integer or decimal amount in minor units, exact; nil when both are absent.
func amount(i *int64, d *Decimal) (*big.Rat, error) {
	if d != nil {
		r, ok := d.Rat()
		if !ok {
			return nil, fmt.Errorf("%q is not a decimal amount", string(*d))
		}
		return r, nil
	}
	if i != nil {
		return new(big.Rat).SetInt64(*i), nil
	}
	return nil, nil
}

// periodValue is what one billing period of the item is worth in minor units, exact, from the
// price's shape and the item's quantity. An error says why the shape cannot be valued.
func periodValue(p *rawPrice, currency string, quantity int64) (*big.Rat, error) {
	if quantity <= 0 {
		return new(big.Rat), nil
	}
	shape := priceShape{UnitAmount: p.UnitAmount, UnitAmountDecimal: p.UnitAmountDecimal, Tiers: p.Tiers}
	if p.Currency != "" && currency != "" && p.Currency != currency {
		o, ok := p.CurrencyOptions[currency]
		if !ok {
			return nil, fmt.Errorf("price %s is in %s and has no %s option", p.ID, p.Currency, currency)
		}
		shape = o
	}
	q := new(big.Rat).SetInt64(quantity)
	switch scheme := Deref(p.BillingScheme); scheme {
	case "per_unit", "":
		unit, err := amount(shape.UnitAmount, shape.UnitAmountDecimal)
		if err != nil {
			return nil, fmt.Errorf("price %s: %w", p.ID, err)
		}
		if unit == nil {
			return nil, fmt.Errorf("price %s has no unit amount", p.ID)
		}
		if t := p.TransformQuantity; t != nil {
			if t.DivideBy <= 0 {
				return nil, fmt.Errorf("price %s divides the quantity by %d", p.ID, t.DivideBy)
			}
			units := quantity / t.DivideBy
			switch t.Round {
			case "up":
				if quantity%t.DivideBy != 0 {
					units++
				}
			case "down":
			default:
				return nil, fmt.Errorf("price %s rounds the quantity %q", p.ID, t.Round)
			}
			q.SetInt64(units)
		}
		return unit.Mul(unit, q), nil
	case "tiered":
		if len(shape.Tiers) == 0 {
			return nil, fmt.Errorf("tiered price %s came without its tiers", p.ID)
		}
		switch mode := Deref(p.TiersMode); mode {
		case "volume":
			for i := range shape.Tiers {
				t := &shape.Tiers[i]
				if t.UpTo == nil || *t.UpTo >= quantity {
					return tierValue(p.ID, t, q)
				}
			}
			return nil, fmt.Errorf("price %s has no tier for quantity %d", p.ID, quantity)
		case "graduated":
			total, below := new(big.Rat), int64(0)
			for i := range shape.Tiers {
				t := &shape.Tiers[i]
				top := quantity
				if t.UpTo != nil && *t.UpTo < quantity {
					top = *t.UpTo
				}
				if top > below {
					v, err := tierValue(p.ID, t, new(big.Rat).SetInt64(top-below))
					if err != nil {
						return nil, err
					}
					total.Add(total, v)
					below = top
				}
				if below >= quantity {
					return total, nil
				}
			}
			return nil, fmt.Errorf("price %s has no tier for quantity %d", p.ID, quantity)
		default:
			return nil, fmt.Errorf("tiered price %s has tiers_mode %q", p.ID, mode)
		}
	default:
		return nil, fmt.Errorf("price %s has billing_scheme %q", p.ID, scheme)
	}
}

// tierValue is units × the tier's unit amount + its flat amount (either may be absent: 0).
func tierValue(price string, t *PriceTier, units *big.Rat) (*big.Rat, error) {
	unit, err := amount(t.UnitAmount, t.UnitAmountDecimal)
	if err != nil {
		return nil, fmt.Errorf("price %s: %w", price, err)
	}
	flat, err := amount(t.FlatAmount, t.FlatAmountDecimal)
	if err != nil {
		return nil, fmt.Errorf("price %s: %w", price, err)
	}
	if unit == nil && flat == nil {
		return nil, fmt.Errorf("price %s has a tier with no amount", price)
	}
	v := new(big.Rat)
	if unit != nil {
		v.Mul(unit, units)
	}
	if flat != nil {
		v.Add(v, flat)
	}
	return v, nil
}

// monthFactor turns one billing period into a month: month × 1, year ÷ 12, week × 52 ÷ 12,
// day × 365 ÷ 12, each ÷ interval_count.
func monthFactor(interval string, count int64) (*big.Rat, error) {
	count = max(count, 1)
	var num int64
	switch interval {
	case "month":
		num = 12
	case "year":
		num = 1
	case "week":
		num = 52
	case "day":
		num = 365
	default:
		return nil, fmt.Errorf("unknown interval %q", interval)
	}
	return big.NewRat(num, 12*count), nil
}
