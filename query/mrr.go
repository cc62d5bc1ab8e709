package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// The MRR metrics are computed from the movement log in two steps: Postgres sums the movements
// by period, currency, account and kind (from the log's daily rollup, ledger.mrr_rollup, or in
// one pass over the log itself), and Go runs the totals, the derived rates and the conversions
// exactly (math/big), so that a rate is a ratio of integers and a converted figure is rounded
// once, at the period's figure. A 12-month series reads a few thousand aggregate rows, whatever the number of
// subscriptions.

// The movement kinds, in the order the aggregates carry them.
const (
	kNew = iota
	kExpansion
	kContraction
	kChurn
	kReactivation
	kPause
	kResume
)

// kindColumns name each kind's column in the answers.
var kindColumns = []string{"new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr", "pause_mrr", "resume_mrr"}

// movesSQL sums the movement log by period ($1: day or month), fx day (%[1]s: the UTC day of
// the movement's period_start, or NULL when no conversion needs it), currency and account, over
// movements effective before $2 (the series' end: a movement dated later is not counted yet).
// active is the change in subscriptions with MRR above 0. Movements before the grid ($6) only
// make the opening balance: they are summed by currency and account alone (period NULL, the
// total in the first kind's place), which spares most of the log the per-kind sums — a 12-month
// series over years of history reads a few months of it in full.
const movesSQL = `SELECT NULL::date AS period, %[1]s AS fx_day, currency, coalesce(account, '') AS acct,
	sum(amount)::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
	(count(*) FILTER (WHERE kind IN ('new', 'reactivation', 'resume')) - count(*) FILTER (WHERE kind IN ('churn', 'pause')))::bigint AS active
FROM ledger.subscription_movements
WHERE at < $6 AND ($3 = '' OR currency = $3) AND livemode = $4 AND ($5 = 'all' OR ($5 = '' AND account IS NULL) OR account = $5)
GROUP BY 2, 3, 4
UNION ALL
SELECT date_trunc($1, at AT TIME ZONE 'UTC')::date AS period, %[1]s AS fx_day, currency, coalesce(account, '') AS acct,
	coalesce(sum(amount) FILTER (WHERE kind = 'new'), 0)::bigint, coalesce(sum(amount) FILTER (WHERE kind = 'expansion'), 0)::bigint,
	coalesce(sum(amount) FILTER (WHERE kind = 'contraction'), 0)::bigint, coalesce(sum(amount) FILTER (WHERE kind = 'churn'), 0)::bigint,
	coalesce(sum(amount) FILTER (WHERE kind = 'reactivation'), 0)::bigint, coalesce(sum(amount) FILTER (WHERE kind = 'pause'), 0)::bigint,
	coalesce(sum(amount) FILTER (WHERE kind = 'resume'), 0)::bigint,
	(count(*) FILTER (WHERE kind IN ('new', 'reactivation', 'resume')) - count(*) FILTER (WHERE kind IN ('churn', 'pause')))::bigint AS active
FROM ledger.subscription_movements
WHERE at >= $6 AND at < $2 AND ($3 = '' OR currency = $3) AND livemode = $4 AND ($5 = 'all' OR ($5 = '' AND account IS NULL) OR account = $5)
GROUP BY 1, 2, 3, 4`

