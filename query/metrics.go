package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/projections"
)

// metrics are the series /api/v1/metrics/{name} serves (README, "Revenue metrics", defines each
// column; Definitions says it in a line). Every MRR figure is computed from the movement log
// (ledger.subscription_movements), revenue from charges, refunds and disputes.
var metrics = map[string][]string{
	"mrr":         {"mrr", "arr", "active_subscribers"},
	"revenue":     {"gross_revenue", "refunds", "disputed", "dispute_losses", "net_revenue", "payments", "failed_payments", "failed_amount"},
	"refunds":     {"refunds"},
	"churn":       {"churned_mrr", "contraction_mrr", "expansion_mrr", "reactivation_mrr", "mrr_start", "churn_rate_bps", "gross_mrr_churn_rate", "net_mrr_churn_rate"},
	"movements":   {"new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr", "pause_mrr", "resume_mrr", "net_mrr", "fx_effect"},
	"subscribers": {"mrr", "subscribers", "new_subscribers", "churned_subscribers", "subscriber_churn_rate", "arpa", "ltv", "quick_ratio"},
	"cohorts":     {"month", "customers", "base_mrr", "mrr", "retained_mrr", "nrr", "grr"},
}

// rateColumns are exact ratios, answered as decimal strings (RatePlaces places, halves away from
// zero), never as floats: 0.012500 is 1.25 %.
var rateColumns = map[string]bool{"gross_mrr_churn_rate": true, "net_mrr_churn_rate": true, "subscriber_churn_rate": true,
	"quick_ratio": true, "nrr": true, "grr": true}

// RatePlaces is how many decimal places a rate is answered with.
const RatePlaces = 6

// IsRate says a column is a ratio answered as a decimal string.
func IsRate(col string) bool { return rateColumns[col] }

// Definitions say in a line what each column is; the API answers them beside the figures and the
// dashboard shows them beside each tile. The README's "Revenue metrics" section is the long form.
var Definitions = map[string]string{
	"mrr":                   "Monthly recurring revenue at the end of the period: the sum of every movement before it (active and past_due subscriptions, normalised to a month, after discounts).",
	"arr":                   "Annual run rate: 12 × MRR.",
	"active_subscribers":    "Subscriptions with MRR above 0 at the end of the period.",
	"new_mrr":               "MRR added by subscriptions going from 0 to above 0 for the first time.",
	"expansion_mrr":         "MRR added by subscriptions that already had some (upgrades, quantity, a discount ending).",
	"contraction_mrr":       "MRR lost by subscriptions that keep some (downgrades, a discount starting); negative.",
	"churned_mrr":           "MRR lost by subscriptions going to 0 (canceled, unpaid, past_due too long); negative.",
	"reactivation_mrr":      "MRR of subscriptions coming back from 0 after a churn.",
	"pause_mrr":             "MRR set aside by paused collection (LEDGER_MRR_PAUSED=zero); negative; never churn.",
	"resume_mrr":            "MRR back from paused collection.",
	"net_mrr":               "Net new MRR: the sum of the period's movements of every kind.",
	"fx_effect":             "Reporting currency with LEDGER_FX_RATE_DATE=report_date: what the rates' change did to MRR (MRR − previous MRR − net new MRR); 0 otherwise. Not a movement.",
	"mrr_start":             "MRR at the end of the previous period: what rates are measured against.",
	"churn_rate_bps":        "Gross MRR churn rate in basis points (125 = 1.25 %), halves away from zero; null when MRR at the start is 0.",
	"gross_mrr_churn_rate":  "−(churned + contraction MRR) ÷ MRR at the start; null when that is 0.",
	"net_mrr_churn_rate":    "−(churned + contraction + expansion + reactivation MRR) ÷ MRR at the start; negative when expansion outgrows losses; null when MRR at the start is 0.",
	"subscribers":           "Customers with MRR above 0 at the end of the period.",
	"new_subscribers":       "Customers whose MRR went from 0 to above 0 in the 30 days ending on the period's last day.",
	"churned_subscribers":   "Customers whose MRR went to 0 in the 30 days ending on the period's last day.",
	"subscriber_churn_rate": "Churned subscribers ÷ (subscribers 30 days before + new subscribers), over the 30 days ending on the period's last day (Stripe's); null when nobody subscribed.",
	"arpa":                  "Average revenue per account: MRR ÷ subscribers, minor units, halves away from zero; null without subscribers.",
	"ltv":                   "Lifetime value: ARPA ÷ subscriber churn rate (1.67 % when that rate is 0), minor units, halves away from zero.",
	"quick_ratio":           "(new + expansion + reactivation MRR) ÷ −(contraction + churned MRR); null when nothing was lost.",
	"month":                 "Months since the cohort's first month (0 is that month).",
	"customers":             "Customers whose first new movement is in the cohort's month.",
	"base_mrr":              "The cohort's MRR at the end of its first month.",
	"retained_mrr":          "Σ over the cohort's customers of min(MRR at the end of this month, MRR at the end of the first month).",
	"nrr":                   "Net revenue retention: the cohort's MRR at the end of this month ÷ base_mrr; null when base_mrr is 0.",
	"grr":                   "Gross revenue retention: retained_mrr ÷ base_mrr (at most 1); null when base_mrr is 0.",
	"gross_revenue":         "Succeeded charges created in the period.",
	"refunds":               "Succeeded refunds created in the period.",
	"disputed":              "Disputes opened in the period.",
	"dispute_losses":        "Disputes opened in the period and lost.",
	"net_revenue":           "Gross revenue − refunds − dispute losses.",
	"payments":              "Succeeded charges, counted.",
	"failed_payments":       "Failed charges, counted.",
	"failed_amount":         "Failed charges, summed.",
}

