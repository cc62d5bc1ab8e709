package domain

import (
	"encoding/json"
	"reflect"
	"testing"
)

// referenceEnvelope decodes with encoding/json, key by key (exact key match, last duplicate
// wins), as the scanner does.
func referenceEnvelope(raw []byte) (rawEnvelope, bool) {
	var r rawEnvelope
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil || top == nil {
		return r, false
	}
	str := func(m map[string]json.RawMessage, k string, dst **string) bool {
		v, ok := m[k]
		return !ok || json.Unmarshal(v, dst) == nil
	}
	ok := str(top, "id", &r.ID) && str(top, "object", &r.Object) && str(top, "type", &r.Type) &&
		str(top, "api_version", &r.APIVersion) && str(top, "account", &r.Account) && str(top, "context", &r.Context)
	if v, has := top["created"]; has && ok {
		if len(v) > 0 && v[0] == '"' {
			ok = json.Unmarshal(v, &r.CreatedAt) == nil
		} else {
			ok = json.Unmarshal(v, &r.Created) == nil
		}
	}
	if v, has := top["related_object"]; has && ok && string(v) != "null" {
		var rel map[string]json.RawMessage
		if ok = json.Unmarshal(v, &rel) == nil && rel != nil; ok {
			r.Related = new(rawRelated)
			ok = str(rel, "id", &r.Related.ID) && str(rel, "type", &r.Related.Type)
		}
	}
	if v, has := top["livemode"]; has && ok {
		ok = json.Unmarshal(v, &r.Livemode) == nil
	}
	if v, has := top["data"]; has && ok && string(v) != "null" {
		var data map[string]json.RawMessage
		if ok = json.Unmarshal(v, &data) == nil && data != nil; ok {
			r.Data = new(rawData)
			if o, has := data["object"]; has && string(o) != "null" {
				var obj map[string]json.RawMessage
				if ok = json.Unmarshal(o, &obj) == nil && obj != nil; ok {
					r.Data.Object = new(rawObject)
					ok = str(obj, "id", &r.Data.Object.ID) && str(obj, "object", &r.Data.Object.Object)
				}
			}
		}
	}
	return r, ok
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"id":"evt_1","object":"event","api_version":"2023-10-16","created":1700000000,"livemode":true,"account":"acct_1","type":"invoice.paid","data":{"object":{"id":"in_1","object":"invoice","lines":{"data":[{"id":"x"}]}},"previous_attributes":{"a":[1,{"b":"}"}]}}}`,
		`{"id":"evt_\u00e9\"x","type":"a","created":-0,"data":null}`,
		`{"id":"evt_1","id":"evt_2","data":{"object":{"id":"a"}},"data":{"object":{"object":"b"}}}`,
		`{"created":1.5}`, `{"created":1e3}`, `{"created":99999999999999999999}`, `{"livemode":"yes"}`,
		`{"data":"x"}`, `{"data":{"object":[]}}`, `[]`, `"s"`, `null`, `{`, ` {"id" : "evt_1" , "type":"t" } `,
		`{"ID":"evt_1"}`, `{"id":null,"type":null,"created":null}`,
		// Thin events: created an RFC 3339 string, the account the context, the object related.
		`{"id":"evt_test_65x","object":"v2.core.event","type":"v1.invoice.paid","created":"2026-10-01T12:00:00.123Z","livemode":false,"context":"acct_1","related_object":{"id":"in_1","type":"invoice","url":"/v1/invoices/in_1"}}`,
		`{"created":"x","created":1}`, `{"created":1,"created":"2026-10-01T12:00:00Z"}`, `{"related_object":[]}`, `{"related_object":{"id":1}}`,
		// Repeated and null keys: the envelope (the log's columns, the hold) and the fact (the
		// row's scope) must read them alike.
		`{"id":"evt_1","livemode":true,"account":"acct_x","type":"charge.succeeded","created":1,"data":{"object":{"id":"ch_1","object":"charge"}},"livemode":false,"account":null}`,
		`{"id":"evt_1","livemode":false,"livemode":true,"livemode":null,"account":"acct_a","account":"acct_b","type":"t","created":1,"data":{"object":{"id":"x"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fact, ferr := DecodeFact(raw) // must not panic on anything
		got, err := scanEnvelope(raw)
		if ferr == nil && err == nil {
			// Whatever both accept, they read alike: the event's mode, account, ID, type and
			// time, as the log stores them and as the row carries them.
			acct := ""
			if got.Account != nil {
				acct = *got.Account
			}
			if fact.Livemode != got.Livemode || fact.Account != acct || got.ID != nil && fact.EventID != *got.ID ||
				got.Type != nil && fact.Type != *got.Type || got.Created != nil && fact.Created != *got.Created {
				t.Fatalf("the fact reads livemode %t account %q id %q type %q created %d; the envelope %s; for %q",
					fact.Livemode, fact.Account, fact.EventID, fact.Type, fact.Created, dump(got), raw)
			}
		}
		want, ok := referenceEnvelope(raw)
		if (err == nil) != ok {
			t.Fatalf("scanner err=%v, reference ok=%v for %q", err, ok, raw)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("scanner %s\nreference %s\nfor %q", dump(got), dump(want), raw)
		}
		// Without its validation pass (a signed stored body), the same answer on valid JSON,
		// and no panic on anything else.
		unchecked, uerr := scanEnvelopeOf(raw, false)
		if json.Valid(raw) && ((uerr == nil) != (err == nil) || (err == nil && !reflect.DeepEqual(unchecked, got))) {
			t.Fatalf("unchecked scan %s (%v), checked %s (%v), for %q", dump(unchecked), uerr, dump(got), err, raw)
		}
	})
}

func dump(r rawEnvelope) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// FuzzRawFields checks the scanner's field split (previous_attributes, and the top-level fields
// the ordering rule compares) against json.Unmarshal into map[string]json.RawMessage, on every
// valid JSON object.
func FuzzRawFields(f *testing.F) {
	for _, s := range []string{
		`{"status":"active","items":{"data":[{"id":"si_1","price":{"unit_amount":1000}}]},"metadata":{}}`,
		`{"a":null,"b":true,"c":-1.5e3,"d":"\u00e9\"}","e":[],"f":{"g":"]"}}`,
		` { "k" : 1 , "k" : 2 } `, `{"\u0041":"x","A":"y"}`, `{}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want map[string]json.RawMessage
		if !json.Valid(raw) || json.Unmarshal(raw, &want) != nil || want == nil {
			return // rawFields is only given valid JSON objects
		}
		got, err := rawFields(raw)
		if err != nil {
			t.Fatalf("rawFields(%q): %v", raw, err)
		}
		if len(got) != len(want) {
			t.Fatalf("rawFields(%q) = %q, want %q", raw, got, want)
		}
		for k, v := range want {
			if string(got[k]) != string(v) {
				t.Fatalf("rawFields(%q)[%q] = %q, want %q", raw, k, got[k], v)
			}
		}
	})
}
