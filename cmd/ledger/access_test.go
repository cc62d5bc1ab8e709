package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/internal/testkit"
)

// hashLine runs `ledger tokens hash --name --role` with token on stdin and returns its line.
func hashLine(t *testing.T, token, name, role string) string {
	t.Helper()
	cmd := exec.Command(ledgerBin, "tokens", "hash", "--name", name, "--role", role)
	cmd.Env = baseEnv()
	cmd.Stdin = strings.NewReader(token + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tokens hash: %v", err)
	}
	line := strings.TrimSpace(string(out))
	if !strings.HasPrefix(line, name+" "+role+" $argon2id$v=19$") || strings.Contains(line, token) {
		t.Fatalf("tokens hash printed %q", line)
	}
	return line
}

func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
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

// serve with a tokens file of hashes (made by `ledger tokens hash`) and a named
// LEDGER_API_TOKEN: roles are enforced, /metrics answers on its own loopback listener without a
// token and on the main port only to operate, every call that presented a token is in the audit
// log once serve has stopped, and `ledger audit` lists and filters them. No token is printed.
func TestServeRolesAuditAndMetrics(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	file := filepath.Join(t.TempDir(), "tokens")
	lines := hashLine(t, "ltk_finance_secret", "finance", "read") + "\n" + hashLine(t, "ltk_ops_secret", "ops", "operate") + "\n"
	if err := os.WriteFile(file, []byte("# finance and operators\n"+lines), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=whsec_access_test", "LEDGER_TOKENS_FILE=" + file,
		"LEDGER_API_TOKEN=root:admin:ltk_root_secret"}
	server := startLedger(t, env, "serve", "--addr", "127.0.0.1:0")
	base := "http://" + server.listening(t)
	metrics := "http://" + server.metricsAddr(t) + "/metrics"
	if !strings.HasPrefix(metrics, "http://127.0.0.1:") {
		t.Fatalf("metrics listener at %s", metrics)
	}

	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v1/summary", "ltk_finance_secret", 200},
		{"GET", "/api/v1/summary", "ltk_finance_secret", 200}, // cached now
		{"GET", "/api/v1/summary", "ltk_nobody", 401},
		{"GET", "/api/v1/summary", "", 401}, // not audited: no token
		{"POST", "/api/v1/reconcile/runs", "ltk_finance_secret", 403},
		{"POST", "/api/v1/reconcile/runs", "ltk_ops_secret", 503}, // allowed; this server has no Stripe key
		{"POST", "/api/v1/endpoints/setup", "ltk_ops_secret", 403},
		{"POST", "/api/v1/endpoints/setup", "ltk_root_secret", 400}, // allowed; no URL given
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "ltk_finance_secret", 403},
		{"GET", "/metrics", "ltk_ops_secret", 200},
	} {
		if code, body := call(t, c.method, base+c.path, c.token); code != c.want {
			t.Errorf("%s %s with %q: %d %.200s", c.method, c.path, c.token, code, body)
		}
	}
	code, scraped := call(t, "GET", metrics, "")
	if code != 200 || !strings.Contains(scraped, "ledger_audit_records_written_total") {
		t.Fatalf("metrics listener: %d %.200s", code, scraped)
	}
	if err := server.stop(); err != nil {
		t.Fatalf("serve did not exit 0: %v", err)
	}

	r := ledger(t, []string{"DATABASE_URL=" + db.URL}, "audit", "--json", "--limit", "100")
	var entries []struct {
		Token  *string `json:"token_name"`
		Role   *string
		Method string
		Route  string
		Path   string
		Status int
		Client *string `json:"client_addr"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil || r.code != 0 {
		t.Fatalf("ledger audit: %+v (%v)", r, err)
	}
	if len(entries) != 9 {
		t.Fatalf("%d audit entries, want the 9 calls that presented a token: %s", len(entries), r.stdout)
	}
	last, first := entries[0], entries[len(entries)-1]
	if last.Route != "GET /metrics" || last.Token == nil || *last.Token != "ops" || *last.Role != "operate" || last.Status != 200 ||
		first.Route != "GET /api/v1/summary" || *first.Token != "finance" || first.Client == nil || *first.Client != "127.0.0.1" {
		t.Fatalf("audit entries %s", r.stdout)
	}
	r = ledger(t, []string{"DATABASE_URL=" + db.URL}, "audit", "--token", "finance", "--status", "403")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stdout, "POST /api/v1/reconcile/runs") {
		t.Fatalf("audit --token finance --status 403: %+v", r)
	}
	r = ledger(t, []string{"DATABASE_URL=" + db.URL}, "audit", "--status", "401")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, " -  ") {
		t.Fatalf("audit --status 401: %+v", r)
	}
	for _, out := range []string{server.stderr.String(), server.stdout.String(), scraped} {
		for _, secret := range []string{"ltk_finance_secret", "ltk_ops_secret", "ltk_root_secret", "ltk_nobody"} {
			if strings.Contains(out, secret) {
				t.Fatalf("%s was printed or exported", secret)
			}
		}
	}
}

// A bad tokens file or LEDGER_API_TOKEN stops serve before it listens: exit 2, naming the file
// and line (or the entry), never the value.
func TestServeRefusesBadTokens(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	dir := t.TempDir()
	good := hashLine(t, "ltk_a", "a", "read")
	for name, c := range map[string]struct {
		file, env, want string
	}{
		"unknown role": {file: "a read " + strings.Fields(good)[2] + "\nb root " + strings.Fields(good)[2] + "\n", want: `line 2: unknown role "root"`},
		"bad line":     {file: "a read\n", want: "line 1: want NAME ROLE HASH, found 2 field(s)"},
		"bad hash":     {file: "a read $argon2id$v=19$m=19456,t=2,p=1$!!!$xyz\n", want: "line 1: argon2id salt"},
		"plain token":  {file: "a read ltk_plaintext_secret\n", want: "line 1: the third field must be an argon2id or bcrypt hash"},
		"unreadable":   {want: "tokens file: open"},
		"same name":    {file: good + "\n", env: "a:admin:ltk_other_secret", want: `token name "a" is already used by LEDGER_API_TOKEN entry 1`},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if c.file != "" {
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r := ledger(t, []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=whsec_x", "LEDGER_TOKENS_FILE=" + path, "LEDGER_API_TOKEN=" + c.env},
			"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "off")
		if r.code != 2 || !strings.Contains(r.stderr, path) || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d: %s", name, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "ltk_plaintext_secret") || strings.Contains(r.stderr, "ltk_other_secret") {
			t.Errorf("%s: a token was printed: %s", name, r.stderr)
		}
	}
}

// A role typo in LEDGER_API_TOKEN (ops:operater:…) stops serve (exit 2) naming the entry's place,
// where it used to start with the whole entry taken as one plain read token.
func TestServeRefusesARoleTypo(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	r := ledger(t, []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=whsec_x", "LEDGER_API_TOKEN=fin:read:ltk_fin_secret, ops:operater:ltk_ops_secret"},
		"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "off")
	if r.code != 2 || !strings.Contains(r.stderr, "LEDGER_API_TOKEN entry 2") || !strings.Contains(r.stderr, "no role") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, secret := range []string{"ltk_ops_secret", "operater", "ltk_fin_secret"} {
		if strings.Contains(r.stderr, secret) {
			t.Errorf("the entry's value (%s) was printed: %s", secret, r.stderr)
		}
	}
}

// `ledger audit` prints a stored value that holds control characters quoted, with Go's escapes:
// a newline, tab or terminal escape in a path cannot forge a row or rewrite the terminal.
func TestAuditPrintsControlCharactersEscaped(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	forged := "/api/v1/charges/x\n2026-01-01T00:00:00Z  root  admin  POST\tforged\x1b[2J"
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO ledger.audit_log (at, token_name, role, method, route, path, status, client_addr, duration_us)
		VALUES (now(), NULL, NULL, 'GET', 'GET /api/v1/charges/{id}', $1, 401, '127.0.0.1', 10)`, forged); err != nil {
		t.Fatal(err)
	}
	r := ledger(t, []string{"DATABASE_URL=" + db.URL}, "audit")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("want a header and one row: %+v", r)
	}
	if strings.ContainsAny(r.stdout, "\x1b\t") || !strings.Contains(r.stdout, strconv.Quote(forged)) {
		t.Fatalf("path printed raw: %q", r.stdout)
	}
}
