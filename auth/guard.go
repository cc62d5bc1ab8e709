package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Record is one audited request: who (the token's name and role), what (method, the route's
// pattern as registered, the path without its query), the answer and when, from where, how long.
type Record struct {
	At       time.Time
	Token    string // the token's name; "" when the token presented is not configured (401)
	Role     Role   // Public when the token is not configured
	Method   string
	Route    string // the pattern the route was registered with, e.g. "GET /api/v1/charges/{id}"
	Path     string // as sent, still percent-encoded (r.URL.EscapedPath): ASCII, whatever the client put in it
	Status   int
	Client   string // the client's IP address (see Proxies); "" when the peer's is no IP address
	Duration time.Duration
}

// Recorder takes audit records. Record must not block for long: the request waits for it. ctx is
// the request's: a Recorder that must wait gives up when it ends (and counts the record lost).
type Recorder interface {
	Record(ctx context.Context, rec Record)
}

// Guard enforces a route's role and audits every request that presents a token.
type Guard struct {
	Tokens  *Tokens  // nil or empty: open (every request passes, nothing is audited)
	Audit   Recorder // nil: no audit
	Proxies *Proxies // whose X-Forwarded-For to believe; nil: nobody's
}

// StatusClientClosedRequest is the status audited (and answered, to nobody) for a request that
// ended — its client went away — while it waited for its turn at the token hash checks. The
// number is nginx's for the same thing; it is no status a client can receive.
const StatusClientClosedRequest = 499

// Check says whether r may use a route that needs role need: 0 when it may, else the status to
// answer (401 without a configured token, 403 with one of a lower role, 499 when the request
// ended before its token could be checked).
func (g *Guard) Check(r *http.Request, need Role) (Identity, bool, int) {
	if need == Public || g.Tokens.Open() {
		return Identity{}, false, 0
	}
	id, ok, err := g.Tokens.IdentifyContext(r.Context(), FromRequest(r))
	switch {
	case err != nil:
		return Identity{}, false, StatusClientClosedRequest
	case !ok:
		return Identity{}, false, http.StatusUnauthorized
	case id.Role < need:
		return id, true, http.StatusForbidden
	}
	return id, true, 0
}

// Require wraps h so that only tokens of role need or above reach it: no token or an unknown
// one is answered 401, a lower role 403 naming the role needed. Each request that presents a
// token, refused or not, is audited once h has answered.
func (g *Guard) Require(route string, need Role, h http.Handler) http.Handler {
	if need != Public && (need < Read || need > Admin) {
		panic(fmt.Sprintf("auth: route %s declares %v", route, need))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// A cookie-only POST presents a token too, even though it is not taken: audited (as an
		// unknown token's), since it is how a forged cross-site request would show.
		cookieOnly := need != Public && CookieOnly(r)
		presented := FromRequest(r) != "" || cookieOnly
		id, known, status := g.Check(r, need)
		switch status {
		case http.StatusUnauthorized:
			if cookieOnly {
				WriteCookieRefused(w, r.Method)
			} else {
				WriteUnauthorized(w)
			}
		case StatusClientClosedRequest:
			writeError(w, status, map[string]string{"code": "client_closed_request",
				"message": "the request ended before its token could be checked"})
		case http.StatusForbidden:
			WriteForbidden(w, need, id.Role)
		}
		if status != 0 {
			if presented {
				g.Observe(r, route, id, known, status, start)
			}
			return
		}
		if !known || !presented {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		// Deferred, so that a handler that aborts a streamed answer (panic(http.ErrAbortHandler))
		// is audited too, with the status it had sent.
		defer func() { g.Observe(r, route, id, true, sw.code(), start) }()
		h.ServeHTTP(sw, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// Observe audits one request (no-op without a Recorder). known says whether id is a configured
// token's; when not, the record names no token.
func (g *Guard) Observe(r *http.Request, route string, id Identity, known bool, status int, start time.Time) {
	if g.Audit == nil {
		return
	}
	// The escaped path, not r.URL.Path: decoded, %00 or %ff would put NUL or invalid UTF-8 in the
	// record, which Postgres refuses as text.
	rec := Record{At: start, Method: r.Method, Route: route, Path: r.URL.EscapedPath(), Status: status,
		Client: g.Proxies.ClientAddr(r), Duration: time.Since(start)}
	if known {
		rec.Token, rec.Role = id.Name, id.Role
	}
	g.Audit.Record(r.Context(), rec)
}

// WriteUnauthorized answers 401 in the API's error shape. It says the same for a missing and an
// unknown token.
func WriteUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ledger"`)
	writeError(w, http.StatusUnauthorized, map[string]string{"code": "unauthorized",
		"message": "a valid bearer token is required: Authorization: Bearer <token>"})
}

// WriteCookieRefused answers 401 to a request that changes something and carries only the
// dashboard's cookie (see FromRequest).
func WriteCookieRefused(w http.ResponseWriter, method string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ledger"`)
	writeError(w, http.StatusUnauthorized, map[string]string{"code": "unauthorized",
		"message": fmt.Sprintf("the dashboard's cookie is accepted on GET and HEAD only; a %s needs the token in the Authorization header: Authorization: Bearer <token>", method)})
}

// WriteForbidden answers 403 naming the role the route needs.
func WriteForbidden(w http.ResponseWriter, need, have Role) {
	writeError(w, http.StatusForbidden, map[string]string{"code": "forbidden", "required_role": need.String(),
		"message": fmt.Sprintf("this needs a token of role %s (or above); this token's role is %s", need, have)})
}

func writeError(w http.ResponseWriter, status int, e map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		if s.status == 0 {
			s.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Proxies are the reverse proxies whose X-Forwarded-For is believed (LEDGER_TRUSTED_PROXIES).
// Without them the client is the connection's peer address: a header anyone can send must not
// decide what the audit log says.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies reads comma-separated IP addresses and CIDR prefixes ("10.0.0.0/8,127.0.0.1").
func ParseProxies(s string) (*Proxies, error) {
	p := &Proxies{}
	for raw := range strings.SplitSeq(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if pre, err := netip.ParsePrefix(raw); err == nil {
			p.prefixes = append(p.prefixes, pre.Masked())
			continue
		}
		a, err := netip.ParseAddr(raw)
		if err != nil {
			return nil, fmt.Errorf("LEDGER_TRUSTED_PROXIES: %q is neither an IP address nor a CIDR prefix", raw)
		}
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return p, nil
}

func (p *Proxies) trusted(a netip.Addr) bool {
	if p == nil {
		return false
	}
	a = a.Unmap()
	for _, pre := range p.prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the client's IP address: the connection's peer, or — when the peer is a trusted
// proxy — the last address in X-Forwarded-For that is not a trusted proxy itself (each proxy
// appends the address it received from, so entries further left are the client's own claims).
// An IPv6 zone (fe80::1%eth0) is dropped: it names an interface of this host, not the client,
// and is no valid inet. A peer that is no IP address (a listener of another kind) gives "".
func (p *Proxies) ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	peer = peer.Unmap().WithZone("")
	if !p.trusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed entry: believe nothing to its left
		}
		client = a.Unmap().WithZone("")
		if !p.trusted(client) {
			break
		}
	}
	return client.String()
}
