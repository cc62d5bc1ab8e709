package query

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reporting currency. MRR is kept per currency (minor units of each); a reporting currency R
// (LEDGER_REPORTING_CURRENCY) adds figures converted into R. The rate of c into R on a UTC day is
// 1 when c = R, else Stripe's own (the exchange_rate of that day's latest balance transaction
// settling a charge in c into R), else the operator's (ledger fx import), else missing: the
// converted figure is NULL and the answer names the (currency, date) pair. A missing rate is
// never taken as 1. ledger.fx_rate in SQL is the one definition of that lookup.

// FX is the reporting-currency configuration (domain.MRRSettings' ReportingCurrency and
// FXRateDate: one parser reads the environment for every command).
type FX struct {
	// Reporting is the currency figures are converted into (lowercase ISO 4217); "" for none.
	Reporting string
	// RateDate is the date whose rate converts a movement: FXPeriodStart (default) or
	// FXReportDate.
	RateDate string
}

// The values of LEDGER_FX_RATE_DATE.
const (
	// FXPeriodStart converts each movement at the rate of its service period's start (as
	// ChartMogul does): MRR in R is the running sum of converted movements; no FX effect.
	FXPeriodStart = "period_start"
	// FXReportDate converts MRR on D at D's rates; what the rates' change adds is the FX effect,
	// reported apart from movements.
	FXReportDate = "report_date"
)

// exponents are Stripe's currencies whose minor unit is not the hundredth: zero-decimal ones
// count whole units, three-decimal ones thousandths.
var exponents = map[string]int{
	"bif": 0, "clp": 0, "djf": 0, "gnf": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0, "pyg": 0,
	"rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
	"bhd": 3, "jod": 3, "kwd": 3, "omr": 3, "tnd": 3,
}

// Exponent is the number of decimal places of a currency's minor unit (2 unless listed).
func Exponent(currency string) int {
	if e, ok := exponents[currency]; ok {
		return e
	}
	return 2
}

// Rate is one row of a rates file: units of the reporting currency per unit of Currency on Date.
type Rate struct {
	Date     time.Time
	Currency string
	Rate     *big.Rat
	Text     string // the rate as written, stored as numeric exactly
	Line     int
}

// RatesError is a rates file refused: every bad line, the first first.
type RatesError struct{ Lines []LineError }

// LineError is one bad line of a rates file.
type LineError struct {
	Line   int
	Reason string
}

func (e *RatesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the rates file is refused, nothing imported: line %d: %s", e.Lines[0].Line, e.Lines[0].Reason)
	for _, l := range e.Lines[1:min(len(e.Lines), 10)] {
		fmt.Fprintf(&b, "; line %d: %s", l.Line, l.Reason)
	}
	if len(e.Lines) > 10 {
		fmt.Fprintf(&b, "; and %d more bad lines", len(e.Lines)-10)
	}
	return b.String()
}

