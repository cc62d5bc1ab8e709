package main_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
)

// ledger redact: exit 2 for a request that cannot run, exit 1 (nothing changed) for a customer
// the log does not know, exit 0 with what it did; verify then still holds and says how many
// events are redacted.
func TestRedactCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.New(t)
	env := []string{"DATABASE_URL=" + db.URL, "LEDGER_REDACT_METADATA_KEYS=crm_id, nickname"}
	ev, err := domain.NewEvent([]byte(`{"id":"evt_c1","object":"event","api_version":"2023-10-16","created":1770000000,"livemode":false,`+
		`"type":"customer.created","data":{"object":{"id":"cus_B2","object":"customer","email":"bob@example.com","name":"Bob","created":1770000000,"metadata":{"crm_id":"crm-77"}}}}`),
		domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(db.Pool)
	if _, err := store.Append(ctx, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"redact", "--customer", "cus_B2"},
		{"redact", "--reason", "r"},
		{"redact", "--customer", "bob", "--reason", "r"},
		{"redact", "--customer", "cus_B2", "--reason", "r", "--identity", "nonsense"},
	} {
		if r := ledger(t, env, args...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: want exit 2, got %+v", args, r)
		}
	}
	r := ledger(t, env, "redact", "--customer", "cus_Nobody", "--reason", "ticket 9")
	if r.code != 1 || !strings.Contains(r.stderr, "no event about this customer") || !strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("unknown customer: %+v", r)
	}
	if h, _ := store.Head(ctx); h.Position != 1 {
		t.Fatalf("an unknown customer's redaction appended: %+v", h)
	}

	r = ledger(t, env, "redact", "--customer", "cus_B2", "--reason", "ticket 9", "--by", "dpo")
	if r.code != 0 || !strings.Contains(r.stdout, "redacted 1 of the 1 events of cus_B2") || !strings.Contains(r.stdout, "at position 2, by dpo") {
		t.Fatalf("redact: %+v", r)
	}
	got, err := store.Get(ctx, "evt_c1")
	if err != nil || !got.Redacted() || strings.Contains(string(got.Payload), "bob@") || strings.Contains(string(got.Payload), "crm-77") {
		t.Fatalf("the payload: %s %v", got.Payload, err)
	}
	r = ledger(t, env, "verify")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 2 events") || !strings.Contains(r.stdout, "1 redacted events") {
		t.Fatalf("verify: %+v", r)
	}
	r = ledger(t, env, "redact", "--customer", "cus_B2", "--reason", "ticket 9", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"events_redacted": 0`) {
		t.Fatalf("second run: %+v", r)
	}
}
