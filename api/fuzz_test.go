package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
)

// Any path and query string under /api/v1 gets a precise answer from the real handler on a real
// database: 200, or a 4xx whose JSON body says what was wrong — never a 500, never a body that is
// not JSON (CSV aside), and never a filter value that reaches SQL as anything but a parameter
// (a quote or a semicolon in a filter is a value that matches nothing).
func FuzzAPIRequest(f *testing.F) {
	for _, seed := range []string{
		"subscriptions?status=active&limit=5", "charges?customer=cus_1'%3B%20DROP%20TABLE%20ledger.events%3B--",
		"charges?created_gte=2026-05-01&created_lt=2026-06-01T00:00:00Z", "invoices?cursor=eyJjIjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpIjoiaW5fMSJ9",
		"subscriptions?as_of=2026-05-01", "refunds?as_of=2026-05-01", "disputes?limit=0", "customers?format=xml",
		"metrics/mrr?from=2026-01-01&to=2026-06-01&interval=month", "metrics/revenue?interval=week", "metrics/churn?currency=USD",
		"metrics/movements?from=2026-06-01&to=2026-01-01", "events/evt_1", "subscriptions/sub_%00", "charges?currency=usd&format=csv",
		"reconcile/runs?job=events&limit=3", "reconcile/runs/-1", "projections/status", "summary", "openapi.json", "nothing?x=1",
	} {
		f.Add(seed)
	}
	db := testkit.New(f)
	h := api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("tok_fuzz")})
	f.Fuzz(func(t *testing.T, pathAndQuery string) {
		u, err := url.Parse("/api/v1/" + pathAndQuery)
		if err != nil || u.Host != "" || u.Scheme != "" || u.Opaque != "" {
			t.Skip()
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL = u
		req.RequestURI = u.RequestURI()
		req.Header.Set("Authorization", "Bearer tok_fuzz")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code, body := rec.Code, rec.Body.Bytes()
		if code >= 500 {
			t.Fatalf("%s: %d %s", u, code, body)
		}
		if (code == http.StatusMovedPermanently || code == http.StatusTemporaryRedirect) && rec.Header().Get("Location") != "" {
			return // an unclean path (/./, //) is redirected to its clean form
		}
		if code >= 300 && code != http.StatusNotFound && code != http.StatusMethodNotAllowed && code != http.StatusBadRequest {
			t.Fatalf("%s: unexpected status %d %s", u, code, body)
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s: %d, body is not a JSON object: %q", u, code, body)
		}
		if code >= 400 {
			e, _ := v["error"].(map[string]any)
			if msg, _ := e["message"].(string); msg == "" {
				t.Fatalf("%s: %d without an error message: %s", u, code, body)
			}
		}
	})
}
