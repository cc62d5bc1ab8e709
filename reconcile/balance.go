package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/projections"
)

// balanceLookBack is how far back the balance job asks Stripe for payouts without --from. The
// ledger's own payouts are listed whatever their age until they are listed in full once settled.
const balanceLookBack = 30 * 24 * time.Hour

// PayoutMismatch is a finding of the balance job: a payout whose listed balance transactions
// (its own transaction aside) do not add up to its amount. It is reported, never an error: the
// run goes on with the other payouts.
type PayoutMismatch struct {
	Finding      string  `json:"finding"` // payout_mismatch
	Payout       string  `json:"payout"`
	Livemode     bool    `json:"livemode"`
	Account      *string `json:"account"` // null for the platform's own
	Status       string  `json:"status"`
	Currency     string  `json:"currency"`
	Amount       int64   `json:"amount"`
	Parts        int64   `json:"parts"` // the sum of the listed transactions' nets, its own aside
	Transactions int     `json:"transactions"`
}

// settled are the payout statuses whose listing no longer changes.
func settled(status string) bool {
	return status == "paid" || status == "failed" || status == "canceled"
}

// runBalance fetches the scope's balance transactions, which have no Stripe events, and appends
// each as a snapshot event carrying the object exactly as Stripe's API returned it (see
// domain.NewBalanceTransactionSnapshot); replay rebuilds ledger.balance_transactions from them.
//
// First the payouts: those the ledger holds and those Stripe lists created in the window (by
// default the last 30 days), oldest first. Each one's `GET /v1/balance_transactions?payout=` is
// read in full, every page appended as it comes, each snapshot naming the payout that listed
// it (which fills balance_transactions.payout). A payout whose parts — its listed transactions'
// nets, its own transaction aside — do not add up to its amount is a finding (PayoutMismatch,
// counted as drift "payouts.mismatch"), and the run goes on. A payout listed in full once paid,
// failed or canceled, that added up, is recorded in ledger.balance_listings and skipped by later
// runs; one that did not is listed, and found, again by every run.
//
// Then the transactions no payout has listed yet (funds still pending, or a payout older than
// the window): each charge whose balance_transaction the ledger lacks, by
// `GET /v1/balance_transactions/{id}`, and each refund and dispute no transaction names as its
// source, by `?source=`. A transaction whose source the ledger does not know is appended like any
// other: it is kept, never dropped.
//
// The scope's cursor is the last payout listed in full ("payouts:po_…"), then "sources": a
// resumed run starts after it. Snapshot IDs come from the object's bytes and the listing payout,
// so a rerun, or a resumed run relisting a payout, appends nothing Stripe has not changed.
func (r *Reconciler) runBalance(ctx context.Context, api *stripeAPI, rec *recorder, opts Options, sc Scope, resume *ScopeRun) error {
	cur := rec.cur
	now := r.cfg.Now().UTC()
	from, to := opts.From, opts.To
	if from.IsZero() {
		from = now.Add(-balanceLookBack)
	}
	if to.IsZero() {
		to = now
	}
	cur.WindowFrom, cur.WindowTo = &from, &to
	after := ""
	if resume != nil {
		after = resume.Cursor
	}
	fetched := map[string]bool{} // transactions this run appended
	sources := map[string]bool{} // their sources
	if after != "sources" {
		payouts, err := r.balancePayouts(ctx, api, sc, from, to)
		if err != nil {
			return err
		}
		if po, ok := strings.CutPrefix(after, "payouts:"); ok {
			if i := slices.IndexFunc(payouts, func(p projections.PayoutRef) bool { return p.ID == po }); i >= 0 {
				payouts = payouts[i+1:]
			}
		}
		listed, err := r.settledListings(ctx, sc)
		if err != nil {
			return err
		}
		for _, po := range payouts {
			if listed[po.ID] {
				continue
			}
			if err := r.listPayout(ctx, api, rec, sc, po, fetched, sources, opts.DryRun); err != nil {
				return err
			}
			cur.Cursor = "payouts:" + po.ID
			if err := rec.page(ctx); err != nil {
				return err
			}
		}
	}
	cur.Cursor = "sources"
	missing, err := projections.MissingBalanceTransactions(ctx, r.pool, sc.Livemode, sc.account())
	if err != nil {
		return err
	}
	var batch []json.RawMessage
	for _, c := range missing.Charges {
		if fetched[c[1]] {
			continue
		}
		p := &stripe.Params{Context: ctx}
		if sc.Account != "" {
			p.SetStripeAccount(sc.Account)
		}
		body, err := callGet(api, "/v1/balance_transactions/"+c[1], nil, p)
		if err != nil {
			return apiError(ctx, "could not read charge "+c[0]+"'s balance transaction "+c[1], err)
		}
		fetched[c[1]] = true
		if batch = append(batch, body); len(batch) >= r.cfg.PageSize {
			if err := r.appendBalance(ctx, rec, sc, batch, "", opts.DryRun); err != nil {
				return err
			}
			batch = batch[:0]
			if err := rec.page(ctx); err != nil {
				return err
			}
		}
	}
	if err := r.appendBalance(ctx, rec, sc, batch, "", opts.DryRun); err != nil {
		return err
	}
	for _, src := range missing.Sources {
		if sources[src] {
			continue
		}
		err := r.listBalance(ctx, api, sc, &stripe.BalanceTransactionListParams{Source: stripe.String(src)}, "source "+src,
			func(items []json.RawMessage) error { return r.appendBalance(ctx, rec, sc, items, "", opts.DryRun) })
		if err != nil {
			return err
		}
		if err := rec.page(ctx); err != nil {
			return err
		}
	}
	return nil
}

