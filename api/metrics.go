package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

// mrrSQL is the movement log by period ($4: day or month) and currency ($3, ” for all), every
// period from the currency's first movement to $2, with MRR and active subscribers as running
// totals (ledger.metrics_daily's definitions).
const mrrSQL = `WITH m AS (
	SELECT date_trunc($4, at AT TIME ZONE 'UTC')::date AS period, currency,
	       sum(amount) FILTER (WHERE kind = 'new') AS new_mrr, sum(amount) FILTER (WHERE kind = 'expansion') AS expansion_mrr,
	       sum(amount) FILTER (WHERE kind = 'contraction') AS contraction_mrr, sum(amount) FILTER (WHERE kind = 'churn') AS churned_mrr,
	       sum(amount) FILTER (WHERE kind = 'reactivation') AS reactivation_mrr, sum(amount) AS mrr_change,
	       count(*) FILTER (WHERE kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE kind = 'churn') AS subscriber_change
	FROM ledger.subscription_movements WHERE $3 = '' OR currency = $3 GROUP BY 1, 2
), grid AS (
	SELECT c.currency, g::date AS period
	FROM (SELECT currency, min(period) AS first FROM m GROUP BY currency) c,
	     generate_series(c.first, greatest($2::date, c.first), ('1 ' || $4)::interval) g
)
SELECT g.period, g.currency,
       (sum(coalesce(m.mrr_change, 0)) OVER w)::bigint AS mrr, (12 * sum(coalesce(m.mrr_change, 0)) OVER w)::bigint AS arr,
       (sum(coalesce(m.subscriber_change, 0)) OVER w)::bigint AS active_subscribers,
       coalesce(m.new_mrr, 0)::bigint AS new_mrr, coalesce(m.expansion_mrr, 0)::bigint AS expansion_mrr,
       coalesce(m.contraction_mrr, 0)::bigint AS contraction_mrr, coalesce(m.churned_mrr, 0)::bigint AS churned_mrr,
       coalesce(m.reactivation_mrr, 0)::bigint AS reactivation_mrr
FROM grid g LEFT JOIN m ON m.period = g.period AND m.currency = g.currency
WINDOW w AS (PARTITION BY g.currency ORDER BY g.period)`

// revenueSQL is charges, refunds and disputes by period over the requested range only.
const revenueSQL = `WITH pays AS (
	SELECT date_trunc($4, created AT TIME ZONE 'UTC')::date AS period, currency,
	       sum(amount) FILTER (WHERE status = 'succeeded') AS gross_revenue, count(*) FILTER (WHERE status = 'succeeded') AS payments,
	       count(*) FILTER (WHERE status = 'failed') AS failed_payments, sum(amount) FILTER (WHERE status = 'failed') AS failed_amount
	FROM ledger.charges WHERE created >= $1::date AND created < $2::date + ('1 ' || $4)::interval AND ($3 = '' OR currency = $3) GROUP BY 1, 2
), refs AS (
	SELECT date_trunc($4, created AT TIME ZONE 'UTC')::date AS period, currency, sum(amount) AS refunds
	FROM ledger.refunds WHERE status = 'succeeded' AND created >= $1::date AND created < $2::date + ('1 ' || $4)::interval
	  AND ($3 = '' OR currency = $3) GROUP BY 1, 2
), disp AS (
	SELECT date_trunc($4, created AT TIME ZONE 'UTC')::date AS period, currency, sum(amount) AS disputed,
	       sum(amount) FILTER (WHERE status = 'lost') AS dispute_losses
	FROM ledger.disputes WHERE created >= $1::date AND created < $2::date + ('1 ' || $4)::interval AND ($3 = '' OR currency = $3) GROUP BY 1, 2
), grid AS (
	SELECT c.currency, g::date AS period
	FROM (SELECT currency FROM pays UNION SELECT currency FROM refs UNION SELECT currency FROM disp) c,
	     generate_series($1::date, $2::date, ('1 ' || $4)::interval) g
)
SELECT g.period, g.currency,
       coalesce(p.gross_revenue, 0)::bigint AS gross_revenue, coalesce(r.refunds, 0)::bigint AS refunds,
       coalesce(x.disputed, 0)::bigint AS disputed, coalesce(x.dispute_losses, 0)::bigint AS dispute_losses,
       (coalesce(p.gross_revenue, 0) - coalesce(r.refunds, 0) - coalesce(x.dispute_losses, 0))::bigint AS net_revenue,
       coalesce(p.payments, 0)::bigint AS payments, coalesce(p.failed_payments, 0)::bigint AS failed_payments,
       coalesce(p.failed_amount, 0)::bigint AS failed_amount
FROM grid g LEFT JOIN pays p USING (period, currency) LEFT JOIN refs r USING (period, currency) LEFT JOIN disp x USING (period, currency)`

