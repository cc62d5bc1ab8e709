package query

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Payout reconciliation: each payout against the balance transactions it paid out
// (ledger.payout_reconciliation, migrations/019_closes.sql), and what does not reconcile
// (ledger.unreconciled). Both are read through the views' functions, so the API, `ledger query
// payouts`, the dashboard and SQL give one answer.

// PayoutReconciliation is one payout and its parts, by reporting category: the parts add up to
// Total (the sum of the transactions' net), and Match says whether that is the payout's amount.
type PayoutReconciliation struct {
	Payout       string    `json:"payout"`
	Livemode     bool      `json:"livemode"`
	Account      *string   `json:"account"`
	Currency     string    `json:"currency"`
	Amount       int64     `json:"amount"`
	Status       string    `json:"status"`
	ArrivalDate  time.Time `json:"arrival_date"`
	Automatic    bool      `json:"automatic"`
	Method       string    `json:"method"`
	Charges      int64     `json:"charges"`
	Refunds      int64     `json:"refunds"`
	Disputes     int64     `json:"disputes"`
	Fees         int64     `json:"fees"`
	Adjustments  int64     `json:"adjustments"`
	Transfers    int64     `json:"transfers"`
	Other        int64     `json:"other"`
	Transactions int64     `json:"transactions"`
	Total        int64     `json:"total"`
	Difference   int64     `json:"difference"`
	Match        bool      `json:"match"`
	Created      time.Time `json:"created"`
}

// PayoutColumns are PayoutReconciliation's fields in the view's (and CSV's) order.
var PayoutColumns = []string{"payout", "livemode", "account", "currency", "amount", "status", "arrival_date", "automatic", "method",
	"charges", "refunds", "disputes", "fees", "adjustments", "transfers", "other", "transactions", "total", "difference", "match", "created"}

const payoutSelect = `SELECT payout, livemode, account, currency, amount, status, arrival_date, automatic, method, charges, refunds, disputes,
	fees, adjustments, transfers, other, transactions, total, difference, match, created FROM ledger.payout_reconciliation_rows() t`

func scanPayout(r pgx.CollectableRow) (PayoutReconciliation, error) {
	var p PayoutReconciliation
	err := r.Scan(&p.Payout, &p.Livemode, &p.Account, &p.Currency, &p.Amount, &p.Status, &p.ArrivalDate, &p.Automatic, &p.Method,
		&p.Charges, &p.Refunds, &p.Disputes, &p.Fees, &p.Adjustments, &p.Transfers, &p.Other, &p.Transactions, &p.Total, &p.Difference,
		&p.Match, &p.Created)
	p.ArrivalDate, p.Created = p.ArrivalDate.UTC(), p.Created.UTC()
	return p, err
}

// Cells is the row as CSV cells, in PayoutColumns' order (the platform's account empty).
func (p PayoutReconciliation) Cells() []string {
	i := strconv.FormatInt
	return []string{SpreadsheetSafe(p.Payout), strconv.FormatBool(p.Livemode), SpreadsheetSafe(deref(p.Account)), SpreadsheetSafe(p.Currency),
		i(p.Amount, 10), SpreadsheetSafe(p.Status), p.ArrivalDate.Format(time.RFC3339), strconv.FormatBool(p.Automatic), SpreadsheetSafe(p.Method),
		i(p.Charges, 10), i(p.Refunds, 10), i(p.Disputes, 10), i(p.Fees, 10), i(p.Adjustments, 10), i(p.Transfers, 10), i(p.Other, 10),
		i(p.Transactions, 10), i(p.Total, 10), i(p.Difference, 10), strconv.FormatBool(p.Match), p.Created.Format(time.RFC3339)}
}

// Payouts is a parsed payout-reconciliation request.
type Payouts struct {
	Scope    Scope
	Status   string
	Currency string
	Match    *bool
	// ArrivalGTE and ArrivalLT bound arrival_date (zero: unbounded); a page ends where the next
	// begins with arrival_lt = the last row's arrival_date.
	ArrivalGTE, ArrivalLT time.Time
	Limit                 int // 1–1000, default 100
	CSV, FormatSet        bool
}

var payoutParams = []string{"livemode", "account", "status", "currency", "match", "arrival_gte", "arrival_lt", "limit", "format"}