// rollupSQL is movesSQL over ledger.mrr_rollup (migrations/021): the movement log summed by UTC
// day, fx day, currency, mode, account and kind, kept equal to it by triggers in the movements'
// own transactions. It answers the same rows from a few thousand groups instead of every
// movement. %[1]s is fx_day or NULL::date. Days are compared with the grid's bounds as UTC
// dates, and truncated as timestamps without a zone, so the session's TimeZone never matters.
const rollupSQL = `SELECT NULL::date AS period, %[1]s AS fx_day, currency, coalesce(account, '') AS acct,
	sum(amount)::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
	(coalesce(sum(movements) FILTER (WHERE kind IN ('new', 'reactivation', 'resume')), 0) - coalesce(sum(movements) FILTER (WHERE kind IN ('churn', 'pause')), 0))::bigint AS active
FROM ledger.mrr_rollup
WHERE day < ($6::timestamptz AT TIME ZONE 'UTC')::date AND ($3 = '' OR currency = $3) AND livemode = $4 AND ($5 = 'all' OR ($5 = '' AND account IS NULL) OR account = $5)
GROUP BY 2, 3, 4
UNION ALL
SELECT date_trunc($1, day::timestamp)::date AS period, %[1]s AS fx_day, currency, coalesce(account, '') AS acct,
	coalesce(sum(amount) FILTER (WHERE kind = 'new'), 0)::bigint, coalesce(sum(amount) FILTER (WHERE kind = 'expansion'), 0)::bigint,
	coalesce(sum(amount) FILTER (WHERE kind = 'contraction'), 0)::bigint, coalesce(sum(amount) FILTER (WHERE kind = 'churn'), 0)::bigint,
	coalesce(sum(amount) FILTER (WHERE kind = 'reactivation'), 0)::bigint, coalesce(sum(amount) FILTER (WHERE kind = 'pause'), 0)::bigint,
	coalesce(sum(amount) FILTER (WHERE kind = 'resume'), 0)::bigint,
	(coalesce(sum(movements) FILTER (WHERE kind IN ('new', 'reactivation', 'resume')), 0) - coalesce(sum(movements) FILTER (WHERE kind IN ('churn', 'pause')), 0))::bigint AS active
FROM ledger.mrr_rollup
WHERE day >= ($6::timestamptz AT TIME ZONE 'UTC')::date AND day < ($2::timestamptz AT TIME ZONE 'UTC')::date
	AND ($3 = '' OR currency = $3) AND livemode = $4 AND ($5 = 'all' OR ($5 = '' AND account IS NULL) OR account = $5)
GROUP BY 1, 2, 3, 4`

// rollupReadySQL says whether the rollup is kept for the movement log in place (its triggers are
// on it: a replay or recompute puts them there), and whether the log records period_start.
const rollupReadySQL = `SELECT
	EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('ledger.subscription_movements') AND tgname IN ('mrr_rollup_insert', 'mrr_rollup_delete')
		GROUP BY tgrelid HAVING count(*) = 2),
	EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = 'ledger' AND table_name = 'subscription_movements' AND column_name = 'period_start')`

// customersSQL is, per UTC day, currency and account, how many customers' MRR (the sum of their
// subscriptions' in that currency) went from 0 to above 0 (up) and from above 0 to 0 (down).
// Movements of one customer at one instant are summed first, so that a plan switch (one
// subscription canceled, another created in the same second) is not a churn.
const customersSQL = `WITH c AS (
	SELECT customer, currency, coalesce(account, '') AS acct, at, sum(amount) AS amount
	FROM ledger.subscription_movements
	WHERE at < $1 AND ($2 = '' OR currency = $2) AND livemode = $3 AND ($4 = 'all' OR ($4 = '' AND account IS NULL) OR account = $4)
	GROUP BY 1, 2, 3, 4
), r AS (
	SELECT currency, acct, at, amount, sum(amount) OVER (PARTITION BY customer, currency, acct ORDER BY at) AS after FROM c
)
SELECT (at AT TIME ZONE 'UTC')::date AS day, currency, acct,
	count(*) FILTER (WHERE after > 0 AND after - amount <= 0), count(*) FILTER (WHERE after <= 0 AND after - amount > 0)
FROM r WHERE (after > 0) <> (after - amount > 0) GROUP BY 1, 2, 3`

// unvaluedSQL counts the subscriptions whose MRR the ledger could not value (mrr NULL; attention
// says why) in the scope: every MRR answer says how many are left out.
const unvaluedSQL = `SELECT count(*) FROM ledger.subscriptions WHERE mrr IS NULL AND ($1 = '' OR currency = $1) AND livemode = $2
	AND ($3 = 'all' OR ($3 = '' AND account IS NULL) OR account = $3)`

// Answer is a metric's answer: its rows and what a reader must know beside them.
type Answer struct {
	Data []json.RawMessage
	// Unvalued is how many subscriptions of the scope have no MRR (a price or discount shape
	// the ledger cannot value): left out of every MRR figure.
	Unvalued int64
	// Reporting is the currency the figures are converted into; "" for figures per currency.
	Reporting string
	// RateDate is LEDGER_FX_RATE_DATE with Reporting.
	RateDate string
	// MissingRates are the (currency, date) pairs no rate was found for (at most
	// MaxMissingRates); every figure that needed one is null. MissingRatesTotal counts them all.
	MissingRates      []MissingRate
	MissingRatesTotal int
}

