package notify

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// exampleEnv sets every variable the shipped config names.
func exampleEnv(name string) string {
	return map[string]string{
		"SLACK_PAYMENTS_WEBHOOK_URL": "http://127.0.0.1:1/payments",
		"SLACK_FAILURES_WEBHOOK_URL": "http://127.0.0.1:1/failures",
		"SLACK_DISPUTES_WEBHOOK_URL": "http://127.0.0.1:1/disputes",
		"SLACK_OPS_WEBHOOK_URL":      "http://127.0.0.1:1/ops",
		"LEDGER_SMTP_URL":            "smtp://user:secret@127.0.0.1:1",
	}[name]
}

func examplePath(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "docs", "notify.example.yaml")
}

func TestShippedConfigLoadsWithTheDefaultRules(t *testing.T) {
	cfg, err := Load(examplePath(t), exampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"payments":      {"payment_intent.succeeded", "charge.succeeded"},
		"failures":      {"charge.failed", "invoice.payment_failed"},
		"disputes":      {"charge.dispute.created"},
		"checkouts":     {"checkout.session.completed"},
		"cancellations": {"customer.subscription.deleted"},
	}
	for name, events := range want {
		r := cfg.Rule(name)
		if r == nil {
			t.Fatalf("no rule %s", name)
		}
		if strings.Join(r.Events, ",") != strings.Join(events, ",") {
			t.Errorf("rule %s matches %v, want %v", name, r.Events, events)
		}
	}
	if r := cfg.Rule("ledger-health"); r == nil || r.Source != SourceLedger {
		t.Errorf("no ledger-side rule: %+v", r)
	}
	if r := cfg.Rule("projection-lag"); r == nil || r.LagOver.Minutes() != 5 {
		t.Errorf("projection-lag: %+v", r)
	}
	if cfg.LateDelay != DefaultLateDelay || cfg.LateHorizon != DefaultLateHorizon {
		t.Errorf("late %v / %v", cfg.LateDelay, cfg.LateHorizon)
	}
}

const okChannels = `channels:
  ops: {type: slack, url_env: OPS_URL}
`

func TestConfigErrorsNameTheLine(t *testing.T) {
	env := func(k string) string {
		if k == "OPS_URL" || k == "HOOK_SECRET" {
			return "set"
		}
		return ""
	}
	cases := []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"unknown event type", okChannels + `rules:
  - name: a
    events: [charge.succeeded,
             charge.succeded]
    channel: ops
    subject: x
`, 6, `unknown event type "charge.succeded"`},
		{"ledger kind without source", okChannels + `rules:
  - name: a
    events: [reconcile.failed]
    channel: ops
    subject: x
`, 5, "add source: ledger"},
		{"bad template syntax", okChannels + `rules:
  - name: a
    events: [charge.succeeded]
    channel: ops
    subject: "{{.amount"
`, 7, "bad subject template"},
		{"template names the payload", okChannels + `rules:
  - name: a
    events: [charge.succeeded]
    channel: ops
    subject: ok
    text: "{{.payload}}"
`, 8, `map has no entry for key "payload"`},
		{"channel whose secret is unset", `channels:
  ops: {type: slack, url_env: OPS_URL}
  hook:
    type: webhook
    url: https://example.com/hook
    secret_env: UNSET_SECRET
rules:
  - {name: a, events: [charge.succeeded], channel: ops, subject: x}
`, 6, "UNSET_SECRET, which is unset or empty"},
		{"channel with no secret named", `channels:
  mail: {type: email, from: a@example.com, to: [b@example.com]}
rules:
  - {name: a, events: [charge.succeeded], channel: mail, subject: x}
`, 2, "smtp_env is required"},
		{"unknown channel", okChannels + `rules:
  - name: a
    events: [charge.succeeded]
    channel: pagerduty
    subject: x
`, 6, `unknown channel "pagerduty"`},
		{"unknown field in a rule", okChannels + `rules:
  - name: a
    events: [charge.succeeded]
    chanel: ops
`, 6, `unknown field "chanel"`},
		{"unknown field in a filter", okChannels + `rules:
  - name: a
    events: [charge.succeeded]
    channel: ops
    subject: x
    filter:
      amount: {gte: 100}
      country: fr
`, 10, `unknown field "country"`},
		{"unknown top-level field", okChannels + `rulez: []
`, 3, `unknown field "rulez"`},
		{"bad quiet hours", okChannels + `rules:
  - name: a
    events: [charge.succeeded]
    channel: ops
    subject: x
    quiet_hours: {from: "22:00", to: "7 am", timezone: Europe/Paris}
`, 8, `quiet_hours.to: "7 am"`},
		{"unknown time zone", okChannels + `rules:
  - name: a
    events: [charge.succeeded]
    channel: ops
    subject: x
    quiet_hours: {from: "22:00", to: "07:00", timezone: Mars/Olympus}
`, 8, `unknown time zone`},
		{"bad amount", okChannels + `rules:
  - name: a
    events: [charge.succeeded]
    channel: ops
    subject: x
    filter: {amount: {gte: 10.5}}
`, 8, "want an integer (minor units)"},
		{"YAML syntax", okChannels + `rules:
  - name: a
   events: [charge.succeeded]
`, 3, "did not find expected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(c.yaml), "notify.yaml", env)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want a *ConfigError, got %v", err)
			}
			if ce.Line != c.line || !strings.Contains(ce.Msg, c.want) {
				t.Errorf("got %q (line %d), want line %d and %q", err, ce.Line, c.line, c.want)
			}
			if !strings.HasPrefix(err.Error(), "notify.yaml:") {
				t.Errorf("error does not name the file: %q", err)
			}
		})
	}
}

