package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
)

func chargeEvent(t *testing.T, id, amount string) domain.Event {
	t.Helper()
	body := fmt.Appendf(nil, `{"id":%q,"object":"event","api_version":"2023-10-16","created":1780000000,"livemode":false,"type":"charge.succeeded",`+
		`"data":{"object":{"id":"ch_%s","object":"charge","amount":%s,"currency":"usd","status":"succeeded","created":1780000000}}}`, id, id, amount)
	e, err := domain.NewEvent(body, domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// replay, `projections status` and `projections retry` report a quarantined event with exit
// code 1 and say what to do; bad arguments exit 2 with a message.
func TestProjectionsCommands(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	if _, err := eventstore.New(db.Pool).Append(context.Background(),
		[]domain.Event{chargeEvent(t, "evt_ok", "500"), chargeEvent(t, "evt_bad", `"lots"`)}); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL}

	r := ledger(t, env, "replay")
	if r.code != 1 || !strings.Contains(r.stderr, "1 event(s) could not be folded") || !strings.Contains(r.stdout, "charges 1,") {
		t.Fatalf("replay: %+v", r)
	}
	r = ledger(t, env, "projections", "status")
	if r.code != 1 || !strings.Contains(r.stdout, "evt_bad") || !strings.Contains(r.stdout, "position     2 of 2") ||
		!strings.Contains(r.stderr, "ledger projections retry --all") {
		t.Fatalf("status: %+v", r)
	}
	r = ledger(t, env, "projections", "status", "--json")
	var st struct {
		Position   int64 `json:"position"`
		Quarantine []struct {
			EventID string `json:"event_id"`
			Error   string `json:"error"`
		} `json:"quarantine"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Position != 2 || len(st.Quarantine) != 1 || st.Quarantine[0].EventID != "evt_bad" {
		t.Fatalf("status --json: %v %+v", err, r)
	}
	for _, bad := range [][]string{
		{"projections", "retry"},
		{"projections", "retry", "--all", "evt_bad"},
		{"projections", "retry", "--all", "--identity", "psychic"},
		{"replay", "--projection", "nope"},
	} {
		if r := ledger(t, env, bad...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: want exit 2 with a message, got %+v", bad, r)
		}
	}
	if r := ledger(t, env, "projections", "retry", "evt_ok"); r.code != 1 || !strings.Contains(r.stderr, "not quarantined") {
		t.Fatalf("retry of an event not quarantined: %+v", r)
	}
	r = ledger(t, env, "projections", "retry", "--all")
	if r.code != 1 || !strings.Contains(r.stdout, "0 folded, 1 still quarantined") || !strings.Contains(r.stdout, "evt_bad") {
		t.Fatalf("retry --all: %+v", r)
	}
}

// The status counts thin events by how their fetch stands and lists the failing ones; one given
// up makes it exit 1.
func TestProjectionsStatusShowsThinFetches(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	for _, id := range []string{"evt_test_65a", "evt_test_65b", "evt_test_65c"} {
		ev, err := domain.NewEvent([]byte(`{"id":"`+id+`","object":"v2.core.event","type":"v1.invoice.paid","created":"2026-10-01T12:00:00.000Z",`+
			`"livemode":false,"related_object":{"id":"in_`+id+`","type":"invoice","url":"/v1/invoices/in_`+id+`"}}`), domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eventstore.New(db.Pool).Append(ctx, []domain.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	// As the fetcher leaves them: one fetched, one retrying, one given up.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO ledger.thin_fetches (event_id, position, type, created, livemode, object_type, object_id,
		status, attempts, next_attempt_at, last_error, done_at) VALUES
		('evt_test_65a', 1, 'v1.invoice.paid', now(), false, 'invoice', 'in_a', 'fetched', 0, NULL, NULL, now()),
		('evt_test_65b', 2, 'v1.invoice.paid', now(), false, 'invoice', 'in_b', 'pending', 2, '2026-12-01T00:02:00Z', 'GET /v1/invoices/in_b: Stripe answered 429 rate_limit: slow down', NULL),
		('evt_test_65c', 3, 'v1.invoice.paid', now(), false, 'invoice', 'in_c', 'failed', 10, NULL, 'GET /v1/invoices/in_c: Stripe answered 404 resource_missing: No such invoice', now())`); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL}
	r := ledger(t, env, "projections", "status")
	for _, want := range []string{"1 to fetch (1 retrying after a failure), 1 failed, 1 fetched", "evt_test_65b", "2026-12-01T00:02:00Z", "429 rate_limit",
		"evt_test_65c", "never (given up)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.code != 1 || !strings.Contains(r.stderr, "1 thin event(s)") || !strings.Contains(r.stderr, "ledger projections refetch --failed") ||
		strings.Contains(r.stdout, "evt_test_65a\t") {
		t.Fatalf("status: %+v", r)
	}
	// events show says the same of each thin event.
	for id, want := range map[string]string{
		"evt_test_65b": "thin fetch   pending, 2 attempt(s) failed, next at 2026-12-01T00:02:00Z: GET /v1/invoices/in_b: Stripe answered 429",
		"evt_test_65c": "thin fetch   given up after 10 attempt(s): GET /v1/invoices/in_c: Stripe answered 404",
		"evt_test_65a": "thin fetch   fetched at ",
	} {
		if r := ledger(t, env, "events", "show", id); r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("events show %s lacks %q: %+v", id, want, r)
		}
	}
	if r := ledger(t, env, "events", "show", "evt_test_65b", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"thin_fetch":{"status":"pending","attempts":2`) {
		t.Errorf("events show --json: %+v", r)
	}
	// The given-up one is queued again, due now, its attempts reset; then nothing is left failed.
	if r := ledger(t, env, "projections", "refetch", "--failed"); r.code != 0 || !strings.Contains(r.stdout, "queued 1 thin event(s)") {
		t.Fatalf("refetch --failed: %+v", r)
	}
	var status string
	var attempts int
	if err := db.Pool.QueryRow(ctx, `SELECT status, attempts FROM ledger.thin_fetches WHERE event_id = 'evt_test_65c'`).Scan(&status, &attempts); err != nil ||
		status != "pending" || attempts != 0 {
		t.Fatalf("after refetch: %s, %d attempts, %v", status, attempts, err)
	}
	if r := ledger(t, env, "projections", "status"); r.code != 0 {
		t.Fatalf("status after refetch: %+v", r)
	}
	// A named one is queued again whatever became of it; an unknown name is an error.
	if r := ledger(t, env, "projections", "refetch", "evt_test_65a", "evt_nope"); r.code != 1 || !strings.Contains(r.stderr, "queued 1") ||
		!strings.Contains(r.stderr, "1 of the 2 named") {
		t.Fatalf("refetch by name: %+v", r)
	}
	if r := ledger(t, env, "projections", "refetch"); r.code != 2 || !strings.Contains(r.stderr, "--failed") {
		t.Fatalf("refetch with nothing named: %+v", r)
	}
}
