package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/projections"
)

// A close freezes a calendar month (UTC) as the read models knew it at one log position
// (migrations/019_closes.sql): its figures per mode, account and currency, and every object that
// made them up (the lines). The close is never changed. What the log learns later about the month
// is shown beside it as adjustments: today's lines are computed again and compared object by
// object with the frozen ones, and each difference is put on the event after the close that
// brought it (a reconcile repair, a late webhook).

// Figure names, in report order. net is derived (gross_revenue - refunds - dispute_losses - fees).
var FigureNames = []string{"gross_revenue", "refunds", "dispute_losses", "fees", "net", "payouts", "open_receivables", "mrr"}

// Period is a calendar month in UTC.
type Period struct {
	Year  int
	Month time.Month
}

var periodPattern = regexp.MustCompile(`^([0-9]{4})-([0-9]{2})$`)

// ParsePeriod reads a period as YYYY-MM.
func ParsePeriod(s string) (Period, error) {
	m := periodPattern.FindStringSubmatch(s)
	if m == nil {
		return Period{}, badRequest("invalid_period", "period %q: want a calendar month as YYYY-MM, such as 2026-11", s)
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	if mo < 1 || mo > 12 || y < 1970 {
		return Period{}, badRequest("invalid_period", "period %q: want a calendar month as YYYY-MM (month 01 to 12, year 1970 or later), such as 2026-11", s)
	}
	return Period{Year: y, Month: time.Month(mo)}, nil
}

func (p Period) String() string { return fmt.Sprintf("%04d-%02d", p.Year, int(p.Month)) }

// Start is the period's first instant (UTC).
func (p Period) Start() time.Time { return time.Date(p.Year, p.Month, 1, 0, 0, 0, 0, time.UTC) }

// End is the first instant after the period.
func (p Period) End() time.Time { return p.Start().AddDate(0, 1, 0) }

// AlreadyClosedError refuses a second close of a period.
type AlreadyClosedError struct {
	Period   Period
	ClosedAt time.Time
	Position int64
}

func (e *AlreadyClosedError) Error() string {
	return fmt.Sprintf("period %s is already closed: closed at %s (log position %d); later events show as its adjustments (ledger close show %s)",
		e.Period, e.ClosedAt.UTC().Format(time.RFC3339), e.Position, e.Period)
}

// NotEndedError refuses to close a period that has not ended.
type NotEndedError struct {
	Period Period
	Now    time.Time
}

func (e *NotEndedError) Error() string {
	return fmt.Sprintf("period %s has not ended: it ends at %s (now %s)", e.Period, e.Period.End().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// ErrNotReady refuses a close while the read models cannot give final figures.
var ErrNotReady = errors.New("the read models are not ready to close a period from")

// Figures are one mode's, account's and currency's figures of a period.
type Figures struct {
	Livemode        bool    `json:"livemode"`
	Account         *string `json:"account"` // null: the platform's own
	Currency        string  `json:"currency"`
	GrossRevenue    int64   `json:"gross_revenue"`
	Refunds         int64   `json:"refunds"`
	DisputeLosses   int64   `json:"dispute_losses"`
	Fees            int64   `json:"fees"`
	Net             int64   `json:"net"`
	Payouts         int64   `json:"payouts"`
	OpenReceivables int64   `json:"open_receivables"`
	MRR             int64   `json:"mrr"`
}

// Get is the figure of that name.
func (f *Figures) Get(name string) int64 { return *f.field(name) }

func (f *Figures) field(name string) *int64 {
	switch name {
	case "gross_revenue":
		return &f.GrossRevenue
	case "refunds":
		return &f.Refunds
	case "dispute_losses":
		return &f.DisputeLosses
	case "fees":
		return &f.Fees
	case "net":
		return &f.Net
	case "payouts":
		return &f.Payouts
	case "open_receivables":
		return &f.OpenReceivables
	case "mrr":
		return &f.MRR
	}
	panic("no figure " + name)
}

func (f *Figures) add(name string, v int64) {
	*f.field(name) += v
	f.Net = f.GrossRevenue - f.Refunds - f.DisputeLosses - f.Fees
}

// Close is a closed period: its frozen figures and, when read with ReadClose, what the log has
// learnt about it since.
type Close struct {
	Object   string    `json:"object"` // "close"
	Period   string    `json:"period"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Position int64     `json:"position"` // the figures are of every event up to this log position
	Head     int64     `json:"head"`     // the highest committed position at the close
	ClosedAt time.Time `json:"closed_at"`
	ClosedBy *string   `json:"closed_by"`
	// reporting is the reporting currency the close was made with (nil: none).
	reporting *string
	// Includes says, in words, which modes and accounts the answer shows.
	Includes string    `json:"includes"`
	Figures  []Figures `json:"figures"`
	// Adjustments are the changes since the close, one per event that brought one (and one per
	// event after the close created inside the period that changed nothing); Adjusted are the
	// figures with them applied: what the period's figures are today.
	Adjustments []Adjustment `json:"adjustments"`
	Adjusted    []Figures    `json:"adjusted"`
	// Reporting is the close in the reporting currency, at the rates frozen with it; null for a
	// close made without LEDGER_REPORTING_CURRENCY.
	Reporting *CloseReporting `json:"reporting"`
}

// CloseReporting is a close's figures in the reporting currency: each mode's and account's
// figures of every currency converted at the rate of the period's last day frozen at the close
// (ledger.close_rates), each currency's figure rounded to the reporting currency's minor unit
// (halves away from zero) and then summed; net is gross_revenue − refunds − dispute_losses −
// fees of the converted figures. The rates are frozen, so the figures as closed never change.
type CloseReporting struct {
	Currency string      `json:"currency"`
	RateDate string      `json:"rate_date"` // YYYY-MM-DD: the period's last day (UTC)
	Rates    []CloseRate `json:"rates"`
	// MissingRates are the currencies with no frozen rate — none was found at the close (neither
	// a balance transaction of the day nor ledger.fx_rates had one), or the currency is in the
	// adjustments only: every mode's and account's figures that need one are null, never
	// converted at 1.
	MissingRates []string           `json:"missing_rates"`
	Figures      []ReportingFigures `json:"figures"`
	// Adjusted are the figures with the adjustments, at the same frozen rates.
	Adjusted []ReportingFigures `json:"adjusted"`
}

// CloseRate is one frozen rate: units of the reporting currency per unit of Currency, exact
// (null: none was found).
type CloseRate struct {
	Currency string  `json:"currency"`
	Rate     *string `json:"rate"`
}

// ReportingFigures are one mode's and account's figures in the reporting currency (Currency);
// each is null when a currency it sums had no rate.
type ReportingFigures struct {
	Livemode        bool    `json:"livemode"`
	Account         *string `json:"account"`
	Currency        string  `json:"currency"`
	GrossRevenue    *int64  `json:"gross_revenue"`
	Refunds         *int64  `json:"refunds"`
	DisputeLosses   *int64  `json:"dispute_losses"`
	Fees            *int64  `json:"fees"`
	Net             *int64  `json:"net"`
	Payouts         *int64  `json:"payouts"`
	OpenReceivables *int64  `json:"open_receivables"`
	MRR             *int64  `json:"mrr"`
}

// Get is the figure of that name (nil: unknown).
func (f *ReportingFigures) Get(name string) *int64 { return *f.field(name) }

func (f *ReportingFigures) field(name string) **int64 {
	switch name {
	case "gross_revenue":
		return &f.GrossRevenue
	case "refunds":
		return &f.Refunds
	case "dispute_losses":
		return &f.DisputeLosses
	case "fees":
		return &f.Fees
	case "net":
		return &f.Net
	case "payouts":
		return &f.Payouts
	case "open_receivables":
		return &f.OpenReceivables
	case "mrr":
		return &f.MRR
	}
	panic("no figure " + name)
}

// closeRatesSQL freezes, for period $1, the rate into $2 of each currency of its figures on day
// $3 (ledger.fx_rate: the one definition of the lookup).
const closeRatesSQL = `INSERT INTO ledger.close_rates (period, reporting_currency, currency, rate_date, rate)
SELECT $1::date, $2::text, currency, $3::date, ledger.fx_rate(currency, $2::text, $3::date)
FROM (SELECT DISTINCT currency FROM ledger.close_figures WHERE period = $1) c`

// readCloseReporting is c in the reporting currency at the rates frozen with it; nil for a close
// made without one.
func readCloseReporting(ctx context.Context, db querier, c Close, p Period) (*CloseReporting, error) {
	if c.reporting == nil {
		return nil, nil
	}
	r := &CloseReporting{Currency: *c.reporting, RateDate: p.End().AddDate(0, 0, -1).Format(time.DateOnly), Rates: []CloseRate{}, MissingRates: []string{}}
	rows, err := db.Query(ctx, `SELECT currency, rate::text FROM ledger.close_rates WHERE period = $1 ORDER BY currency`, p.Start())
	if err != nil {
		return nil, fmt.Errorf("could not read the rates of %s: %w", p, err)
	}
	defer rows.Close()
	rates := map[string]*big.Rat{}
	for rows.Next() {
		var currency string
		var rate *string
		if err := rows.Scan(&currency, &rate); err != nil {
			return nil, fmt.Errorf("could not read the rates of %s: %w", p, err)
		}
		r.Rates = append(r.Rates, CloseRate{Currency: currency, Rate: rate})
		if rate == nil {
			continue
		}
		v, ok := new(big.Rat).SetString(*rate)
		if !ok {
			return nil, fmt.Errorf("the rate %q of %s frozen with %s is not a number", *rate, currency, p)
		}
		rates[currency] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("could not read the rates of %s: %w", p, err)
	}
	missing := map[string]bool{}
	r.Figures = inReporting(c.Figures, r.Currency, rates, missing)
	r.Adjusted = inReporting(c.Adjusted, r.Currency, rates, missing)
	for cur := range missing {
		r.MissingRates = append(r.MissingRates, cur)
	}
	slices.Sort(r.MissingRates)
	return r, nil
}

// inReporting converts figures into the reporting currency at rates, one row per mode and
// account (in the figures' order), adding to missing the currencies without a rate.
func inReporting(figs []Figures, reporting string, rates map[string]*big.Rat, missing map[string]bool) []ReportingFigures {
	type key struct {
		livemode bool
		account  string
	}
	type sum struct {
		f       ReportingFigures
		amounts map[string]int64
		unknown bool
	}
	var order []key
	sums := map[key]*sum{}
	for _, f := range figs {
		k := key{f.Livemode, deref(f.Account)}
		s := sums[k]
		if s == nil {
			s = &sum{f: ReportingFigures{Livemode: f.Livemode, Account: f.Account, Currency: reporting}, amounts: map[string]int64{}}
			sums[k] = s
			order = append(order, k)
		}
		rate := rates[f.Currency]
		if rate == nil {
			missing[f.Currency] = true
			s.unknown = true
			continue
		}
		for _, name := range FigureNames {
			if name != "net" {
				s.amounts[name] += roundHalfAway(convertMinor(rat(f.Get(name)), f.Currency, reporting, rate))
			}
		}
	}
	out := make([]ReportingFigures, 0, len(order))
	for _, k := range order {
		s := sums[k]
		if !s.unknown {
			a := s.amounts
			a["net"] = a["gross_revenue"] - a["refunds"] - a["dispute_losses"] - a["fees"]
			for _, name := range FigureNames {
				v := a[name]
				*s.f.field(name) = &v
			}
		}
		out = append(out, s.f)
	}
	return out
}

// Adjustment is what one event appended after a close changed in the closed period's figures of
// one mode, account and currency.
type Adjustment struct {
	// The event (null when a figure changed with no later event touching its object: the read
	// models were rebuilt under other rules, or a redaction changed a payload).
	EventID    *string    `json:"event_id"`
	EventType  *string    `json:"event_type"`
	Position   *int64     `json:"position"`
	Created    *time.Time `json:"created"`     // Stripe's created
	ReceivedAt *time.Time `json:"received_at"` // when it arrived in the ledger
	Source     *string    `json:"source"`      // webhook, reconcile, snapshot, import
	ObjectType *string    `json:"object_type"`
	Object     *string    `json:"object"`
	Livemode   bool       `json:"livemode"`
	Account    *string    `json:"account"`
	Currency   *string    `json:"currency"` // null for an event that changed nothing
	// Effect is its amount effect on each figure (net included), minor units of Currency: what
	// it adds to the closed figure.
	Effect Figures `json:"effect"`
}

// closeLinesSQL is every object that adds to a figure of the period [$1, $2), with what it adds.
// Each branch is one figure's definition (the close_figures column comments say them in words);
// related is the object whose events can change the line too.
const closeLinesSQL = `
SELECT 'gross_revenue' AS figure, livemode, account, currency, 'charge' AS object_type, id AS object, NULL::text AS related, amount
FROM ledger.charges WHERE status = 'succeeded' AND created >= $1 AND created < $2
UNION ALL
SELECT 'refunds', livemode, account, currency, 'refund', id, charge, amount
FROM ledger.refunds WHERE status = 'succeeded' AND created >= $1 AND created < $2
UNION ALL
SELECT 'dispute_losses', livemode, account, currency, 'dispute', id, charge, amount
FROM ledger.disputes WHERE status = 'lost' AND created >= $1 AND created < $2
UNION ALL
SELECT 'fees', livemode, account, currency, 'balance_transaction', id, source,
       fee + CASE WHEN reporting_category = 'fee' THEN -amount ELSE 0 END
FROM ledger.balance_transactions WHERE created >= $1 AND created < $2 AND (fee <> 0 OR reporting_category = 'fee')
UNION ALL
SELECT 'payouts', livemode, account, currency, 'payout', id, NULL, amount
FROM ledger.payouts WHERE status = 'paid' AND arrival_date >= $1 AND arrival_date < $2
UNION ALL
SELECT 'open_receivables', i.livemode, i.account, i.currency, 'invoice', i.id, i.charge,
       CASE WHEN i.status = 'open' THEN i.amount_remaining ELSE i.amount_due END
FROM ledger.invoices i
LEFT JOIN ledger.charges c ON c.id = i.charge AND c.livemode = i.livemode AND c.account IS NOT DISTINCT FROM i.account
WHERE i.created < $2 AND (i.status = 'open' OR (i.status = 'paid' AND c.created >= $2))
UNION ALL
SELECT 'mrr', livemode, account, currency, 'subscription', subscription, NULL, sum(amount)::bigint
FROM ledger.subscription_movements WHERE at < $2
GROUP BY livemode, account, currency, subscription HAVING sum(amount) <> 0`

// closeFiguresSQL sums the lines of period $1 into its figures.
const closeFiguresSQL = `INSERT INTO ledger.close_figures (period, livemode, account, currency, gross_revenue, refunds, dispute_losses, fees, net,
	payouts, open_receivables, mrr)
SELECT period, livemode, account, currency, g, r, d, f, g - r - d - f, p, o, m FROM (
	SELECT period, livemode, account, currency,
	       coalesce(sum(amount) FILTER (WHERE figure = 'gross_revenue'), 0) AS g, coalesce(sum(amount) FILTER (WHERE figure = 'refunds'), 0) AS r,
	       coalesce(sum(amount) FILTER (WHERE figure = 'dispute_losses'), 0) AS d, coalesce(sum(amount) FILTER (WHERE figure = 'fees'), 0) AS f,
	       coalesce(sum(amount) FILTER (WHERE figure = 'payouts'), 0) AS p, coalesce(sum(amount) FILTER (WHERE figure = 'open_receivables'), 0) AS o,
	       coalesce(sum(amount) FILTER (WHERE figure = 'mrr'), 0) AS m
	FROM ledger.close_lines WHERE period = $1 GROUP BY period, livemode, account, currency) s`

// ClosePeriod closes p as the read models know it now, at time now (the period must have ended
// by then), recording by (may be ""). A period closed before is refused with
// *AlreadyClosedError, one not ended with *NotEndedError.
//
// The figures and the position they are of are read in one REPEATABLE READ snapshot: the live
// projection commits its rows and its position together, so the lines are exactly the fold of
// the log up to the recorded position — an event after it, even one appended before the close
// but not yet folded, is an adjustment.
func (q *Queries) ClosePeriod(ctx context.Context, p Period, now time.Time, by string) (Close, error) {
	if now.Before(p.End()) {
		return Close{}, &NotEndedError{Period: p, Now: now}
	}
	if c, err := q.readCloseRow(ctx, q.pool, p); err == nil {
		return Close{}, &AlreadyClosedError{Period: p, ClosedAt: c.ClosedAt, Position: c.Position}
	} else if !errors.Is(err, ErrNotFound) {
		return Close{}, err
	}
	err := pgx.BeginTxFunc(ctx, q.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		// A close is final: figures read from read models that were never built, or that are
		// not yet the declared ones (the runner or a replay is rebuilding them), would be frozen
		// wrong for good.
		var position int64
		var schema *string
		err := tx.QueryRow(ctx, `SELECT position, schema FROM ledger.projection_state WHERE name = $1`, projections.StateName).Scan(&position, &schema)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: they have never been built (ledger replay, or a running ledger serve, builds them)", ErrNotReady)
		case err != nil:
			return fmt.Errorf("could not read the projection's position: %w", err)
		case schema == nil || *schema != projections.Fingerprint():
			return fmt.Errorf("%w: they are not built from this version's declarations yet (ledger replay, or a running ledger serve, rebuilds them)", ErrNotReady)
		}
		head, err := eventstore.On(tx).Head(ctx)
		if err != nil {
			return err
		}
		var closedBy *string
		if by != "" {
			closedBy = &by
		}
		var reporting *string
		if rc := q.cfg.FX.Reporting; rc != "" {
			reporting = &rc
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger.closes (period, period_end, position, head, closed_at, closed_by, reporting_currency)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, p.Start(), p.End(), position, max(head.Position, position), now, closedBy, reporting); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger.close_lines (period, figure, livemode, account, currency, object_type, object, related, amount)
			SELECT $3::date, figure, livemode, account, currency, object_type, object, related, amount FROM (`+closeLinesSQL+`) l WHERE amount <> 0`,
			p.Start(), p.End(), p.Start()); err != nil {
			return fmt.Errorf("could not freeze the figures: %w", err)
		}
		if _, err := tx.Exec(ctx, closeFiguresSQL, p.Start()); err != nil {
			return fmt.Errorf("could not freeze the figures: %w", err)
		}
		if rc := q.cfg.FX.Reporting; rc != "" {
			if _, err := tx.Exec(ctx, closeRatesSQL, p.Start(), rc, p.End().AddDate(0, 0, -1)); err != nil {
				return fmt.Errorf("could not freeze the exchange rates: %w", err)
			}
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40001") {
		// Another close of the period committed first.
		if c, rerr := q.readCloseRow(ctx, q.pool, p); rerr == nil {
			return Close{}, &AlreadyClosedError{Period: p, ClosedAt: c.ClosedAt, Position: c.Position}
		}
	}
	if err != nil {
		return Close{}, fmt.Errorf("could not close %s: %w", p, err)
	}
	return q.ReadClose(ctx, p, Scope{Account: AllAccounts})
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (q *Queries) readCloseRow(ctx context.Context, db querier, p Period) (Close, error) {
	c := Close{Object: "close", Period: p.String(), Start: p.Start(), End: p.End()}
	err := db.QueryRow(ctx, `SELECT position, head, closed_at, closed_by, reporting_currency FROM ledger.closes WHERE period = $1`, p.Start()).
		Scan(&c.Position, &c.Head, &c.ClosedAt, &c.ClosedBy, &c.reporting)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("%w: period %s is not closed", ErrNotFound, p)
	}
	if err != nil {
		return c, fmt.Errorf("could not read the close of %s: %w", p, err)
	}
	c.ClosedAt = c.ClosedAt.UTC()
	return c, nil
}

// Closes are every closed period, newest first, without figures.
func (q *Queries) Closes(ctx context.Context) ([]Close, error) {
	rows, err := q.pool.Query(ctx, `SELECT period, position, head, closed_at, closed_by FROM ledger.closes ORDER BY period DESC`)
	if err != nil {
		return nil, fmt.Errorf("could not list the closes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Close, error) {
		var start time.Time
		var c Close
		err := r.Scan(&start, &c.Position, &c.Head, &c.ClosedAt, &c.ClosedBy)
		p := Period{Year: start.Year(), Month: start.Month()}
		c.Object, c.Period, c.Start, c.End, c.ClosedAt = "close", p.String(), p.Start(), p.End(), c.ClosedAt.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("could not list the closes: %w", err)
	}
	return out, nil
}

// line is one object's contribution to one figure.
type line struct {
	figure, currency, objectType, object string
	livemode                             bool
	account, related                     *string
	amount                               int64
}

type lineKey struct {
	figure, currency, object, account string
	livemode                          bool
}

func (l line) key() lineKey {
	return lineKey{l.figure, l.currency, l.object, deref(l.account), l.livemode}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func scanLines(rows pgx.Rows) ([]line, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (line, error) {
		var l line
		err := r.Scan(&l.figure, &l.livemode, &l.account, &l.currency, &l.objectType, &l.object, &l.related, &l.amount)
		return l, err
	})
}

// ReadClose is the close of p with its figures and its adjustments, of the modes and accounts
// in scope.
func (q *Queries) ReadClose(ctx context.Context, p Period, scope Scope) (Close, error) {
	var c Close
	err := pgx.BeginTxFunc(ctx, q.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if c, err = q.readCloseRow(ctx, tx, p); err != nil {
			return err
		}
		c.Includes = closeIncludes(scope)
		cond, sargs := scopeWhere(scope, 1)
		args := append([]any{p.Start()}, sargs...)
		rows, err := tx.Query(ctx, `SELECT livemode, account, currency, gross_revenue, refunds, dispute_losses, fees, net, payouts, open_receivables, mrr
			FROM ledger.close_figures t WHERE period = $1`+cond+` ORDER BY livemode DESC, account NULLS FIRST, currency`, args...)
		if err != nil {
			return fmt.Errorf("could not read the figures of %s: %w", p, err)
		}
		if c.Figures, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Figures, error) {
			var f Figures
			err := r.Scan(&f.Livemode, &f.Account, &f.Currency, &f.GrossRevenue, &f.Refunds, &f.DisputeLosses, &f.Fees, &f.Net, &f.Payouts, &f.OpenReceivables, &f.MRR)
			return f, err
		}); err != nil {
			return fmt.Errorf("could not read the figures of %s: %w", p, err)
		}
		rows, err = tx.Query(ctx, `SELECT figure, livemode, account, currency, object_type, object, related, amount FROM ledger.close_lines t
			WHERE period = $1`+cond, args...)
		if err != nil {
			return fmt.Errorf("could not read the lines of %s: %w", p, err)
		}
		was, err := scanLines(rows)
		if err != nil {
			return fmt.Errorf("could not read the lines of %s: %w", p, err)
		}
		nowCond, nowArgs := scopeWhere(scope, 2)
		rows, err = tx.Query(ctx, `SELECT * FROM (`+closeLinesSQL+`) t WHERE amount <> 0`+nowCond, append([]any{p.Start(), p.End()}, nowArgs...)...)
		if err != nil {
			return fmt.Errorf("could not compute today's figures of %s: %w", p, err)
		}
		now, err := scanLines(rows)
		if err != nil {
			return fmt.Errorf("could not compute today's figures of %s: %w", p, err)
		}
		if c.Adjustments, err = adjustments(ctx, tx, c, p, scope, was, now); err != nil {
			return err
		}
		c.Adjusted = applyAdjustments(c.Figures, c.Adjustments)
		c.Reporting, err = readCloseReporting(ctx, tx, c, p)
		return err
	})
	if err != nil {
		return Close{}, err
	}
	if c.Adjustments == nil {
		c.Adjustments = []Adjustment{}
	}
	return c, nil
}

