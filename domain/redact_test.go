package domain

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedactPayload(t *testing.T) {
	rules := RedactRules{MetadataKeys: []string{"crm_id"}}
	cases := map[string]struct{ in, want string }{
		"customer": {
			`{"id":"evt_1","data":{"object":{"id":"cus_1","object":"customer","email":"ann@example.com","name":"Ann","phone":null,"balance":-500,"metadata":{"crm_id":"c-9","plan":"pro"}},"previous_attributes":{"email":"old@example.com"}}}`,
			`{"id":"evt_1","data":{"object":{"id":"cus_1","object":"customer","email":"[redacted]","name":"[redacted]","phone":null,"balance":-500,"metadata":{"crm_id":"[redacted]","plan":"pro"}},"previous_attributes":{"email":"[redacted]"}}}`,
		},
		"charge keeps money and shape": {
			`{"data":{"object":{"id":"ch_1","amount":1999,"billing_details":{"address":{"city":"Oslo","postal_code":"0150"},"email":"a@b.c","name":null},
  "payment_method_details":{"card":{"brand":"visa","last4":"4242","fingerprint":"Fp1","exp_year":2030}},"status":"succeeded"}}}`,
			`{"data":{"object":{"id":"ch_1","amount":1999,"billing_details":{"address":{"city":"[redacted]","postal_code":"[redacted]"},"email":"[redacted]","name":null},
  "payment_method_details":{"card":{"brand":"visa","last4":"[redacted]","fingerprint":"[redacted]","exp_year":2030}},"status":"succeeded"}}}`,
		},
		"arrays and nested personal objects": {
			`{"a":[{"shipping":{"name":"X","phone":"1","address":{"line1":"1 Road"}}},{"x":1}]}`,
			`{"a":[{"shipping":{"name":"[redacted]","phone":"[redacted]","address":{"line1":"[redacted]"}}},{"x":1}]}`,
		},
		"metadata keys only in metadata": {
			`{"crm_id":"top","metadata":{"crm_id":"m","email":"e@x"}}`,
			`{"crm_id":"top","metadata":{"crm_id":"[redacted]","email":"[redacted]"}}`,
		},
		"other payment methods, mandates and tax IDs": {
			`{"sepa_debit":{"iban_last4":"3000","account_holder_name":"A B","bank_code":"370"},"paypal":{"payer_email":"p@x","payer_name":"P","payer_id":"PX1"},` +
				`"customer_acceptance":{"online":{"ip_address":"203.0.113.9","user_agent":"Mozilla"}},"tax_ids":{"data":[{"type":"eu_vat","value":"DE123"}]},"amount":300}`,
			`{"sepa_debit":{"iban_last4":"[redacted]","account_holder_name":"[redacted]","bank_code":"370"},"paypal":{"payer_email":"[redacted]","payer_name":"[redacted]","payer_id":"[redacted]"},` +
				`"customer_acceptance":{"online":{"ip_address":"[redacted]","user_agent":"[redacted]"}},"tax_ids":{"data":[{"type":"[redacted]","value":"[redacted]"}]},"amount":300}`,
		},
		"nothing personal": {`{"id":"sub_1","status":"active","items":{"data":[{"price":{"unit_amount":500}}]}}`, ``},
		"already redacted": {`{"email":"[redacted]"}`, ``},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, changed, err := RedactPayload([]byte(tc.in), rules)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == "" {
				want = tc.in
			}
			if string(got) != want || changed != (tc.want != "") {
				t.Fatalf("got %v\n%s\nwant\n%s", changed, got, want)
			}
			if !json.Valid(got) {
				t.Fatal("not valid JSON")
			}
		})
	}
	for _, bad := range []string{`{"a":`, `not json`, `{"a":1} {}`} {
		if _, _, err := RedactPayload([]byte(bad), rules); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestReadRefs(t *testing.T) {
	r, err := ReadRefs([]byte(`{"data":{"object":{"id":"pm_1","object":"payment_method","customer":null,"charge":{"id":"ch_9"}},"previous_attributes":{"customer":"cus_1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ObjectID != "pm_1" || r.Customer != "" || r.PreviousCustomer != "cus_1" || r.Charge != "ch_9" {
		t.Fatalf("%+v", r)
	}
	if _, err := ReadRefs([]byte(`{"data":`)); err == nil || strings.Contains(err.Error(), "data") {
		t.Fatalf("want an error that does not echo the payload: %v", err)
	}
}

func FuzzRedactPayload(f *testing.F) {
	f.Add([]byte(`{"data":{"object":{"email":"a@b","metadata":{"crm_id":"x"},"n":[1,"s",{"name":"y"}]}}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed, err := RedactPayload(in, RedactRules{MetadataKeys: []string{"crm_id"}})
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out of %q: %q", in, out)
		}
		if changed == (string(out) == string(in)) {
			t.Fatalf("changed=%v for %q -> %q", changed, in, out)
		}
		again, changed2, err := RedactPayload(out, RedactRules{MetadataKeys: []string{"crm_id"}})
		if err != nil || changed2 || string(again) != string(out) {
			t.Fatalf("redacting twice changed it again: %q -> %q (%v)", out, again, err)
		}
	})
}