// A secret's value is checked for presence only: it never reaches the config or an error.
func TestConfigKeepsNoSecret(t *testing.T) {
	const secret = "https://hooks.slack.example/services/T000/B000/XXXXsecret"
	secretEnv := func(k string) string {
		if k == "OPS_URL" {
			return secret
		}
		return ""
	}
	cfg, err := Parse([]byte(okChannels+`rules:
  - {name: a, events: [charge.succeeded], channel: ops, subject: "{{.type}}"}
`), "", secretEnv)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(
		// every string the config holds, as %+v prints it
		sprintAll(cfg), "\n", ""), " ", ""), "XXXXsecret") {
		t.Fatal("the config holds a secret's value")
	}
	_, err = Parse([]byte(okChannels+"rules: [{name: a, events: [nope], channel: ops, subject: x}]\n"), "", secretEnv)
	if err == nil || strings.Contains(err.Error(), "XXXXsecret") {
		t.Fatalf("error %v", err)
	}
}

func TestLateHorizonFromTheEnvironment(t *testing.T) {
	env := func(k string) string {
		return map[string]string{"OPS_URL": "x", EnvLateHorizon: "48h"}[k]
	}
	cfg, err := Parse([]byte(okChannels+"rules: [{name: a, events: [charge.succeeded], channel: ops, subject: x}]\n"), "", env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LateHorizon.Hours() != 48 {
		t.Fatalf("horizon %v", cfg.LateHorizon)
	}
	bad := func(k string) string { return map[string]string{"OPS_URL": "x", EnvLateHorizon: "a week"}[k] }
	if _, err := Parse([]byte(okChannels+"rules: [{name: a, events: [charge.succeeded], channel: ops, subject: x}]\n"), "", bad); err == nil || !strings.Contains(err.Error(), EnvLateHorizon) {
		t.Fatalf("want an error naming %s, got %v", EnvLateHorizon, err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v", err)
	}
	if _, statErr := os.Stat("nope.yaml"); statErr == nil {
		t.Fatal("unexpected file")
	}
}

func sprintAll(cfg *Config) string {
	s := fmt.Sprintf("%+v %+v", *cfg, cfg.Channels)
	for _, r := range cfg.Rules {
		s += fmt.Sprintf("%+v", *r)
	}
	return s
}