// closeIncludes is the scope of a close's answer in words: a close never adds modes or
// accounts together, so every row is one mode's, one account's and one currency's.
func closeIncludes(s Scope) string {
	if s.Account == AllAccounts {
		mode := "live and test mode"
		if s.Livemode != nil {
			mode = map[bool]string{true: "live mode", false: "test mode"}[*s.Livemode]
		}
		return mode + ", every account: one row per mode, account (null: the platform's own) and currency, never added together"
	}
	return s.Describe() + ": one row per mode and currency"
}

// scopeWhere is the scope's conditions over alias t as " AND …", its placeholders numbered
// after the first n, and their arguments.
func scopeWhere(scope Scope, n int) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(n+len(args))
	}
	conds := scope.conds("t", arg)
	if len(conds) == 0 {
		return "", nil
	}
	return " AND " + strings.Join(conds, " AND "), args
}

// adjustments compares today's lines with the frozen ones and puts each object's change on the
// last event after the close that touched the object (or the object its line relates to); the
// events after the close created inside the period that changed nothing are listed too, with no
// effect.
func adjustments(ctx context.Context, tx pgx.Tx, c Close, p Period, scope Scope, was, now []line) ([]Adjustment, error) {
	type delta struct {
		l      line
		amount int64
	}
	deltas := map[lineKey]*delta{}
	for _, l := range now {
		deltas[l.key()] = &delta{l: l, amount: l.amount}
	}
	for _, l := range was {
		if d, ok := deltas[l.key()]; ok {
			d.amount -= l.amount
		} else {
			deltas[l.key()] = &delta{l: l, amount: -l.amount}
		}
	}
	objects := map[string]bool{}
	for k, d := range deltas {
		if d.amount == 0 {
			delete(deltas, k)
			continue
		}
		objects[d.l.object] = true
		if d.l.related != nil {
			objects[*d.l.related] = true
		}
	}
	store := eventstore.On(tx)
	late := map[int64]eventstore.Record{}
	collect := func(f eventstore.Filter) error {
		recs, err := store.List(ctx, f)
		for _, r := range recs {
			if scope.holds(r.Livemode, nullIfEmpty(r.Account)) {
				late[r.Position] = r
			}
		}
		return err
	}
	if err := collect(eventstore.Filter{AfterPosition: c.Position, CreatedFrom: p.Start(), CreatedTo: p.End().Add(-time.Second)}); err != nil {
		return nil, fmt.Errorf("could not read the events after the close: %w", err)
	}
	if len(objects) > 0 {
		if err := collect(eventstore.Filter{AfterPosition: c.Position, ObjectIDs: slices.Sorted(maps.Keys(objects))}); err != nil {
			return nil, fmt.Errorf("could not read the events after the close: %w", err)
		}
	}
	// The last late event of each object, in its mode and account.
	type objKey struct {
		object, account string
		livemode        bool
	}
	last := map[objKey]eventstore.Record{}
	for _, r := range late {
		k := objKey{r.ObjectID, r.Account, r.Livemode}
		if prev, ok := last[k]; !ok || r.Position > prev.Position {
			last[k] = r
		}
	}
	type adjKey struct {
		position        int64
		currency        string
		object, account string
		livemode        bool
	}
	byKey := map[adjKey]*Adjustment{}
	var out []*Adjustment
	for _, d := range deltas {
		l := d.l
		k := objKey{l.object, deref(l.account), l.livemode}
		ev, ok := last[k]
		if l.related != nil {
			if rel, rok := last[objKey{*l.related, deref(l.account), l.livemode}]; rok && (!ok || rel.Position > ev.Position) {
				ev, ok = rel, true
			}
		}
		ak := adjKey{currency: l.currency, account: deref(l.account), livemode: l.livemode}
		if ok {
			ak.position = ev.Position
		} else {
			ak.object = l.object // no event: one adjustment per object
		}
		a := byKey[ak]
		if a == nil {
			cur := l.currency
			a = &Adjustment{Livemode: l.livemode, Account: l.account, Currency: &cur}
			if ok {
				setEvent(a, ev)
			} else {
				ot, o := l.objectType, l.object
				a.ObjectType, a.Object = &ot, &o
			}
			byKey[ak] = a
			out = append(out, a)
		}
		a.Effect.add(l.figure, d.amount)
	}
	with := map[int64]bool{}
	for k := range byKey {
		if k.position != 0 {
			with[k.position] = true
		}
	}
	for pos, r := range late {
		if !with[pos] && r.Created >= p.Start().Unix() && r.Created < p.End().Unix() {
			a := &Adjustment{Livemode: r.Livemode, Account: nullIfEmpty(r.Account)}
			setEvent(a, r)
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b *Adjustment) int {
		pa, pb := int64(1<<62), int64(1<<62)
		if a.Position != nil {
			pa = *a.Position
		}
		if b.Position != nil {
			pb = *b.Position
		}
		return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(deref(a.Currency), deref(b.Currency)), cmp.Compare(deref(a.Object), deref(b.Object)))
	})
	res := make([]Adjustment, len(out))
	for i, a := range out {
		a.Effect.Livemode, a.Effect.Account, a.Effect.Currency = a.Livemode, a.Account, deref(a.Currency)
		res[i] = *a
	}
	return res, nil
}

