package notify

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stripeledger/ledger/domain"
)

// The config file (LEDGER_NOTIFY_CONFIG) is YAML; docs/notify.example.yaml is the shipped one,
// with the default rules, and the README documents every field. It is checked in full when it
// is loaded — unknown fields, unknown event types, templates that do not parse or name a field
// that does not exist, channels that are unknown or whose secret's variable is unset — and the
// first problem is reported with the line it is on, so a process refuses to start rather than
// drop notifications later.

// EnvConfig is the variable that names the config file.
const EnvConfig = "LEDGER_NOTIFY_CONFIG"

// EnvLateHorizon overrides the config's late.horizon (a Go duration: 168h).
const EnvLateHorizon = "LEDGER_NOTIFY_LATE_HORIZON"

// Late defaults: an event reconciliation appended more than DefaultLateDelay after Stripe
// created it is marked late (repaired); past DefaultLateHorizon it goes into a digest instead
// of paging.
const (
	DefaultLateDelay   = time.Hour
	DefaultLateHorizon = 7 * 24 * time.Hour
)

// StripeEventTypes are the event types a rule may name beyond the ones the read models fold
// (domain.ReadModelEventTypes, all accepted): payments and payouts notify though no read model
// keeps them.
var StripeEventTypes = []string{
	"payment_intent.succeeded",
	"payment_intent.payment_failed",
	"payment_intent.canceled",
	"payment_intent.requires_action",
	"payment_intent.amount_capturable_updated",
	"payout.paid",
	"payout.failed",
	"radar.early_fraud_warning.created",
	"invoice.upcoming",
	"customer.subscription.pending_update_expired",
}

// KnownStripeEventType says whether a rule may match this Stripe event type.
func KnownStripeEventType(t string) bool {
	return domain.KnownEventType(t) || slices.Contains(StripeEventTypes, t)
}

// Config is a loaded, checked config file.
type Config struct {
	// Channels by name, and Names in the file's order.
	Channels map[string]ChannelConfig
	Rules    []*Rule
	// LateDelay and LateHorizon: see DefaultLateDelay and DefaultLateHorizon.
	LateDelay, LateHorizon time.Duration
	// Dashboard is the base of Dashboard links (DefaultDashboard).
	Dashboard string
	// Path is the file it was read from ("" when parsed from bytes).
	Path string
}

// Rule returns the named rule, nil if there is none.
func (c *Config) Rule(name string) *Rule {
	for _, r := range c.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// ChannelNames are the channels' names, sorted.
func (c *Config) ChannelNames() []string {
	names := make([]string, 0, len(c.Channels))
	for n := range c.Channels {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ConfigError is a problem with the config file, at a line (0 when the file as a whole).
type ConfigError struct {
	Path string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	p := e.Path
	if p == "" {
		p = "notify config"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p, e.Line, e.Msg)
	}
	return p + ": " + e.Msg
}

// Load reads and checks the config file at path; getenv looks up the channels' secrets
// (os.Getenv when nil) — only to see they are set: Load keeps none of them.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Path: path, Msg: fmt.Sprintf("could not read: %v", errors.Unwrap(err))}
	}
	return Parse(data, path, getenv)
}

// Parse checks a config file's bytes; path names it in errors.
func Parse(data []byte, path string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	p := &parser{path: path, getenv: getenv}
	cfg, err := p.parse(data)
	if err != nil {
		return nil, err
	}
	cfg.Path = path
	return cfg, nil
}

type parser struct {
	path   string
	getenv func(string) string
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &ConfigError{Path: p.path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// fields checks n is a mapping with only the allowed keys and returns its values by key.
func (p *parser) fields(n *yaml.Node, what string, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "%s: want a mapping", what)
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(allowed, k.Value) {
			return nil, p.errf(k, "unknown field %q in %s (want one of %s)", k.Value, what, strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, p.errf(k, "%s: %q given twice", what, k.Value)
		}
		out[k.Value] = v
	}
	return out, nil
}

func (p *parser) str(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, "%s: want a string", what)
	}
	return n.Value, nil
}

func (p *parser) strs(n *yaml.Node, what string) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "%s: want a list of strings", what)
	}
	var out []string
	for _, c := range n.Content {
		s, err := p.str(c, what)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *parser) duration(n *yaml.Node, what string) (time.Duration, error) {
	s, err := p.str(n, what)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, p.errf(n, "%s: want a positive duration such as 90m or 168h, not %q", what, s)
	}
	return d, nil
}

