// Package auth checks the bearer tokens of the finance API and the dashboard: one place for
// what a valid token is, so the JSON API and the UI share it without depending on each other.
package auth

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// CookieName is the cookie the dashboard's login sets; the API accepts it as a token too.
const CookieName = "ledger_token"

// Tokens are the accepted tokens (LEDGER_API_TOKEN, comma-separated to rotate). None means the
// API is open, which `ledger serve` allows only on a loopback address.
type Tokens []string

// ParseTokens splits LEDGER_API_TOKEN.
func ParseTokens(s string) Tokens {
	var out Tokens
	for t := range strings.SplitSeq(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Open says whether no token is configured.
func (ts Tokens) Open() bool { return len(ts) == 0 }

// Valid reports whether token is one of the tokens. Every configured token is compared, in
// constant time, so the answer's timing says nothing about how much of a guess was right or
// which token it resembled.
func (ts Tokens) Valid(token string) bool {
	if token == "" {
		return false
	}
	match := 0
	for _, t := range ts {
		match |= subtle.ConstantTimeCompare([]byte(token), []byte(t))
	}
	return match == 1
}

// FromRequest is the token a request carries: the bearer token, else the dashboard's cookie.
func FromRequest(r *http.Request) string {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return got
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// Allowed says whether the request may use what the tokens guard: any request when none is
// configured, else one carrying a valid token.
func (ts Tokens) Allowed(r *http.Request) bool {
	return ts.Open() || ts.Valid(FromRequest(r))
}