// metricExpr is how each output column is computed over the view (p is the period's row).
var metricExpr = map[string]string{
	// MRR at the end of the previous period: what churn is measured against.
	"mrr_start": "coalesce(lag(p.mrr) OVER (PARTITION BY p.currency ORDER BY p.period), 0)",
	// Gross MRR churn in basis points of the period's starting MRR (integer: 125 = 1.25%).
	"churn_rate_bps": "CASE WHEN coalesce(lag(p.mrr) OVER (PARTITION BY p.currency ORDER BY p.period), 0) = 0 THEN 0 " +
		"ELSE (-p.churned_mrr * 10000 / lag(p.mrr) OVER (PARTITION BY p.currency ORDER BY p.period))::bigint END",
	"net_mrr": "(p.new_mrr + p.expansion_mrr + p.contraction_mrr + p.churned_mrr + p.reactivation_mrr)",
}

// maxSeries is the longest range a series answers, per interval: ten years by day, a century by
// month.
var maxSeries = map[string]time.Duration{"day": 3660 * 24 * time.Hour, "month": 36525 * 24 * time.Hour}

func (a *API) metric(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cols, ok := metrics[name]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no metric "+name+"; there are mrr, revenue, refunds, churn and movements")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "from" && k != "to" && k != "interval" && k != "currency" && k != "format" {
			a.fail(w, &badRequest{"unknown_parameter", fmt.Sprintf("unknown parameter %q; metrics take from, to, interval, currency, format", k)})
			return
		}
	}
	interval := q.Get("interval")
	if interval == "" {
		interval = "month"
	}
	if interval != "day" && interval != "month" {
		a.fail(w, &badRequest{"invalid_interval", "interval is day or month"})
		return
	}
	now := time.Now().UTC()
	to := now
	from := now.AddDate(-1, 0, 0)
	if interval == "day" {
		from = now.AddDate(0, 0, -30)
	}
	var err error
	if v := q.Get("from"); v != "" {
		if from, err = parseTimeParam("from", v); err != nil {
			a.fail(w, err)
			return
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = parseTimeParam("to", v); err != nil {
			a.fail(w, err)
			return
		}
	}
	if to.Before(from) {
		a.fail(w, &badRequest{"invalid_range", "to is before from"})
		return
	}
	// A series is one row per period: bound it, so that one request cannot ask Postgres for
	// millions of periods.
	if limit := maxSeries[interval]; to.Sub(from) > limit {
		a.fail(w, &badRequest{"range_too_long", fmt.Sprintf("a %s series spans at most %d days; split the request", interval, int(limit.Hours()/24))})
		return
	}
	currency := q.Get("currency")
	if currency != "" && (len(currency) != 3 || strings.ToLower(currency) != currency) {
		a.fail(w, &badRequest{"invalid_currency", "currency is a lowercase ISO 4217 code such as usd"})
		return
	}
	unit := interval
	if interval == "day" {
		from = from.Truncate(24 * time.Hour)
	} else {
		from = time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	// The series are computed from the base tables here rather than through the metric views:
	// MRR needs the movement log only (its running total from the first movement), revenue only
	// the requested range of charges, refunds and disputes — a 12-month series stays fast on
	// millions of rows. The definitions are the views' (the tests check both agree).
	src := revenueSQL
	if name == "mrr" || name == "churn" || name == "movements" {
		src = mrrSQL
	}
	data, err := a.jsonRows(r.Context(), fmt.Sprintf(`SELECT json_build_object('period', s.period, 'currency', s.currency, %s)::text
		FROM (SELECT p.period, p.currency, %s FROM (%s) p) s
		WHERE s.period >= $1::date AND s.period <= $2::date ORDER BY s.currency, s.period`,
		strings.Join(quoteKeys(cols), ", "), strings.Join(aliased(cols), ", "), src), from, to, currency, unit)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	if q.Get("format") == "csv" || (q.Get("format") == "" && wantsCSV(r)) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		header := append([]string{"period", "currency"}, cols...)
		_ = cw.Write(header)
		for _, d := range data {
			var m map[string]any
			dec := json.NewDecoder(strings.NewReader(string(d)))
			dec.UseNumber() // integers stay integers
			_ = dec.Decode(&m)
			rec := make([]string, len(header))
			for i, h := range header {
				rec[i] = fmt.Sprint(m[h])
			}
			_ = cw.Write(rec)
		}
		cw.Flush()
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "metric": name, "interval": interval, "data": data})
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

