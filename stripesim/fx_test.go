package stripesim

import (
	"strings"
	"testing"
	"time"
)

func TestFXRatesAreExactAndStable(t *testing.T) {
	d := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	s, ok := FXRateString("eur", "usd", d)
	if !ok || len(s) != len("1.000000") || !strings.HasPrefix(s, "1.") {
		t.Fatalf("eur→usd = %q, %v", s, ok)
	}
	again, _ := FXRateString("eur", "usd", d.Add(8*time.Hour)) // same UTC day
	if again != s {
		t.Fatalf("one day, two rates: %s, %s", s, again)
	}
	if u, _ := FXRateString("usd", "usd", d); u != "1.000000" {
		t.Fatalf("usd→usd = %s", u)
	}
	// ¥10,000 at about $0.0067 is about $67: 6,700 cents, minor units crossing exponents.
	c, err := ConvertMinor(10_000, "jpy", "usd", d)
	if err != nil || c < 6_400 || c > 7_000 {
		t.Fatalf("¥10,000 → %d cents (%v)", c, err)
	}
	if _, err := ConvertMinor(1, "xxx", "usd", d); err == nil {
		t.Fatal("an unknown currency converted")
	}
	csv := string(FXRatesCSV("usd", d, d.AddDate(0, 0, 1)))
	if n := strings.Count(csv, "\n"); n != 1+2*(len(FXCurrencies())-1) {
		t.Fatalf("rates file has %d lines:\n%s", n, csv)
	}
}
