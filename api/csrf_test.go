package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
)

// The dashboard's cookie is a token on GET and HEAD only: a form another site posts carries the
// cookie of a signed-in admin, and must not reach an operate or admin route. With the token in
// the Authorization header the same POST goes through.
func TestCookieAloneCannotChangeAnything(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	a := api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("root:admin:tok_admin")})
	srv := httptest.NewServer(a)
	defer srv.Close()
	rows := routeRequests()
	do := func(method, path, contentType, body string, cookie, header bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if cookie {
			req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: "tok_admin"})
		}
		if header {
			req.Header.Set("Authorization", "Bearer tok_admin")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	posts := 0
	for _, route := range a.Routes() {
		method, _, _ := strings.Cut(route.Pattern, " ")
		rr := rows[route.Pattern]
		if method != http.MethodPost {
			continue
		}
		posts++
		// What a cross-site form sends: a urlencoded body, the cookie, no Authorization header.
		form := url.Values{"url": {"https://attacker.example/hook"}}.Encode()
		code, body := do(method, rr.path, "application/x-www-form-urlencoded", form, true, false)
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal([]byte(body), &e)
		if code != http.StatusUnauthorized || e.Error.Code != "unauthorized" || !strings.Contains(e.Error.Message, "Authorization header") {
			t.Errorf("cookie-only %s: %d %.200s", route.Pattern, code, body)
		}
		// The same with the JSON body the route wants: still refused.
		if code, body := do(method, rr.path, "application/json", rr.body, true, false); code != http.StatusUnauthorized {
			t.Errorf("cookie-only JSON %s: %d %.200s", route.Pattern, code, body)
		}
		if code, body := do(method, rr.path, "application/json", rr.body, true, true); code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Errorf("%s with the Authorization header: %d %.200s", route.Pattern, code, body)
		}
	}
	if posts < 4 {
		t.Fatalf("only %d POST routes", posts)
	}
	// Reading with the cookie, as the dashboard does, still works.
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		if code, body := do(method, "/api/v1/summary", "", "", true, false); code != http.StatusOK {
			t.Errorf("%s with the cookie: %d %.200s", method, code, body)
		}
	}
}
