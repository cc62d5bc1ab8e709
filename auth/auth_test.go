package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/stripeledger/ledger/auth"
)

func TestParseEnv(t *testing.T) {
	t.Parallel()
	ts, err := auth.ParseEnv(" tok_new, ,tok_old , ops:operate:tok_ops, root:admin:tok_root, $a:b:c")
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]auth.Identity{
		"tok_new":  {Name: "api-token-1", Role: auth.Read},
		"tok_old":  {Name: "api-token-2", Role: auth.Read},
		"tok_ops":  {Name: "ops", Role: auth.Operate},
		"tok_root": {Name: "root", Role: auth.Admin},
		"$a:b:c":   {Name: "api-token-5", Role: auth.Read}, // "$a" is no name: a plain token with colons
	} {
		if got, ok := ts.Identify(tok); !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", tok, got, ok, want)
		}
	}
	for _, bad := range []string{"", "tok_ne", "tok_new,tok_old", "root:admin:tok_root", "tok_new "} {
		if id, ok := ts.Identify(bad); ok {
			t.Errorf("%q identified as %+v", bad, id)
		}
	}
	if ts, err := auth.ParseEnv(" , "); err != nil || !ts.Open() {
		t.Fatalf("no tokens: %v %v", ts, err)
	}
	for env, want := range map[string]string{
		"x:read:tok_1, x:admin:tok_2":   "LEDGER_API_TOKEN entry 2: token name \"x\" is already used by LEDGER_API_TOKEN entry 1",
		"tok_1, ops:operate:$2b$10$abc": "LEDGER_API_TOKEN entry 2 (ops): a hash belongs in LEDGER_TOKENS_FILE",
		"bad name:read:tok_1":           `LEDGER_API_TOKEN entry 1: name "bad name"`,
		"ops:read:":                     "LEDGER_API_TOKEN entry 1 (ops): empty token",
		// A typo in the role is refused, not taken as one plain read token.
		"tok_1, ops:operater:ltk_x": "LEDGER_API_TOKEN entry 2: looks like NAME:ROLE:TOKEN but its second field is no role",
		"ops:ltk_x":                 "LEDGER_API_TOKEN entry 1: looks like NAME:ROLE:TOKEN",
		"a:b:c":                     "LEDGER_API_TOKEN entry 1: looks like NAME:ROLE:TOKEN",
	} {
		_, err := auth.ParseEnv(env)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", env, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "ltk_x") || strings.Contains(err.Error(), "operater")) {
			t.Errorf("%q: the error shows the entry's value: %v", env, err)
		}
	}
}

