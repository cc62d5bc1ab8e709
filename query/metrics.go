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

// metrics are the series /api/v1/metrics/{name} serves, from ledger.metrics_daily or
// ledger.metrics_monthly (README, "Metrics in SQL", defines each column).
var metrics = map[string][]string{
	"mrr":       {"mrr", "arr", "active_subscribers"},
	"revenue":   {"gross_revenue", "refunds", "disputed", "dispute_losses", "net_revenue", "payments", "failed_payments", "failed_amount"},
	"refunds":   {"refunds"},
	"churn":     {"churned_mrr", "contraction_mrr", "mrr_start", "churn_rate_bps"},
	"movements": {"new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr", "net_mrr"},
}

// scopeSQL keeps a table's rows of one mode ($5) and account ($6: ” the platform's own, acct_…
// one connected account, 'all' every account); acct is the account as a grouping key (” for the
// platform).
const scopeSQL = `livemode = $5 AND ($6 = 'all' OR account IS NOT DISTINCT FROM nullif($6, ''))`

// mrrSQL is the movement log by period ($4: day or month), account and currency ($3, ” for all),
// every period from the first movement of the currency in the account to $2, with MRR and active
// subscribers as running totals (ledger.metrics_daily's definitions).
const mrrSQL = `WITH m AS (
	SELECT date_trunc($4, at AT TIME ZONE 'UTC')::date AS period, currency, coalesce(account, '') AS acct,
	       sum(amount) FILTER (WHERE kind = 'new') AS new_mrr, sum(amount) FILTER (WHERE kind = 'expansion') AS expansion_mrr,
	       sum(amount) FILTER (WHERE kind = 'contraction') AS contraction_mrr, sum(amount) FILTER (WHERE kind = 'churn') AS churned_mrr,
	       sum(amount) FILTER (WHERE kind = 'reactivation') AS reactivation_mrr, sum(amount) AS mrr_change,
	       count(*) FILTER (WHERE kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE kind = 'churn') AS subscriber_change
	FROM ledger.subscription_movements WHERE ($3 = '' OR currency = $3) AND ` + scopeSQL + ` GROUP BY 1, 2, 3
), grid AS (
	SELECT c.currency, c.acct, g::date AS period
	FROM (SELECT currency, acct, min(period) AS first FROM m GROUP BY currency, acct) c,
	     generate_series(c.first, greatest($2::date, c.first), ('1 ' || $4)::interval) g
)
SELECT g.period, g.currency, g.acct,
       (sum(coalesce(m.mrr_change, 0)) OVER w)::bigint AS mrr, (12 * sum(coalesce(m.mrr_change, 0)) OVER w)::bigint AS arr,
       (sum(coalesce(m.subscriber_change, 0)) OVER w)::bigint AS active_subscribers,
       coalesce(m.new_mrr, 0)::bigint AS new_mrr, coalesce(m.expansion_mrr, 0)::bigint AS expansion_mrr,
       coalesce(m.contraction_mrr, 0)::bigint AS contraction_mrr, coalesce(m.churned_mrr, 0)::bigint AS churned_mrr,
       coalesce(m.reactivation_mrr, 0)::bigint AS reactivation_mrr
FROM grid g LEFT JOIN m ON m.period = g.period AND m.currency = g.currency AND m.acct = g.acct
WINDOW w AS (PARTITION BY g.currency, g.acct ORDER BY g.period)`

// mrrColumns and revenueColumns are what each source computes per period, currency and account:
// all of them add up across accounts.
var (
	mrrColumns     = []string{"mrr", "arr", "active_subscribers", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr"}
	revenueColumns = []string{"gross_revenue", "refunds", "disputed", "dispute_losses", "net_revenue", "payments", "failed_payments", "failed_amount"}
)

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

// metricExpr is how each output column is computed over the view (p is the period's row).
var metricExpr = map[string]string{
	// MRR at the end of the previous period: what churn is measured against.
	"mrr_start": "coalesce(lag(p.mrr) OVER (PARTITION BY p.currency, p.acct ORDER BY p.period), 0)",
	// Gross MRR churn in basis points of the period's starting MRR (integer: 125 = 1.25%).
	"churn_rate_bps": "CASE WHEN coalesce(lag(p.mrr) OVER (PARTITION BY p.currency, p.acct ORDER BY p.period), 0) = 0 THEN 0 " +
		"ELSE (-p.churned_mrr * 10000 / lag(p.mrr) OVER (PARTITION BY p.currency, p.acct ORDER BY p.period))::bigint END",
	"net_mrr": "(p.new_mrr + p.expansion_mrr + p.contraction_mrr + p.churned_mrr + p.reactivation_mrr)",
}

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
	// At is as_of and known_at: the series as Stripe's timeline had it at as_of (periods end
	// there) and as the ledger knew it at known_at, from the history tables.
	At At
}

