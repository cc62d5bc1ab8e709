package domain

import (
	"bytes"
	"encoding/json"
	"testing"
)

// jsonEqual's shortcut (differ) must never call unequal what encoding/json decodes to equal
// values, and describes must agree with a comparison of decoded values on whole values.
func TestJSONEqualAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	values := []string{`null`, `true`, `false`, `0`, `-0`, `0.0`, `1`, `1.0`, `1e0`, `10`, `-1`, `123456789012345`,
		`1234567890123456`, `9007199254740993`, `9007199254740992`, `""`, `"a"`, `"b"`, `"\u0061"`, `"é"`, `"\u00e9"`,
		`"\ud800"`, `"\ufffd"`, `{}`, `{"a":1}`, `{"a":1.0}`, `{ "a" : 1 }`, `[]`, `[1]`, `[1.0]`, `[ 1 ]`, `{"a":null}`}
	decoded := func(v string) []byte {
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(x)
		return b
	}
	for _, a := range values {
		for _, b := range values {
			want := bytes.Equal(decoded(a), decoded(b))
			if got := jsonEqual(json.RawMessage(a), json.RawMessage(b)); got != want {
				t.Errorf("jsonEqual(%s, %s) = %v, encoding/json says %v", a, b, got, want)
			}
		}
	}
}

// previous_attributes describe a hash key by key, as Stripe diffs them; everything else whole.
func TestDescribes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prev, cur string
		want      bool
	}{
		{`{"tier":null}`, `{}`, true},                          // a key added: it was absent
		{`{"tier":null}`, `{"tier":"gold"}`, false},            // it was not absent
		{`{"tier":"gold"}`, `{"crm":"1","tier":"gold"}`, true}, // the other keys did not change
		{`{"tier":"gold"}`, `{"crm":"1"}`, false},
		{`{"behavior":"void","resumes_at":null}`, `null`, false}, // a hash that was not there
		{`null`, `{"behavior":"void"}`, false},
		{`{"a":{"b":null}}`, `{"a":{"c":1}}`, true}, // nested hashes are diffed too
		{`[1,2]`, `[1,2,3]`, false},                 // arrays are sent whole
		{`[1,2]`, `[1, 2]`, true},
		{`"x"`, ``, false},
		{`null`, ``, true}, // a field absent from the snapshot is null
	}
	for _, tc := range cases {
		var cur json.RawMessage
		if tc.cur != "" {
			cur = json.RawMessage(tc.cur)
		}
		if got := describes(json.RawMessage(tc.prev), cur); got != tc.want {
			t.Errorf("describes(%s, %s) = %v, want %v", tc.prev, tc.cur, got, tc.want)
		}
	}
}

// follows scans the earlier snapshot for just the reported fields; it must answer as a
// comparison with the decoded fields does, including for fields the snapshot does not have.
func TestFollowsScanAgreesWithDecodedFields(t *testing.T) {
	t.Parallel()
	snapshot := []byte(`{"id":"sub_1","status":"active","items":{"data":[{"quantity":2}]},"metadata":{"a":"1"},"cancel_at":null}`)
	prevs := []string{`{"status":"active"}`, `{"status":"past_due"}`, `{"status":"active","cancel_at":null}`,
		`{"canceled_at":null}`, `{"canceled_at":5}`, `{"items":{"data":[{"quantity":2}]}}`, `{"items":{"data":[{"quantity":1}]}}`,
		`{"metadata":{"b":null}}`, `{"metadata":{"a":"2"}}`, `{"status":"active","metadata":{"a":"1"},"ended_at":null}`}
	for _, p := range prevs {
		prev, err := rawFields([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		b := &Fact{Prev: prev}
		scanned := follows(b, &Fact{ObjectRaw: snapshot})
		a := &Fact{ObjectRaw: snapshot}
		a.Field("id")
		if decoded := follows(b, a); scanned != decoded {
			t.Errorf("prev %s: scanning says %v, decoded fields %v", p, scanned, decoded)
		}
	}
}
