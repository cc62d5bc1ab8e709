package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
)

// moneyEvent is a Stripe event in test mode of the platform, at API version 2023-10-16.
func moneyEvent(id, typ string, created int64, object string) domain.Event {
	e, err := domain.NewEvent(fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"type":%q,"data":{"object":%s}}`,
		id, created, typ, object), domain.SourceImport, "")
	if err != nil {
		panic(err)
	}
	return e
}

func btEvent(object string, fetched int64, payout string) domain.Event {
	e, err := domain.NewBalanceTransactionSnapshot(json.RawMessage(object), fetched, false, "", "2023-10-16", payout)
	if err != nil {
		panic(err)
	}
	return e
}

func moneyCharge(id, currency string, amount int64, txn string, created int64) string {
	return fmt.Sprintf(`{"id":%q,"object":"charge","amount":%d,"amount_captured":%d,"amount_refunded":0,"currency":%q,"status":"succeeded",`+
		`"paid":true,"balance_transaction":%q,"created":%d}`, id, amount, amount, currency, txn, created)
}

func moneyTxn(id, source, typ, category, status string, amount, fee int64, rate string, created int64) string {
	details := "[]"
	if fee != 0 {
		details = fmt.Sprintf(`[{"amount":%d,"application":null,"currency":"usd","description":"Stripe processing fees","type":"stripe_fee"}]`, fee)
	}
	return fmt.Sprintf(`{"id":%q,"object":"balance_transaction","amount":%d,"available_on":%d,"created":%d,"currency":"usd",`+
		`"description":null,"exchange_rate":%s,"fee":%d,"fee_details":%s,"net":%d,"reporting_category":%q,"source":%q,"status":%q,"type":%q}`,
		id, amount, created+2*86400, created, rate, fee, details, amount-fee, category, source, status, typ)
}

func moneyPayout(id, status string, amount, created int64, failure string) string {
	code := "null"
	if failure != "" {
		code = fmt.Sprintf("%q", failure)
	}
	return fmt.Sprintf(`{"id":%q,"object":"payout","amount":%d,"arrival_date":%d,"automatic":true,"balance_transaction":"txn_%s",`+
		`"created":%d,"currency":"usd","failure_code":%s,"failure_message":null,"method":"standard","reconciliation_status":"completed",`+
		`"status":%q,"type":"bank_account"}`, id, amount, created+86400, id, created, code, status)
}

// moneyLog is a small account's money movement: two charges (one in eur, converted), their
// transactions fetched pending by ID and then listed by the payout that paid them out, a refund's
// transaction, a payout paid and one failed in the second it was made, a payment intent, a
// credit note and an invoice with lines.
func moneyLog() []domain.Event {
	const t0 = 1780000000
	return []domain.Event{
		moneyEvent("evt_ch1", "charge.succeeded", t0, moneyCharge("ch_1", "usd", 10000, "txn_ch1", t0)),
		moneyEvent("evt_ch2", "charge.succeeded", t0+60, moneyCharge("ch_2", "eur", 5000, "txn_ch2", t0+60)),
		btEvent(moneyTxn("txn_ch1", "ch_1", "charge", "charge", "pending", 10000, 320, "null", t0), t0+100, ""),
		btEvent(moneyTxn("txn_ch1", "ch_1", "charge", "charge", "available", 10000, 320, "null", t0), t0+3*86400, "po_1"),
		btEvent(moneyTxn("txn_ch2", "ch_2", "charge", "charge", "available", 5426, 187, "1.085120", t0+60), t0+3*86400, "po_1"),
		btEvent(moneyTxn("txn_re1", "re_1", "refund", "refund", "available", -1000, 0, "null", t0+120), t0+3*86400, "po_1"),
		btEvent(moneyTxn("txn_po_1", "po_1", "payout", "payout", "available", -13919, 0, "null", t0+2*86400), t0+3*86400, "po_1"),
		btEvent(moneyTxn("txn_unknown", "ch_elsewhere", "charge", "charge", "available", 700, 50, "null", t0+30), t0+3*86400, "po_1"),
		moneyEvent("evt_po1a", "payout.created", t0+2*86400, moneyPayout("po_1", "pending", 13919, t0+2*86400, "")),
		moneyEvent("evt_po1b", "payout.paid", t0+3*86400, moneyPayout("po_1", "paid", 13919, t0+2*86400, "")),
		moneyEvent("evt_po2b", "payout.failed", t0+4*86400, moneyPayout("po_2", "failed", 500, t0+4*86400, "account_closed")),
		moneyEvent("evt_po2a", "payout.created", t0+4*86400, moneyPayout("po_2", "pending", 500, t0+4*86400, "")),
		moneyEvent("evt_pi1", "payment_intent.created", t0, `{"id":"pi_1","object":"payment_intent","amount":10000,"amount_received":0,"currency":"usd","status":"requires_payment_method","customer":null,"invoice":null,"latest_charge":null,"created":1780000000}`),
		moneyEvent("evt_pi2", "payment_intent.succeeded", t0, `{"id":"pi_1","object":"payment_intent","amount":10000,"amount_received":10000,"currency":"usd","status":"succeeded","customer":"cus_1","invoice":"in_1","latest_charge":"ch_1","created":1780000000}`),
		moneyEvent("evt_cn1", "credit_note.created", t0+500, `{"id":"cn_1","object":"credit_note","invoice":"in_1","customer":"cus_1","number":"N-1","status":"issued","type":"post_payment","reason":null,"amount":1000,"subtotal":1000,"total":1000,"currency":"usd","refund":"re_1","created":1780000500}`),
		moneyEvent("evt_in1", "invoice.paid", t0, `{"id":"in_1","object":"invoice","customer":"cus_1","currency":"usd","status":"paid","amount_due":10000,"amount_paid":10000,`+
			`"amount_remaining":0,"total":10000,"subtotal":10500,"tax":null,"total_excluding_tax":10000,"total_discount_amounts":[{"amount":500,"discount":"di_1"}],`+
			`"period_start":1780000000,"period_end":1782592000,"created":1780000000,"lines":{"object":"list","has_more":false,"data":[`+
			`{"id":"il_1","object":"line_item","amount":10500,"currency":"usd","discount_amounts":[{"amount":500,"discount":"di_1"}],"tax_amounts":[],`+
			`"period":{"start":1780000000,"end":1782592000},"price":{"id":"price_1","object":"price"},"proration":false,"quantity":1,"subscription":"sub_1"}]}}`),
	}
}

func appendEvents(t *testing.T, db *testkit.DB, evs []domain.Event) {
	t.Helper()
	res, err := eventstore.New(db.Pool).Append(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// The money read models fold to the same rows in any arrival order, live or replayed, and a
// balance transaction that arrives after its charge brings the charge its fee and net.
func TestMoneyRowsAreOrderIndependent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := moneyLog()

	reference := testkit.New(t)
	appendEvents(t, reference, log)
	if _, err := projections.Rebuild(ctx, reference.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	want := dump(t, reference)

	// What the rows say.
	var got struct {
		fee1, net1, fee2, net2 int64
		cur2, rate, payout     string
		unknown, lines         int
		po2, pi                string
		discounts, lineDisc    int64
	}
	err := reference.Pool.QueryRow(ctx, `SELECT
		(SELECT fee FROM ledger.charges WHERE id = 'ch_1'), (SELECT net FROM ledger.charges WHERE id = 'ch_1'),
		(SELECT fee FROM ledger.charges WHERE id = 'ch_2'), (SELECT net FROM ledger.charges WHERE id = 'ch_2'),
		(SELECT settlement_currency FROM ledger.charges WHERE id = 'ch_2'),
		(SELECT exchange_rate::text FROM ledger.balance_transactions WHERE id = 'txn_ch2'),
		(SELECT payout || ' ' || status FROM ledger.balance_transactions WHERE id = 'txn_ch1'),
		(SELECT count(*) FROM ledger.balance_transactions WHERE source = 'ch_elsewhere'),
		(SELECT count(*) FROM ledger.invoice_line_items WHERE invoice = 'in_1'),
		(SELECT status || ' ' || failure_code FROM ledger.payouts WHERE id = 'po_2'),
		(SELECT status || ' ' || amount_received FROM ledger.payment_intents WHERE id = 'pi_1'),
		(SELECT total_discounts FROM ledger.invoices WHERE id = 'in_1'),
		(SELECT discount_amount FROM ledger.invoice_line_items WHERE id = 'il_1')`).Scan(
		&got.fee1, &got.net1, &got.fee2, &got.net2, &got.cur2, &got.rate, &got.payout, &got.unknown, &got.lines, &got.po2, &got.pi,
		&got.discounts, &got.lineDisc)
	if err != nil {
		t.Fatal(err)
	}
	if got.fee1 != 320 || got.net1 != 9680 || got.fee2 != 187 || got.net2 != 5239 || got.cur2 != "usd" {
		t.Errorf("charges' fee and net: %+v", got)
	}
	if got.rate != "1.085120" || got.payout != "po_1 available" || got.unknown != 1 || got.lines != 1 {
		t.Errorf("balance transactions: %+v", got)
	}
	if got.po2 != "failed account_closed" || got.pi != "succeeded 10000" || got.discounts != 500 || got.lineDisc != 500 {
		t.Errorf("payouts, intents, invoices: %+v", got)
	}
	var nullTax, nullRate int
	if err := reference.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger.invoice_line_items WHERE tax_amount IS NULL),
		(SELECT count(*) FROM ledger.balance_transactions WHERE exchange_rate IS NULL)`).Scan(&nullTax, &nullRate); err != nil || nullTax != 1 || nullRate != 4 {
		t.Errorf("absent must be NULL: %d lines without tax, %d transactions without a rate (%v)", nullTax, nullRate, err)
	}

	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("order%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 17))
			order := append([]domain.Event(nil), log...)
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			order = append(order, order[:3]...) // redeliveries
			db := testkit.New(t)
			r := startRunner(t, db.Pool, projections.RunnerConfig{BatchSize: 1 + rng.IntN(4)})
			for len(order) > 0 {
				n := min(len(order), 1+rng.IntN(4))
				appendEvents(t, db, order[:n])
				order = order[n:]
			}
			caughtUp(t, r, db.Pool)
			live := dump(t, db)
			diffDumps(t, "live in a shuffled order vs replay", live, want)
			if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
				t.Fatal(err)
			}
			diffDumps(t, "replay of the shuffled log", dump(t, db), want)
		})
	}

	t.Run("transaction after its charge", func(t *testing.T) {
		t.Parallel()
		db := testkit.New(t)
		r := startRunner(t, db.Pool, projections.RunnerConfig{})
		appendEvents(t, db, log[:2])
		caughtUp(t, r, db.Pool)
		var fee *int64
		if err := db.Pool.QueryRow(ctx, `SELECT fee FROM ledger.charges WHERE id = 'ch_2'`).Scan(&fee); err != nil || fee != nil {
			t.Fatalf("fee before the transaction: %v %v", fee, err)
		}
		appendEvents(t, db, log[4:5])
		caughtUp(t, r, db.Pool)
		var net int64
		if err := db.Pool.QueryRow(ctx, `SELECT fee, net FROM ledger.charges WHERE id = 'ch_2'`).Scan(&fee, &net); err != nil || fee == nil || *fee != 187 || net != 5239 {
			t.Fatalf("after the transaction: fee %v net %d (%v)", fee, net, err)
		}
	})
}
