// Package notify tells people what the ledger sees: payments to Slack, failures to email,
// disputes paged at once, reconciliation findings to the operators — once per event, never on a
// replay of the read models.
//
// Two halves meet at one table, ledger.notify_outbox (migrations/016_notify_outbox.sql):
//
//   - the runner tails the log from its own checkpoint on the runners' lease, matches each event
//     against the rules of the config file (LEDGER_NOTIFY_CONFIG), renders each match's message
//     and inserts one outbox row per (rule, event) — a duplicate or repaired event finds its row
//     already there, and a replay of the read models never reads this table;
//   - the deliverer sends the pending rows through watermill's Router (retry with back-off, a
//     poison queue) to each rule's channel — Slack-compatible incoming webhooks, HTTPS webhooks
//     signed the way Stripe signs its own, email over SMTP — and marks a row delivered in the
//     transaction that records the answer.
//
// A crash between a channel's acceptance and that transaction sends the row once more, with the
// same idempotency key; nothing stronger is claimed.
package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Message is what a channel sends: rendered by the runner from a rule's templates, stored as the
// outbox row's message (JSON), read back by the deliverer. Channels use what suits them: Slack
// the text and blocks, email the subject and text, a webhook the whole message.
type Message struct {
	// Subject is one line: an email's subject, a Slack message's first block.
	Subject string `json:"subject"`
	// Text is the body as plain text (Slack's fallback text, the email body).
	Text string `json:"text"`
	// Blocks are Slack Block Kit blocks, when the rule or the default layout gives any.
	Blocks json.RawMessage `json:"blocks,omitempty"`
	// Fields are the documented fields the templates saw (Fields), for webhook receivers.
	Fields map[string]any `json:"fields,omitempty"`
	// Late marks an event that reconciliation appended long after Stripe created it.
	Late bool `json:"late,omitempty"`
}

// Row is one row of ledger.notify_outbox.
type Row struct {
	ID             int64      `json:"id"`
	Rule           string     `json:"rule"`
	EventID        string     `json:"event_id"`
	Position       *int64     `json:"position"`
	Channel        string     `json:"channel"`
	IdempotencyKey string     `json:"idempotency_key"`
	Message        Message    `json:"message"`
	Late           bool       `json:"late"`
	Digest         bool       `json:"digest"`
	Backfill       bool       `json:"backfill"` // enqueued by `ledger notify backfill` (migrations/017)
	DigestOf       *string    `json:"digest_of"`
	Status         string     `json:"status"` // pending, delivered, failed, digested
	Attempts       int        `json:"attempts"`
	NotBefore      time.Time  `json:"not_before"`
	LastError      *string    `json:"last_error"`
	EventCreated   *time.Time `json:"event_created"`
	EnqueuedAt     time.Time  `json:"enqueued_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
}

// Outbox row statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
	StatusDigested  = "digested"
)

// IdempotencyKey is a notification's key: the same for a (rule, event) on every attempt and in
// every process, so a receiver can drop a repeat.
func IdempotencyKey(rule, eventID string) string {
	sum := sha256.Sum256([]byte(rule + "\x00" + eventID))
	return "ntf_" + hex.EncodeToString(sum[:16])
}

// ChannelConfig is one channel of the config file. Secrets are never in the file: each is named
// by the environment variable that holds it (URLEnv, SecretEnv, SMTPEnv), and never logged.
type ChannelConfig struct {
	Name string `yaml:"-" json:"name"`
	// Type is slack (a Slack-compatible incoming webhook), webhook (an HTTPS endpoint, signed)
	// or email (SMTP with STARTTLS).
	Type string `yaml:"type" json:"type"`
	// URLEnv names the variable holding a slack channel's incoming-webhook URL or a webhook
	// channel's URL (URL may be given in the file for a webhook whose URL is no secret).
	URLEnv string `yaml:"url_env" json:"url_env,omitempty"`
	URL    string `yaml:"url" json:"url,omitempty"`
	// SecretEnv names the variable holding a webhook channel's signing secret.
	SecretEnv string `yaml:"secret_env" json:"secret_env,omitempty"`
	// SMTPEnv names the variable holding an email channel's server, smtp://user:password@host:587.
	SMTPEnv string   `yaml:"smtp_env" json:"smtp_env,omitempty"`
	From    string   `yaml:"from" json:"from,omitempty"`
	To      []string `yaml:"to" json:"to,omitempty"`
	// Line is where the channel is declared in the config file, for errors.
	Line int `yaml:"-" json:"-"`
}
