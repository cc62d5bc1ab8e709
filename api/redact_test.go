package api_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
)

// POST /api/v1/redactions erases a customer (201 with the summary), answers 200 when nothing is
// left, 404 for a customer the log does not know, 400 for a body that is not the request, 401
// without the token, 503 when serve holds no checkpoint key to sign the record; only the 201
// changes the ledger.
func TestRedactionsAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.New(t)
	ev, err := domain.NewEvent([]byte(`{"id":"evt_c1","object":"event","api_version":"2023-10-16","created":1770000000,"livemode":false,`+
		`"type":"customer.created","data":{"object":{"id":"cus_A1","object":"customer","email":"ann@example.com","name":"Ann","created":1770000000,"metadata":{}}}}`),
		domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(db.Pool)
	if _, err := store.Append(ctx, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("fin:read:tok_read, dpo:admin:tok_1"), CheckpointKey: key}))
	defer srv.Close()
	url := srv.URL + "/api/v1/redactions"

	keyless := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("dpo:admin:tok_1")}))
	defer keyless.Close()
	if status, _, body := post(t, keyless.URL+"/api/v1/redactions", "tok_1", `{"customer":"cus_A1","reason":"r"}`); status != 503 ||
		!strings.Contains(body, `"no_checkpoint_key"`) || !strings.Contains(body, "LEDGER_CHECKPOINT_KEY") {
		t.Fatalf("no checkpoint key: %d %s", status, body)
	}

	for _, tc := range []struct {
		token, body string
		status      int
		code        string
	}{
		{"", `{"customer":"cus_A1","reason":"r"}`, 401, "unauthorized"},
		{"tok_read", `{"customer":"cus_A1","reason":"r"}`, 403, "forbidden"},
		{"tok_1", `not json`, 400, "invalid_body"},
		{"tok_1", `{"customer":"cus_A1","reason":"r","extra":1}`, 400, "invalid_body"},
		{"tok_1", `{"customer":"cus_A1","reason":"r"} {}`, 400, "invalid_body"},
		{"tok_1", `{"customer":7,"reason":"r"}`, 400, "invalid_body"},
		{"tok_1", `{"customer":"cus_A1"}`, 400, "invalid_reason"},
		{"tok_1", `{"reason":"r"}`, 400, "invalid_customer"},
		{"tok_1", `{"customer":"ch_1","reason":"r"}`, 400, "invalid_customer"},
		{"tok_1", `{"customer":"cus_Nobody","reason":"r"}`, 404, "not_found"},
	} {
		status, _, body := post(t, url, tc.token, tc.body)
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal([]byte(body), &e)
		if status != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
			t.Errorf("%s: got %d %s, want %d %s", tc.body, status, body, tc.status, tc.code)
		}
	}
	if h, _ := store.Head(ctx); h.Position != 1 {
		t.Fatalf("a refused request changed the log: %+v", h)
	}

	status, _, body := post(t, url, "tok_1", `{"customer":"cus_A1","reason":"ticket 12","requested_by":"dpo"}`)
	var sum struct {
		Redacted int    `json:"events_redacted"`
		EventID  string `json:"redaction_event_id"`
		Position int64  `json:"redaction_position"`
		By       string `json:"requested_by"`
	}
	if err := json.Unmarshal([]byte(body), &sum); err != nil || status != 201 || sum.Redacted != 1 || sum.Position != 2 || sum.By != "dpo (token dpo)" || sum.EventID == "" {
		t.Fatalf("redaction: %d %s", status, body)
	}
	var email *string
	if err := db.Pool.QueryRow(ctx, `SELECT email FROM ledger.customers WHERE id = 'cus_A1'`).Scan(&email); err != nil || email == nil || *email != domain.RedactedMarker {
		t.Fatalf("the read model still holds the email: %v %v", email, err)
	}
	if status, _, body := post(t, url, "tok_1", `{"customer":"cus_A1","reason":"again"}`); status != 200 || !strings.Contains(body, `"events_redacted":0`) {
		t.Fatalf("nothing left: %d %s", status, body)
	}
}

// A customer whose event was edited behind the log's back is not redacted: 409 naming the
// position, and nothing changes, so the edit is still there for `ledger verify` to find.
func TestRedactionsAPIRefusesATamperedLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.New(t)
	ev, err := domain.NewEvent([]byte(`{"id":"evt_c1","object":"event","api_version":"2023-10-16","created":1770000000,"livemode":false,`+
		`"type":"customer.created","data":{"object":{"id":"cus_A1","object":"customer","email":"ann@example.com","balance":-500,"created":1770000000,"metadata":{}}}}`),
		domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(db.Pool)
	if _, err := store.Append(ctx, []domain.Event{ev}); err != nil {
		t.Fatal(err)
	}
	testkit.Tamper(t, db, `UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '-500', '-99999'), 'UTF8') WHERE position = 1`)
	_, key, _ := ed25519.GenerateKey(nil)
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("dpo:admin:tok_1"), CheckpointKey: key}))
	defer srv.Close()
	status, _, body := post(t, srv.URL+"/api/v1/redactions", "tok_1", `{"customer":"cus_A1","reason":"r"}`)
	if status != 409 || !strings.Contains(body, `"log_tampered"`) || !strings.Contains(body, "position 1") || !strings.Contains(body, "ledger verify") {
		t.Fatalf("want 409 naming position 1, got %d %s", status, body)
	}
	if h, _ := store.Head(ctx); h.Position != 1 {
		t.Fatalf("a refused redaction appended: %+v", h)
	}
}
