package notify

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

func TestFormatAmountPerCurrencyExponent(t *testing.T) {
	for _, c := range []struct {
		minor    int64
		currency string
		want     string
	}{
		{123456, "usd", "1,234.56 USD"},
		{5, "eur", "0.05 EUR"},
		{1235, "jpy", "1,235 JPY"},
		{1234567, "JPY", "1,234,567 JPY"},
		{-500, "kwd", "-0.500 KWD"},
		{100, "krw", "100 KRW"},
		{0, "usd", "0.00 USD"},
		{-9223372036854775808, "usd", "-92,233,720,368,547,758.08 USD"},
	} {
		if got := FormatAmount(c.minor, c.currency); got != c.want {
			t.Errorf("FormatAmount(%d, %s) = %q, want %q", c.minor, c.currency, got, c.want)
		}
	}
}

// record is a stored event whose data.object is obj.
func record(t *testing.T, typ string, obj map[string]any) *eventstore.Record {
	t.Helper()
	body, err := json.Marshal(map[string]any{"id": "evt_1", "object": "event", "type": typ, "created": 1709553600,
		"livemode": false, "api_version": "2023-10-16", "data": map[string]any{"object": obj}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := domain.NewEvent(body, domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	return &eventstore.Record{Position: 1, Event: ev}
}

func TestEachDefaultRuleRenders(t *testing.T) {
	cfg, err := Load(examplePath(t), exampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		rule, typ string
		obj       map[string]any
		subject   string
		text      []string
	}{
		{"payments", "payment_intent.succeeded", map[string]any{"id": "pi_1", "object": "payment_intent", "amount": 1235, "currency": "jpy",
			"customer": "cus_9", "receipt_email": "k@example.jp", "status": "succeeded"},
			"Payment received: 1,235 JPY", []string{"from k@example.jp (cus_9) [test mode]", "https://dashboard.stripe.com/test/payments/pi_1"}},
		{"payments", "charge.succeeded", map[string]any{"id": "ch_1", "object": "charge", "amount": 199900, "currency": "usd",
			"billing_details": map[string]any{"email": "a@example.com"}},
			"Payment received: 1,999.00 USD", []string{"from a@example.com"}},
		{"failures", "charge.failed", map[string]any{"id": "ch_2", "object": "charge", "amount": 500, "currency": "eur", "failure_code": "card_declined"},
			"Payment failed: 5.00 EUR (card_declined)", []string{"charge.failed ch_2", "reason card_declined"}},
		{"failures", "invoice.payment_failed", map[string]any{"id": "in_1", "object": "invoice", "amount_due": 4200, "currency": "gbp",
			"customer_email": "b@example.co.uk"}, "Payment failed: 42.00 GBP", []string{"for b@example.co.uk", "/test/invoices/in_1"}},
		{"disputes", "charge.dispute.created", map[string]any{"id": "dp_1", "object": "dispute", "amount": 3000, "currency": "usd",
			"reason": "fraudulent", "evidence_details": map[string]any{"due_by": 1710374399}},
			"Dispute opened: 30.00 USD, evidence due 2024-03-13T23:59:59Z", []string{"(fraudulent)", "Evidence is due by 2024-03-13T23:59:59Z", "/test/disputes/dp_1"}},
		{"checkouts", "checkout.session.completed", map[string]any{"id": "cs_1", "object": "checkout.session", "amount_total": 990, "currency": "usd",
			"customer_details": map[string]any{"email": "c@example.com"}}, "Checkout completed: 9.90 USD", []string{"cs_1 by c@example.com"}},
		{"cancellations", "customer.subscription.deleted", map[string]any{"id": "sub_1", "object": "subscription", "customer": "cus_2",
			"status": "canceled", "cancellation_details": map[string]any{"reason": "cancellation_requested"}},
			"Subscription canceled: sub_1", []string{"of cus_2 was canceled (cancellation_requested)"}},
	}
	for _, c := range cases {
		t.Run(c.rule+"/"+c.typ, func(t *testing.T) {
			r := record(t, c.typ, c.obj)
			f, md, err := eventFields(r, cfg.Dashboard)
			if err != nil {
				t.Fatal(err)
			}
			rule := cfg.Rule(c.rule)
			if !rule.Matches(f, md) {
				t.Fatalf("rule %s does not match %s", c.rule, c.typ)
			}
			f["rule"] = rule.Name
			m, err := rule.Render(f)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != c.subject {
				t.Errorf("subject %q, want %q", m.Subject, c.subject)
			}
			for _, w := range c.text {
				if !strings.Contains(m.Text, w) {
					t.Errorf("text %q lacks %q", m.Text, w)
				}
			}
			if strings.Contains(m.Text, "<no value>") || strings.Contains(m.Subject, "<no value>") {
				t.Errorf("an absent field printed: %q / %q", m.Subject, m.Text)
			}
		})
	}
}

// The message carries the documented fields only: nothing else of the payload, metadata
// included (it is matched by filters, never shown).
func TestMessageCarriesOnlyTheDocumentedFields(t *testing.T) {
	cfg, err := Load(examplePath(t), exampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, "charge.succeeded", map[string]any{"id": "ch_1", "object": "charge", "amount": 100, "currency": "usd",
		"payment_method_details": map[string]any{"card": map[string]any{"last4": "4242", "fingerprint": "FPRINTsecret"}},
		"metadata":               map[string]any{"internal_token": "tok_SECRETvalue"}})
	f, md, err := eventFields(r, cfg.Dashboard)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cfg.Rule("payments").Render(f)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(m)
	for _, leak := range []string{"FPRINTsecret", "4242", "tok_SECRETvalue", "payment_method_details"} {
		if strings.Contains(string(js), leak) {
			t.Errorf("message holds %q: %s", leak, js)
		}
	}
	for k := range m.Fields {
		if !contains(FieldNames, k) {
			t.Errorf("undocumented field %q", k)
		}
	}
	if md["internal_token"] != "tok_SECRETvalue" {
		t.Fatal("metadata not read for filters")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestFilters(t *testing.T) {
	cfg, err := Parse([]byte(`channels:
  ops: {type: slack, url_env: OPS_URL}
rules:
  - name: f
    events: [charge.succeeded]
    channel: ops
    subject: x
    filter:
      amount: {gte: 1000, lte: 5000}
      currency: [USD]
      livemode: false
      account: platform
      metadata: {plan: pro}
      status: [succeeded]
`), "", func(k string) string { return map[string]string{"OPS_URL": "x"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	rule := cfg.Rule("f")
	base := func() (Fields, map[string]string) {
		return Fields{"type": "charge.succeeded", "amount": int64(2000), "currency": "usd", "livemode": false, "status": "succeeded"},
			map[string]string{"plan": "pro"}
	}
	if f, md := base(); !rule.Matches(f, md) {
		t.Fatal("base does not match")
	}
	for name, change := range map[string]func(Fields, map[string]string){
		"type":          func(f Fields, _ map[string]string) { f["type"] = "charge.failed" },
		"below gte":     func(f Fields, _ map[string]string) { f["amount"] = int64(999) },
		"above lte":     func(f Fields, _ map[string]string) { f["amount"] = int64(5001) },
		"no amount":     func(f Fields, _ map[string]string) { delete(f, "amount") },
		"currency":      func(f Fields, _ map[string]string) { f["currency"] = "eur" },
		"livemode":      func(f Fields, _ map[string]string) { f["livemode"] = true },
		"account":       func(f Fields, _ map[string]string) { f["account"] = "acct_1" },
		"metadata":      func(_ Fields, md map[string]string) { md["plan"] = "free" },
		"metadata gone": func(_ Fields, md map[string]string) { delete(md, "plan") },
		"status":        func(f Fields, _ map[string]string) { f["status"] = "pending" },
	} {
		f, md := base()
		change(f, md)
		if rule.Matches(f, md) {
			t.Errorf("%s: still matches", name)
		}
	}
}
