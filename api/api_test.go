package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The reconciliation history over HTTP: a valid token (any of several) is required, filters are
// checked, and each answer is precise.
func TestReconcileRunsAPI(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO ledger.reconcile_runs (job, status, missing_found, repaired, drift)
		VALUES ('events', 'succeeded', 7, 7, '{}'), ('objects', 'partial', 0, 2, '{"subscriptions.status": 2}'), ('events', 'running', 0, 0, '{}')`); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("tok_new, tok_old")}))
	defer srv.Close()
	base := srv.URL + "/api/v1/reconcile/runs"

	for _, tok := range []string{"", "tok_wrong", "tok_ne"} {
		if code, body := get(t, base, tok); code != http.StatusUnauthorized || !strings.Contains(body, "unauthorized") {
			t.Fatalf("token %q: %d %s", tok, code, body)
		}
	}
	code, body := get(t, base+"?job=events", "tok_old")
	var list struct {
		Object string
		Data   []struct {
			ID           int64
			Job, Status  string
			MissingFound int `json:"missing_found"`
		}
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 || len(list.Data) != 2 || list.Data[0].Status != "running" || list.Data[1].MissingFound != 7 {
		t.Fatalf("%d %s", code, body)
	}
	if code, body := get(t, base+"?limit=1", "tok_new"); code != 200 || strings.Count(body, `"job"`) != 1 {
		t.Fatalf("limit: %d %s", code, body)
	}
	for q, want := range map[string]string{"?job=refunds": "invalid_job", "?limit=0": "invalid_limit", "?limit=x": "invalid_limit"} {
		if code, body := get(t, base+q, "tok_new"); code != 400 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
	if code, body := get(t, base+"/"+strconv.FormatInt(list.Data[1].ID, 10), "tok_new"); code != 200 || !strings.Contains(body, `"missing_found":7`) {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, _ := get(t, base+"/999", "tok_new"); code != 404 {
		t.Fatalf("missing run: %d", code)
	}
	if code, _ := get(t, base+"/abc", "tok_new"); code != 400 {
		t.Fatalf("bad id: %d", code)
	}
	if code, _ := get(t, srv.URL+"/api/v1/nothing", "tok_new"); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
}