// scopeSQL keeps a table's rows of one mode ($5) and account ($6: ” the platform's own, acct_…
// one connected account, 'all' every account); acct is the account as a grouping key (” for the
// platform).
const scopeSQL = `livemode = $5 AND ($6 = 'all' OR ($6 = '' AND account IS NULL) OR account = $6)`

// revenueColumns are what the revenue source computes per period, currency and account: all of
// them add up across accounts.
var revenueColumns = []string{"gross_revenue", "refunds", "disputed", "dispute_losses", "net_revenue", "payments", "failed_payments", "failed_amount"}

// revenueSQL is charges, refunds and disputes by period, account and currency over the requested
// range only.
const revenueSQL = `WITH pays AS (
	SELECT date_trunc($4, created AT TIME ZONE 'UTC')::date AS period, currency, coalesce(account, '') AS acct,
	       sum(amount) FILTER (WHERE status = 'succeeded') AS gross_revenue, count(*) FILTER (WHERE status = 'succeeded') AS payments,
	       count(*) FILTER (WHERE status = 'failed') AS failed_payments, sum(amount) FILTER (WHERE status = 'failed') AS failed_amount
	FROM ledger.charges WHERE created >= $1::date AND created < $2::date + ('1 ' || $4)::interval AND ($3 = '' OR currency = $3)
	  AND ` + scopeSQL + ` GROUP BY 1, 2, 3
), refs AS (
	SELECT date_trunc($4, created AT TIME ZONE 'UTC')::date AS period, currency, coalesce(account, '') AS acct, sum(amount) AS refunds
	FROM ledger.refunds WHERE status = 'succeeded' AND created >= $1::date AND created < $2::date + ('1 ' || $4)::interval
	  AND ($3 = '' OR currency = $3) AND ` + scopeSQL + ` GROUP BY 1, 2, 3
), disp AS (
	SELECT date_trunc($4, created AT TIME ZONE 'UTC')::date AS period, currency, coalesce(account, '') AS acct, sum(amount) AS disputed,
	       sum(amount) FILTER (WHERE status = 'lost') AS dispute_losses
	FROM ledger.disputes WHERE created >= $1::date AND created < $2::date + ('1 ' || $4)::interval AND ($3 = '' OR currency = $3)
	  AND ` + scopeSQL + ` GROUP BY 1, 2, 3
), grid AS (
	SELECT c.currency, c.acct, g::date AS period
	FROM (SELECT currency, acct FROM pays UNION SELECT currency, acct FROM refs UNION SELECT currency, acct FROM disp) c,
	     generate_series($1::date, $2::date, ('1 ' || $4)::interval) g
)
SELECT g.period, g.currency, g.acct,
       coalesce(p.gross_revenue, 0)::bigint AS gross_revenue, coalesce(r.refunds, 0)::bigint AS refunds,
       coalesce(x.disputed, 0)::bigint AS disputed, coalesce(x.dispute_losses, 0)::bigint AS dispute_losses,
       (coalesce(p.gross_revenue, 0) - coalesce(r.refunds, 0) - coalesce(x.dispute_losses, 0))::bigint AS net_revenue,
       coalesce(p.payments, 0)::bigint AS payments, coalesce(p.failed_payments, 0)::bigint AS failed_payments,
       coalesce(p.failed_amount, 0)::bigint AS failed_amount
FROM grid g LEFT JOIN pays p USING (period, currency, acct) LEFT JOIN refs r USING (period, currency, acct) LEFT JOIN disp x USING (period, currency, acct)`

