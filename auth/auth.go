// Package auth checks the bearer tokens of the finance API, the dashboard and /metrics: one
// place for what a token is, which role it has and what each role may do, so the JSON API and
// the UI share it without depending on each other.
//
// A token has a name (what the audit log records; the token itself is never stored, logged or
// compared in a way its timing could reveal) and a role. Roles are ordered: read < operate <
// admin, and a token may do what its role and every lower role may.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// CookieName is the cookie the dashboard's login sets; the API accepts it as a token too, on GET
// and HEAD only (see FromRequest).
const CookieName = "ledger_token"

// Role is what a token may do. The zero value, Public, is the role a route declares when it
// needs no token at all.
type Role int8

const (
	Public  Role = iota // no token needed (the OpenAPI document)
	Read                // finance: lists, objects, metrics, CSV, the dashboard
	Operate             // operators: start reconcile runs, retry quarantined events, /metrics
	Admin               // endpoints setup, redaction
)

// Roles are the roles a token can have, lowest first.
var Roles = []Role{Read, Operate, Admin}

func (r Role) String() string {
	switch r {
	case Public:
		return "public"
	case Read:
		return "read"
	case Operate:
		return "operate"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", int8(r))
}

// ParseRole reads a token's role: read, operate or admin.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want read, operate or admin)", s)
}

// Identity is who a valid token says the caller is.
type Identity struct {
	Name string
	Role Role
}

// entry is one configured token: a plain token from the environment (kept as its SHA-256, so
// comparing it is a constant-time comparison of two digests) or a hash from the tokens file.
type entry struct {
	Identity
	digest [32]byte // plain tokens
	hash   verifier // hashed tokens; nil for plain ones
	source string   // "LEDGER_API_TOKEN entry 2", "tokens.txt line 4": for duplicate-name errors
}

// Tokens are the configured tokens. A nil or empty set means the API is open, which `ledger
// serve` allows only on a loopback address.
//
// Checking a hashed token costs an argon2id (or bcrypt) computation per configured hash, tens of
// milliseconds; successful checks are remembered for CacheTTL, keyed by the SHA-256 of the token
// (never the token), so a dashboard's burst of requests pays once. Unknown tokens are never
// remembered: every one is checked against every entry, so a wrong token and an uncached right
// one take the same time, and a flood of guesses cannot push real tokens out of the cache. At most
// GOMAXPROCS-many hash checks run at once (a queue, not a refusal), which bounds the CPU and
// memory a flood of guesses can take.
type Tokens struct {
	entries []entry
	hashed  bool

	mu    sync.Mutex
	cache map[[32]byte]cached
	now   func() time.Time
	sem   chan struct{}
}

type cached struct {
	id      Identity
	expires time.Time
}

// CacheTTL is how long a successful check of a hashed token is remembered. A token removed from
// the tokens file stops working when `serve` restarts (the file is read at start), so this only
// bounds how long a verified token's digest stays in memory.
const CacheTTL = 5 * time.Minute

// cacheMax bounds the cache; when it is full, expired entries are dropped, then all of them.
const cacheMax = 4096

func newTokens(entries []entry) *Tokens {
	ts := &Tokens{entries: entries, cache: map[[32]byte]cached{}, now: time.Now, sem: make(chan struct{}, maxParallelHashes())}
	for _, e := range entries {
		ts.hashed = ts.hashed || e.hash != nil
	}
	return ts
}

// Open says whether no token is configured.
func (ts *Tokens) Open() bool { return ts == nil || len(ts.entries) == 0 }

// Len is how many tokens are configured.
func (ts *Tokens) Len() int {
	if ts == nil {
		return 0
	}
	return len(ts.entries)
}

// Names are the configured tokens' names and roles, in configuration order.
func (ts *Tokens) Names() []Identity {
	if ts == nil {
		return nil
	}
	out := make([]Identity, len(ts.entries))
	for i, e := range ts.entries {
		out[i] = e.Identity
	}
	return out
}

// Identify says whose token this is. Every configured token is compared, each in constant time,
// so the answer's timing says nothing about which token a guess resembled or how much of it was
// right.
func (ts *Tokens) Identify(token string) (Identity, bool) {
	id, ok, _ := ts.IdentifyContext(context.Background(), token)
	return id, ok
}

// IdentifyContext is Identify for a request: waiting for a turn at the hash checks (see Tokens)
// gives up when ctx ends, with ctx's cause, so that checks for clients that went away do not run
// and keep the clients still waiting behind them.
func (ts *Tokens) IdentifyContext(ctx context.Context, token string) (Identity, bool, error) {
	if ts.Open() || token == "" {
		return Identity{}, false, nil
	}
	digest := sha256.Sum256([]byte(token))
	if ts.hashed {
		ts.mu.Lock()
		c, ok := ts.cache[digest]
		ts.mu.Unlock()
		// The map is keyed by the token's digest: its lookup's timing depends on the digest, not on
		// the token, and only tokens already proven valid are in it.
		if ok && ts.now().Before(c.expires) {
			return c.id, true, nil
		}
	}
	var found Identity
	match := 0
	for _, e := range ts.entries {
		var m int
		if e.hash != nil {
			if ctx.Err() != nil {
				return Identity{}, false, context.Cause(ctx)
			}
			select {
			case ts.sem <- struct{}{}:
			case <-ctx.Done():
				return Identity{}, false, context.Cause(ctx)
			}
			m = e.hash.verify(token)
			<-ts.sem
		} else {
			m = subtle.ConstantTimeCompare(digest[:], e.digest[:])
		}
		if m == 1 && match == 0 {
			found = e.Identity
		}
		match |= m
	}
	if match != 1 {
		return Identity{}, false, nil
	}
	if ts.hashed {
		ts.remember(digest, found)
	}
	return found, true, nil
}

func (ts *Tokens) remember(digest [32]byte, id Identity) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	if len(ts.cache) >= cacheMax {
		for k, c := range ts.cache {
			if !now.Before(c.expires) {
				delete(ts.cache, k)
			}
		}
		if len(ts.cache) >= cacheMax {
			clear(ts.cache)
		}
	}
	ts.cache[digest] = cached{id: id, expires: now.Add(CacheTTL)}
}

// FromRequest is the token a request carries: the bearer token, else — on GET and HEAD only —
// the dashboard's cookie. A browser sends the cookie with any request to this host, a form
// another site posts included; only a script of the dashboard's own origin can set the
// Authorization header. So a request that changes something must carry the header: the cookie
// alone would let any page a signed-in user visits start runs or set up endpoints in their name.
func FromRequest(r *http.Request) string {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return got
	}
	if !safeMethod(r.Method) {
		return ""
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// CookieOnly says whether r is a request of a method other than GET or HEAD that carries the
// dashboard's cookie and no Authorization header: one FromRequest finds no token in.
func CookieOnly(r *http.Request) bool {
	if safeMethod(r.Method) || r.Header.Get("Authorization") != "" {
		return false
	}
	c, err := r.Cookie(CookieName)
	return err == nil && c.Value != ""
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

type ctxKey struct{}

// WithIdentity is ctx carrying the caller's identity (what Guard puts in a request's context).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext is the identity Guard found for the request; false on an open API.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
