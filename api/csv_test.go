package api_test

import (
	"context"
	"encoding/csv"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/query"
)

// CSV cells of text columns that a spreadsheet would run as a formula are prefixed with ';
// numbers (a negative amount), times and the header are not touched; JSON answers are unchanged.
func TestCSVNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO ledger.disputes (id, charge, amount, currency, status, reason, created, livemode, account, event_id, event_created) VALUES
		('dp_1', '=HYPERLINK("http://evil.example","x")', -500, 'usd', '+won', '@SUM(A1:A9)', '2026-05-01T00:00:00Z', true, NULL, '-evt_1', '2026-05-01T00:00:00Z'),
		('dp_2', 'ch_2', 700, 'usd', E'\tlost', E'\rfraudulent', '2026-05-02T00:00:00Z', true, '=acct_1', 'evt_2', '2026-05-02T00:00:00Z'),
		('dp_3', 'ch_3', 0, 'usd', 'won', 'a=b', '2026-05-03T00:00:00Z', false, 'acct_3', 'evt_3', '2026-05-03T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("tok_csv")}))
	defer srv.Close()
	code, body := get(t, srv.URL+"/api/v1/disputes?format=csv", "tok_csv")
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || code != 200 || len(rows) != 4 {
		t.Fatalf("%d %v %s", code, err, body)
	}
	want := [][]string{
		{"id", "charge", "amount", "currency", "status", "reason", "created", "livemode", "account", "event_id", "event_created"},
		{"dp_3", "ch_3", "0", "usd", "won", "a=b", "2026-05-03 00:00:00+00", "false", "acct_3", "evt_3", "2026-05-03 00:00:00+00"},
		{"dp_2", "ch_2", "700", "usd", "'\tlost", "'\rfraudulent", "2026-05-02 00:00:00+00", "true", "'=acct_1", "evt_2", "2026-05-02 00:00:00+00"},
		{"dp_1", `'=HYPERLINK("http://evil.example","x")`, "-500", "usd", "'+won", "'@SUM(A1:A9)", "2026-05-01 00:00:00+00", "true", "", "'-evt_1", "2026-05-01 00:00:00+00"},
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
	code, body = get(t, srv.URL+"/api/v1/disputes/dp_1", "tok_csv")
	if code != 200 || !strings.Contains(body, `"reason":"@SUM(A1:A9)"`) || !strings.Contains(body, `"amount":-500`) || !strings.Contains(body, `"status":"+won"`) {
		t.Fatalf("JSON changed: %d %.400s", code, body)
	}
}

func TestSpreadsheetSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "=1+2": "'=1+2", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\tx": "'\tx", "\rx": "'\rx",
		"x=1": "x=1", "'=1": "'=1", " =1": " =1", "usd": "usd"} {
		if got := query.SpreadsheetSafe(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