func (p *parser) integer(n *yaml.Node, what string) (int64, error) {
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if n.Kind != yaml.ScalarNode || err != nil {
		return 0, p.errf(n, "%s: want an integer (minor units), not %q", what, n.Value)
	}
	return v, nil
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		return false, p.errf(n, "%s: want true or false, not %q", what, n.Value)
	}
	return b, nil
}

func (p *parser) parse(data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{Path: p.path, Line: yamlErrorLine(err), Msg: err.Error()}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ConfigError{Path: p.path, Msg: "empty: want channels and rules"}
	}
	top, err := p.fields(doc.Content[0], "the config", "channels", "rules", "late", "dashboard")
	if err != nil {
		return nil, err
	}
	cfg := &Config{Channels: map[string]ChannelConfig{}, LateDelay: DefaultLateDelay, LateHorizon: DefaultLateHorizon, Dashboard: DefaultDashboard}
	if n := top["dashboard"]; n != nil {
		if cfg.Dashboard, err = p.str(n, "dashboard"); err != nil {
			return nil, err
		}
	}
	if n := top["late"]; n != nil {
		late, err := p.fields(n, "late", "delay", "horizon")
		if err != nil {
			return nil, err
		}
		if v := late["delay"]; v != nil {
			if cfg.LateDelay, err = p.duration(v, "late.delay"); err != nil {
				return nil, err
			}
		}
		if v := late["horizon"]; v != nil {
			if cfg.LateHorizon, err = p.duration(v, "late.horizon"); err != nil {
				return nil, err
			}
		}
	}
	if s := p.getenv(EnvLateHorizon); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, &ConfigError{Path: p.path, Msg: fmt.Sprintf("%s=%q: want a positive duration such as 168h", EnvLateHorizon, s)}
		}
		cfg.LateHorizon = d
	}
	chans := top["channels"]
	if chans == nil || chans.Kind != yaml.MappingNode || len(chans.Content) == 0 {
		return nil, p.errf(orDoc(chans, doc.Content[0]), "channels: want a mapping of at least one channel")
	}
	for i := 0; i+1 < len(chans.Content); i += 2 {
		ch, err := p.channel(chans.Content[i], chans.Content[i+1])
		if err != nil {
			return nil, err
		}
		if _, dup := cfg.Channels[ch.Name]; dup {
			return nil, p.errf(chans.Content[i], "channel %q declared twice", ch.Name)
		}
		cfg.Channels[ch.Name] = ch
	}
	rules := top["rules"]
	if rules == nil || rules.Kind != yaml.SequenceNode || len(rules.Content) == 0 {
		return nil, p.errf(orDoc(rules, doc.Content[0]), "rules: want a list of at least one rule")
	}
	for _, rn := range rules.Content {
		r, err := p.rule(rn, cfg)
		if err != nil {
			return nil, err
		}
		if cfg.Rule(r.Name) != nil {
			return nil, p.errf(rn, "rule %q declared twice", r.Name)
		}
		cfg.Rules = append(cfg.Rules, r)
	}
	return cfg, nil
}

func orDoc(n, doc *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return doc
}

// yamlErrorLine digs the line out of a YAML syntax error ("yaml: line 7: …").
func yamlErrorLine(err error) int {
	s := err.Error()
	if i := strings.Index(s, "line "); i >= 0 {
		j := i + 5
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(s[i+5 : j]); err == nil {
			return n
		}
	}
	return 0
}

