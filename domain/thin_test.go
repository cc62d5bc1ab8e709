package domain_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stripeledger/ledger/domain"
)

const thinBody = `{"id":"evt_test_65Rabc","object":"v2.core.event","type":"v1.invoice.paid",` +
	`"created":"2026-10-01T12:00:00.987Z","livemode":false,"context":"acct_1Conn",` +
	`"related_object":{"id":"in_1","type":"invoice","url":"/v1/invoices/in_1"}}`

// A thin event is an event: kept as it came, dated to its second, its context the account and
// its related object the object, and no read model folds it.
func TestThinEventEnvelope(t *testing.T) {
	t.Parallel()
	env, err := domain.DecodeEnvelope([]byte(thinBody))
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Envelope{ID: "evt_test_65Rabc", Type: "v1.invoice.paid", Created: 1790856000,
		Account: "acct_1Conn", ObjectType: "invoice", ObjectID: "in_1"}
	if env != want {
		t.Fatalf("envelope %+v, want %+v", env, want)
	}
	if !domain.IsThin(env.Type) || domain.Route(env.Type) != "" {
		t.Fatalf("IsThin %t, Route %q: a thin event is thin and routes nowhere", domain.IsThin(env.Type), domain.Route(env.Type))
	}
	for _, typ := range domain.ReadModelEventTypes {
		if domain.IsThin(typ) {
			t.Errorf("%s is a snapshot event type taken for a thin one", typ)
		}
	}
	for _, tc := range []struct{ body, reason string }{
		// A string created is a thin event's only.
		{`{"id":"evt_1","object":"event","type":"invoice.paid","created":"2026-10-01T12:00:00Z","data":{"object":{"id":"in_1"}}}`, domain.ReasonNoCreated},
		{`{"id":"evt_1","object":"v2.core.event","type":"v1.invoice.paid","created":1790856000}`, domain.ReasonNoCreated},
		{`{"id":"evt_1","object":"v2.core.event","type":"v1.invoice.paid","created":"yesterday"}`, domain.ReasonNoCreated},
		{`{"id":"x_1","object":"v2.core.event","type":"v1.invoice.paid","created":"2026-10-01T12:00:00Z"}`, domain.ReasonNoID},
		{`{"id":"evt_1","object":"v2.core.event","created":"2026-10-01T12:00:00Z"}`, domain.ReasonNoType},
		{`{"id":"evt_1","object":"v2.core.event","type":"invoice.paid","created":"2026-10-01T12:00:00Z"}`, domain.ReasonBadField},
	} {
		_, err := domain.DecodeEnvelope([]byte(tc.body))
		var ee *domain.EnvelopeError
		if !errors.As(err, &ee) || ee.Reason != tc.reason {
			t.Errorf("%s: %v, want reason %s", tc.body, err, tc.reason)
		}
	}
}

// The snapshot of a thin event's object is dated at the thin event, names it, ranks as its type
// within the second, and carries changes.before as previous_attributes.
func TestThinSnapshot(t *testing.T) {
	t.Parallel()
	thin, err := domain.DecodeEnvelope([]byte(thinBody))
	if err != nil {
		t.Fatal(err)
	}
	object := json.RawMessage(`{"id":"in_1","object":"invoice","status":"paid"}`)
	snap, err := domain.NewThinSnapshot(thin, object, json.RawMessage(`{"status":"open"}`), 1790856100, "2023-10-16")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Type != domain.SnapshotInvoice || snap.Created != thin.Created || snap.Account != "acct_1Conn" ||
		snap.ObjectID != "in_1" || snap.Source != domain.SourceSnapshot || snap.APIVersion != "2023-10-16" {
		t.Fatalf("snapshot %+v", snap.Envelope)
	}
	// The same state fetched for it in the same second is the same event; a later fetch of it
	// sorts after, and so does a snapshot of a thin event whose ID sorts after.
	if again, _ := domain.NewThinSnapshot(thin, object, json.RawMessage(`{"status":"open"}`), 1790856100, "2023-10-16"); again.ID != snap.ID {
		t.Fatal("the same state fetched again in the same second for the same thin event is a new event")
	}
	if later, _ := domain.NewThinSnapshot(thin, json.RawMessage(`{"id":"in_1","object":"invoice","status":"void"}`), nil, 1790856101, "2023-10-16"); later.ID <= snap.ID {
		t.Fatalf("a later fetch's snapshot %s sorts before %s", later.ID, snap.ID)
	}
	next := thin
	next.ID = "evt_test_65Rabd"
	if other, _ := domain.NewThinSnapshot(next, object, nil, 1, "2023-10-16"); other.ID <= snap.ID {
		t.Fatalf("the snapshot %s of a later thin event sorts before %s", other.ID, snap.ID)
	}
	fact, err := domain.DecodeFact(snap.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if fact.ThinType != "v1.invoice.paid" || string(fact.Prev["status"]) != `"open"` || string(fact.ObjectRaw) != string(object) {
		t.Fatalf("fact %+v", fact)
	}
	// Within one second, the snapshot fetched for the payment follows the one fetched for the
	// creation, whichever ID sorts first: the thin event's type ranks it.
	created := thin
	created.ID, created.Type = "evt_test_65Zzz", "v1.invoice.created"
	first, err := domain.NewThinSnapshot(created, json.RawMessage(`{"id":"in_1","object":"invoice","status":"draft"}`), nil, 1790856050, "2023-10-16")
	if err != nil {
		t.Fatal(err)
	}
	firstFact, _ := domain.DecodeFact(first.Payload)
	for _, facts := range [][]domain.Fact{{fact, firstFact}, {firstFact, fact}} {
		ordered := domain.Order(facts)
		if ordered[1].ThinType != "v1.invoice.paid" {
			t.Fatalf("ordered %s then %s", ordered[0].ThinType, ordered[1].ThinType)
		}
	}
	// Round trip through the spill codec keeps the rank.
	back, rest, err := domain.ReadFact(fact.AppendBinary(nil))
	if err != nil || len(rest) != 0 || back.ThinType != fact.ThinType {
		t.Fatalf("codec: %+v %v", back, err)
	}
	// A thin event about an object no read model holds makes no snapshot.
	meter := thin
	meter.ObjectType = "billing.meter"
	if _, err := domain.NewThinSnapshot(meter, object, nil, 1, "2023-10-16"); err == nil {
		t.Fatal("a billing meter made a snapshot")
	}
}