func TestHashes(t *testing.T) {
	t.Parallel()
	h, err := auth.Hash("ltk_secret")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q %v", h, err)
	}
	if h2, _ := auth.Hash("ltk_secret"); h2 == h {
		t.Fatal("two hashes of one token share a salt")
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("ltk_bcrypt"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte("a read "+h+"\nb admin "+string(bc)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := auth.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := ts.Identify("ltk_secret"); !ok || id.Name != "a" {
		t.Fatalf("argon2id: %+v %v", id, ok)
	}
	if id, ok := ts.Identify("ltk_bcrypt"); !ok || id.Name != "b" || id.Role != auth.Admin {
		t.Fatalf("bcrypt: %+v %v", id, ok)
	}
	if _, ok := ts.Identify("ltk_secreT"); ok {
		t.Fatal("a wrong token matched")
	}
	tok, err := auth.NewToken()
	if err != nil || !strings.HasPrefix(tok, "ltk_") || len(tok) < 40 {
		t.Fatalf("new token %q %v", tok, err)
	}
}

// A bad tokens file is refused naming the file and the line, and never quoting a hash.
func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h, _ := auth.Hash("ltk_finance")
	good := filepath.Join(dir, "tokens")
	if err := os.WriteFile(good, []byte("# name role hash\n\nfinance read "+h+"\n\tops\toperate\t"+h[:len(h)-1]+"A\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := auth.LoadFile(good)
	if err != nil || ts.Len() != 2 {
		t.Fatalf("%v %v", ts, err)
	}
	if id, ok := ts.Identify("ltk_finance"); !ok || id != (auth.Identity{Name: "finance", Role: auth.Read}) {
		t.Fatalf("%+v %v", id, ok)
	}
	secretish := strings.Split(h, "$")[5]
	for body, want := range map[string]string{
		"finance read " + h + " extra\n":                                             "line 1: want NAME ROLE HASH, found 4 field(s)",
		"\nfinance superuser " + h + "\n":                                            `line 2: unknown role "superuser" (want read, operate or admin)`,
		"finance read ltk_plaintoken\n":                                              "line 1: the third field must be an argon2id or bcrypt hash",
		"finance read $argon2id$v=19$m=1,t=1,p=1$AAAA$" + secretish + "\n":           "line 1: argon2id m=1",
		"finance read $argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$" + secretish + "\n": `line 1: hash algorithm "argon2i"`,
		"finance read $2b$10$short\n":                                                "line 1: not a valid bcrypt hash",
		"a read " + h + "\na admin " + h + "\n":                                      `line 2: token name "a" is already used by ` + dir,
		"# only comments\n":                                                          "no tokens in it",
	} {
		p := filepath.Join(dir, "bad")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := auth.LoadFile(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
		if err != nil && strings.Contains(err.Error(), secretish) {
			t.Errorf("the error quotes the hash: %v", err)
		}
	}
	if _, err := auth.LoadFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
		t.Fatalf("missing file: %v", err)
	}
}

type records struct {
	mu   sync.Mutex
	list []auth.Record
}

func (r *records) Record(_ context.Context, rec auth.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
}

// A route's role is enforced: no token or an unknown one 401 (the same answer), a lower role 403
// naming the role needed, the role or a higher one through; each request with a token audited.
func TestGuard(t *testing.T) {
	t.Parallel()
	audit := &records{}
	g := &auth.Guard{Tokens: auth.MustParseEnv("r:read:tok_r,o:operate:tok_o,a:admin:tok_a"), Audit: audit}
	h := g.Require("POST /thing/{id}", auth.Operate, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.FromContext(r.Context())
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(id.Name))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(header string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/thing/1?secret=x", nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	code, missing := call("")
	if code != 401 {
		t.Fatalf("no token: %d", code)
	}
	code, unknown := call("Bearer tok_x")
	if code != 401 || unknown != missing {
		t.Fatalf("unknown token: %d %q, missing: %q", code, unknown, missing)
	}
	code, body := call("Bearer tok_r")
	var e struct {
		Error struct {
			Code, Message string
			RequiredRole  string `json:"required_role"`
		}
	}
	_ = json.Unmarshal([]byte(body), &e)
	if code != 403 || e.Error.Code != "forbidden" || e.Error.RequiredRole != "operate" || !strings.Contains(e.Error.Message, "role operate") {
		t.Fatalf("read token: %d %s", code, body)
	}
	if code, body := call("Bearer tok_o"); code != 202 || body != "o" {
		t.Fatalf("operate token: %d %s", code, body)
	}
	if code, body := call("Bearer tok_a"); code != 202 || body != "a" {
		t.Fatalf("admin token: %d %s", code, body)
	}
	want := []auth.Record{{Status: 401}, {Token: "r", Role: auth.Read, Status: 403}, {Token: "o", Role: auth.Operate, Status: 202}, {Token: "a", Role: auth.Admin, Status: 202}}
	if len(audit.list) != len(want) {
		t.Fatalf("audited %+v", audit.list)
	}
	for i, w := range want {
		got := audit.list[i]
		if got.Token != w.Token || got.Role != w.Role || got.Status != w.Status || got.Method != "POST" || got.Route != "POST /thing/{id}" ||
			got.Path != "/thing/1" || got.Client != "127.0.0.1" || got.At.IsZero() || got.Duration <= 0 {
			t.Errorf("record %d: %+v, want %+v", i, got, w)
		}
	}
	// Open (no tokens): everything passes, nothing is audited.
	open := &auth.Guard{Audit: audit}
	rec := httptest.NewRecorder()
	open.Require("GET /x", auth.Admin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 200 || len(audit.list) != len(want) {
		t.Fatalf("open: %d, %d records", rec.Code, len(audit.list))
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	proxies, err := auth.ParseProxies("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.ParseProxies("10.0.0.0/8,proxy.local"); err == nil || !strings.Contains(err.Error(), `"proxy.local"`) {
		t.Fatalf("bad proxy: %v", err)
	}
	for _, c := range []struct {
		remote, xff string
		p           *auth.Proxies
		want        string
	}{
		{"203.0.113.9:5000", "198.51.100.1", nil, "203.0.113.9"},                      // no trusted proxy: the header is ignored
		{"203.0.113.9:5000", "198.51.100.1", proxies, "203.0.113.9"},                  // the peer is no proxy
		{"127.0.0.1:5000", "198.51.100.1", proxies, "198.51.100.1"},                   // through a trusted proxy
		{"10.1.2.3:5000", "6.6.6.6, 198.51.100.1, 10.9.9.9", proxies, "198.51.100.1"}, // the leftmost is the client's own claim
		{"127.0.0.1:5000", "", proxies, "127.0.0.1"},
		{"127.0.0.1:5000", "junk, 198.51.100.1", proxies, "198.51.100.1"},
		{"[::ffff:127.0.0.1]:5000", "2001:db8::1", proxies, "2001:db8::1"},
		{"[fe80::1%eth0]:5000", "", nil, "fe80::1"}, // a zone is no part of an inet
		{"127.0.0.1:5000", "fe80::2%eth1", proxies, "fe80::2"},
		{"@", "", nil, ""}, // a unix socket's peer: no address, NULL in the audit log
		{"not an address", "198.51.100.1", proxies, ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := c.p.ClientAddr(r); got != c.want {
			t.Errorf("%s via %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