// event serves GET /api/v1/events/{id}: the log row, its payload as stored.
func (a *API) event(w http.ResponseWriter, r *http.Request) {
	var js string
	err := a.pool.QueryRow(r.Context(), `SELECT json_build_object('position', position, 'event_id', event_id, 'type', type,
		'api_version', api_version, 'created', created, 'livemode', livemode, 'source', source, 'received_at', received_at,
		'object_type', object_type, 'object_id', object_id, 'payload', convert_from(payload, 'UTF8')::json)::text
		FROM ledger.events WHERE event_id = $1`, r.PathValue("id")).Scan(&js)
	if errors.Is(err, pgx.ErrNoRows) {
		writeError(w, http.StatusNotFound, "not_found", "no event "+r.PathValue("id")+" in the log")
		return
	}
	if err != nil {
		a.unavailable(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(js + "\n"))
}

func (a *API) projectionStatus(w http.ResponseWriter, r *http.Request) {
	st, err := projections.ReadStatus(r.Context(), a.pool)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// summary serves GET /api/v1/summary: what the dashboard's header shows — subscriptions by
// status and currency, events appended per minute over the last hour, the log's size and the
// live projection's lag.
func (a *API) summary(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	type statusRow struct {
		Status   string `json:"status"`
		Currency string `json:"currency"`
		Count    int64  `json:"count"`
		MRR      int64  `json:"mrr"`
	}
	type minuteRow struct {
		Minute time.Time `json:"minute"`
		Count  int64     `json:"count"`
	}
	out := struct {
		Subscriptions   []statusRow        `json:"subscriptions"`
		EventsPerMinute []minuteRow        `json:"events_per_minute"`
		Log             map[string]int64   `json:"log"`
		Projection      projections.Status `json:"projection"`
	}{Subscriptions: []statusRow{}, EventsPerMinute: []minuteRow{}}
	rows, err := a.pool.Query(ctx, `SELECT status, currency, count(*), coalesce(sum(mrr), 0)::bigint FROM ledger.subscriptions
		GROUP BY 1, 2 ORDER BY 2, 3 DESC`)
	if err == nil {
		out.Subscriptions, err = pgx.CollectRows(rows, pgx.RowToStructByPos[statusRow])
	}
	if err == nil {
		// Bounded by position so the scan stays small however long the log is.
		rows, err = a.pool.Query(ctx, `SELECT date_trunc('minute', received_at), count(*) FROM ledger.events
			WHERE position > (SELECT position FROM ledger.log_head) - 200000 AND received_at > now() - interval '60 minutes'
			GROUP BY 1 ORDER BY 1`)
		if err == nil {
			out.EventsPerMinute, err = pgx.CollectRows(rows, pgx.RowToStructByPos[minuteRow])
		}
	}
	if err == nil {
		out.Projection, err = projections.ReadStatus(ctx, a.pool)
	}
	if err != nil {
		a.unavailable(w, err)
		return
	}
	out.Log = map[string]int64{"events": out.Projection.Head}
	writeJSON(w, http.StatusOK, out)
}