// balancePayouts are the scope's payouts to list: the ledger's and those Stripe lists created in
// [from, to], Stripe's state where it has one, oldest first.
func (r *Reconciler) balancePayouts(ctx context.Context, api *stripeAPI, sc Scope, from, to time.Time) ([]projections.PayoutRef, error) {
	have, err := projections.ScopePayouts(ctx, r.pool, sc.Livemode, sc.account())
	if err != nil {
		return nil, err
	}
	byID := map[string]projections.PayoutRef{}
	for _, p := range have {
		byID[p.ID] = p
	}
	after := ""
	for {
		lp := stripe.ListParams{Limit: stripe.Int64(int64(r.cfg.PageSize)), Single: true, Context: ctx}
		if after != "" {
			lp.StartingAfter = stripe.String(after)
		}
		if sc.Account != "" {
			lp.SetStripeAccount(sc.Account)
		}
		params := &stripe.PayoutListParams{ListParams: lp,
			CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: from.Unix(), LesserThanOrEqual: to.Unix()}}
		var pg eventPage
		if err := getRaw(ctx, api, "/v1/payouts", params, &pg); err != nil {
			return nil, apiError(ctx, "could not list payouts", err)
		}
		for _, raw := range pg.Data {
			var o struct {
				ID, Currency, Status string
				Amount, Created      int64
				Automatic            bool
			}
			if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
				return nil, fmt.Errorf("the payouts list holds an object without an id")
			}
			byID[o.ID] = projections.PayoutRef{ID: o.ID, Amount: o.Amount, Currency: o.Currency, Status: o.Status,
				Automatic: o.Automatic, Created: time.Unix(o.Created, 0).UTC()}
			after = o.ID
		}
		if !pg.HasMore || len(pg.Data) == 0 {
			break
		}
	}
	out := make([]projections.PayoutRef, 0, len(byID))
	for _, p := range byID {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b projections.PayoutRef) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// listPayout reads one payout's balance transactions in full, appends them, checks they add up
// and records the listing.
func (r *Reconciler) listPayout(ctx context.Context, api *stripeAPI, rec *recorder, sc Scope, po projections.PayoutRef,
	fetched, sources map[string]bool, dryRun bool) error {
	var parts int64
	n := 0
	err := r.listBalance(ctx, api, sc, &stripe.BalanceTransactionListParams{Payout: stripe.String(po.ID)}, "payout "+po.ID,
		func(items []json.RawMessage) error {
			for _, raw := range items {
				t, err := readTxn(raw)
				if err != nil {
					return err
				}
				fetched[t.ID], n = true, n+1
				if t.Source != "" {
					sources[t.Source] = true
				}
				if t.Type == "payout" && t.Source == po.ID {
					continue // the payout's own transaction: -amount, the other side of the parts
				}
				parts += t.Net
			}
			return r.appendBalance(ctx, rec, sc, items, po.ID, dryRun)
		})
	if err != nil {
		return err
	}
	addsUp := !po.Automatic || parts == po.Amount
	if !addsUp {
		// Only automatic payouts list what they paid out: a manual one lists its own transaction.
		rec.run.Drift["payouts.mismatch"]++
		rec.find(PayoutMismatch{Finding: "payout_mismatch", Payout: po.ID, Livemode: sc.Livemode, Account: sc.account(),
			Status: po.Status, Currency: po.Currency, Amount: po.Amount, Parts: parts, Transactions: n})
		r.cfg.Logger.Warn("payout does not add up", "payout", po.ID, "scope", sc.String(), "amount", po.Amount, "parts", parts)
	}
	if dryRun {
		return nil
	}
	_, err = r.pool.Exec(ctx, `INSERT INTO ledger.balance_listings AS l
			(livemode, account, payout, status, transactions, parts, amount, currency, adds_up, run_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (livemode, (coalesce(account, '')), payout) DO UPDATE SET status = EXCLUDED.status,
			transactions = EXCLUDED.transactions, parts = EXCLUDED.parts, amount = EXCLUDED.amount,
			currency = EXCLUDED.currency, adds_up = EXCLUDED.adds_up, listed_at = now(), run_id = EXCLUDED.run_id`,
		sc.Livemode, sc.account(), po.ID, po.Status, n, parts, po.Amount, po.Currency, addsUp, rec.run.ID)
	if err != nil {
		return fmt.Errorf("could not record payout %s's listing: %w", po.ID, err)
	}
	return nil
}