var decimalRate = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// ParseRates reads a rates file: CSV with the columns date (YYYY-MM-DD, UTC), currency (lowercase
// ISO 4217, not the reporting currency) and rate (a positive decimal such as 0.006712, exact; no
// exponent), an optional header line `date,currency,rate`. One bad line refuses the whole file:
// the error (a *RatesError) names every bad line. A date and currency twice in one file is bad.
func ParseRates(r io.Reader, reporting string) ([]Rate, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	var out []Rate
	var bad []LineError
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, LineError{pe.Line, pe.Err.Error()})
				break // the reader cannot resynchronise after a broken quote
			}
			return nil, err
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if line == 1 && len(rec) == 3 && strings.EqualFold(rec[0], "date") {
			continue
		}
		if len(rec) != 3 {
			bad = append(bad, LineError{line, fmt.Sprintf("%d fields; a line is date,currency,rate", len(rec))})
			continue
		}
		day, err := time.Parse(time.DateOnly, rec[0])
		if err != nil {
			bad = append(bad, LineError{line, fmt.Sprintf("date %q is not YYYY-MM-DD", rec[0])})
			continue
		}
		cur := rec[1]
		switch {
		case !isCurrency(cur) || strings.ToLower(cur) != cur || !isLetters(cur):
			bad = append(bad, LineError{line, fmt.Sprintf("currency %q is not a lowercase ISO 4217 code such as eur", cur)})
			continue
		case cur == reporting:
			bad = append(bad, LineError{line, fmt.Sprintf("currency %s is the reporting currency (its rate is 1)", cur)})
			continue
		}
		if !decimalRate.MatchString(rec[2]) {
			bad = append(bad, LineError{line, fmt.Sprintf("rate %q is not a decimal number such as 0.006712", rec[2])})
			continue
		}
		rate, _ := new(big.Rat).SetString(rec[2])
		if rate.Sign() <= 0 {
			bad = append(bad, LineError{line, "rate is 0; a rate is positive"})
			continue
		}
		key := rec[0] + " " + cur
		if first, ok := seen[key]; ok {
			bad = append(bad, LineError{line, fmt.Sprintf("%s %s is also on line %d", cur, rec[0], first)})
			continue
		}
		seen[key] = line
		out = append(out, Rate{Date: day, Currency: cur, Rate: rate, Text: rec[2], Line: line})
	}
	if len(bad) > 0 {
		return nil, &RatesError{Lines: bad}
	}
	if len(out) == 0 {
		return nil, &RatesError{Lines: []LineError{{1, "no rates; a line is date,currency,rate"}}}
	}
	return out, nil
}

