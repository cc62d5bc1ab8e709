package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stripeledger/ledger/auth"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	ts := auth.ParseTokens(" tok_new, ,tok_old ")
	if len(ts) != 2 || !ts.Valid("tok_old") || !ts.Valid("tok_new") || ts.Valid("tok_ne") || ts.Valid("") || ts.Valid("tok_new,tok_old") {
		t.Fatalf("tokens %q", ts)
	}
	req := func(header, cookie string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/charges", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: cookie})
		}
		return r
	}
	for _, c := range []struct {
		header, cookie string
		want           bool
	}{
		{"Bearer tok_old", "", true},
		{"", "tok_new", true},
		{"Bearer tok_wrong", "tok_new", false}, // the header, when there is one, is the token
		{"Basic dG9rX29sZA==", "", false},
		{"", "", false},
	} {
		if got := ts.Allowed(req(c.header, c.cookie)); got != c.want {
			t.Errorf("header %q cookie %q: allowed %v", c.header, c.cookie, got)
		}
	}
	if !auth.Tokens(nil).Allowed(req("", "")) {
		t.Fatal("no tokens configured: every request is allowed (loopback only)")
	}
}
