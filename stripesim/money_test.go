package stripesim_test

import (
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/stripeledger/ledger/stripesim"
)

// allTxns lists every balance transaction through stripe-go, newest first, 100 a page.
func allTxns(t *testing.T, b *apiBundle, params *stripe.BalanceTransactionListParams) []*stripe.BalanceTransaction {
	t.Helper()
	if params == nil {
		params = &stripe.BalanceTransactionListParams{}
	}
	params.Limit = stripe.Int64(100)
	it := b.stripe.BalanceTransactions.List(params)
	var out []*stripe.BalanceTransaction
	for it.Next() {
		out = append(out, it.BalanceTransaction())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func allPayouts(t *testing.T, b *apiBundle, params *stripe.PayoutListParams) []*stripe.Payout {
	t.Helper()
	if params == nil {
		params = &stripe.PayoutListParams{}
	}
	params.Limit = stripe.Int64(100)
	it := b.stripe.Payouts.List(params)
	var out []*stripe.Payout
	for it.Next() {
		out = append(out, it.Payout())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// truthObjects decodes one kind of the truth's objects.
func truthObjects[T any](t *testing.T, sim *stripesim.Sim, kind string) []T {
	t.Helper()
	var out []T
	tr := sim.Truth()
	raw, ok := tr.Objects[kind]
	if !ok {
		raw = tr.MoneyObjects[kind]
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// halfAway rounds r half away from zero, written out here apart from the simulator's own.
func halfAway(r *big.Rat) int64 {
	num, den := new(big.Int).Abs(r.Num()), r.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if m.Mul(m, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if r.Sign() < 0 {
		q.Neg(q)
	}
	return q.Int64()
}

// Every succeeded charge, refund and dispute has a balance transaction in the settlement
// currency: a charge's fee is 2.9 % of its converted amount, rounded half away from zero, plus
// 30¢ (converted when the account settles in another currency), the amount is the presentment
// amount times the day's exchange_rate, and net is amount − fee; a refund has no fee; a dispute
// withdraws its amount and charges $15. Checked for an account settling in USD and one settling
// in EUR, through stripe-go.
func TestFeesAreCardPricingToTheCent(t *testing.T) {
	t.Parallel()
	for _, settle := range []string{"usd", "eur"} {
		t.Run(settle, func(t *testing.T) {
			t.Parallel()
			b := setupAPI(t, stripesim.Config{Seed: 31, Customers: 150, SettlementCurrency: settle}, stripesim.ServerConfig{})
			txns := allTxns(t, b, nil)
			bySource := map[string][]*stripe.BalanceTransaction{}
			for _, bt := range txns {
				if bt.Currency != stripe.Currency(settle) {
					t.Fatalf("%s in %s, want the settlement currency %s", bt.ID, bt.Currency, settle)
				}
				bySource[bt.Source.ID] = append(bySource[bt.Source.ID], bt)
			}
			// converted is amount (minor units of cur) in the settlement currency on day d, with the
			// rate the transaction must show.
			converted := func(amount int64, cur string, d time.Time) (int64, string) {
				if cur == settle {
					return amount, ""
				}
				rate, ok := stripesim.FXRateString(cur, settle, d)
				if !ok {
					t.Fatalf("no rate %s→%s", cur, settle)
				}
				r, _ := new(big.Rat).SetString(rate)
				v := new(big.Rat).Mul(big.NewRat(amount, 1), r)
				// minor → major → minor across exponents
				shift := stripesim.CurrencyExponent(settle) - stripesim.CurrencyExponent(cur)
				for ; shift > 0; shift-- {
					v.Mul(v, big.NewRat(10, 1))
				}
				for ; shift < 0; shift++ {
					v.Quo(v, big.NewRat(10, 1))
				}
				return halfAway(v), rate
			}
			checkRate := func(bt *stripe.BalanceTransaction, want string) {
				t.Helper()
				if want == "" {
					if bt.ExchangeRate != 0 {
						t.Errorf("%s: exchange_rate %v without a conversion", bt.ID, bt.ExchangeRate)
					}
					return
				}
				w, _ := new(big.Rat).SetString(want)
				wf, _ := w.Float64()
				if bt.ExchangeRate != wf {
					t.Errorf("%s: exchange_rate %v, want %s", bt.ID, bt.ExchangeRate, want)
				}
			}
			day := func(unix int64) time.Time { return time.Unix(unix, 0).UTC() }
			fixed := int64(30)
			if settle != "usd" {
				fixed, _ = converted(30, "usd", day(txns[0].Created))
			}
			var charges, converted_ int
			for _, ch := range truthObjects[stripesim.Charge](t, b.sim, "charges") {
				if ch.Status != "succeeded" {
					if ch.BalanceTransaction != nil {
						t.Errorf("failed charge %s has a balance transaction", ch.ID)
					}
					continue
				}
				charges++
				got := bySource[ch.ID]
				if len(got) != 1 || ch.BalanceTransaction == nil || got[0].ID != *ch.BalanceTransaction {
					t.Fatalf("charge %s: balance_transaction %v, listed %d", ch.ID, ch.BalanceTransaction, len(got))
				}
				bt := got[0]
				amount, rate := converted(ch.Amount, ch.Currency, day(ch.Created))
				if rate != "" {
					converted_++
				}
				if settle != "usd" {
					fixed, _ = converted(30, "usd", day(ch.Created))
				}
				fee := halfAway(new(big.Rat).Mul(big.NewRat(amount, 1), big.NewRat(29, 1000))) + fixed
				if bt.Type != "charge" || bt.ReportingCategory != "charge" || bt.Amount != amount || bt.Fee != fee || bt.Net != amount-fee {
					t.Errorf("charge %s (%d %s): %s %s amount %d fee %d net %d, want amount %d fee %d net %d",
						ch.ID, ch.Amount, ch.Currency, bt.Type, bt.ReportingCategory, bt.Amount, bt.Fee, bt.Net, amount, fee, amount-fee)
				}
				if len(bt.FeeDetails) != 1 || bt.FeeDetails[0].Amount != fee || bt.FeeDetails[0].Type != "stripe_fee" {
					t.Errorf("charge %s: fee_details %+v", ch.ID, bt.FeeDetails)
				}
				checkRate(bt, rate)
				if want := day(ch.Created).Truncate(24 * time.Hour).Add(48 * time.Hour).Unix(); bt.AvailableOn != want {
					t.Errorf("charge %s: available_on %d, want %d", ch.ID, bt.AvailableOn, want)
				}
				if want := stripe.BalanceTransactionStatusPending; b.sim.Now().Unix() < bt.AvailableOn && bt.Status != want {
					t.Errorf("charge %s: %s before available_on", ch.ID, bt.Status)
				}
			}
			if charges < 100 || converted_ == 0 || converted_ == charges {
				t.Fatalf("%d charges, %d converted", charges, converted_)
			}
			var refunds, disputes int
			for _, re := range truthObjects[stripesim.Refund](t, b.sim, "refunds") {
				refunds++
				got := bySource[re.ID]
				amount, rate := converted(re.Amount, re.Currency, day(re.Created))
				if len(got) != 1 || got[0].Type != "refund" || got[0].ReportingCategory != "refund" || got[0].Amount != -amount ||
					got[0].Fee != 0 || got[0].Net != -amount || *re.BalanceTransaction != got[0].ID {
					t.Errorf("refund %s of %d %s: %+v", re.ID, re.Amount, re.Currency, got)
					continue
				}
				checkRate(got[0], rate)
			}
			for _, dp := range truthObjects[stripesim.Dispute](t, b.sim, "disputes") {
				disputes++
				got := bySource[dp.ID]
				amount, _ := converted(dp.Amount, dp.Currency, day(dp.Created))
				fee, _ := converted(1500, "usd", day(dp.Created))
				slices.Reverse(got) // oldest first
				if len(got) == 0 || got[0].Type != "adjustment" || got[0].ReportingCategory != "dispute" || got[0].Amount != -amount ||
					got[0].Fee != fee || got[0].Net != -amount-fee || len(dp.BalanceTransactions) != len(got) {
					t.Errorf("dispute %s of %d %s: %d transactions, first %+v", dp.ID, dp.Amount, dp.Currency, len(got), got[0])
					continue
				}
				if won := dp.Status == "won"; won != (len(got) == 2) || won && (got[1].ReportingCategory != "dispute_reversal" || got[1].Fee != 0) {
					t.Errorf("dispute %s %s: %d transactions", dp.ID, dp.Status, len(got))
				}
			}
			if refunds == 0 || disputes == 0 {
				t.Fatalf("%d refunds, %d disputes: the run needs both", refunds, disputes)
			}

			// The truth's figures are the transactions'.
			mt := b.sim.MoneyTruth()
			var fees, net int64
			for _, bt := range txns {
				fees += bt.Fee
				if bt.Type != "payout" && bt.Type != "payout_failure" {
					net += bt.Net
				}
			}
			bal := mt.Balances[settle]
			if mt.SettlementCurrency != settle || bal.Fees != fees || bal.Net != net || len(mt.Charges) != charges {
				t.Fatalf("truth: %s fees %d net %d, %d charges; transactions: fees %d net %d, %d charges",
					mt.SettlementCurrency, bal.Fees, bal.Net, len(mt.Charges), fees, net, charges)
			}
		})
	}
}

// Over 90 days: a payout every day at 00:00 UTC when the available balance is positive, each
// equal to the net of the transactions its ?payout= listing holds (its own payout transaction,
// -amount, among them) except the one Config.PayoutMismatch injects; at least one fails, and its
// funds come back as a payout_failure transaction that a later payout pays out. Every
// transaction is paid out at most once, and only once available.
func TestPayoutsAddUpDaily(t *testing.T) {
	t.Parallel()
	const mismatch = 7
	b := setupAPI(t, stripesim.Config{Seed: 5, Customers: 200, PayoutMismatch: mismatch}, stripesim.ServerConfig{})
	payouts := allPayouts(t, b, nil)
	slices.Reverse(payouts) // oldest first
	if len(payouts) < 80 {
		t.Fatalf("%d payouts in 90 days", len(payouts))
	}
	days := map[string]bool{}
	paidOut := map[string]string{} // transaction → payout
	var failed []*stripe.Payout
	wrong := 0
	for _, po := range payouts {
		created := time.Unix(po.Created, 0).UTC()
		if !created.Equal(created.Truncate(24*time.Hour)) || days[created.Format(time.DateOnly)] {
			t.Fatalf("payout %s created %s: not at midnight, or a second one that day", po.ID, created)
		}
		days[created.Format(time.DateOnly)] = true
		if d := po.ArrivalDate - po.Created; d != 86400 && d != 2*86400 || !po.Automatic || po.Method != "standard" {
			t.Errorf("payout %s: arrival %d s after creation, automatic %v, %s", po.ID, d, po.Automatic, po.Method)
		}
		txns := allTxns(t, b, &stripe.BalanceTransactionListParams{Payout: stripe.String(po.ID)})
		var net int64
		own := 0
		for _, bt := range txns {
			if prev, ok := paidOut[bt.ID]; ok {
				t.Fatalf("%s listed by %s and %s", bt.ID, prev, po.ID)
			}
			paidOut[bt.ID] = po.ID
			if bt.Type == "payout" {
				own++
				if bt.Source.ID != po.ID || bt.Amount != -po.Amount || po.BalanceTransaction.ID != bt.ID {
					t.Errorf("payout %s: own transaction %s of %d from %s", po.ID, bt.ID, bt.Amount, bt.Source.ID)
				}
				continue
			}
			if bt.AvailableOn > po.Created || bt.Status != "available" {
				t.Errorf("payout %s pays %s, available on %d (%s)", po.ID, bt.ID, bt.AvailableOn, bt.Status)
			}
			net += bt.Net
		}
		if own != 1 {
			t.Errorf("payout %s: %d payout transactions listed", po.ID, own)
		}
		if net != po.Amount {
			wrong++
			if po.Amount-net != mismatch {
				t.Errorf("payout %s of %d: its transactions add up to %d", po.ID, po.Amount, net)
			}
		}
		if po.Status == stripe.PayoutStatusFailed {
			failed = append(failed, po)
		}
	}
	if wrong != 1 {
		t.Fatalf("%d payouts do not add up, want exactly the injected one", wrong)
	}
	// The daily rule, replayed from the transactions: at each midnight, what is available and
	// not yet paid out goes out in one payout if its net is positive, else it waits.
	byDay := map[int64]*stripe.Payout{}
	for _, po := range payouts {
		byDay[po.Created] = po
	}
	all := allTxns(t, b, nil)
	slices.Reverse(all)
	paid := map[string]bool{}
	start := time.Unix(all[0].Created, 0).UTC().Truncate(24 * time.Hour)
	var emptyDays, payoutDays int
	for d := start.Unix(); d <= b.sim.Now().Unix(); d += 86400 {
		var due []string
		var net int64
		for _, bt := range all {
			if bt.Type != "payout" && !paid[bt.ID] && bt.AvailableOn <= d && bt.Created <= d {
				due = append(due, bt.ID)
				net += bt.Net
			}
		}
		po := byDay[d]
		if (net > 0) != (po != nil) {
			t.Fatalf("%s: %d due with net %d, payout %v", time.Unix(d, 0).UTC(), len(due), net, po != nil)
		}
		if po == nil {
			emptyDays++
			continue
		}
		payoutDays++
		for _, id := range due {
			if paidOut[id] != po.ID {
				t.Fatalf("%s: %s was due but is listed by %q", time.Unix(d, 0).UTC(), id, paidOut[id])
			}
			paid[id] = true
		}
	}
	if payoutDays != len(payouts) || payoutDays < 75 {
		t.Fatalf("%d payout days (%d payouts), %d days without", payoutDays, len(payouts), emptyDays)
	}
	if len(failed) == 0 {
		t.Fatal("no payout failed in 90 days")
	}
	for _, po := range failed {
		if po.FailureCode == "" || po.FailureMessage == "" || po.FailureBalanceTransaction == nil {
			t.Fatalf("failed payout %s: code %q message %q", po.ID, po.FailureCode, po.FailureMessage)
		}
		back, err := b.stripe.BalanceTransactions.Get(po.FailureBalanceTransaction.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if back.Type != "payout_failure" || back.Amount != po.Amount || back.Source.ID != po.ID {
			t.Fatalf("failed payout %s: its funds come back as %s %d from %s", po.ID, back.Type, back.Amount, back.Source.ID)
		}
		if later, ok := paidOut[back.ID]; !ok && back.Created < payouts[len(payouts)-1].Created {
			t.Fatalf("failed payout %s: its returned funds %s were never paid out", po.ID, back.ID)
		} else if ok && later == po.ID {
			t.Fatalf("failed payout %s lists its own failure", po.ID)
		}
	}

	// The truth says the same, from the simulator's own objects.
	mt := b.sim.MoneyTruth()
	if len(mt.Payouts) != len(payouts) || mt.Counts["payouts"] != len(payouts) || mt.Counts["balance_transactions"] != len(all) {
		t.Fatalf("truth: %d payouts, API %d", len(mt.Payouts), len(payouts))
	}
	notReconciled := 0
	for i, tp := range mt.Payouts {
		po := payouts[i]
		if tp.ID != po.ID || tp.Amount != po.Amount || tp.Status != string(po.Status) || tp.ReconciliationStatus != string(po.ReconciliationStatus) {
			t.Fatalf("truth payout %+v, API %s %d %s", tp, po.ID, po.Amount, po.Status)
		}
		var sum int64
		for _, c := range tp.Categories {
			sum += c.Net
		}
		if sum != tp.Net || tp.Categories["charge"].Count == 0 && tp.Categories["payout_reversal"].Count == 0 {
			t.Fatalf("truth payout %s: categories %+v, net %d", tp.ID, tp.Categories, tp.Net)
		}
		if !tp.Reconciled {
			notReconciled++
			if tp.Amount-tp.Net != mismatch {
				t.Fatalf("truth payout %s: amount %d net %d", tp.ID, tp.Amount, tp.Net)
			}
		}
	}
	if notReconciled != 1 {
		t.Fatalf("truth: %d payouts not reconciled", notReconciled)
	}
	// Without the knob every payout adds up.
	clean := stripesim.New(stripesim.Config{Seed: 5, Customers: 200, End: end})
	clean.Run(time.Time{})
	for _, tp := range clean.MoneyTruth().Payouts {
		if !tp.Reconciled {
			t.Fatalf("payout %s does not add up without PayoutMismatch", tp.ID)
		}
	}
}

// get fetches a path from the simulator with a key, returning the status and the decoded body.
func get(t *testing.T, b *apiBundle, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer sk_test_sim")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %s", path, raw)
	}
	return resp.StatusCode, v
}

func listIDs(v map[string]any) []string {
	var out []string
	for _, o := range v["data"].([]any) {
		out = append(out, o.(map[string]any)["id"].(string))
	}
	return out
}

// The money lists page and filter as Stripe's: newest first, starting_after and ending_before
// cut the same list, has_more says whether more lie beyond, each filter keeps exactly its
// objects, and bad filters get Stripe's errors.
func TestMoneyListsFilterAndPaginate(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, stripesim.Config{Seed: 8, Customers: 120}, stripesim.ServerConfig{})
	bts := truthObjects[stripesim.BalanceTransaction](t, b.sim, "balance_transactions") // newest first

	// Pagination: pages of 7 walked forward, then back from the oldest, give the whole list.
	var walked []string
	cursor := ""
	for {
		path := "/v1/balance_transactions?limit=7"
		if cursor != "" {
			path += "&starting_after=" + cursor
		}
		code, v := get(t, b, path)
		if code != 200 {
			t.Fatalf("%s: %d %v", path, code, v)
		}
		page := listIDs(v)
		walked = append(walked, page...)
		if v["has_more"] != (len(walked) < len(bts)) {
			t.Fatalf("has_more %v after %d of %d", v["has_more"], len(walked), len(bts))
		}
		if v["has_more"] == false {
			break
		}
		cursor = page[len(page)-1]
	}
	want := make([]string, len(bts))
	for i, bt := range bts {
		want[i] = bt.ID
	}
	if !slices.Equal(walked, want) {
		t.Fatalf("starting_after walk: %d transactions, want %d newest first", len(walked), len(want))
	}
	code, v := get(t, b, "/v1/balance_transactions?limit=5&ending_before="+want[len(want)-1])
	if got := listIDs(v); code != 200 || !slices.Equal(got, want[len(want)-6:len(want)-1]) || v["has_more"] != true {
		t.Fatalf("ending_before the oldest: %v, has_more %v", got, v["has_more"])
	}

	// Filters keep exactly their objects.
	count := func(pred func(stripesim.BalanceTransaction) bool) int {
		n := 0
		for _, bt := range bts {
			if pred(bt) {
				n++
			}
		}
		return n
	}
	for _, typ := range []string{"charge", "refund", "adjustment", "payout", "payout_failure"} {
		got := allTxns(t, b, &stripe.BalanceTransactionListParams{Type: stripe.String(typ)})
		if n := count(func(bt stripesim.BalanceTransaction) bool { return bt.Type == typ }); len(got) != n || typ != "payout_failure" && n == 0 {
			t.Fatalf("type=%s: %d listed, %d exist", typ, len(got), n)
		}
	}
	src := *bts[len(bts)/2].Source
	got := allTxns(t, b, &stripe.BalanceTransactionListParams{Source: stripe.String(src)})
	if n := count(func(bt stripesim.BalanceTransaction) bool { return *bt.Source == src }); len(got) != n || n == 0 || got[0].Source.ID != src {
		t.Fatalf("source=%s: %d listed, %d exist", src, len(got), n)
	}
	mid := bts[len(bts)/2].Created
	got = allTxns(t, b, &stripe.BalanceTransactionListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: mid}})
	if n := count(func(bt stripesim.BalanceTransaction) bool { return bt.Created >= mid }); len(got) != n {
		t.Fatalf("created[gte]: %d listed, %d exist", len(got), n)
	}

	payouts := allPayouts(t, b, nil)
	arrival := payouts[len(payouts)/2].ArrivalDate
	for _, f := range []struct {
		params *stripe.PayoutListParams
		keep   func(*stripe.Payout) bool
	}{
		{&stripe.PayoutListParams{Status: stripe.String("paid")}, func(p *stripe.Payout) bool { return p.Status == "paid" }},
		{&stripe.PayoutListParams{Status: stripe.String("in_transit")}, func(p *stripe.Payout) bool { return p.Status == "in_transit" }},
		{&stripe.PayoutListParams{ArrivalDateRange: &stripe.RangeQueryParams{LesserThan: arrival}}, func(p *stripe.Payout) bool { return p.ArrivalDate < arrival }},
		{&stripe.PayoutListParams{ArrivalDate: stripe.Int64(arrival)}, func(p *stripe.Payout) bool { return p.ArrivalDate == arrival }},
	} {
		got := allPayouts(t, b, f.params)
		n := 0
		for _, p := range payouts {
			if f.keep(p) {
				n++
			}
		}
		if len(got) != n || n == 0 {
			t.Fatalf("payouts %+v: %d listed, %d match", f.params, len(got), n)
		}
	}

	// Credit notes by invoice and customer; payment intents by customer.
	cns := truthObjects[stripesim.CreditNote](t, b.sim, "credit_notes")
	if len(cns) == 0 {
		t.Fatal("no credit notes")
	}
	cn := cns[0]
	for _, params := range []*stripe.CreditNoteListParams{{Invoice: stripe.String(cn.Invoice)}, {Customer: stripe.String(cn.Customer)}} {
		it := b.stripe.CreditNotes.List(params)
		n := 0
		for it.Next() {
			c := it.CreditNote()
			if params.Invoice != nil && c.Invoice.ID != cn.Invoice || params.Customer != nil && c.Customer.ID != cn.Customer {
				t.Fatalf("credit note %s listed for %+v", c.ID, params)
			}
			n++
		}
		if it.Err() != nil || n == 0 {
			t.Fatalf("credit notes %+v: %d, %v", params, n, it.Err())
		}
	}
	pis := truthObjects[stripesim.PaymentIntent](t, b.sim, "payment_intents")
	cust := ""
	for _, pi := range pis {
		if pi.Customer != nil {
			cust = *pi.Customer
			break
		}
	}
	it := b.stripe.PaymentIntents.List(&stripe.PaymentIntentListParams{Customer: stripe.String(cust)})
	n := 0
	for it.Next() {
		if it.PaymentIntent().Customer.ID != cust {
			t.Fatalf("payment intent %s listed for %s", it.PaymentIntent().ID, cust)
		}
		n++
	}
	if want := count2(pis, func(pi stripesim.PaymentIntent) bool { return pi.Customer != nil && *pi.Customer == cust }); it.Err() != nil || n != want || n == 0 {
		t.Fatalf("payment intents of %s: %d listed, %d exist (%v)", cust, n, want, it.Err())
	}

	// One object by ID renders as in the list; errors as Stripe's.
	code, one := get(t, b, "/v1/balance_transactions/"+want[3])
	if code != 200 || one["id"] != want[3] || one["object"] != "balance_transaction" {
		t.Fatalf("get: %d %v", code, one)
	}
	for path, want := range map[string]struct {
		code  int
		param string
	}{
		"/v1/balance_transactions/txn_nope":                    {404, "id"},
		"/v1/payouts/po_nope":                                  {404, "id"},
		"/v1/balance_transactions?payout=po_nope":              {404, "payout"},
		"/v1/balance_transactions?type=bogus":                  {400, "type"},
		"/v1/payouts?status=bogus":                             {400, "status"},
		"/v1/payouts?arrival_date[gt]=soon":                    {400, "arrival_date[gt]"},
		"/v1/balance_transactions?limit=101":                   {400, "limit"},
		"/v1/credit_notes?starting_after=cn_nope":              {400, "starting_after"},
		"/v1/payment_intents?starting_after=a&ending_before=b": {400, "ending_before"},
	} {
		code, v := get(t, b, path)
		e, _ := v["error"].(map[string]any)
		if code != want.code || e == nil || e["param"] != want.param || e["type"] != "invalid_request_error" {
			t.Errorf("%s: %d %v, want %d with param %s", path, code, v, want.code, want.param)
		}
	}
}

func count2[T any](xs []T, pred func(T) bool) int {
	n := 0
	for _, x := range xs {
		if pred(x) {
			n++
		}
	}
	return n
}

// Invoices add up from their lines: subtotal is the lines' amounts, total_discount_amounts their
// discounts, tax their taxes (null when no line is taxed: VAT is on GBP and EUR sales only,
// 20 % and 19 % of the discounted line, rounded half away from zero), total_excluding_tax =
// subtotal − discounts, total = that + tax = amount_due, and a paid invoice's charge is its
// amount_due. Every charge has a payment intent (an invoice's is the invoice's), which the
// charge's outcome settles; credit notes credit what their refund gave back.
func TestInvoicesIntentsAndCreditNotesAddUp(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, stripesim.Config{Seed: 12, Customers: 200}, stripesim.ServerConfig{})
	invoices := truthObjects[stripesim.Invoice](t, b.sim, "invoices")
	charges := map[string]stripesim.Charge{}
	for _, ch := range truthObjects[stripesim.Charge](t, b.sim, "charges") {
		charges[ch.ID] = ch
	}
	pis := map[string]stripesim.PaymentIntent{}
	for _, pi := range truthObjects[stripesim.PaymentIntent](t, b.sim, "payment_intents") {
		pis[pi.ID] = pi
	}
	vat := map[string]int64{"gbp": 20, "eur": 19}
	taxed, discounted, prorations, credited := 0, 0, 0, 0
	for _, inv := range invoices {
		var subtotal, discounts, tax int64
		anyTax := false
		for _, l := range inv.Lines.Data {
			subtotal += l.Amount
			var d int64
			for _, da := range l.DiscountAmounts {
				d += da.Amount
			}
			discounts += d
			if l.Proration {
				prorations++
				if l.Type != "invoiceitem" || d != 0 || l.Amount == 0 || l.Period.End > inv.PeriodStart || inv.BillingReason != "subscription_cycle" {
					t.Errorf("invoice %s proration line %s: %+v", inv.ID, l.ID, l)
				}
			} else if l.Type != "subscription" || l.Period.Start != inv.PeriodStart || l.Period.End != inv.PeriodEnd {
				t.Errorf("invoice %s line %s: %+v", inv.ID, l.ID, l)
			}
			if l.Period.End <= l.Period.Start || l.Quantity <= 0 || l.Invoice != inv.ID {
				t.Errorf("invoice %s line %s: %+v", inv.ID, l.ID, l)
			}
			for _, ta := range l.TaxAmounts {
				anyTax = true
				if want := halfAway(big.NewRat((l.Amount-d)*vat[inv.Currency], 100)); ta.Amount != want || *ta.TaxableAmount != l.Amount-d || ta.Inclusive {
					t.Errorf("invoice %s line %s: tax %d on %d %s, want %d", inv.ID, l.ID, ta.Amount, l.Amount-d, inv.Currency, want)
				}
				tax += ta.Amount
			}
		}
		var totalDiscounts int64
		for _, da := range inv.TotalDiscountAmounts {
			totalDiscounts += da.Amount
		}
		if anyTax != (vat[inv.Currency] > 0) || anyTax != (inv.Tax != nil) {
			t.Errorf("invoice %s in %s: tax %v", inv.ID, inv.Currency, inv.Tax)
		}
		wantTotal := subtotal - discounts + tax
		// A credit left by earlier prorations is applied before anything is due.
		due := max(0, wantTotal+inv.StartingBalance)
		if inv.StartingBalance > 0 || *inv.EndingBalance != min(0, wantTotal+inv.StartingBalance) {
			t.Errorf("invoice %s: balance %d → %d with total %d", inv.ID, inv.StartingBalance, *inv.EndingBalance, wantTotal)
		}
		if inv.StartingBalance < 0 || *inv.EndingBalance < 0 {
			credited++
		}
		if inv.Subtotal != subtotal || totalDiscounts != discounts || inv.Tax != nil && *inv.Tax != tax ||
			*inv.TotalExcludingTax != subtotal-discounts || inv.Total != wantTotal || inv.AmountDue != due {
			t.Errorf("invoice %s: subtotal %d discounts %d tax %v excl %d total %d due %d; lines: %d, %d, %d",
				inv.ID, inv.Subtotal, totalDiscounts, inv.Tax, *inv.TotalExcludingTax, inv.Total, inv.AmountDue, subtotal, discounts, tax)
		}
		if anyTax {
			taxed++
		}
		if discounts > 0 {
			discounted++
		}
		if inv.AmountDue == 0 {
			if inv.PaymentIntent != nil || inv.Charge != nil || inv.Status != "paid" {
				t.Errorf("invoice %s with nothing due: intent %v, charge %v, %s", inv.ID, inv.PaymentIntent, inv.Charge, inv.Status)
			}
			continue
		}
		if inv.PaymentIntent == nil || pis[*inv.PaymentIntent].Invoice == nil || *pis[*inv.PaymentIntent].Invoice != inv.ID {
			t.Errorf("invoice %s: payment intent %v", inv.ID, inv.PaymentIntent)
		}
		if inv.Status == "paid" {
			ch := charges[*inv.Charge]
			pi := pis[*inv.PaymentIntent]
			if ch.Amount != inv.AmountDue || *ch.PaymentIntent != pi.ID || pi.Status != "succeeded" || pi.AmountReceived != inv.AmountDue ||
				*pi.LatestCharge != ch.ID {
				t.Errorf("paid invoice %s of %d: charge %s of %d, intent %s %s received %d", inv.ID, inv.AmountDue, ch.ID, ch.Amount, pi.ID, pi.Status, pi.AmountReceived)
			}
		}
	}
	// A Checkout signup's amount_total is its subscription's first invoice's total, tax included.
	first := map[string]stripesim.Invoice{}
	for _, inv := range invoices { // newest first: the last seen is the first invoice
		if inv.Subscription != nil {
			first[*inv.Subscription] = inv
		}
	}
	sessions := 0
	for _, cs := range truthObjects[stripesim.CheckoutSession](t, b.sim, "checkout_sessions") {
		if inv, ok := first[deref(cs.Subscription)]; ok && inv.BillingReason == "subscription_create" {
			sessions++
			if cs.AmountTotal != inv.Total {
				t.Errorf("checkout session %s: amount_total %d, its first invoice %s %d", cs.ID, cs.AmountTotal, inv.ID, inv.Total)
			}
		}
	}
	if sessions == 0 {
		t.Error("no Checkout signup with an invoice")
	}
	if taxed == 0 || discounted == 0 || taxed == len(invoices) || prorations == 0 {
		t.Fatalf("%d invoices, %d taxed, %d discounted, %d proration lines, %d with a credit", len(invoices), taxed, discounted, prorations, credited)
	}
	t.Logf("%d invoices, %d taxed, %d discounted, %d proration lines, %d with a credit", len(invoices), taxed, discounted, prorations, credited)
	for _, ch := range charges {
		pi, ok := pis[*ch.PaymentIntent]
		if !ok || pi.LatestCharge == nil {
			t.Fatalf("charge %s: payment intent %v", ch.ID, ch.PaymentIntent)
		}
		if *pi.LatestCharge != ch.ID {
			continue // an earlier attempt
		}
		if ch.Status == "succeeded" && pi.Status != "succeeded" ||
			ch.Status == "failed" && (pi.Status != "requires_payment_method" || pi.LastPaymentError == nil || *pi.LastPaymentError.Charge != ch.ID) {
			t.Errorf("charge %s %s: intent %s %s", ch.ID, ch.Status, pi.ID, pi.Status)
		}
	}
	// Each intent's events: created first, then one per attempt.
	kinds := map[string][]string{}
	for _, ev := range b.sim.Events() {
		if strings.HasPrefix(ev.Type, "payment_intent.") {
			kinds[ev.ObjectID] = append(kinds[ev.ObjectID], strings.TrimPrefix(ev.Type, "payment_intent."))
		}
	}
	for id, evs := range kinds {
		if evs[0] != "created" || slices.Contains(evs[1:], "created") || pis[id].Status == "succeeded" && evs[len(evs)-1] != "succeeded" {
			t.Errorf("payment intent %s: events %v", id, evs)
		}
	}
	if len(kinds) != len(pis) {
		t.Fatalf("%d payment intents, %d with events", len(pis), len(kinds))
	}

	refunds := map[string]stripesim.Refund{}
	for _, re := range truthObjects[stripesim.Refund](t, b.sim, "refunds") {
		refunds[re.ID] = re
	}
	byID := map[string]stripesim.Invoice{}
	for _, inv := range invoices {
		byID[inv.ID] = inv
	}
	voided := 0
	for _, cn := range truthObjects[stripesim.CreditNote](t, b.sim, "credit_notes") {
		var sub, disc, tax int64
		for _, l := range cn.Lines.Data {
			sub += l.Amount
			disc += l.DiscountAmount
			for _, ta := range l.TaxAmounts {
				tax += ta.Amount
			}
		}
		if cn.Subtotal != sub || cn.DiscountAmount != disc || cn.Total != sub-disc+tax || cn.Amount != cn.Total || cn.Type != "post_payment" {
			t.Errorf("credit note %s: subtotal %d discount %d total %d; lines %d %d %d", cn.ID, cn.Subtotal, cn.DiscountAmount, cn.Total, sub, disc, tax)
		}
		inv := byID[cn.Invoice]
		switch {
		case cn.Status == "void":
			voided++
			if cn.VoidedAt == nil || cn.Refund != nil || cn.OutOfBandAmount == nil {
				t.Errorf("void credit note %s: %+v", cn.ID, cn)
			}
		case cn.Refund == nil:
			t.Errorf("issued credit note %s without a refund", cn.ID)
		default:
			re := refunds[*cn.Refund]
			if re.Amount != cn.Amount || re.Charge != *inv.Charge {
				t.Errorf("credit note %s of %d for invoice %s: refund %s of %d on %s", cn.ID, cn.Amount, inv.ID, re.ID, re.Amount, re.Charge)
			}
		}
	}
	if voided == 0 {
		t.Fatal("no credit note was voided")
	}
}

// A platform's connected accounts settle in their default currency: their balance transactions
// and payouts are in it, listed for each account through Stripe-Account, and each scope's truth
// is its own.
func TestConnectedAccountsSettleInTheirCurrency(t *testing.T) {
	t.Parallel()
	cfg := small(23)
	cfg.AccountCustomers = 30
	b := setupPlatform(t, cfg, stripesim.PlatformDelivery{}, stripesim.ServerConfig{})
	currencies := map[string]bool{}
	for _, a := range b.p.Accounts() {
		sc := stripesim.Scope{Livemode: true, Account: a.ID}
		mt, ok := b.p.MoneyTruth(sc)
		if !ok || mt.SettlementCurrency != a.DefaultCurrency || mt.Account != a.ID || len(mt.Payouts) == 0 {
			t.Fatalf("%s (%s): truth settles in %q with %d payouts", a.ID, a.DefaultCurrency, mt.SettlementCurrency, len(mt.Payouts))
		}
		currencies[a.DefaultCurrency] = true
		params := &stripe.PayoutListParams{}
		params.SetStripeAccount(a.ID)
		it := b.live.Payouts.List(params)
		n := 0
		for it.Next() {
			if po := it.Payout(); po.Currency != stripe.Currency(a.DefaultCurrency) || po.ID != mt.Payouts[len(mt.Payouts)-1-n].ID {
				t.Fatalf("%s: payout %s in %s", a.ID, po.ID, po.Currency)
			}
			n++
		}
		if it.Err() != nil || n != len(mt.Payouts) {
			t.Fatalf("%s: %d payouts listed, truth %d (%v)", a.ID, n, len(mt.Payouts), it.Err())
		}
		for cur := range mt.Balances {
			if cur != a.DefaultCurrency {
				t.Fatalf("%s: a balance in %s", a.ID, cur)
			}
		}
	}
	if own, _ := b.p.MoneyTruth(stripesim.Scope{Livemode: true}); own.SettlementCurrency != stripesim.SettlementCurrency {
		t.Fatalf("the platform settles in %s", own.SettlementCurrency)
	}
	t.Logf("accounts settle in %v", currencies)
}

// The money side is fixed by the seed too: the same seed gives the same balance transactions,
// payouts, payment intents and credit notes, byte for byte, and another seed others.
func TestMoneyIsStableBySeed(t *testing.T) {
	t.Parallel()
	objects := func(seed uint64) map[string]json.RawMessage {
		sim := stripesim.New(stripesim.Config{Seed: seed, Customers: 60, End: end})
		sim.Run(time.Time{})
		return sim.Truth().MoneyObjects
	}
	a, b, c := objects(3), objects(3), objects(4)
	for _, kind := range stripesim.MoneyKinds {
		if len(a[kind]) < 10 || string(a[kind]) != string(b[kind]) {
			t.Fatalf("%s: %d bytes, differs between two runs of one seed: %v", kind, len(a[kind]), string(a[kind]) != string(b[kind]))
		}
		if kind != "credit_notes" && string(a[kind]) == string(c[kind]) {
			t.Fatalf("%s: the same for two seeds", kind)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