func isLetters(s string) bool {
	for _, c := range s {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// Import is what one rates import did.
type Import struct {
	ID       int64
	Rows     int
	Added    int
	Replaced int
}

// ImportRates loads a rates file's contents (file names it in the import's record) in one
// transaction: a rate of a date and currency already held is replaced, and the replaced rate is
// recorded in ledger.fx_rate_replacements.
func (q *Queries) ImportRates(ctx context.Context, reporting, file string, content []byte) (Import, error) {
	if !isCurrency(reporting) || !isLetters(reporting) {
		return Import{}, fmt.Errorf("the reporting currency is a lowercase ISO 4217 code such as usd, not %q (set LEDGER_REPORTING_CURRENCY)", reporting)
	}
	rates, err := ParseRates(bytes.NewReader(content), reporting)
	if err != nil {
		return Import{}, err
	}
	sum := sha256.Sum256(content)
	var res Import
	err = pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO ledger.fx_imports (reporting_currency, file, sha256, rows, added, replaced)
			VALUES ($1, $2, $3, $4, 0, 0) RETURNING id`, reporting, file, hex.EncodeToString(sum[:]), len(rates)).Scan(&res.ID); err != nil {
			return fmt.Errorf("could not record the import: %w", err)
		}
		days, curs, texts := make([]time.Time, len(rates)), make([]string, len(rates)), make([]string, len(rates))
		for i, r := range rates {
			days[i], curs[i], texts[i] = r.Date, r.Currency, r.Text
		}
		// The replaced rates are recorded before they are overwritten, in the same statement's
		// snapshot: the CTE reads the old rows, the upsert writes the new ones.
		if err := tx.QueryRow(ctx, `WITH f AS (
				SELECT d, c, r::numeric AS r FROM unnest($2::date[], $3::text[], $4::text[]) AS t(d, c, r)
			), old AS (
				INSERT INTO ledger.fx_rate_replacements (import_id, reporting_currency, date, currency, old_rate, old_import_id, new_rate)
				SELECT $5, $1, f.d, f.c, x.rate, x.import_id, f.r FROM f JOIN ledger.fx_rates x
				  ON x.reporting_currency = $1 AND x.currency = f.c AND x.date = f.d
				RETURNING 1
			), up AS (
				INSERT INTO ledger.fx_rates (reporting_currency, date, currency, rate, import_id) SELECT $1, d, c, r, $5 FROM f
				ON CONFLICT (reporting_currency, currency, date) DO UPDATE SET rate = excluded.rate, import_id = excluded.import_id
				RETURNING 1
			)
			SELECT (SELECT count(*) FROM old), (SELECT count(*) FROM up)`,
			reporting, days, curs, texts, res.ID).Scan(&res.Replaced, &res.Rows); err != nil {
			return fmt.Errorf("could not store the rates: %w", err)
		}
		res.Added = res.Rows - res.Replaced
		_, err := tx.Exec(ctx, `UPDATE ledger.fx_imports SET added = $2, replaced = $3 WHERE id = $1`, res.ID, res.Added, res.Replaced)
		return err
	})
	return res, err
}

// MissingRate is a (currency, date) pair a converted figure needed and no source had.
type MissingRate struct {
	Currency string `json:"currency"`
	Date     string `json:"date"`
}

type ratePair struct {
	currency string
	day      time.Time
}

// rateBook is the rates a conversion needs, looked up together (ledger.fx_rate), and the pairs
// it asked for and found none.
type rateBook struct {
	reporting string
	rates     map[ratePair]*big.Rat // nil: missing
	missing   map[ratePair]bool
}

func (q *Queries) lookupRates(ctx context.Context, reporting string, pairs map[ratePair]bool) (*rateBook, error) {
	book := &rateBook{reporting: reporting, rates: map[ratePair]*big.Rat{}, missing: map[ratePair]bool{}}
	var curs []string
	var days []time.Time
	for p := range pairs {
		if p.currency == reporting {
			book.rates[p] = big.NewRat(1, 1)
			continue
		}
		curs, days = append(curs, p.currency), append(days, p.day)
	}
	if len(curs) == 0 {
		return book, nil
	}
	rows, err := q.pool.Query(ctx, `SELECT c, d, ledger.fx_rate(c, $1, d)::text FROM unnest($2::text[], $3::date[]) AS t(c, d)`, reporting, curs, days)
	if err != nil {
		return nil, fmt.Errorf("could not look up exchange rates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p ratePair
		var s *string
		if err := rows.Scan(&p.currency, &p.day, &s); err != nil {
			return nil, err
		}
		p.day = p.day.UTC()
		if s == nil {
			book.missing[p] = true
			continue
		}
		r, ok := new(big.Rat).SetString(*s)
		if !ok {
			return nil, fmt.Errorf("exchange rate %q of %s on %s is not a number", *s, p.currency, p.day.Format(time.DateOnly))
		}
		book.rates[p] = r
	}
	return book, rows.Err()
}

// convert is minor units of currency c at the rate of day into minor units of the reporting
// currency, exactly: amount × rate × 10^(exponent of R − exponent of c). nil: no rate.
func (b *rateBook) convert(amount *big.Rat, c string, day time.Time) *big.Rat {
	if amount == nil {
		return nil
	}
	rate := b.rates[ratePair{c, day}]
	if rate == nil {
		b.missing[ratePair{c, day}] = true
		return nil
	}
	return convertMinor(amount, c, b.reporting, rate)
}

// convertMinor is minor units of currency from at rate (units of to per unit of from) in minor
// units of to, exactly: amount × rate × 10^(exponent of to − exponent of from).
func convertMinor(amount *big.Rat, from, to string, rate *big.Rat) *big.Rat {
	out := new(big.Rat).Mul(amount, rate)
	shift := Exponent(to) - Exponent(from)
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(shift))), nil))
	if shift >= 0 {
		return out.Mul(out, scale)
	}
	return out.Quo(out, scale)
}

// missingList is the pairs no source had, ordered by currency then date.
func (b *rateBook) missingList() []MissingRate {
	out := []MissingRate{}
	for p := range b.missing {
		if b.rates[p] == nil {
			out = append(out, MissingRate{p.currency, p.day.Format(time.DateOnly)})
		}
	}
	slices.SortFunc(out, func(a, b MissingRate) int {
		return strings.Compare(a.Currency+a.Date, b.Currency+b.Date)
	})
	return out
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// roundHalfAway is r rounded to an integer, halves away from zero.
func roundHalfAway(r *big.Rat) int64 {
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Lsh(m, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

// decimalString is r as a decimal with places digits after the point, halves away from zero.
func decimalString(r *big.Rat, places int) string {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil)
	n := roundHalfAway(new(big.Rat).Mul(r, new(big.Rat).SetInt(scale)))
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	s := fmt.Sprintf("%0*d", places+1, n)
	if places == 0 {
		return sign + s
	}
	return sign + s[:len(s)-places] + "." + s[len(s)-places:]
}