// MaxMissingRates is how many missing pairs an answer lists.
const MaxMissingRates = 100

// fig is one period's figures of one series (a currency, or the reporting currency, of one
// account). nil is unknown: a conversion lacked a rate.
type fig struct {
	kinds  [7]*big.Rat
	mrr    *big.Rat // at the end of the period
	active int64
	fx     *big.Rat
	// Customers, as of the period's last day and over the 30 days ending on it.
	subscribers, subsBefore, subsNew, subsChurned int64
}

// seriesKey is one series: a currency (or the reporting currency) of one account ("" the
// platform's, "all" the total).
type seriesKey struct{ currency, acct string }

// moveAgg is one aggregate row of movesSQL.
type moveAgg struct {
	period time.Time
	fxDay  *time.Time
	key    seriesKey
	kinds  [7]int64
	active int64
}

// custAgg is one aggregate row of customersSQL.
type custAgg struct {
	day      time.Time
	key      seriesKey
	up, down int64
}

// grid is a series' periods: one before From (for what rates are measured against and the FX
// effect), From, …, the period holding To.
type grid struct {
	interval string
	periods  []time.Time
	end      time.Time // the end of To's day: nothing at or after it counts
}

func newGrid(m Metric) grid {
	g := grid{interval: m.Interval, end: m.To.Truncate(24 * time.Hour).Add(24 * time.Hour)}
	for p := g.prev(m.From); !p.After(m.To); p = g.next(p) {
		g.periods = append(g.periods, p)
	}
	return g
}

func (g grid) next(p time.Time) time.Time {
	if g.interval == "day" {
		return p.AddDate(0, 0, 1)
	}
	return p.AddDate(0, 1, 0)
}

func (g grid) prev(p time.Time) time.Time {
	if g.interval == "day" {
		return p.AddDate(0, 0, -1)
	}
	return p.AddDate(0, -1, 0)
}

// lastDay is the UTC day a period's stocks are measured on: its last, or To's when earlier.
func (g grid) lastDay(p time.Time) time.Time {
	d := g.next(p).AddDate(0, 0, -1)
	if last := g.end.AddDate(0, 0, -1); d.After(last) {
		return last
	}
	return d
}

// index is the grid position of the period holding t; -1 before the grid.
func (g grid) index(t time.Time) int {
	i, found := slices.BinarySearchFunc(g.periods, t, func(p, t time.Time) int { return p.Compare(t) })
	if found {
		return i
	}
	return i - 1
}

// Answer computes a metric.
func (q *Queries) Answer(ctx context.Context, m Metric) (Answer, error) {
	live := true
	if m.Scope.Livemode != nil {
		live = *m.Scope.Livemode
	}
	var a Answer
	if m.Name == "revenue" || m.Name == "refunds" {
		var err error
		a.Data, err = q.revenueSeries(ctx, m, live)
		return a, err
	}
	at, err := q.cutter(ctx, m.At)
	if err != nil {
		return a, err
	}
	if m.Name == "cohorts" {
		if err := q.unvalued(ctx, &a, m, live, at); err != nil {
			return a, err
		}
		a.Data, err = q.cohorts(ctx, m, live, at)
		return a, err
	}
	fx := q.cfg.FX
	if m.Reporting {
		if fx.Reporting == "" {
			return a, badRequest("no_reporting_currency", "no reporting currency is set: start the ledger with LEDGER_REPORTING_CURRENCY (e.g. usd)")
		}
		a.Reporting, a.RateDate = fx.Reporting, fx.RateDate
	}
	g := newGrid(m)
	byPeriodStart := m.Reporting && fx.RateDate != FXReportDate
	src, err := q.movesSource(ctx, m, byPeriodStart)
	if err != nil {
		return a, err
	}
	// The unvalued count, the movement sums and the customer transitions are independent reads:
	// each on its own connection, at once, so an answer takes as long as the slowest of them.
	var moves []moveAgg
	var custs []custAgg
	grp, gctx := errgroup.WithContext(ctx)
	grp.Go(func() error { return q.unvalued(gctx, &a, m, live, at) })
	grp.Go(func() (err error) {
		moves, err = q.moveAggs(gctx, src, m, g, live, at)
		return err
	})
	if m.Name == "subscribers" {
		grp.Go(func() (err error) {
			custs, err = q.custAggs(gctx, m, g, live, at)
			return err
		})
	}
	if err := grp.Wait(); err != nil {
		return a, err
	}
	native, first := nativeSeries(g, moves, custs)
	var out map[seriesKey][]fig
	if !m.Reporting {
		out = native
	} else {
		book, err := q.ratesFor(ctx, fx, g, moves, native)
		if err != nil {
			return a, err
		}
		if byPeriodStart {
			out, first = periodStartSeries(g, moves, native, first, book)
		} else {
			out, first = reportDateSeries(g, native, first, book)
		}
		a.MissingRates = book.missingList()
		a.MissingRatesTotal = len(a.MissingRates)
		if len(a.MissingRates) > MaxMissingRates {
			a.MissingRates = a.MissingRates[:MaxMissingRates]
		}
	}
	if m.Scope.Account == AllAccounts {
		addTotals(out, first, len(g.periods))
	}
	a.Data = render(m, g, out, first, live)
	return a, nil
}

