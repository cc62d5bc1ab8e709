package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
)

// Decimal is an exact decimal Stripe sends either as a JSON number (coupon.percent_off, 12.5)
// or as a string (unit_amount_decimal, "0.125"): kept as its digits, read with math/big, never
// through float64. Its JSON is always a string, so nothing downstream rounds it.
type Decimal string

// UnmarshalJSON accepts a JSON number or a string holding one; anything else (a fraction such
// as "1/3", hex, an empty string) is refused, as encoding/json refuses a string for an int64.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json leaves a non-pointer field alone on null
	}
	s := b
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = []byte(str)
	}
	if !decimalSyntax(s) {
		return fmt.Errorf("decimal: %s is not a decimal number", b)
	}
	*d = Decimal(s)
	return nil
}

// decimalSyntax is JSON's number grammar, -?(0|[1-9]digits)[.digits][(e|E)[+-]digits], with an exponent
// of at most two digits.
func decimalSyntax(s []byte) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	leadingZero := i+1 < len(s) && s[i] == '0' && s[i+1] >= '0' && s[i+1] <= '9'
	if leadingZero || !digits() {
		return false // JSON's integer part is 0 or starts with 1-9
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		// An exponent of more than two digits is no amount Stripe sends, and 1e999999999 would
		// take math/big a long time to expand.
		if start := i; !digits() || i-start > 2 {
			return false
		}
	}
	return i == len(s) && !bytes.Equal(s, []byte("-"))
}

// Rat is the decimal's exact value.
func (d Decimal) Rat() (*big.Rat, bool) {
	if !decimalSyntax([]byte(d)) {
		return nil, false
	}
	return new(big.Rat).SetString(string(d))
}

// MarshalJSON writes the digits as a JSON string.
func (d Decimal) MarshalJSON() ([]byte, error) { return json.Marshal(string(d)) }