// ParsePayouts reads a payout-reconciliation request: livemode and account (default both modes,
// every account), status, currency, match (true or false), arrival_gte, arrival_lt, limit,
// format.
func ParsePayouts(v url.Values) (Payouts, error) {
	p := Payouts{Limit: 100}
	if err := checkValues(v); err != nil {
		return p, err
	}
	for k := range v {
		if !slices.Contains(payoutParams, k) {
			return p, badRequest("unknown_parameter", "unknown parameter %q; the payout reconciliation takes %s", k, strings.Join(payoutParams, ", "))
		}
	}
	var err error
	if p.Scope, err = parseScope(v, false); err != nil {
		return p, err
	}
	p.Status = v.Get("status")
	if p.Currency = v.Get("currency"); p.Currency != "" && !isCurrency(p.Currency) {
		return p, badRequest("invalid_currency", "currency is a lowercase ISO 4217 code such as usd")
	}
	if m := v.Get("match"); m != "" {
		b, err := strconv.ParseBool(m)
		if err != nil {
			return p, badRequest("invalid_match", "match is true (payouts that reconcile) or false (those that do not), not %q", m)
		}
		p.Match = &b
	}
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"arrival_gte", &p.ArrivalGTE}, {"arrival_lt", &p.ArrivalLT}} {
		if s := v.Get(b.name); s != "" {
			if *b.t, err = ParseTime(b.name, s); err != nil {
				return p, err
			}
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return p, badRequest("invalid_limit", "limit must be an integer from 1 to 1000")
		}
		p.Limit = n
	}
	p.CSV, p.FormatSet, err = parseFormat(v)
	return p, err
}

// ReconcilePayouts answers a payout-reconciliation request, newest arrival first; more says
// there are rows past Limit (every row when all).
func (q *Queries) ReconcilePayouts(ctx context.Context, p Payouts, all bool) (rows []PayoutReconciliation, more bool, err error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds := p.Scope.conds("t", arg)
	if p.Status != "" {
		conds = append(conds, "t.status = "+arg(p.Status))
	}
	if p.Currency != "" {
		conds = append(conds, "t.currency = "+arg(p.Currency))
	}
	if p.Match != nil {
		conds = append(conds, "t.match = "+arg(*p.Match))
	}
	if !p.ArrivalGTE.IsZero() {
		conds = append(conds, "t.arrival_date >= "+arg(p.ArrivalGTE))
	}
	if !p.ArrivalLT.IsZero() {
		conds = append(conds, "t.arrival_date < "+arg(p.ArrivalLT))
	}
	sql := payoutSelect
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY t.arrival_date DESC, t.payout DESC"
	if !all {
		sql += " LIMIT " + arg(p.Limit+1)
	}
	r, err := q.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("could not reconcile the payouts: %w", err)
	}
	rows, err = pgx.CollectRows(r, scanPayout)
	if err != nil {
		return nil, false, fmt.Errorf("could not reconcile the payouts: %w", err)
	}
	if !all && len(rows) > p.Limit {
		rows, more = rows[:p.Limit], true
	}
	if rows == nil {
		rows = []PayoutReconciliation{}
	}
	return rows, more, nil
}

// PayoutTransaction is one balance transaction a payout listed.
type PayoutTransaction struct {
	ID                string    `json:"id"`
	Type              string    `json:"type"`
	ReportingCategory string    `json:"reporting_category"`
	Amount            int64     `json:"amount"`
	Fee               int64     `json:"fee"`
	Net               int64     `json:"net"`
	Currency          string    `json:"currency"`
	Source            *string   `json:"source"`
	Status            string    `json:"status"`
	AvailableOn       time.Time `json:"available_on"`
	Created           time.Time `json:"created"`
	// Counted is false for the payout's own transaction (its source is the payout): the others
	// are what it paid out.
	Counted bool `json:"counted"`
	// SourceKnown says the ledger holds the source object (a charge, refund, dispute or payout);
	// false: an unmatched transaction. Null without a source.
	SourceKnown *bool `json:"source_known"`
}

// PayoutDetail is one payout's reconciliation with its transactions.
type PayoutDetail struct {
	Object string `json:"object"` // "payout_reconciliation"
	PayoutReconciliation
	BalanceTransactions []PayoutTransaction `json:"balance_transactions"`
}

const payoutTransactionsSQL = `SELECT b.id, b.type, b.reporting_category, b.amount, b.fee, b.net, b.currency, b.source, b.status, b.available_on, b.created,
	b.source IS DISTINCT FROM b.payout,
	CASE WHEN b.source IS NULL THEN NULL ELSE
		EXISTS (SELECT 1 FROM ledger.charges x WHERE x.id = b.source AND x.livemode = b.livemode AND x.account IS NOT DISTINCT FROM b.account)
		OR EXISTS (SELECT 1 FROM ledger.refunds x WHERE x.id = b.source AND x.livemode = b.livemode AND x.account IS NOT DISTINCT FROM b.account)
		OR EXISTS (SELECT 1 FROM ledger.disputes x WHERE x.id = b.source AND x.livemode = b.livemode AND x.account IS NOT DISTINCT FROM b.account)
		OR EXISTS (SELECT 1 FROM ledger.payouts x WHERE x.id = b.source AND x.livemode = b.livemode AND x.account IS NOT DISTINCT FROM b.account) END
FROM ledger.balance_transactions b WHERE b.payout = $1 AND b.livemode = $2 AND b.account IS NOT DISTINCT FROM $3
ORDER BY b.created, b.id`

