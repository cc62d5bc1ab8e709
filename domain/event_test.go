package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	ok := `{"id":"evt_1","object":"event","api_version":"2023-10-16","created":1700000000,"livemode":true,
		"account":"acct_9","type":"invoice.paid","data":{"object":{"id":"in_1","object":"invoice","amount_due":500}}}`
	env, err := DecodeEnvelope([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	want := Envelope{ID: "evt_1", Type: "invoice.paid", APIVersion: "2023-10-16", Created: 1700000000,
		Livemode: true, Account: "acct_9", ObjectType: "invoice", ObjectID: "in_1"}
	if env != want {
		t.Fatalf("got %+v, want %+v", env, want)
	}

	// Unknown types, other API versions and missing optional parts are events all the same.
	env, err = DecodeEnvelope([]byte(`{"id":"evt_2","type":"brand.new.thing","created":1,"api_version":"2099-01-01.future"}`))
	if err != nil || env.Type != "brand.new.thing" || env.ObjectID != "" || env.APIVersion != "2099-01-01.future" {
		t.Fatalf("got %+v, %v", env, err)
	}

	bad := []struct {
		name, body, reason string
	}{
		{"empty", ``, ReasonNotJSON},
		{"not json", `hello`, ReasonNotJSON},
		{"array", `[1,2]`, ReasonNotJSON},
		{"truncated", `{"id":"evt_1"`, ReasonNotJSON},
		{"no id", `{"type":"a.b","created":1}`, ReasonNoID},
		{"empty id", `{"id":"","type":"a.b","created":1}`, ReasonNoID},
		{"not evt id", `{"id":"ch_1","type":"a.b","created":1}`, ReasonNoID},
		{"other object", `{"id":"evt_1","object":"charge","type":"a.b","created":1}`, ReasonNotAnEvent},
		{"no type", `{"id":"evt_1","created":1}`, ReasonNoType},
		{"no created", `{"id":"evt_1","type":"a.b"}`, ReasonNoCreated},
		{"zero created", `{"id":"evt_1","type":"a.b","created":0}`, ReasonNoCreated},
		{"string created", `{"id":"evt_1","type":"a.b","created":"1"}`, ReasonNoCreated}, // a thin event's kind of created, on a snapshot event
		{"nul in id", `{"id":"evt_\u0000","type":"a.b","created":1}`, ReasonBadField},
		{"long type", `{"id":"evt_1","type":"` + strings.Repeat("a", 300) + `","created":1}`, ReasonBadField},
		{"raw control char", "{\"id\":\"evt_1\",\"type\":\"a\x01\",\"created\":1}", ReasonNotJSON},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEnvelope([]byte(tc.body))
			var ee *EnvelopeError
			if !errors.As(err, &ee) {
				t.Fatalf("want EnvelopeError, got %v", err)
			}
			if ee.Reason != tc.reason {
				t.Fatalf("reason %q, want %q (%v)", ee.Reason, tc.reason, err)
			}
		})
	}
}

func TestEventValidate(t *testing.T) {
	t.Parallel()
	base, err := NewEvent([]byte(`{"id":"evt_1","type":"a.b","created":5}`), SourceReconcile, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(e *Event){
		"unknown source":         func(e *Event) { e.Source = "mail" },
		"webhook without sig":    func(e *Event) { e.Source = SourceWebhook },
		"signature on reconcile": func(e *Event) { e.Signature = "t=1,v1=ab" },
		"empty payload":          func(e *Event) { e.Payload = nil },
		"no created":             func(e *Event) { e.Created = 0 },
		"invalid utf8 account":   func(e *Event) { e.Account = "\xff" },
		"nul in signature":       func(e *Event) { e.Source = SourceWebhook; e.Signature = "t=1\x00" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := base
			mutate(&e)
			if err := e.Validate(); !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("want ErrInvalidEvent, got %v", err)
			}
		})
	}
}
