package stripesim

import (
	"fmt"
	"math/big"
	"time"
)

// The simulator's foreign exchange: one rate per currency per UTC day, the same for every
// account and every run, so that a test can load the simulator's rates into the ledger (as an
// operator loads a rates file) and compare figures converted on both sides. Stripe quotes a
// balance transaction's exchange_rate as a decimal number; the simulator's rates have exactly six
// decimal places, so the decimal string is the rate, exactly.

// SettlementCurrency is the currency an account is paid out in when its profile says nothing
// else: charges in other currencies are converted into it on their balance transactions.
const SettlementCurrency = "usd"

// baseRates are USD per one major unit of each currency, in millionths, around which the daily
// rates move.
var baseRates = map[string]int64{
	"usd": 1_000_000,
	"eur": 1_085_000,
	"gbp": 1_270_000,
	"jpy": 6_700, // ¥1 = $0.0067
	"cad": 735_000,
	"aud": 655_000,
	"chf": 1_120_000,
}

// zeroDecimal are the currencies whose minor unit is the major unit (Stripe's zero-decimal list,
// restricted to those the simulator sells in).
var zeroDecimal = map[string]bool{"jpy": true, "krw": true, "vnd": true, "clp": true}

// CurrencyExponent is the number of decimal places of a currency's minor unit: 2, or 0 for
// zero-decimal currencies such as jpy.
func CurrencyExponent(currency string) int {
	if zeroDecimal[currency] {
		return 0
	}
	return 2
}

// FXCurrencies are the currencies the simulator has rates for.
func FXCurrencies() []string { return []string{"usd", "eur", "gbp", "jpy", "cad", "aud", "chf"} }

// usdMicros is USD per one major unit of currency on day d (UTC), in millionths: the base rate
// moved by up to ±3 % on a deterministic walk of the day number.
func usdMicros(currency string, d time.Time) (int64, bool) {
	base, ok := baseRates[currency]
	if !ok {
		return 0, false
	}
	if currency == "usd" {
		return base, true
	}
	days := uint64(d.UTC().Truncate(24*time.Hour).Unix() / 86400)
	h := splitmix(days*0x9e37 + uint64(len(currency))*0x51 + uint64(currency[0])<<8 + uint64(currency[2]))
	permille := int64(h%61) - 30 // -30‰ .. +30‰
	return base + base*permille/1000, true
}

// FXRate is how many major units of `to` one major unit of `from` buys on day d (UTC), exact.
// ok is false for a currency the simulator has no rate for.
func FXRate(from, to string, d time.Time) (rate *big.Rat, ok bool) {
	f, ok1 := usdMicros(from, d)
	t, ok2 := usdMicros(to, d)
	if !ok1 || !ok2 {
		return nil, false
	}
	r := new(big.Rat).SetFrac64(f, t)
	// Quoted to six decimal places, as the rates of Stripe's balance transactions are.
	return quantize(r, 6), true
}

// FXRateString is FXRate as the decimal string Stripe's exchange_rate carries ("1.085000").
func FXRateString(from, to string, d time.Time) (string, bool) {
	r, ok := FXRate(from, to, d)
	if !ok {
		return "", false
	}
	return r.FloatString(6), true
}

// ConvertMinor converts amount (minor units of from) into minor units of to at FXRate on day d,
// rounded half away from zero, as Stripe rounds a converted balance transaction amount.
func ConvertMinor(amount int64, from, to string, d time.Time) (int64, error) {
	r, ok := FXRate(from, to, d)
	if !ok {
		return 0, fmt.Errorf("stripesim: no exchange rate from %s to %s", from, to)
	}
	v := new(big.Rat).Mul(new(big.Rat).SetInt64(amount), r)
	shift := CurrencyExponent(to) - CurrencyExponent(from)
	p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(shift))), nil))
	if shift > 0 {
		v.Mul(v, p)
	} else if shift < 0 {
		v.Quo(v, p)
	}
	return roundHalfAway(v), nil
}

// FXRatesCSV is every rate into `to` from Start to End (days inclusive, UTC) as the rates file
// `ledger fx import` reads: a header, then date,currency,rate — rate being units of `to` per unit
// of currency.
func FXRatesCSV(to string, start, end time.Time) []byte {
	out := []byte("date,currency,rate\n")
	for d := start.UTC().Truncate(24 * time.Hour); !d.After(end); d = d.AddDate(0, 0, 1) {
		for _, c := range FXCurrencies() {
			if c == to {
				continue
			}
			s, _ := FXRateString(c, to, d)
			out = fmt.Appendf(out, "%s,%s,%s\n", d.Format(time.DateOnly), c, s)
		}
	}
	return out
}

func quantize(r *big.Rat, places int) *big.Rat {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)
	v := new(big.Rat).Mul(r, new(big.Rat).SetInt(scale))
	return new(big.Rat).SetFrac(big.NewInt(roundHalfAway(v)), scale)
}

func roundHalfAway(v *big.Rat) int64 {
	num, den := new(big.Int).Set(v.Num()), v.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(m, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