// channel checks one channel: a known type, and every secret it needs named and set.
func (p *parser) channel(key, n *yaml.Node) (ChannelConfig, error) {
	what := "channel " + key.Value
	f, err := p.fields(n, what, "type", "url_env", "url", "secret_env", "smtp_env", "from", "to")
	if err != nil {
		return ChannelConfig{}, err
	}
	ch := ChannelConfig{Name: key.Value, Line: key.Line}
	if err := n.Decode(&ch); err != nil {
		return ChannelConfig{}, p.errf(n, "%s: %v", what, err)
	}
	ch.Name, ch.Line = key.Value, key.Line
	if ch.Name == "" {
		return ChannelConfig{}, p.errf(key, "a channel needs a name")
	}
	// secret checks a *_env field: given, and its variable set. The value is looked at, never kept.
	secret := func(field, name, purpose string) error {
		if name == "" {
			return p.errf(n, "%s: %s is required (the variable holding %s)", what, field, purpose)
		}
		if p.getenv(name) == "" {
			return p.errf(f[field], "%s: %s names %s, which is unset or empty (it must hold %s)", what, field, name, purpose)
		}
		return nil
	}
	switch ch.Type {
	case "slack":
		if err := secret("url_env", ch.URLEnv, "the incoming-webhook URL"); err != nil {
			return ChannelConfig{}, err
		}
	case "webhook":
		if ch.URL == "" || ch.URLEnv != "" {
			if err := secret("url_env", ch.URLEnv, "the endpoint's URL"); err != nil {
				return ChannelConfig{}, err
			}
		}
		if err := secret("secret_env", ch.SecretEnv, "the signing secret"); err != nil {
			return ChannelConfig{}, err
		}
	case "email":
		if err := secret("smtp_env", ch.SMTPEnv, "the SMTP server, smtp://user:password@host:587"); err != nil {
			return ChannelConfig{}, err
		}
		if ch.From == "" || len(ch.To) == 0 {
			return ChannelConfig{}, p.errf(n, "%s: an email channel needs from and to", what)
		}
	case "":
		return ChannelConfig{}, p.errf(n, "%s: type is required (slack, webhook or email)", what)
	default:
		return ChannelConfig{}, p.errf(f["type"], "%s: unknown type %q (want slack, webhook or email)", what, ch.Type)
	}
	return ch, nil
}