// settledListings are the scope's payouts listed in full once settled, that added up.
func (r *Reconciler) settledListings(ctx context.Context, sc Scope) (map[string]bool, error) {
	rows, err := r.pool.Query(ctx, `SELECT payout, status FROM ledger.balance_listings
		WHERE livemode = $1 AND account IS NOT DISTINCT FROM $2 AND adds_up`, sc.Livemode, sc.account())
	if err != nil {
		return nil, fmt.Errorf("could not read the payouts listed: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var po, status string
		if err := rows.Scan(&po, &status); err != nil {
			return nil, fmt.Errorf("could not read the payouts listed: %w", err)
		}
		out[po] = settled(status)
	}
	return out, rows.Err()
}

// listBalance reads every page of a balance transactions list, handing each to page.
func (r *Reconciler) listBalance(ctx context.Context, api *stripeAPI, sc Scope, params *stripe.BalanceTransactionListParams,
	what string, page func([]json.RawMessage) error) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		params.ListParams = stripe.ListParams{Limit: stripe.Int64(int64(r.cfg.PageSize)), Single: true, Context: ctx}
		if after != "" {
			params.StartingAfter = stripe.String(after)
		}
		if sc.Account != "" {
			params.SetStripeAccount(sc.Account)
		}
		var pg eventPage
		if err := getRaw(ctx, api, "/v1/balance_transactions", params, &pg); err != nil {
			return apiError(ctx, "could not list the balance transactions of "+what, err)
		}
		if err := page(pg.Data); err != nil {
			return err
		}
		if !pg.HasMore || len(pg.Data) == 0 {
			return nil
		}
		t, err := readTxn(pg.Data[len(pg.Data)-1])
		if err != nil {
			return err
		}
		after = t.ID
	}
}

// txn is what the job reads of a balance transaction itself.
type txn struct {
	ID, Type, Source string
	Net              int64
}

func readTxn(raw json.RawMessage) (txn, error) {
	var o struct {
		ID     string          `json:"id"`
		Type   string          `json:"type"`
		Net    int64           `json:"net"`
		Source json.RawMessage `json:"source"`
	}
	if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
		return txn{}, fmt.Errorf("a balance transaction without an id in Stripe's answer")
	}
	t := txn{ID: o.ID, Type: o.Type, Net: o.Net}
	var src struct{ ID string }
	switch {
	case json.Unmarshal(o.Source, &t.Source) == nil:
	case json.Unmarshal(o.Source, &src) == nil:
		t.Source = src.ID // expanded
	}
	return t, nil
}

// appendBalance appends the snapshots of balance transactions as Stripe returned them (payout:
// the payout whose listing returned them, "" when fetched otherwise), counting those the log did
// not have. A dry run counts them and appends nothing.
func (r *Reconciler) appendBalance(ctx context.Context, rec *recorder, sc Scope, items []json.RawMessage, payout string, dryRun bool) error {
	if len(items) == 0 {
		return nil
	}
	rec.run.ObjectsChecked += len(items)
	now := r.cfg.Now().Unix()
	snaps := make([]domain.Event, 0, len(items))
	ids := make([]string, 0, len(items))
	for _, raw := range items {
		ev, err := domain.NewBalanceTransactionSnapshot(raw, now, sc.Livemode, sc.Account, stripe.APIVersion, payout)
		if err != nil {
			return fmt.Errorf("could not make a snapshot of a balance transaction: %w", err)
		}
		snaps = append(snaps, ev)
		ids = append(ids, ev.ID)
	}
	known, err := r.store.Known(ctx, ids)
	if err != nil {
		return err
	}
	rec.run.MissingFound += len(ids) - len(known)
	if dryRun {
		return nil
	}
	return r.repair(ctx, rec, snaps, "balance transactions")
}