// maxSeries is the longest range a series answers, per interval: ten years by day, a century by
// month.
var maxSeries = map[string]time.Duration{"day": 3660 * 24 * time.Hour, "month": 36525 * 24 * time.Hour}

// MetricNames are the series there are.
func MetricNames() []string {
	out := make([]string, 0, len(metrics))
	for name := range metrics {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// MetricColumns are a series' columns after period and currency.
func MetricColumns(name string) ([]string, bool) {
	cols, ok := metrics[name]
	return cols, ok
}

// Metric is a parsed metric request.
type Metric struct {
	Name     string
	Columns  []string
	Interval string // day or month
	From, To time.Time
	Currency string // "" for every currency
	// Scope is the mode (always one) and account (one, or AllAccounts) the figures are of.
	Scope Scope
	CSV   bool
	// FormatSet says the request chose a format (else an HTTP caller may look at Accept).
	FormatSet bool
	// Reporting asks for the figures converted into the reporting currency
	// (LEDGER_REPORTING_CURRENCY): one row per period and account, currency the reporting one.
	Reporting bool
	// At is as_of and known_at: the series as Stripe's timeline had it at as_of (periods end
	// there) and as the ledger knew it at known_at, from the history tables.
	At At
}

// metricParams are the parameters a metric takes.
var metricParams = []string{"from", "to", "interval", "currency", "livemode", "account", "format", "reporting", "as_of", "known_at"}

// ParseMetric reads a metric request's parameters: from, to (dates), interval (day or month,
// default month: the last 12 months; by day the last 30 days), currency, livemode (default true:
// live mode; never both), account (default platform: the platform's own; acct_… one connected
// account; all: each account and their total), format, reporting (true: in the reporting
// currency; not with currency).
func ParseMetric(name string, v url.Values, now time.Time) (Metric, error) {
	cols, ok := metrics[name]
	if !ok {
		return Metric{}, fmt.Errorf("%w: no metric %s; there are %s", ErrNotFound, name, strings.Join(MetricNames(), ", "))
	}
	m := Metric{Name: name, Columns: cols}
	if err := checkValues(v); err != nil {
		return m, err
	}
	for k := range v {
		if !slices.Contains(metricParams, k) {
			return m, badRequest("unknown_parameter", "unknown parameter %q; metrics take %s", k, strings.Join(metricParams, ", "))
		}
	}
	var err error
	if m.Scope, err = parseScope(v, true); err != nil {
		return m, err
	}
	m.Interval = v.Get("interval")
	if m.Interval == "" {
		m.Interval = "month"
	}
	if m.Interval != "day" && m.Interval != "month" {
		return m, badRequest("invalid_interval", "interval is day or month")
	}
	now = now.UTC()
	m.To, m.From = now, now.AddDate(-1, 0, 0)
	if m.Interval == "day" {
		m.From = now.AddDate(0, 0, -30)
	}
	if val := v.Get("from"); val != "" {
		if m.From, err = ParseTime("from", val); err != nil {
			return m, err
		}
	}
	if val := v.Get("to"); val != "" {
		if m.To, err = ParseTime("to", val); err != nil {
			return m, err
		}
	}
	if m.To.Before(m.From) {
		return m, badRequest("invalid_range", "to is before from")
	}
	// A series is one row per period: bound it, so that one request cannot ask Postgres for
	// millions of periods.
	if limit := maxSeries[m.Interval]; m.To.Sub(m.From) > limit {
		return m, badRequest("range_too_long", "a %s series spans at most %d days; split the request", m.Interval, int(limit.Hours()/24))
	}
	m.Currency = v.Get("currency")
	if m.Currency != "" && !isCurrency(m.Currency) {
		return m, badRequest("invalid_currency", "currency is a lowercase ISO 4217 code such as usd")
	}
	if m.Interval == "day" {
		m.From = m.From.Truncate(24 * time.Hour)
	} else {
		m.From = time.Date(m.From.Year(), m.From.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	switch val := v.Get("reporting"); val {
	case "", "false":
	case "true":
		m.Reporting = true
	default:
		return m, badRequest("invalid_reporting", "reporting is true (figures in the reporting currency) or false, not %q", val)
	}
	if m.Reporting && m.Currency != "" {
		return m, badRequest("invalid_reporting", "reporting=true converts every currency into the reporting currency: leave currency out")
	}
	if m.Reporting && (name == "revenue" || name == "refunds" || name == "cohorts") {
		return m, badRequest("invalid_reporting", "reporting=true is for the MRR metrics (mrr, movements, churn, subscribers); %s is per currency", name)
	}
	if name == "cohorts" && m.Interval != "month" {
		return m, badRequest("invalid_interval", "cohorts are monthly: interval is month")
	}
	if m.At, err = ParseAt(v); err != nil {
		return m, err
	}
	if !m.At.AsOf.IsZero() && m.At.AsOf.Before(m.To) {
		m.To = m.At.AsOf // nothing after as_of had happened yet
		if m.To.Before(m.From) {
			return m, badRequest("invalid_range", "as_of is before from")
		}
	}
	m.CSV, m.FormatSet, err = parseFormat(v)
	return m, err
}

// Series answers a metric: its rows only (Answer has the rest of the answer).
func (q *Queries) Series(ctx context.Context, m Metric) ([]json.RawMessage, error) {
	a, err := q.Answer(ctx, m)
	return a.Data, err
}

// revenueSeries is charges, refunds and disputes by period, currency and account over the
// requested range only.
func (q *Queries) revenueSeries(ctx context.Context, m Metric, live bool) ([]json.RawMessage, error) {
	src := revenueSQL
	args := []any{m.From, m.To, m.Currency, m.Interval, live, m.Scope.Account}
	if !m.At.IsZero() {
		cut, err := q.cut(ctx, m.At)
		if err != nil {
			return nil, err
		}
		var withCut func([]any) []any
		src, withCut = atCut(src, cut, len(args))
		args = withCut(args)
	}
	if m.Scope.Account == AllAccounts {
		// The total of every account, as one more account named "all".
		sums := make([]string, len(revenueColumns))
		for i, c := range revenueColumns {
			sums[i] = fmt.Sprintf("sum(%s)::bigint AS %s", c, c)
		}
		src = fmt.Sprintf(`WITH each AS (%s) SELECT * FROM each UNION ALL SELECT period, currency, 'all' AS acct, %s FROM each GROUP BY period, currency`,
			src, strings.Join(sums, ", "))
	}
	rows, err := q.pool.Query(ctx, fmt.Sprintf(`SELECT json_build_object('period', s.period, 'currency', s.currency, 'livemode', $5::boolean,
			'account', nullif(s.acct, ''), %s)::text
		FROM (%s) s
		WHERE s.period >= $1::date AND s.period <= $2::date ORDER BY s.currency, s.acct = 'all', s.acct, s.period`,
		strings.Join(quoteKeys(m.Columns), ", "), src), args...)
	if err != nil {
		return nil, fmt.Errorf("could not compute %s: %w", m.Name, err)
	}
	defer rows.Close()
	out := []json.RawMessage{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, json.RawMessage(s))
	}
	return out, rows.Err()
}

// SeriesHeader is a series' columns in CSV and table order.
func SeriesHeader(m Metric) []string {
	return append([]string{"period", "currency", "livemode", "account"}, m.Columns...)
}

// SeriesRows is a series as text cells, the header (SeriesHeader) first. The platform's own
// account is an empty cell (null), as in every CSV the ledger writes.
func SeriesRows(m Metric, data []json.RawMessage) [][]string {
	header := SeriesHeader(m)
	out := [][]string{header}
	for _, d := range data {
		var row map[string]any
		dec := json.NewDecoder(strings.NewReader(string(d)))
		dec.UseNumber() // integers stay integers
		_ = dec.Decode(&row)
		rec := make([]string, len(header))
		for i, h := range header {
			if row[h] != nil {
				rec[i] = fmt.Sprint(row[h])
			}
		}
		out = append(out, rec)
	}
	return out
}

func quoteKeys(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = fmt.Sprintf("'%s', s.%s", c, c)
	}
	return out
}

// ColumnDefinitions are the one-line definitions of a metric's columns.
func ColumnDefinitions(name string) map[string]string {
	out := map[string]string{}
	for _, c := range metrics[name] {
		out[c] = Definitions[c]
	}
	return out
}

// MissingRatesText is an answer's missing rates as "currency date" pairs, comma-separated
// ("none" when every rate was found), with the count of those not listed.
func MissingRatesText(a Answer) string {
	if a.MissingRatesTotal == 0 {
		return "none"
	}
	parts := make([]string, len(a.MissingRates))
	for i, r := range a.MissingRates {
		parts[i] = r.Currency + " " + r.Date
	}
	s := strings.Join(parts, ", ")
	if more := a.MissingRatesTotal - len(a.MissingRates); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// atCut rewrites a series' SQL to read the read models at the cut instead of their current
// rows, with the cut's bounds as parameters after the query's own `base` ones (as_of, then
// known_at's position, those that are set); the function it returns completes a query's
// arguments. MRR reads the movement log as known at known_at, its movements up to as_of: a
// movement is decided by the events up to its time, so later events do not change the
// movements before as_of (the cut on Stripe's timeline needs no history of its own). Revenue
// reads the charges, refunds and disputes at the cut, the unvalued count the subscriptions.
func atCut(src string, cut projections.Cut, base int) (string, func([]any) []any) {
	asOf, known := "", ""
	var extra []any
	if !cut.AsOf.IsZero() {
		extra = append(extra, cut.AsOf)
		asOf = fmt.Sprintf("$%d::timestamptz", base+len(extra))
	}
	if cut.Known {
		extra = append(extra, cut.KnownAt)
		known = fmt.Sprintf("$%d::bigint", base+len(extra))
	}
	movements := "ledger.subscription_movements"
	if known != "" {
		movements = "(" + projections.ChildVersionsSQL(projections.Subscriptions.Children[0], known) + ")"
	}
	if asOf != "" {
		movements = "(SELECT * FROM " + movements + " mv WHERE mv.at <= " + asOf + ")"
	}
	src = strings.ReplaceAll(src, "FROM ledger.subscription_movements\n", "FROM "+movements+" sm\n")
	src = strings.ReplaceAll(src, "FROM ledger.subscription_movements WHERE", "FROM "+movements+" sm WHERE")
	period := "h.created >= $1::date AND h.created < $2::date + ('1 ' || $4)::interval"
	for _, m := range []*projections.Model{projections.Charges, projections.Refunds, projections.Disputes} {
		src = strings.Replace(src, "FROM ledger."+m.Table+" WHERE", "FROM ("+projections.VersionsSQL(m, asOf, known, period)+") "+m.Table+" WHERE", 1)
	}
	// The unvalued count reads the subscriptions at the cut (those not yet created are not
	// there).
	src = strings.Replace(src, "FROM ledger.subscriptions WHERE", "FROM ("+projections.VersionsSQL(projections.Subscriptions, asOf, known)+") subscriptions WHERE", 1)
	return src, func(args []any) []any {
		if len(extra) == 0 {
			return args
		}
		// Planned for the cut's values, as projections.ReadAt's queries are: a plan cached for
		// any cut guesses what share of the history it admits.
		return append(append([]any{pgx.QueryExecModeExec}, args...), extra...)
	}
}
