package query_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/stripesim"
)

// Over 90 simulated days of daily payouts, every payout the ledger holds reconciles to the cent
// with what the simulator computed from its own objects: the same transactions (its own left
// out), the same sum per reporting category, the same fees and net; the one payout the
// simulator made 137 cents larger than its transactions is the one that does not match, and
// the only finding; the SQL view gives the same rows.
func TestEveryPayoutReconcilesToTheCent(t *testing.T) {
	t.Parallel()
	b := playBooks(t, "steady", func(cfg *stripesim.Config, _ *stripesim.DeliveryConfig) {
		cfg.Customers, cfg.PayoutMismatch = 120, 137
	})
	b.balanceJob(t)
	b.rebuild(t)
	ctx := context.Background()
	truth := b.sim.MoneyTruth()
	rows, _, err := b.q.ReconcilePayouts(ctx, query.Payouts{Scope: query.Scope{Account: query.AllAccounts}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(truth.Payouts) < 60 || len(rows) != len(truth.Payouts) {
		t.Fatalf("the ledger reconciles %d payouts, the account made %d (want 60 or more)", len(rows), len(truth.Payouts))
	}
	byID := map[string]query.PayoutReconciliation{}
	for _, r := range rows {
		byID[r.Payout] = r
	}
	var mismatched []string
	failed := 0
	for _, tp := range truth.Payouts {
		r, ok := byID[tp.ID]
		if !ok {
			t.Errorf("payout %s is not in the reconciliation", tp.ID)
			continue
		}
		if tp.Status == "failed" {
			failed++
		}
		cat := func(names ...string) (sum int64) {
			for _, n := range names {
				sum += tp.Categories[n].Amount
			}
			return sum
		}
		if r.Amount != tp.Amount || r.Status != tp.Status || r.Total != tp.Net || r.Match != tp.Reconciled ||
			r.Transactions != int64(tp.Transactions-1) || r.Charges != cat("charge") || r.Refunds != cat("refund", "refund_failure") ||
			r.Disputes != cat("dispute", "dispute_reversal") || r.Fees != cat("fee")-tp.Fees || r.Difference != tp.Net-tp.Amount {
			t.Errorf("payout %s: ledger %+v\naccount %+v", tp.ID, r, tp)
		}
		if parts := r.Charges + r.Refunds + r.Disputes + r.Fees + r.Adjustments + r.Transfers + r.Other; parts != r.Total {
			t.Errorf("payout %s: its parts add up to %d, its total is %d", tp.ID, parts, r.Total)
		}
		if !r.Match {
			mismatched = append(mismatched, r.Payout)
			if r.Difference != -137 {
				t.Errorf("the mismatched payout %s is %d off, want -137", r.Payout, r.Difference)
			}
		}
	}
	if len(mismatched) != 1 || failed == 0 {
		t.Fatalf("mismatched payouts %v (want the one injected); %d failed payouts (want some)", mismatched, failed)
	}
	found, err := b.q.Unreconciled(ctx, query.Scope{Account: query.AllAccounts}, "", b.sim.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Kind != "payout_mismatch" || found[0].Object != mismatched[0] || *found[0].Difference != -137 {
		t.Fatalf("findings %+v, want only the mismatched payout %s", found, mismatched[0])
	}
	// The SQL view finance's BI tool reads is the same answer.
	var viewMismatched []string
	var viewRows int
	if err := b.db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(array_agg(payout) FILTER (WHERE NOT match), '{}')
		FROM ledger.payout_reconciliation`).Scan(&viewRows, &viewMismatched); err != nil {
		t.Fatal(err)
	}
	if viewRows != len(rows) || len(viewMismatched) != 1 || viewMismatched[0] != mismatched[0] {
		t.Fatalf("the view has %d rows, mismatched %v", viewRows, viewMismatched)
	}
	// The drill-down lists every transaction the payout's listing returned, its own included.
	d, err := b.q.Payout(ctx, mismatched[0])
	if err != nil {
		t.Fatal(err)
	}
	var counted, own int
	var net int64
	for _, tx := range d.BalanceTransactions {
		if tx.Counted {
			counted++
			net += tx.Net
		} else {
			own++
		}
	}
	if int64(counted) != d.Transactions || own != 1 || net != d.Total {
		t.Fatalf("drill-down: %d counted (%d), %d own, net %d (total %d)", counted, d.Transactions, own, net, d.Total)
	}
}

// What does not reconcile is found: a succeeded charge whose balance transaction no payout has
// after its funds became available (two days after it was created), and a balance transaction whose source the ledger does
// not hold — kept and listed as unmatched, never dropped.
func TestUnreconciledFindsChargesWithoutTransactionsAndUnmatchedSources(t *testing.T) {
	t.Parallel()
	b := playBooks(t, "steady", func(cfg *stripesim.Config, _ *stripesim.DeliveryConfig) {
		cfg.Customers, cfg.Duration = 60, 30*24*time.Hour
	})
	listed := b.fetchPayoutListings(t) // the payouts' listings only
	ctx := context.Background()
	// A transaction of a charge the ledger never heard of, as a listing could return one.
	var raw []byte
	if err := b.db.Pool.QueryRow(ctx, `SELECT payload FROM ledger.events WHERE type = $1 LIMIT 1`, domain.SnapshotTypes[domain.KindBalanceTransactions]).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data struct {
			Object map[string]any `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	obj := env.Data.Object
	obj["id"], obj["source"], obj["type"], obj["reporting_category"] = "txn_unmatched01", "ch_notinthisledger", "charge", "charge"
	body, _ := json.Marshal(obj)
	ev, err := domain.NewBalanceTransactionSnapshot(body, b.sim.Now().Unix()-86400, false, "", stripesim.APIVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.New(b.db.Pool).Append(ctx, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}
	b.rebuild(t)

	// Three days after the account stopped: the charges of its last days have been available
	// for a while, but the ledger has fetched no transaction of theirs.
	at := b.sim.Now().Add(72 * time.Hour)
	want := map[string]bool{}
	for _, raw := range mustObjects(t, b.sim, "charges") {
		var c struct {
			ID      string `json:"id"`
			Status  string `json:"status"`
			Created int64  `json:"created"`
		}
		_ = json.Unmarshal(raw, &c)
		if c.Status == "succeeded" && !listed[c.ID] && c.Created+2*86400 < at.Unix() {
			want[c.ID] = true
		}
	}
	found, err := b.q.Unreconciled(ctx, query.Scope{Account: query.AllAccounts}, "", at)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var unmatched []query.Finding
	for _, f := range found {
		switch f.Kind {
		case "charge_without_balance_transaction":
			got[f.Object] = true
		case "unmatched_balance_transaction":
			unmatched = append(unmatched, f)
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("%d charges without a balance transaction found, %d expected", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("charge %s has no listed balance transaction but is not found", id)
		}
	}
	if len(unmatched) != 1 || unmatched[0].Object != "txn_unmatched01" || !strings.Contains(unmatched[0].Detail, "ch_notinthisledger") {
		t.Fatalf("unmatched: %+v", unmatched)
	}
	// Asked for one kind, only that kind.
	only, err := b.q.Unreconciled(ctx, query.Scope{Account: query.AllAccounts}, "unmatched_balance_transaction", at)
	if err != nil || len(only) != 1 {
		t.Fatalf("kind filter: %v %v", only, err)
	}
	if _, err := b.q.Unreconciled(ctx, query.Scope{Account: query.AllAccounts}, "everything", at); !query.IsBadRequest(err) {
		t.Fatalf("an unknown kind: %v", err)
	}
}

func mustObjects(t *testing.T, sim *stripesim.Sim, kind string) []json.RawMessage {
	t.Helper()
	var objs []json.RawMessage
	if err := json.Unmarshal(sim.Truth().Objects[kind], &objs); err != nil {
		t.Fatal(err)
	}
	return objs
}