// metricParams are the parameters a metric takes.
var metricParams = []string{"from", "to", "interval", "currency", "livemode", "account", "format", "as_of", "known_at"}

// ParseMetric reads a metric request's parameters: from, to (dates), interval (day or month,
// default month: the last 12 months; by day the last 30 days), currency, livemode (default true:
// live mode; never both), account (default platform: the platform's own; acct_… one connected
// account; all: each account and their total), format.
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

// atCut rewrites a series' SQL to read the read models at the cut instead of their current
// rows, with the cut's bounds as parameters after the series' six (as_of, then known_at's
// position, those that are set). MRR reads
// the movement log as known at known_at, its movements up to as_of: a movement is decided by
// the events up to its time, so later events do not change the movements before as_of (the
// cut on Stripe's timeline needs no history of its own). Revenue reads the charges, refunds and
// disputes at the cut.
func atCut(src string, cut projections.Cut) (string, []any) {
	asOf, known := "", ""
	var args []any
	if !cut.AsOf.IsZero() {
		args = append(args, cut.AsOf)
		asOf = fmt.Sprintf("$%d::timestamptz", 6+len(args))
	}
	if cut.Known {
		args = append(args, cut.KnownAt)
		known = fmt.Sprintf("$%d::bigint", 6+len(args))
	}
	movements := "ledger.subscription_movements"
	if known != "" {
		movements = "(" + projections.ChildVersionsSQL(projections.Subscriptions.Children[0], known) + ")"
	}
	if asOf != "" {
		movements = "(SELECT * FROM " + movements + " mv WHERE mv.at <= " + asOf + ")"
	}
	src = strings.Replace(src, "FROM ledger.subscription_movements WHERE", "FROM "+movements+" sm WHERE", 1)
	period := "h.created >= $1::date AND h.created < $2::date + ('1 ' || $4)::interval"
	for _, m := range []*projections.Model{projections.Charges, projections.Refunds, projections.Disputes} {
		src = strings.Replace(src, "FROM ledger."+m.Table+" WHERE", "FROM ("+projections.VersionsSQL(m, asOf, known, period)+") "+m.Table+" WHERE", 1)
	}
	return src, args
}

// Series answers a metric: one JSON object per period, currency and account, ordered by
// currency, account (the platform's first, the total last), then period. Each object says its
// livemode and account (null: the platform's own; "all": the total of every account, with
// account=all only).
//
// The series are computed from the base tables rather than through the metric views: MRR needs
// the movement log only (its running total from the first movement), revenue only the requested
// range of charges, refunds and disputes — a 12-month series stays fast on millions of rows. The
// definitions are the views' (the tests check both agree).
func (q *Queries) Series(ctx context.Context, m Metric) ([]json.RawMessage, error) {
	src, base := revenueSQL, revenueColumns
	if m.Name == "mrr" || m.Name == "churn" || m.Name == "movements" {
		src, base = mrrSQL, mrrColumns
	}
	var cutArgs []any
	if !m.At.IsZero() {
		cut, err := q.cut(ctx, m.At)
		if err != nil {
			return nil, err
		}
		src, cutArgs = atCut(src, cut)
	}
	if m.Scope.Account == AllAccounts {
		// The total of every account is computed from the accounts' base figures (derived ones
		// such as the churn rate are not sums), as one more account named "all".
		sums := make([]string, len(base))
		for i, c := range base {
			sums[i] = fmt.Sprintf("sum(%s)::bigint AS %s", c, c)
		}
		src = fmt.Sprintf(`WITH each AS (%s) SELECT * FROM each UNION ALL SELECT period, currency, 'all' AS acct, %s FROM each GROUP BY period, currency`,
			src, strings.Join(sums, ", "))
	}
	account, live := m.Scope.Account, true
	if m.Scope.Livemode != nil {
		live = *m.Scope.Livemode
	}
	args := []any{m.From, m.To, m.Currency, m.Interval, live, account}
	if cutArgs != nil {
		// Planned for the cut's values, as projections.ReadAt's queries are: a plan cached for
		// any cut guesses what share of the history it admits.
		args = append(append([]any{pgx.QueryExecModeExec}, args...), cutArgs...)
	}
	rows, err := q.pool.Query(ctx, fmt.Sprintf(`SELECT json_build_object('period', s.period, 'currency', s.currency, 'livemode', $5::boolean,
			'account', nullif(s.acct, ''), %s)::text
		FROM (SELECT p.period, p.currency, p.acct, %s FROM (%s) p) s
		WHERE s.period >= $1::date AND s.period <= $2::date ORDER BY s.currency, s.acct = 'all', s.acct, s.period`,
		strings.Join(quoteKeys(m.Columns), ", "), strings.Join(aliased(m.Columns), ", "), src),
		args...)
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

func aliased(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		e, ok := metricExpr[c]
		if !ok {
			e = "p." + c
		}
		out[i] = e + " AS " + c
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
