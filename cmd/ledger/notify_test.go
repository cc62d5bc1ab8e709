package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNotifyRulesCheckExitsTwoWithTheLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("channels:\n  ops: {type: slack, url_env: OPS_URL}\nrules:\n  - name: a\n    events: [charge.succeded]\n    channel: ops\n    subject: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := ledger(t, []string{"OPS_URL=https://hooks.example/secret-path"}, "notify", "rules", "--check", bad)
	if res.code != 2 || !strings.Contains(res.stderr, "bad.yaml:5:") || !strings.Contains(res.stderr, `unknown event type "charge.succeded"`) {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	if strings.Contains(res.stderr, "secret-path") {
		t.Fatalf("a secret in the error: %q", res.stderr)
	}
	// The shipped file, with its variables set, checks clean.
	env := []string{"SLACK_PAYMENTS_WEBHOOK_URL=x", "SLACK_FAILURES_WEBHOOK_URL=x", "SLACK_DISPUTES_WEBHOOK_URL=x",
		"SLACK_OPS_WEBHOOK_URL=x", "LEDGER_SMTP_URL=smtp://u:p@127.0.0.1:1"}
	res = ledger(t, env, "notify", "rules", "--check", filepath.Join("..", "..", "docs", "notify.example.yaml"))
	if res.code != 0 || !strings.Contains(res.stdout, "ok, 7 rules, 5 channels") {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	// Without the secret's variable, the shipped file is refused at the channel's line.
	res = ledger(t, env[1:], "notify", "rules", "--check", filepath.Join("..", "..", "docs", "notify.example.yaml"))
	if res.code != 2 || !strings.Contains(res.stderr, "notify.example.yaml:19:") || !strings.Contains(res.stderr, "SLACK_PAYMENTS_WEBHOOK_URL") {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
}