// rule checks and compiles one rule.
func (p *parser) rule(n *yaml.Node, cfg *Config) (*Rule, error) {
	f, err := p.fields(n, "a rule", "name", "source", "events", "channel", "filter", "subject", "text", "blocks",
		"quiet_hours", "digest", "lag_over")
	if err != nil {
		return nil, err
	}
	r := &Rule{Source: SourceStripe, Line: n.Line, LagOver: defaultLagOver}
	if f["name"] == nil {
		return nil, p.errf(n, "a rule needs a name")
	}
	if r.Name, err = p.str(f["name"], "name"); err != nil {
		return nil, err
	}
	if r.Name == "" || strings.ContainsAny(r.Name, " \t\n:") {
		return nil, p.errf(f["name"], "rule name %q: want a non-empty name without spaces or colons", r.Name)
	}
	what := "rule " + r.Name
	if v := f["source"]; v != nil {
		if r.Source, err = p.str(v, what+": source"); err != nil {
			return nil, err
		}
		if r.Source != SourceStripe && r.Source != SourceLedger {
			return nil, p.errf(v, "%s: unknown source %q (want stripe or ledger)", what, r.Source)
		}
	}
	if f["events"] == nil {
		return nil, p.errf(n, "%s: events is required", what)
	}
	if r.Events, err = p.strs(f["events"], what+": events"); err != nil {
		return nil, err
	}
	if len(r.Events) == 0 {
		return nil, p.errf(f["events"], "%s: events is empty", what)
	}
	for i, t := range r.Events {
		at := f["events"]
		if at.Kind == yaml.SequenceNode {
			at = at.Content[i]
		}
		switch {
		case r.Source == SourceLedger && !slices.Contains(LedgerKinds, t):
			return nil, p.errf(at, "%s: unknown ledger event type %q (want one of %s)", what, t, strings.Join(LedgerKinds, ", "))
		case r.Source == SourceStripe && !KnownStripeEventType(t):
			hint := ""
			if slices.Contains(LedgerKinds, t) {
				hint = " (a ledger-side kind: add source: ledger)"
			}
			return nil, p.errf(at, "%s: unknown event type %q%s", what, t, hint)
		}
	}
	if f["channel"] == nil {
		return nil, p.errf(n, "%s: channel is required", what)
	}
	if r.Channel, err = p.str(f["channel"], what+": channel"); err != nil {
		return nil, err
	}
	if _, ok := cfg.Channels[r.Channel]; !ok {
		return nil, p.errf(f["channel"], "%s: unknown channel %q (declared: %s)", what, r.Channel, strings.Join(cfg.ChannelNames(), ", "))
	}
	if v := f["filter"]; v != nil {
		if err := p.filter(v, what, &r.Filter); err != nil {
			return nil, err
		}
	}
	if f["subject"] == nil {
		return nil, p.errf(n, "%s: subject is required", what)
	}
	for _, t := range []struct {
		field string
		dst   **template.Template
	}{{"subject", &r.subject}, {"text", &r.text}, {"blocks", &r.blocks}} {
		v := f[t.field]
		if v == nil {
			continue
		}
		s, err := p.str(v, what+": "+t.field)
		if err != nil {
			return nil, err
		}
		tt, err := parseTemplate(r.Name+"."+t.field, s)
		if err != nil {
			return nil, p.errf(v, "%s: bad %s template: %v (templates see only: %s)", what, t.field, err, strings.Join(FieldNames, ", "))
		}
		*t.dst = tt
	}
	if v := f["quiet_hours"]; v != nil {
		if r.QuietHours, err = p.quietHours(v, what); err != nil {
			return nil, err
		}
	}
	if v := f["digest"]; v != nil {
		if r.Digest, err = p.str(v, what+": digest"); err != nil {
			return nil, err
		}
		if r.Digest != DigestHourly && r.Digest != DigestDaily {
			return nil, p.errf(v, "%s: digest %q: want hourly or daily", what, r.Digest)
		}
	}
	if v := f["lag_over"]; v != nil {
		if r.Source != SourceLedger || !slices.Contains(r.Events, KindProjectionLag) {
			return nil, p.errf(v, "%s: lag_over is for source: ledger rules with %s", what, KindProjectionLag)
		}
		if r.LagOver, err = p.duration(v, what+": lag_over"); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (p *parser) filter(n *yaml.Node, what string, fl *Filter) error {
	what += ": filter"
	f, err := p.fields(n, what, "amount", "currency", "livemode", "account", "metadata", "status", "reason")
	if err != nil {
		return err
	}
	if v := f["amount"]; v != nil {
		a, err := p.fields(v, what+".amount", "gte", "lte")
		if err != nil {
			return err
		}
		for k, dst := range map[string]**int64{"gte": &fl.AmountGTE, "lte": &fl.AmountLTE} {
			if a[k] == nil {
				continue
			}
			x, err := p.integer(a[k], what+".amount."+k)
			if err != nil {
				return err
			}
			*dst = &x
		}
	}
	if v := f["currency"]; v != nil {
		cs, err := p.strs(v, what+".currency")
		if err != nil {
			return err
		}
		for _, c := range cs {
			if len(c) != 3 {
				return p.errf(v, "%s.currency: %q is not an ISO 4217 code", what, c)
			}
			fl.Currency = append(fl.Currency, strings.ToLower(c))
		}
	}
	if v := f["livemode"]; v != nil {
		b, err := p.boolean(v, what+".livemode")
		if err != nil {
			return err
		}
		fl.Livemode = &b
	}
	if v := f["account"]; v != nil {
		if fl.Account, err = p.str(v, what+".account"); err != nil {
			return err
		}
		if fl.Account != "platform" && fl.Account != "any" && !strings.HasPrefix(fl.Account, "acct_") {
			return p.errf(v, "%s.account: %q: want platform, any or an acct_… ID", what, fl.Account)
		}
	}
	if v := f["metadata"]; v != nil {
		if v.Kind != yaml.MappingNode {
			return p.errf(v, "%s.metadata: want a mapping of key: value", what)
		}
		fl.Metadata = map[string]string{}
		for i := 0; i+1 < len(v.Content); i += 2 {
			val, err := p.str(v.Content[i+1], what+".metadata."+v.Content[i].Value)
			if err != nil {
				return err
			}
			fl.Metadata[v.Content[i].Value] = val
		}
	}
	if v := f["status"]; v != nil {
		if fl.Status, err = p.strs(v, what+".status"); err != nil {
			return err
		}
	}
	if v := f["reason"]; v != nil {
		if fl.Reason, err = p.strs(v, what+".reason"); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) quietHours(n *yaml.Node, what string) (*QuietHours, error) {
	what += ": quiet_hours"
	f, err := p.fields(n, what, "from", "to", "timezone")
	if err != nil {
		return nil, err
	}
	q := &QuietHours{Location: time.UTC}
	for k, dst := range map[string]*time.Duration{"from": &q.From, "to": &q.To} {
		v := f[k]
		if v == nil {
			return nil, p.errf(n, "%s: %s is required (HH:MM)", what, k)
		}
		t, err := time.Parse("15:04", v.Value)
		if err != nil {
			return nil, p.errf(v, "%s.%s: %q: want HH:MM", what, k, v.Value)
		}
		*dst = time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	}
	if v := f["timezone"]; v != nil {
		loc, err := time.LoadLocation(v.Value)
		if err != nil {
			return nil, p.errf(v, "%s.timezone: unknown time zone %q", what, v.Value)
		}
		q.Location = loc
	}
	return q, nil
}