// Payout is one payout's reconciliation and the balance transactions it listed, oldest first.
func (q *Queries) Payout(ctx context.Context, id string) (PayoutDetail, error) {
	if err := CheckID(id); err != nil {
		return PayoutDetail{}, err
	}
	r, err := q.pool.Query(ctx, payoutSelect+` WHERE t.payout = $1`, id)
	if err != nil {
		return PayoutDetail{}, fmt.Errorf("could not reconcile payout %s: %w", id, err)
	}
	found, err := pgx.CollectRows(r, scanPayout)
	if err != nil {
		return PayoutDetail{}, fmt.Errorf("could not reconcile payout %s: %w", id, err)
	}
	if len(found) == 0 {
		return PayoutDetail{}, fmt.Errorf("%w: the ledger holds no payout %s", ErrNotFound, id)
	}
	d := PayoutDetail{Object: "payout_reconciliation", PayoutReconciliation: found[0]}
	r, err = q.pool.Query(ctx, payoutTransactionsSQL, id, d.Livemode, d.Account)
	if err != nil {
		return d, fmt.Errorf("could not read payout %s's transactions: %w", id, err)
	}
	d.BalanceTransactions, err = pgx.CollectRows(r, func(r pgx.CollectableRow) (PayoutTransaction, error) {
		var t PayoutTransaction
		err := r.Scan(&t.ID, &t.Type, &t.ReportingCategory, &t.Amount, &t.Fee, &t.Net, &t.Currency, &t.Source, &t.Status, &t.AvailableOn, &t.Created,
			&t.Counted, &t.SourceKnown)
		t.AvailableOn, t.Created = t.AvailableOn.UTC(), t.Created.UTC()
		return t, err
	})
	if err != nil {
		return d, fmt.Errorf("could not read payout %s's transactions: %w", id, err)
	}
	if d.BalanceTransactions == nil {
		d.BalanceTransactions = []PayoutTransaction{}
	}
	return d, nil
}

// Finding is one thing that does not reconcile (ledger.unreconciled).
type Finding struct {
	Kind       string    `json:"kind"` // charge_without_balance_transaction, payout_mismatch, unmatched_balance_transaction
	Object     string    `json:"object"`
	Livemode   bool      `json:"livemode"`
	Account    *string   `json:"account"`
	Currency   string    `json:"currency"`
	Amount     int64     `json:"amount"`
	Expected   *int64    `json:"expected"`
	Difference *int64    `json:"difference"`
	Since      time.Time `json:"since"`
	Detail     string    `json:"detail"`
}

// FindingKinds are the kinds of finding, in report order.
var FindingKinds = []string{"payout_mismatch", "charge_without_balance_transaction", "unmatched_balance_transaction"}

// FindingColumns are a finding's fields in CSV order.
var FindingColumns = []string{"kind", "object", "livemode", "account", "currency", "amount", "expected", "difference", "since", "detail"}

// Cells is the finding as CSV cells, in FindingColumns' order.
func (f Finding) Cells() []string {
	opt := func(v *int64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatInt(*v, 10)
	}
	return []string{f.Kind, SpreadsheetSafe(f.Object), strconv.FormatBool(f.Livemode), SpreadsheetSafe(deref(f.Account)), SpreadsheetSafe(f.Currency),
		strconv.FormatInt(f.Amount, 10), opt(f.Expected), opt(f.Difference), f.Since.Format(time.RFC3339), SpreadsheetSafe(f.Detail)}
}

// Unreconciled is what does not reconcile at time at, of the modes and accounts in scope (kind
// "" for every kind), ordered by kind then since.
func (q *Queries) Unreconciled(ctx context.Context, scope Scope, kind string, at time.Time) ([]Finding, error) {
	if kind != "" && !slices.Contains(FindingKinds, kind) {
		return nil, badRequest("invalid_kind", "kind is %s, not %q", strings.Join(FindingKinds, ", "), kind)
	}
	args := []any{at}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds := append(scope.conds("t", arg), "("+arg(kind)+" = '' OR t.kind = $"+strconv.Itoa(len(args))+")")
	r, err := q.pool.Query(ctx, `SELECT kind, object, livemode, account, currency, amount, expected, difference, since, detail
		FROM ledger.unreconciled_rows($1) t WHERE `+strings.Join(conds, " AND ")+`
		ORDER BY array_position($`+strconv.Itoa(len(args)+1)+`::text[], t.kind), t.since, t.object`, append(args, FindingKinds)...)
	if err != nil {
		return nil, fmt.Errorf("could not list what does not reconcile: %w", err)
	}
	out, err := pgx.CollectRows(r, func(r pgx.CollectableRow) (Finding, error) {
		var f Finding
		err := r.Scan(&f.Kind, &f.Object, &f.Livemode, &f.Account, &f.Currency, &f.Amount, &f.Expected, &f.Difference, &f.Since, &f.Detail)
		f.Since = f.Since.UTC()
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("could not list what does not reconcile: %w", err)
	}
	if out == nil {
		out = []Finding{}
	}
	return out, nil
}

// IsBadRequest says err is a request the caller must change.
func IsBadRequest(err error) bool {
	var br *BadRequest
	return errors.As(err, &br)
}
