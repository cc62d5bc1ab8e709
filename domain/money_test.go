package domain_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
)

// The objects below are stripe-mock v0.183.0's fixtures (API 2023-10-16), trimmed to the
// fields the reducers read plus a few they must skip, and varied per case.

// event is a Stripe event of type typ carrying object, as a fact.
func event(t *testing.T, id, typ string, created int64, object string) domain.Fact {
	t.Helper()
	f, err := domain.DecodeFact(fmt.Appendf(nil, `{"id":%q,"object":"event","type":%q,"created":%d,"livemode":false,"api_version":"2023-10-16","data":{"object":%s}}`,
		id, typ, created, object))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// btSnapshot is the balance job's snapshot of a balance transaction, as a fact read back from
// the log.
func btSnapshot(t *testing.T, object string, created int64, payout string) domain.Fact {
	t.Helper()
	ev, err := domain.NewBalanceTransactionSnapshot(json.RawMessage(object), created, true, "acct_1", "2023-10-16", payout)
	if err != nil {
		t.Fatal(err)
	}
	f, err := domain.DecodeStoredFact(ev.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const btCharge = `{"amount": 10000, "available_on": 1700172800, "created": 1700000000, "currency": "usd", "description": "x",
	"exchange_rate": null, "fee": 320, "fee_details": [{"amount": 320, "application": null, "currency": "usd", "description": "Stripe processing fees", "type": "stripe_fee"}],
	"id": "txn_1", "net": 9680, "object": "balance_transaction", "reporting_category": "charge", "source": "ch_1", "status": "pending", "type": "charge"}`

func TestFoldBalanceTransaction(t *testing.T) {
	t.Parallel()
	available := `{"amount": 10000, "available_on": 1700172800, "created": 1700000000, "currency": "usd", "exchange_rate": null, "fee": 320,
		"fee_details": [{"amount": 320, "application": null, "currency": "usd", "description": "Stripe processing fees", "type": "stripe_fee"}],
		"id": "txn_1", "net": 9680, "object": "balance_transaction", "reporting_category": "charge", "source": "ch_1", "status": "available", "type": "charge"}`
	for _, tc := range []struct {
		name  string
		facts func(t *testing.T) []domain.Fact
		want  domain.BalanceTransactionRow
	}{{
		name:  "fetched by ID: no payout, no exchange rate",
		facts: func(t *testing.T) []domain.Fact { return []domain.Fact{btSnapshot(t, btCharge, 1700000100, "")} },
		want: domain.BalanceTransactionRow{ID: "txn_1", Amount: 10000, Fee: 320, Net: 9680, Currency: "usd",
			FeeDetails:        []domain.FeeDetail{{Amount: 320, Currency: "usd", Type: "stripe_fee", Description: ptr("Stripe processing fees")}},
			ReportingCategory: "charge", Type: "charge", SourceID: ptr("ch_1"), Status: "pending", AvailableOn: 1700172800, Created: 1700000000},
	}, {
		name: "listed by a payout later: the later state, and the payout kept when fetched by ID after",
		facts: func(t *testing.T) []domain.Fact {
			return []domain.Fact{btSnapshot(t, available, 1700200000, "po_9"), btSnapshot(t, btCharge, 1700000100, ""),
				btSnapshot(t, available, 1700300000, "")}
		},
		want: domain.BalanceTransactionRow{ID: "txn_1", Amount: 10000, Fee: 320, Net: 9680, Currency: "usd",
			FeeDetails:        []domain.FeeDetail{{Amount: 320, Currency: "usd", Type: "stripe_fee", Description: ptr("Stripe processing fees")}},
			ReportingCategory: "charge", Type: "charge", SourceID: ptr("ch_1"), Status: "available", AvailableOn: 1700172800,
			Created: 1700000000, Payout: ptr("po_9")},
	}, {
		name: "converted: the exchange rate exactly as sent, trailing zero and all; expanded source; no fee",
		facts: func(t *testing.T) []domain.Fact {
			return []domain.Fact{btSnapshot(t, `{"id":"txn_2","object":"balance_transaction","amount":-1085,"available_on":1,"created":1,
				"currency":"usd","exchange_rate":1.085120,"fee":0,"fee_details":[],"net":-1085,"reporting_category":"refund",
				"source":{"id":"re_1","object":"refund","amount":1000},"status":"available","type":"refund"}`, 5, "po_1")}
		},
		want: domain.BalanceTransactionRow{ID: "txn_2", Amount: -1085, Net: -1085, Currency: "usd", ExchangeRate: ptr("1.085120"),
			FeeDetails: []domain.FeeDetail{}, ReportingCategory: "refund", Type: "refund", SourceID: ptr("re_1"), Status: "available",
			AvailableOn: 1, Created: 1, Payout: ptr("po_1")},
	}, {
		name: "an exponent is written out exactly; a payout's own transaction has source the payout; no fee_details",
		facts: func(t *testing.T) []domain.Fact {
			return []domain.Fact{btSnapshot(t, `{"id":"txn_3","object":"balance_transaction","amount":-5000,"available_on":1,"created":1,
				"currency":"usd","exchange_rate":9.1e-3,"fee":0,"net":-5000,"reporting_category":"payout",
				"source":"po_1","status":"available","type":"payout"}`, 5, "po_1")}
		},
		want: domain.BalanceTransactionRow{ID: "txn_3", Amount: -5000, Net: -5000, Currency: "usd", ExchangeRate: ptr("0.0091"),
			FeeDetails: []domain.FeeDetail{}, ReportingCategory: "payout", Type: "payout", SourceID: ptr("po_1"), Status: "available",
			AvailableOn: 1, Created: 1, Payout: ptr("po_1")},
	}, {
		name: "a source the ledger may not know, or none at all, is kept as is",
		facts: func(t *testing.T) []domain.Fact {
			return []domain.Fact{btSnapshot(t, `{"id":"txn_4","object":"balance_transaction","amount":-200,"available_on":1,"created":1,
				"currency":"eur","exchange_rate":null,"fee":0,"fee_details":[],"net":-200,"reporting_category":"fee",
				"source":null,"status":"available","type":"stripe_fee"}`, 5, "")}
		},
		want: domain.BalanceTransactionRow{ID: "txn_4", Amount: -200, Net: -200, Currency: "eur", FeeDetails: []domain.FeeDetail{},
			ReportingCategory: "fee", Type: "stripe_fee", Status: "available", AvailableOn: 1, Created: 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			facts := tc.facts(t)
			got, err := domain.FoldBalanceTransaction(facts)
			if err != nil {
				t.Fatal(err)
			}
			got.Provenance = domain.Provenance{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			// The same set in reverse folds the same.
			rev := make([]domain.Fact, len(facts))
			for i, f := range facts {
				rev[len(facts)-1-i] = f
			}
			again, _ := domain.FoldBalanceTransaction(rev)
			again.Provenance = domain.Provenance{}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("reversed: %+v", again)
			}
		})
	}
}

func TestDecimalIsExact(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]*string{
		`null`: nil, ``: nil, `1.085120`: ptr("1.085120"), `"0.5"`: ptr("0.5"), `12`: ptr("12"), `1E2`: ptr("100"),
		`1.2345678901234567890123`: ptr("1.2345678901234567890123"), // beyond float64's 17 digits
		`-2.5e-1`:                  ptr("-0.25"),
	} {
		got, err := domain.DecimalString(json.RawMessage(raw))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Decimal(%s) = %v, %v; want %v", raw, deref(got), err, deref(want))
		}
	}
	for _, bad := range []string{`"1/3"`, `"0x10"`, `"NaN"`, `"Inf"`, `true`, `"1.5 "`, `01`} {
		if got, err := domain.DecimalString(json.RawMessage(bad)); err == nil {
			t.Errorf("Decimal(%s) = %v, want an error", bad, deref(got))
		}
	}
	// A bad exchange rate is the event's error, never a silent zero.
	f := btSnapshot(t, `{"id":"txn_5","object":"balance_transaction","exchange_rate":"abc","fee_details":[]}`, 1, "")
	if _, err := domain.FoldBalanceTransaction([]domain.Fact{f}); err == nil {
		t.Fatal("a malformed exchange_rate folded")
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestFoldPayout(t *testing.T) {
	t.Parallel()
	created := `{"amount": 1100, "arrival_date": 1700200000, "automatic": true, "balance_transaction": "txn_p", "created": 1700000000,
		"currency": "usd", "description": "STRIPE PAYOUT", "destination": "ba_1", "failure_balance_transaction": null, "failure_code": null,
		"failure_message": null, "id": "po_1", "livemode": false, "metadata": {}, "method": "standard", "object": "payout",
		"original_payout": null, "reconciliation_status": "not_applicable", "reversed_by": null, "source_type": "card",
		"statement_descriptor": null, "status": "pending", "type": "bank_account"}`
	failed := `{"amount": 1100, "arrival_date": 1700200000, "automatic": true, "balance_transaction": {"id": "txn_p", "object": "balance_transaction"},
		"created": 1700000000, "currency": "usd", "failure_code": "account_closed", "failure_message": "The bank account has been closed",
		"id": "po_1", "method": "standard", "object": "payout", "reconciliation_status": "completed", "status": "failed"}`
	paid := `{"amount": 1100, "arrival_date": 1700200000, "automatic": false, "balance_transaction": null, "created": 1700000000,
		"currency": "usd", "failure_code": null, "failure_message": null, "id": "po_1", "method": "instant", "object": "payout", "status": "paid"}`
	for _, tc := range []struct {
		name  string
		facts []domain.Fact
		want  domain.PayoutRow
	}{{
		name:  "created",
		facts: []domain.Fact{event(t, "evt_1", "payout.created", 1700000000, created)},
		want: domain.PayoutRow{ID: "po_1", Amount: 1100, Currency: "usd", ArrivalDate: 1700200000, Status: "pending", Method: "standard",
			Automatic: true, ReconciliationStatus: ptr("not_applicable"), BalanceTransaction: ptr("txn_p"), Created: 1700000000},
	}, {
		name: "failed in the same second as created: the failure wins, with its code; expanded transaction",
		facts: []domain.Fact{event(t, "evt_b", "payout.failed", 1700000000, failed),
			event(t, "evt_c", "payout.created", 1700000000, created)},
		want: domain.PayoutRow{ID: "po_1", Amount: 1100, Currency: "usd", ArrivalDate: 1700200000, Status: "failed", Method: "standard",
			Automatic: true, FailureCode: ptr("account_closed"), FailureMessage: ptr("The bank account has been closed"),
			ReconciliationStatus: ptr("completed"), BalanceTransaction: ptr("txn_p"), Created: 1700000000},
	}, {
		name:  "a manual instant payout without reconciliation_status: NULL, never ''",
		facts: []domain.Fact{event(t, "evt_1", "payout.paid", 1700000100, paid), event(t, "evt_0", "payout.created", 1700000000, created)},
		want: domain.PayoutRow{ID: "po_1", Amount: 1100, Currency: "usd", ArrivalDate: 1700200000, Status: "paid", Method: "instant",
			Created: 1700000000},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.FoldPayout(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			got.Provenance = domain.Provenance{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestFoldPaymentIntent(t *testing.T) {
	t.Parallel()
	created := `{"amount": 1099, "amount_capturable": 0, "amount_received": 0, "canceled_at": null, "client_secret": "pi_1_secret_x",
		"created": 1700000000, "currency": "usd", "customer": null, "id": "pi_1", "invoice": null, "latest_charge": null,
		"metadata": {}, "object": "payment_intent", "status": "requires_payment_method"}`
	succeeded := `{"amount": 1099, "amount_received": 1099, "created": 1700000000, "currency": "usd", "customer": {"id": "cus_1", "object": "customer"},
		"id": "pi_1", "invoice": "in_1", "latest_charge": "ch_1", "object": "payment_intent", "status": "succeeded"}`
	noReceived := `{"amount": 500, "created": 1700000000, "currency": "eur", "id": "pi_2", "object": "payment_intent", "status": "processing"}`
	for _, tc := range []struct {
		name  string
		facts []domain.Fact
		want  domain.PaymentIntentRow
	}{{
		name:  "created: nothing received, nothing related",
		facts: []domain.Fact{event(t, "evt_1", "payment_intent.created", 1700000000, created)},
		want:  domain.PaymentIntentRow{ID: "pi_1", Amount: ptr[int64](1099), AmountReceived: ptr[int64](0), Currency: ptr("usd"), Status: "requires_payment_method", Created: 1700000000},
	}, {
		name: "succeeded in the same second: the success wins; an expanded customer is its ID",
		facts: []domain.Fact{event(t, "evt_a", "payment_intent.succeeded", 1700000000, succeeded),
			event(t, "evt_b", "payment_intent.created", 1700000000, created)},
		want: domain.PaymentIntentRow{ID: "pi_1", Amount: ptr[int64](1099), AmountReceived: ptr[int64](1099), Currency: ptr("usd"), Status: "succeeded",
			Customer: ptr("cus_1"), Invoice: ptr("in_1"), LatestCharge: ptr("ch_1"), Created: 1700000000},
	}, {
		name:  "amount_received left out: NULL, never 0",
		facts: []domain.Fact{event(t, "evt_1", "payment_intent.created", 1700000000, noReceived)},
		want:  domain.PaymentIntentRow{ID: "pi_2", Amount: ptr[int64](500), Currency: ptr("eur"), Status: "processing", Created: 1700000000},
	}, {
		name:  "amount and currency left out (dahlia may): NULL, never 0 or ''",
		facts: []domain.Fact{event(t, "evt_1", "payment_intent.created", 1700000000, `{"created": 1700000000, "id": "pi_3", "object": "payment_intent", "status": "requires_payment_method"}`)},
		want:  domain.PaymentIntentRow{ID: "pi_3", Status: "requires_payment_method", Created: 1700000000},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.FoldPaymentIntent(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			got.Provenance = domain.Provenance{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestFoldCreditNote(t *testing.T) {
	t.Parallel()
	issued := `{"amount": 1690, "amount_shipping": 0, "created": 1700000000, "currency": "usd", "customer": "cus_1",
		"customer_balance_transaction": null, "discount_amount": 0, "discount_amounts": [], "effective_at": 1700000000, "id": "cn_1",
		"invoice": "in_1", "lines": {"data": [], "has_more": false, "object": "list"}, "memo": null, "number": "ABCD-1234-CN-01",
		"object": "credit_note", "reason": null, "refund": null, "status": "issued", "subtotal": 1500, "total": 1690, "type": "pre_payment"}`
	voided := `{"amount": 1690, "created": 1700000000, "currency": "usd", "customer": {"id": "cus_1"}, "id": "cn_1", "invoice": {"id": "in_1"},
		"number": "ABCD-1234-CN-01", "object": "credit_note", "reason": "duplicate", "refund": "re_1", "status": "void", "subtotal": 1500,
		"total": 1690, "type": "post_payment"}`
	for _, tc := range []struct {
		name  string
		facts []domain.Fact
		want  domain.CreditNoteRow
	}{{
		name:  "issued",
		facts: []domain.Fact{event(t, "evt_1", "credit_note.created", 1700000000, issued)},
		want: domain.CreditNoteRow{ID: "cn_1", Invoice: "in_1", Customer: ptr("cus_1"), Number: ptr("ABCD-1234-CN-01"), Status: "issued",
			Type: "pre_payment", Amount: 1690, Subtotal: 1500, Total: 1690, Currency: "usd", Created: 1700000000},
	}, {
		name: "voided in the same second: void wins; expanded invoice and customer are their IDs",
		facts: []domain.Fact{event(t, "evt_a", "credit_note.voided", 1700000000, voided),
			event(t, "evt_b", "credit_note.created", 1700000000, issued)},
		want: domain.CreditNoteRow{ID: "cn_1", Invoice: "in_1", Customer: ptr("cus_1"), Number: ptr("ABCD-1234-CN-01"), Status: "void",
			Type: "post_payment", Reason: ptr("duplicate"), Amount: 1690, Subtotal: 1500, Total: 1690, Currency: "usd",
			Refund: ptr("re_1"), Created: 1700000000},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.FoldCreditNote(tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			got.Provenance = domain.Provenance{}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestFoldInvoiceMoneyAndLines(t *testing.T) {
	t.Parallel()
	inv := `{"id": "in_1", "object": "invoice", "currency": "usd", "customer": "cus_1", "status": "paid", "amount_due": 2690,
		"amount_paid": 2690, "amount_remaining": 0, "total": 2690, "subtotal": 2700, "tax": 190, "total_excluding_tax": 2500,
		"total_discount_amounts": [{"amount": 150, "discount": "di_1"}, {"amount": 50, "discount": {"id": "di_2"}}],
		"period_start": 1700000000, "period_end": 1702592000, "created": 1700000000,
		"lines": {"object": "list", "has_more": false, "data": [
			{"amount": 2000, "amount_excluding_tax": 2000, "currency": "usd", "discount_amounts": [{"amount": 150, "discount": "di_1"},
			 {"amount": 50, "discount": "di_2"}], "id": "il_1", "object": "line_item", "period": {"end": 1702592000, "start": 1700000000},
			 "price": {"id": "price_1", "object": "price", "unit_amount": 1000, "recurring": {"interval": "month"}}, "proration": false,
			 "quantity": 2, "subscription": "sub_1", "tax_amounts": [{"amount": 150, "inclusive": false, "tax_rate": "txr_1"},
			 {"amount": 40, "inclusive": false, "tax_rate": "txr_2"}], "type": "subscription"},
			{"amount": -300, "currency": "usd", "discount_amounts": [], "id": "il_2", "object": "line_item",
			 "period": {"end": 1701000000, "start": 1700500000}, "price": null, "proration": true, "quantity": null,
			 "subscription": null, "tax_amounts": [], "type": "invoiceitem"}]}}`
	bare := `{"id": "in_2", "object": "invoice", "currency": "usd", "status": "draft", "amount_due": 0, "amount_paid": 0, "amount_remaining": 0,
		"total": 0, "subtotal": 0, "tax": null, "total_excluding_tax": null, "total_discount_amounts": null,
		"period_start": 1, "period_end": 1, "created": 1, "lines": {"object": "list", "data": [], "has_more": false}}`
	got, err := domain.FoldInvoice([]domain.Fact{event(t, "evt_1", "invoice.paid", 1700000000, inv)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Subtotal != 2700 || !reflect.DeepEqual(got.Tax, ptr[int64](190)) || got.TotalDiscounts != 200 ||
		!reflect.DeepEqual(got.TotalExcludingTax, ptr[int64](2500)) {
		t.Fatalf("money: subtotal %d tax %v discounts %d excl %v", got.Subtotal, got.Tax, got.TotalDiscounts, got.TotalExcludingTax)
	}
	want := []domain.InvoiceLineRow{
		{Invoice: "in_1", ID: "il_1", Price: ptr("price_1"), Quantity: ptr[int64](2), Amount: 2000, Currency: "usd", DiscountAmount: 200,
			TaxAmount: ptr[int64](190), PeriodStart: 1700000000, PeriodEnd: 1702592000, Subscription: ptr("sub_1")},
		{Invoice: "in_1", ID: "il_2", Amount: -300, Currency: "usd", PeriodStart: 1700500000, PeriodEnd: 1701000000, Proration: true},
	}
	if !reflect.DeepEqual(got.Lines, want) || got.LinesHasMore {
		t.Fatalf("lines (has more %v):\n got  %+v\n want %+v", got.LinesHasMore, got.Lines, want)
	}
	// An invoice with more lines than its event carries says so: the rows are its first page.
	paged, err := domain.FoldInvoice([]domain.Fact{event(t, "evt_3", "invoice.finalized", 1700000000,
		strings.Replace(inv, `"has_more": false`, `"has_more": true`, 1))})
	if err != nil || !paged.LinesHasMore || len(paged.Lines) != 2 {
		t.Fatalf("a paged invoice: has more %v, %d lines (%v)", paged.LinesHasMore, len(paged.Lines), err)
	}
	got, err = domain.FoldInvoice([]domain.Fact{event(t, "evt_2", "invoice.created", 1, bare)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Tax != nil || got.TotalExcludingTax != nil || got.TotalDiscounts != 0 || len(got.Lines) != 0 {
		t.Fatalf("absent money must be NULL (tax %v, excl %v), discounts 0 (%d), no lines (%d)", got.Tax, got.TotalExcludingTax,
			got.TotalDiscounts, len(got.Lines))
	}
}

func TestChargeFeeAndNetFromItsBalanceTransaction(t *testing.T) {
	t.Parallel()
	charge := `{"id":"ch_1","object":"charge","amount":1000,"amount_captured":1000,"amount_refunded":0,"currency":"eur","status":"succeeded",
		"paid":true,"balance_transaction":"txn_1","created":1700000000}`
	row, err := domain.FoldCharge([]domain.Fact{event(t, "evt_1", "charge.succeeded", 1700000000, charge)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if row.BalanceTransaction == nil || *row.BalanceTransaction != "txn_1" || row.Fee != nil || row.Net != nil {
		t.Fatalf("before the transaction: %v fee %v net %v", row.BalanceTransaction, row.Fee, row.Net)
	}
	row.SetBalanceTransaction([]domain.BalanceTransactionRow{{ID: "txn_other", Fee: 1, Net: 1}})
	if row.Fee != nil {
		t.Fatal("another transaction's fee was taken")
	}
	row.SetBalanceTransaction([]domain.BalanceTransactionRow{{ID: "txn_1", Fee: 62, Net: 1023, Currency: "usd"}})
	if row.Fee == nil || *row.Fee != 62 || *row.Net != 1023 || *row.SettlementCurrency != "usd" {
		t.Fatalf("after: fee %v net %v", row.Fee, row.Net)
	}
	pending := `{"id":"ch_2","object":"charge","amount":1000,"currency":"usd","status":"pending","balance_transaction":null,"created":1}`
	row, _ = domain.FoldCharge([]domain.Fact{event(t, "evt_2", "charge.pending", 1, pending)}, nil)
	row.SetBalanceTransaction([]domain.BalanceTransactionRow{{ID: "txn_1", Fee: 62}})
	if row.BalanceTransaction != nil || row.Fee != nil {
		t.Fatal("a charge without a balance transaction got a fee")
	}
}

// A snapshot's ID is its bytes' and its listing's: refetching appends nothing, and the same
// bytes listed by a payout are a new event.
func TestBalanceTransactionSnapshotIDs(t *testing.T) {
	t.Parallel()
	mk := func(created int64, payout string) string {
		ev, err := domain.NewBalanceTransactionSnapshot(json.RawMessage(btCharge), created, false, "", "2023-10-16", payout)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != domain.SnapshotBalanceTransaction || ev.ObjectID != "txn_1" || ev.Source != domain.SourceSnapshot {
			t.Fatalf("envelope %+v", ev.Envelope)
		}
		return ev.ID
	}
	if mk(1, "") != mk(2, "") || mk(1, "po_1") != mk(2, "po_1") {
		t.Fatal("a refetch of the same bytes has a new ID")
	}
	if mk(1, "") == mk(1, "po_1") || mk(1, "po_1") == mk(1, "po_2") {
		t.Fatal("listings by different payouts share an ID")
	}
	// The codec a spilling replay uses keeps the listing.
	f := btSnapshot(t, btCharge, 1, "po_7")
	back, rest, err := domain.ReadFact(f.AppendBinary(nil))
	if err != nil || len(rest) != 0 || back.ListedBy != "po_7" {
		t.Fatalf("codec: %q %v", back.ListedBy, err)
	}
}