// movesSource is the query the movement sums come from: the rollup when it is kept for the log
// in place and no as_of or known_at cut is asked (the rollup sums today's log only, so an answer
// with a cut reads the log as it did before the rollup); else the log itself. The fx day is the UTC day of
// the movement's period_start where the log records it, else of its effective time.
func (q *Queries) movesSource(ctx context.Context, m Metric, byPeriodStart bool) (string, error) {
	var rollup, periodStart bool
	if err := q.pool.QueryRow(ctx, rollupReadySQL).Scan(&rollup, &periodStart); err != nil {
		return "", fmt.Errorf("could not look up the movement log: %w", err)
	}
	if rollup && periodStart && m.At.IsZero() {
		fxDay := "NULL::date"
		if byPeriodStart {
			fxDay = "fx_day"
		}
		return fmt.Sprintf(rollupSQL, fxDay), nil
	}
	fxDay := "NULL::date"
	if byPeriodStart {
		col := "at"
		if periodStart {
			col = "coalesce(period_start, at)"
		}
		fxDay = "(" + col + " AT TIME ZONE 'UTC')::date"
	}
	return fmt.Sprintf(movesSQL, fxDay), nil
}

// aggregate runs one of the log's aggregates in a read-only transaction with room to hash: the
// planner cannot estimate how few groups a date_trunc of the log makes (it assumes one per
// row), and with the default work_mem it sorts the whole log to disk instead of hashing a few
// hundred groups — three times slower at 100,000 subscriptions.
func (q *Queries) aggregate(ctx context.Context, read func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, q.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '64MB'"); err != nil {
			return err
		}
		return read(tx)
	})
}

// cutter is how a query over the movement log (or the subscriptions) reads it at a metric's
// as_of and known_at: it rewrites the query's SQL, whose own parameters are $1…$base, and
// returns the function that completes its arguments. Without a cut it changes nothing.
type cutter func(src string, base int) (string, func([]any) []any)

func (q *Queries) cutter(ctx context.Context, at At) (cutter, error) {
	if at.IsZero() {
		return func(src string, _ int) (string, func([]any) []any) {
			return src, func(args []any) []any { return args }
		}, nil
	}
	cut, err := q.cut(ctx, at)
	if err != nil {
		return nil, err
	}
	return func(src string, base int) (string, func([]any) []any) { return atCut(src, cut, base) }, nil
}

// unvalued sets a.Unvalued: the scope's subscriptions without MRR, at the cut.
func (q *Queries) unvalued(ctx context.Context, a *Answer, m Metric, live bool, at cutter) error {
	sql, with := at(unvaluedSQL, 3)
	if err := q.pool.QueryRow(ctx, sql, with([]any{m.Currency, live, m.Scope.Account})...).Scan(&a.Unvalued); err != nil {
		return fmt.Errorf("could not count unvalued subscriptions: %w", err)
	}
	return nil
}

