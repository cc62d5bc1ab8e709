package main_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/internal/testkit"
)

// ledger redact: exit 2 for a request that cannot run (one without the checkpoint key
// included), exit 1 (nothing changed) for a customer the log does not know, exit 0 with what it
// did; verify then still holds, says how many events are redacted, and with the checkpoint key's
// public half authenticates the redaction's record.
func TestRedactCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.New(t)
	key := filepath.Join(t.TempDir(), "checkpoint.key")
	if _, err := integrity.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	keyless := []string{"DATABASE_URL=" + db.URL, "LEDGER_REDACT_METADATA_KEYS=crm_id, nickname"}
	env := append(slices.Clone(keyless), "LEDGER_CHECKPOINT_KEY="+key)
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
	r := ledger(t, keyless, "redact", "--customer", "cus_B2", "--reason", "ticket 9")
	if r.code != 2 || !strings.Contains(r.stderr, "a redaction is signed with the checkpoint key: set LEDGER_CHECKPOINT_KEY or --key") {
		t.Fatalf("no key: %+v", r)
	}
	r = ledger(t, keyless, "redact", "--customer", "cus_B2", "--reason", "ticket 9", "--key", key+".missing")
	if r.code != 2 || !strings.Contains(r.stderr, "checkpoint key") {
		t.Fatalf("a missing key file: %+v", r)
	}
	r = ledger(t, env, "redact", "--customer", "cus_Nobody", "--reason", "ticket 9")
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
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: 2 events") || !strings.Contains(r.stdout, "1 redacted events") ||
		!strings.Contains(r.stdout, "1 redaction records seen; who wrote them is not checked: --checkpoints FILE --public-key K authenticates them") {
		t.Fatalf("verify: %+v", r)
	}
	cps := filepath.Join(t.TempDir(), "checkpoints")
	if r := ledger(t, append(env, "LEDGER_CHECKPOINT_SINK=file:"+cps), "checkpoint"); r.code != 0 {
		t.Fatalf("checkpoint: %+v", r)
	}
	r = ledger(t, env, "verify", "--checkpoints", cps, "--public-key", key+".pub")
	if r.code != 0 || !strings.Contains(r.stdout, "redactions: 1 of 1 signed by a given key") {
		t.Fatalf("verify --checkpoints: %+v", r)
	}
	r = ledger(t, env, "redact", "--customer", "cus_B2", "--reason", "ticket 9", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"events_redacted": 0`) {
		t.Fatalf("second run: %+v", r)
	}
}

// A redaction record anyone could append, unsigned, lets a past payload be rewritten with every
// trigger on: plain verify passes, `verify --checkpoints … --public-key …` exits 1 naming the
// record. And `ledger redact` of a customer whose event was edited exits 1 and changes nothing.
func TestVerifyNamesAForgedRedaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.New(t)
	dir := t.TempDir()
	key, cps := filepath.Join(dir, "checkpoint.key"), filepath.Join(dir, "checkpoints")
	if _, err := integrity.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL, "LEDGER_CHECKPOINT_KEY=" + key, "LEDGER_CHECKPOINT_SINK=file:" + cps}
	ev, err := domain.NewEvent([]byte(`{"id":"evt_c1","object":"event","api_version":"2023-10-16","created":1770000000,"livemode":false,`+
		`"type":"customer.created","data":{"object":{"id":"cus_B2","object":"customer","email":"bob@example.com","balance":-500,"created":1770000000,"metadata":{}}}}`),
		domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(db.Pool)
	if _, err := store.Append(ctx, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if r := ledger(t, env, "checkpoint"); r.code != 0 {
		t.Fatalf("checkpoint: %+v", r)
	}

	forged := []byte(strings.Replace(string(ev.Payload), "-500", "-99999", 1))
	sum := sha256.Sum256(forged)
	rec, err := domain.NewRedactionEvent(domain.Redaction{ID: "red_forged", Customer: "cus_B2", Reason: "r", By: "dpo", At: 1770000100,
		Events: []domain.RedactedEvent{{Position: 1, EventID: "evt_c1", PayloadSHA256: hex.EncodeToString(sum[:])}}}, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := store.Append(ctx, []domain.Event{rec}); err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger.events SET payload = $1, redacted_by_position = 2 WHERE position = 1`, forged); err != nil {
		t.Fatal(err)
	}
	if r := ledger(t, env, "verify"); r.code != 0 || !strings.Contains(r.stdout, "1 redaction records seen; who wrote them is not checked") {
		t.Fatalf("plain verify: %+v", r)
	}
	r := ledger(t, env, "verify", "--checkpoints", cps, "--public-key", key+".pub")
	if r.code != 1 || !strings.Contains(r.stdout, "unauthenticated: redaction evt_ledger_red_forged (position 2): the redaction record is not signed") ||
		!strings.Contains(r.stderr, "evt_ledger_red_forged") {
		t.Fatalf("verify --checkpoints: %+v", r)
	}

	// Behind the triggers' back, a payload edited; redact refuses to erase the evidence.
	ev2, err := domain.NewEvent([]byte(`{"id":"evt_d1","object":"event","api_version":"2023-10-16","created":1770000000,"livemode":false,`+
		`"type":"customer.created","data":{"object":{"id":"cus_D4","object":"customer","email":"dee@example.com","balance":-500,"created":1770000000,"metadata":{}}}}`),
		domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, []domain.Event{ev2}); err != nil {
		t.Fatal(err)
	}
	testkit.Tamper(t, db, `UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '-500', '-7'), 'UTF8') WHERE position = 3`)
	r = ledger(t, env, "redact", "--customer", "cus_D4", "--reason", "ticket 9")
	if r.code != 1 || !strings.Contains(r.stderr, "evt_d1 at position 3") || !strings.Contains(r.stderr, "ledger verify") || !strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("redact over an edited event: %+v", r)
	}
	if h, _ := store.Head(ctx); h.Position != 3 {
		t.Fatalf("a refused redaction appended: %+v", h)
	}
}