func setEvent(a *Adjustment, r eventstore.Record) {
	id, typ, pos, src := r.ID, r.Type, r.Position, string(r.Source)
	created, received := r.CreatedTime(), r.ReceivedAt.UTC()
	ot, o := r.ObjectType, r.ObjectID
	a.EventID, a.EventType, a.Position, a.Source, a.Created, a.ReceivedAt, a.ObjectType, a.Object = &id, &typ, &pos, &src, &created, &received, &ot, &o
}

// applyAdjustments is the figures with every adjustment added: the period's figures today.
func applyAdjustments(figs []Figures, adj []Adjustment) []Figures {
	type key struct {
		account, currency string
		livemode          bool
	}
	out := slices.Clone(figs)
	at := map[key]int{}
	for i, f := range out {
		at[key{deref(f.Account), f.Currency, f.Livemode}] = i
	}
	for _, a := range adj {
		if a.Currency == nil {
			continue
		}
		k := key{deref(a.Account), *a.Currency, a.Livemode}
		i, ok := at[k]
		if !ok {
			out = append(out, Figures{Livemode: a.Livemode, Account: a.Account, Currency: *a.Currency})
			i = len(out) - 1
			at[k] = i
		}
		for _, name := range FigureNames {
			if name != "net" {
				out[i].add(name, a.Effect.Get(name))
			}
		}
	}
	slices.SortFunc(out, func(a, b Figures) int {
		return cmp.Or(-cmp.Compare(boolInt(a.Livemode), boolInt(b.Livemode)), cmpAccount(a.Account, b.Account), cmp.Compare(a.Currency, b.Currency))
	})
	if out == nil {
		out = []Figures{}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cmpAccount orders the platform's own (nil) first, as NULLS FIRST does.
func cmpAccount(a, b *string) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return cmp.Compare(*a, *b)
}

// ParseCloseScope reads the livemode and account parameters of a close's answer (default: both
// modes, every account; each row says which).
func ParseCloseScope(v url.Values, allowed ...string) (Scope, error) {
	for k := range v {
		if k != "livemode" && k != "account" && !slices.Contains(allowed, k) {
			return Scope{}, badRequest("unknown_parameter", "unknown parameter %q; a close takes %s", k, strings.Join(append([]string{"livemode", "account"}, allowed...), ", "))
		}
	}
	if err := checkValues(v); err != nil {
		return Scope{}, err
	}
	return parseScope(v, false)
}