func (q *Queries) moveAggs(ctx context.Context, sql string, m Metric, g grid, live bool, at cutter) (out []moveAgg, err error) {
	err = q.aggregate(ctx, func(tx pgx.Tx) error {
		out, err = scanMoveAggs(ctx, tx, sql, m, g, live, at)
		return err
	})
	return out, err
}

func scanMoveAggs(ctx context.Context, tx pgx.Tx, sql string, m Metric, g grid, live bool, at cutter) ([]moveAgg, error) {
	sql, with := at(sql, 6)
	rows, err := tx.Query(ctx, sql, with([]any{m.Interval, g.end, m.Currency, live, m.Scope.Account, g.periods[0]})...)
	if err != nil {
		return nil, fmt.Errorf("could not sum the movement log: %w", err)
	}
	defer rows.Close()
	var out []moveAgg
	for rows.Next() {
		var r moveAgg
		var period *time.Time
		k := &r.kinds
		if err := rows.Scan(&period, &r.fxDay, &r.key.currency, &r.key.acct, &k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &k[6], &r.active); err != nil {
			return nil, err
		}
		if period != nil { // nil: before the grid, the opening balance (the zero time is before every period)
			r.period = period.UTC()
		}
		if r.fxDay != nil {
			d := r.fxDay.UTC()
			r.fxDay = &d
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (q *Queries) custAggs(ctx context.Context, m Metric, g grid, live bool, at cutter) (out []custAgg, err error) {
	err = q.aggregate(ctx, func(tx pgx.Tx) error {
		out, err = scanCustAggs(ctx, tx, m, g, live, at)
		return err
	})
	return out, err
}

func scanCustAggs(ctx context.Context, tx pgx.Tx, m Metric, g grid, live bool, at cutter) ([]custAgg, error) {
	sql, with := at(customersSQL, 4)
	rows, err := tx.Query(ctx, sql, with([]any{g.end, m.Currency, live, m.Scope.Account})...)
	if err != nil {
		return nil, fmt.Errorf("could not count subscribers: %w", err)
	}
	defer rows.Close()
	var out []custAgg
	for rows.Next() {
		var r custAgg
		if err := rows.Scan(&r.day, &r.key.currency, &r.key.acct, &r.up, &r.down); err != nil {
			return nil, err
		}
		r.day = r.day.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

func rat(n int64) *big.Rat { return new(big.Rat).SetInt64(n) }

func add(a, b *big.Rat) *big.Rat {
	if a == nil || b == nil {
		return nil
	}
	return new(big.Rat).Add(a, b)
}

// nativeSeries is every (currency, account) series over the whole grid, in the currency's minor
// units, and the grid index of each series' first movement (periods before it are not answered).
func nativeSeries(g grid, moves []moveAgg, custs []custAgg) (map[seriesKey][]fig, map[seriesKey]int) {
	out := map[seriesKey][]fig{}
	first := map[seriesKey]int{}
	series := func(k seriesKey) []fig {
		s, ok := out[k]
		if !ok {
			s = make([]fig, len(g.periods))
			for i := range s {
				for j := range s[i].kinds {
					s[i].kinds[j] = new(big.Rat)
				}
				s[i].mrr, s[i].fx = new(big.Rat), new(big.Rat)
			}
			out[k] = s
			first[k] = len(g.periods)
		}
		return s
	}
	opening := map[seriesKey]*fig{}
	for _, r := range moves {
		s := series(r.key)
		i := g.index(r.period)
		if i < 0 { // before the grid: part of the opening balance
			o := opening[r.key]
			if o == nil {
				o = &fig{mrr: new(big.Rat)}
				opening[r.key] = o
			}
			for j := range r.kinds {
				o.mrr.Add(o.mrr, rat(r.kinds[j]))
			}
			o.active += r.active
			first[r.key] = 0
			continue
		}
		for j := range r.kinds {
			s[i].kinds[j].Add(s[i].kinds[j], rat(r.kinds[j]))
		}
		s[i].active += r.active
		first[r.key] = min(first[r.key], i)
	}
	for k, s := range out {
		mrr, active := new(big.Rat), int64(0)
		if o := opening[k]; o != nil {
			mrr, active = o.mrr, o.active
		}
		for i := range s {
			for _, v := range s[i].kinds {
				mrr = add(mrr, v)
			}
			active += s[i].active
			s[i].mrr, s[i].active = mrr, active
		}
	}
	if len(custs) > 0 {
		customerCounts(g, out, custs)
	}
	return out, first
}

// customerCounts fills each period's subscriber figures from the daily transitions: subscribers
// on the period's last day D, on D − 30, and the ups and downs in the 30 days ending on D.
func customerCounts(g grid, out map[seriesKey][]fig, custs []custAgg) {
	byKey := map[seriesKey][]custAgg{}
	for _, c := range custs {
		byKey[c.key] = append(byKey[c.key], c)
	}
	for k, cs := range byKey {
		s := out[k]
		if s == nil {
			continue
		}
		for i, p := range g.periods {
			d := g.lastDay(p)
			from := d.AddDate(0, 0, -30)
			f := &s[i]
			f.subscribers, f.subsBefore, f.subsNew, f.subsChurned = 0, 0, 0, 0
			for _, c := range cs {
				if c.day.After(d) {
					continue
				}
				f.subscribers += c.up - c.down
				if c.day.After(from) {
					f.subsNew += c.up
					f.subsChurned += c.down
				} else {
					f.subsBefore += c.up - c.down
				}
			}
		}
	}
}

// ratesFor looks up every rate a conversion of the series can need, in one query.
func (q *Queries) ratesFor(ctx context.Context, fx FX, g grid, moves []moveAgg, native map[seriesKey][]fig) (*rateBook, error) {
	pairs := map[ratePair]bool{}
	if fx.RateDate == FXReportDate {
		for k, s := range native {
			for i, p := range g.periods {
				if s[i].mrr.Sign() != 0 || nonzero(s[i].kinds) {
					pairs[ratePair{k.currency, g.lastDay(p)}] = true
				}
			}
		}
	} else {
		for _, r := range moves {
			if r.fxDay != nil && r.kinds != [7]int64{} {
				pairs[ratePair{r.key.currency, *r.fxDay}] = true
			}
		}
	}
	return q.lookupRates(ctx, fx.Reporting, pairs)
}

func nonzero(ks [7]*big.Rat) bool {
	for _, v := range ks {
		if v.Sign() != 0 {
			return true
		}
	}
	return false
}

// reportingSeries makes an empty series per account in the reporting currency.
func reportingSeries(g grid, book *rateBook, native map[seriesKey][]fig, nativeFirst map[seriesKey]int) (map[seriesKey][]fig, map[seriesKey]int) {
	out := map[seriesKey][]fig{}
	first := map[seriesKey]int{}
	for k := range native {
		rk := seriesKey{book.reporting, k.acct}
		if _, ok := out[rk]; !ok {
			s := make([]fig, len(g.periods))
			for i := range s {
				for j := range s[i].kinds {
					s[i].kinds[j] = new(big.Rat)
				}
				s[i].mrr, s[i].fx = new(big.Rat), new(big.Rat)
			}
			out[rk] = s
			first[rk] = len(g.periods)
		}
	}
	for k := range native {
		rk := seriesKey{book.reporting, k.acct}
		first[rk] = min(first[rk], nativeFirst[k])
	}
	return out, first
}

// periodStartSeries converts each movement at the rate of its period_start day: MRR in the
// reporting currency is the running sum of converted movements, so there is no FX effect. One
// missing rate makes every later MRR figure unknown (and that period's figure of its kind).
func periodStartSeries(g grid, moves []moveAgg, native map[seriesKey][]fig, nativeFirst map[seriesKey]int, book *rateBook) (map[seriesKey][]fig, map[seriesKey]int) {
	out, first := reportingSeries(g, book, native, nativeFirst)
	opening := map[string]*big.Rat{}
	for _, r := range moves {
		rk := seriesKey{book.reporting, r.key.acct}
		s := out[rk]
		i := g.index(r.period)
		day := time.Time{}
		if r.fxDay != nil {
			day = *r.fxDay
		}
		if i < 0 {
			o, ok := opening[r.key.acct]
			if !ok {
				o = new(big.Rat)
			}
			for _, v := range r.kinds {
				if v != 0 {
					o = add(o, book.convert(rat(v), r.key.currency, day))
				}
			}
			opening[r.key.acct] = o
			continue
		}
		for j, v := range r.kinds {
			if v != 0 {
				s[i].kinds[j] = add(s[i].kinds[j], book.convert(rat(v), r.key.currency, day))
			}
		}
	}
	for k, s := range native {
		rs := out[seriesKey{book.reporting, k.acct}]
		for i := range s {
			rs[i].active += s[i].active
			addCustomers(&rs[i], &s[i])
		}
	}
	for rk, s := range out {
		mrr := new(big.Rat)
		if o, ok := opening[rk.acct]; ok {
			mrr = o
		}
		for i := range s {
			for _, v := range s[i].kinds {
				mrr = add(mrr, v)
			}
			s[i].mrr = mrr
			// active is a stock: the native series' are running totals already.
		}
	}
	return out, first
}

// reportDateSeries converts each period's MRR, and its movements, at the rates of the period's
// last day: MRR_R(P) = Σ_c MRR_c(P) × rate(c, P); the FX effect is MRR_R(P) − MRR_R(P − 1) − the
// converted movements of P.
func reportDateSeries(g grid, native map[seriesKey][]fig, nativeFirst map[seriesKey]int, book *rateBook) (map[seriesKey][]fig, map[seriesKey]int) {
	out, first := reportingSeries(g, book, native, nativeFirst)
	for k, s := range native {
		rk := seriesKey{book.reporting, k.acct}
		rs := out[rk]
		for i, p := range g.periods {
			d := g.lastDay(p)
			if s[i].mrr.Sign() != 0 {
				rs[i].mrr = add(rs[i].mrr, book.convert(s[i].mrr, k.currency, d))
			}
			for j, v := range s[i].kinds {
				if v.Sign() != 0 {
					rs[i].kinds[j] = add(rs[i].kinds[j], book.convert(v, k.currency, d))
				}
			}
			rs[i].active += s[i].active
			addCustomers(&rs[i], &s[i])
		}
	}
	for _, s := range out {
		for i := range s {
			if i == 0 {
				continue
			}
			net := s[i].mrr
			if net != nil && s[i-1].mrr != nil {
				net = new(big.Rat).Sub(net, s[i-1].mrr)
				for _, v := range s[i].kinds {
					net = sub(net, v)
				}
			} else {
				net = nil
			}
			s[i].fx = net
		}
	}
	return out, first
}

func sub(a, b *big.Rat) *big.Rat {
	if a == nil || b == nil {
		return nil
	}
	return new(big.Rat).Sub(a, b)
}

func addCustomers(to, f *fig) {
	to.subscribers += f.subscribers
	to.subsBefore += f.subsBefore
	to.subsNew += f.subsNew
	to.subsChurned += f.subsChurned
}

// addTotals adds, per currency, the series of account "all": the sum of every account's figures
// (derived figures such as rates are computed from the sums, never summed).
func addTotals(out map[seriesKey][]fig, first map[seriesKey]int, n int) {
	totals := map[seriesKey][]fig{}
	for k, s := range out {
		tk := seriesKey{k.currency, AllAccounts}
		t, ok := totals[tk]
		if !ok {
			t = make([]fig, n)
			for i := range t {
				for j := range t[i].kinds {
					t[i].kinds[j] = new(big.Rat)
				}
				t[i].mrr, t[i].fx = new(big.Rat), new(big.Rat)
			}
			totals[tk] = t
			first[tk] = n
		}
		for i := range s {
			for j := range s[i].kinds {
				t[i].kinds[j] = add(t[i].kinds[j], s[i].kinds[j])
			}
			t[i].mrr, t[i].fx = add(t[i].mrr, s[i].mrr), add(t[i].fx, s[i].fx)
			t[i].active += s[i].active
			addCustomers(&t[i], &s[i])
		}
		first[tk] = min(first[tk], first[k])
	}
	for k, t := range totals {
		out[k] = t
	}
}

// ltvChurnFloor is the subscriber churn rate LTV assumes when the measured one is 0 (Stripe's
// 1.67 %).
var ltvChurnFloor = big.NewRat(167, 10000)

// value is column c of period i of a series (prev: the period before, for rates), nil for null.
func value(c string, s []fig, i int) *big.Rat {
	f, prev := &s[i], &s[i-1]
	ks := f.kinds
	switch c {
	case "mrr":
		return f.mrr
	case "arr":
		if f.mrr == nil {
			return nil
		}
		return new(big.Rat).Mul(f.mrr, rat(12))
	case "active_subscribers":
		return rat(f.active)
	case "mrr_start":
		return prev.mrr
	case "net_mrr":
		net := new(big.Rat)
		for _, v := range ks {
			net = add(net, v)
		}
		return net
	case "fx_effect":
		return f.fx
	case "gross_mrr_churn_rate", "churn_rate_bps":
		r := ratio(neg(add(ks[kChurn], ks[kContraction])), prev.mrr)
		if r != nil && c == "churn_rate_bps" {
			r.Mul(r, rat(10000))
		}
		return r
	case "net_mrr_churn_rate":
		return ratio(neg(add(add(ks[kChurn], ks[kContraction]), add(ks[kExpansion], ks[kReactivation]))), prev.mrr)
	case "quick_ratio":
		return ratio(add(add(ks[kNew], ks[kExpansion]), ks[kReactivation]), neg(add(ks[kContraction], ks[kChurn])))
	case "subscribers":
		return rat(f.subscribers)
	case "new_subscribers":
		return rat(f.subsNew)
	case "churned_subscribers":
		return rat(f.subsChurned)
	case "subscriber_churn_rate":
		return subscriberChurn(f)
	case "arpa":
		return arpa(f)
	case "ltv":
		a := arpa(f)
		rate := subscriberChurn(f)
		if a == nil || rate == nil {
			return nil
		}
		if rate.Sign() == 0 {
			rate = ltvChurnFloor
		}
		return new(big.Rat).Quo(a, rate)
	}
	for j, name := range kindColumns {
		if c == name {
			return ks[j]
		}
	}
	return nil
}

func neg(a *big.Rat) *big.Rat {
	if a == nil {
		return nil
	}
	return new(big.Rat).Neg(a)
}

// ratio is a ÷ b; nil when either is unknown or b is 0.
func ratio(a, b *big.Rat) *big.Rat {
	if a == nil || b == nil || b.Sign() == 0 {
		return nil
	}
	return new(big.Rat).Quo(a, b)
}

func subscriberChurn(f *fig) *big.Rat {
	return ratio(rat(f.subsChurned), rat(f.subsBefore+f.subsNew))
}

func arpa(f *fig) *big.Rat {
	return ratio(f.mrr, rat(f.subscribers))
}

// render writes the answered periods as JSON rows, ordered by currency, account (the platform's
// first, the total last), then period.
func render(m Metric, g grid, out map[seriesKey][]fig, first map[seriesKey]int, live bool) []json.RawMessage {
	keys := make([]seriesKey, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b seriesKey) int {
		if c := strings.Compare(a.currency, b.currency); c != 0 {
			return c
		}
		if (a.acct == AllAccounts) != (b.acct == AllAccounts) {
			if a.acct == AllAccounts {
				return 1
			}
			return -1
		}
		return strings.Compare(a.acct, b.acct)
	})
	rows := []json.RawMessage{}
	for _, k := range keys {
		s := out[k]
		for i := max(1, first[k]); i < len(g.periods); i++ {
			var b bytes.Buffer
			b.WriteString(`{"period":"` + g.periods[i].Format(time.DateOnly) + `","currency":`)
			cur, _ := json.Marshal(k.currency)
			b.Write(cur)
			fmt.Fprintf(&b, `,"livemode":%t,"account":`, live)
			if k.acct == "" {
				b.WriteString("null")
			} else {
				acct, _ := json.Marshal(k.acct)
				b.Write(acct)
			}
			for _, c := range m.Columns {
				b.WriteString(`,"` + c + `":`)
				writeValue(&b, c, value(c, s, i))
			}
			b.WriteByte('}')
			rows = append(rows, b.Bytes())
		}
	}
	return rows
}

// writeValue writes a figure: a rate as a decimal string, anything else as an integer (minor
// units or a count) rounded half away from zero; null when unknown.
func writeValue(b *bytes.Buffer, col string, v *big.Rat) {
	switch {
	case v == nil:
		b.WriteString("null")
	case rateColumns[col]:
		b.WriteString(`"` + decimalString(v, RatePlaces) + `"`)
	default:
		fmt.Fprintf(b, "%d", roundHalfAway(v))
	}
}
