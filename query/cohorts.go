package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Cohorts: customers grouped by the month (UTC) of their first `new` movement, per currency and
// account. For month k after it (0: the cohort's own month), NRR is the cohort's MRR at the end
// of month k ÷ its MRR at the end of its first month; GRR sums, per customer, the lesser of the
// two, over the same base, so it never exceeds 1.

// cohortSQL is each customer's movement sum per month, with whether the month holds the
// customer's first new movement, in (customer, month) order.
const cohortSQL = `SELECT customer, currency, coalesce(account, '') AS acct, date_trunc('month', at AT TIME ZONE 'UTC')::date AS month,
	sum(amount)::bigint, bool_or(kind = 'new')
FROM ledger.subscription_movements
WHERE at < $1 AND ($2 = '' OR currency = $2) AND livemode = $3 AND ($4 = 'all' OR ($4 = '' AND account IS NULL) OR account = $4)
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`

type cohortKey struct {
	cohort time.Time
	key    seriesKey
}

type cohortCell struct {
	customers           int64
	base, mrr, retained int64
}

func (q *Queries) cohorts(ctx context.Context, m Metric, live bool, at cutter) ([]json.RawMessage, error) {
	g := newGrid(m)
	sql, with := at(cohortSQL, 4)
	rows, err := q.pool.Query(ctx, sql, with([]any{g.end, m.Currency, live, m.Scope.Account})...)
	if err != nil {
		return nil, fmt.Errorf("could not compute cohorts: %w", err)
	}
	defer rows.Close()
	last := g.periods[len(g.periods)-1]
	months := func(a, b time.Time) int { return (b.Year()-a.Year())*12 + int(b.Month()-a.Month()) }
	cells := map[cohortKey][]cohortCell{}
	type monthSum struct {
		month  time.Time
		amount int64
		isNew  bool
	}
	var cur struct {
		customer string
		key      seriesKey
		ms       []monthSum
	}
	flush := func() {
		if len(cur.ms) == 0 {
			return
		}
		ci := slices.IndexFunc(cur.ms, func(s monthSum) bool { return s.isNew })
		if ci < 0 {
			return
		}
		cohort := cur.ms[ci].month
		if cohort.Before(m.From) || cohort.After(last) {
			return
		}
		n := months(cohort, last) + 1
		keys := []seriesKey{cur.key}
		if m.Scope.Account == AllAccounts {
			keys = append(keys, seriesKey{cur.key.currency, AllAccounts})
		}
		// The customer's MRR at the end of each month from the cohort's.
		var mrr int64
		j := 0
		for ; j < len(cur.ms) && !cur.ms[j].month.After(cohort); j++ {
			mrr += cur.ms[j].amount
		}
		base := mrr
		for _, k := range keys {
			ck := cohortKey{cohort, k}
			if cells[ck] == nil {
				cells[ck] = make([]cohortCell, n)
			}
		}
		for k := 0; k < n; k++ {
			month := cohort.AddDate(0, k, 0)
			for ; j < len(cur.ms) && !cur.ms[j].month.After(month); j++ {
				mrr += cur.ms[j].amount
			}
			for _, key := range keys {
				c := &cells[cohortKey{cohort, key}][k]
				c.customers++
				c.base += base
				c.mrr += mrr
				c.retained += min(mrr, base)
			}
		}
	}
	for rows.Next() {
		var customer string
		var key seriesKey
		var s monthSum
		if err := rows.Scan(&customer, &key.currency, &key.acct, &s.month, &s.amount, &s.isNew); err != nil {
			return nil, err
		}
		s.month = s.month.UTC()
		if customer != cur.customer || key != cur.key {
			flush()
			cur.customer, cur.key, cur.ms = customer, key, cur.ms[:0]
		}
		cur.ms = append(cur.ms, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	flush()
	keys := make([]cohortKey, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b cohortKey) int {
		if c := strings.Compare(a.key.currency, b.key.currency); c != 0 {
			return c
		}
		if (a.key.acct == AllAccounts) != (b.key.acct == AllAccounts) {
			if a.key.acct == AllAccounts {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.key.acct, b.key.acct); c != 0 {
			return c
		}
		return a.cohort.Compare(b.cohort)
	})
	out := []json.RawMessage{}
	for _, k := range keys {
		for i, c := range cells[k] {
			var b bytes.Buffer
			cur, _ := json.Marshal(k.key.currency)
			fmt.Fprintf(&b, `{"period":"%s","currency":%s,"livemode":%t,"account":`, k.cohort.Format(time.DateOnly), cur, live)
			if k.key.acct == "" {
				b.WriteString("null")
			} else {
				acct, _ := json.Marshal(k.key.acct)
				b.Write(acct)
			}
			fmt.Fprintf(&b, `,"month":%d,"customers":%d,"base_mrr":%d,"mrr":%d,"retained_mrr":%d,"nrr":`, i, c.customers, c.base, c.mrr, c.retained)
			writeValue(&b, "nrr", ratio(rat(c.mrr), rat(c.base)))
			b.WriteString(`,"grr":`)
			writeValue(&b, "grr", ratio(rat(c.retained), rat(c.base)))
			b.WriteByte('}')
			out = append(out, b.Bytes())
		}
	}
	return out, nil
}
