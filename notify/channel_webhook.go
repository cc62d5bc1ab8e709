package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers a webhook channel sets on every request.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" over "<t>.<body>", keyed
	// with the channel's secret: Stripe's scheme, under the ledger's own header name.
	SignatureHeader = "Ledger-Signature"
	// IdempotencyHeader carries the row's idempotency key, the same on every attempt.
	IdempotencyHeader = "Idempotency-Key"
)

// DefaultTolerance is how old a signature's timestamp VerifySignature accepts by default, as
// Stripe's libraries do.
const DefaultTolerance = 5 * time.Minute

// WebhookPayload is the JSON body a webhook channel posts: the notification and its identity.
type WebhookPayload struct {
	Object       string     `json:"object"` // "notification"
	ID           string     `json:"id"`     // the idempotency key, as in the Idempotency-Key header
	Rule         string     `json:"rule"`
	EventID      string     `json:"event_id"`
	Channel      string     `json:"channel"`
	Late         bool       `json:"late"`
	Backfill     bool       `json:"backfill"` // sent by `ledger notify backfill`, not as it happened
	EventCreated *time.Time `json:"event_created"`
	Message      Message    `json:"message"`
	AttemptedAt  time.Time  `json:"attempted_at"`
}

// webhook posts the whole notification as JSON to an HTTPS endpoint, signed.
type webhook struct {
	name   string
	url    *url.URL
	secret []byte
	o      ChannelOptions
	now    func() time.Time
}

func newWebhook(c ChannelConfig, o ChannelOptions) (*webhook, error) {
	u, err := channelURL(c, o)
	if err != nil {
		return nil, err
	}
	if c.SecretEnv == "" {
		return nil, configError(c, "a webhook channel needs secret_env, the variable holding its signing secret")
	}
	secret := o.Getenv(c.SecretEnv)
	if secret == "" {
		return nil, configError(c, fmt.Sprintf("%s is not set", c.SecretEnv))
	}
	return &webhook{name: c.Name, url: u, secret: []byte(secret), o: o, now: time.Now}, nil
}

func (w *webhook) Send(ctx context.Context, row Row) error {
	now := w.now()
	body, err := json.Marshal(WebhookPayload{Object: "notification", ID: row.IdempotencyKey, Rule: row.Rule,
		EventID: row.EventID, Channel: row.Channel, Late: row.Late || row.Message.Late, Backfill: row.Backfill, EventCreated: row.EventCreated,
		Message: row.Message, AttemptedAt: now.UTC()})
	if err != nil {
		return &SendError{Channel: w.name, Permanent: true, Err: fmt.Errorf("could not render the message: %w", err)}
	}
	h := http.Header{}
	h.Set(SignatureHeader, Sign(body, w.secret, now))
	h.Set(IdempotencyHeader, row.IdempotencyKey)
	return post(ctx, w.o, w.name, w.url, body, h)
}

// Sign returns the signature header's value for body at time t.
func Sign(body, secret []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(body, secret, ts))
}

func mac(body, secret []byte, ts string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Signature verification errors.
var (
	ErrNoSignature      = errors.New("no signature: the header has no t= or no v1=")
	ErrSignatureExpired = errors.New("the signature's timestamp is outside the tolerance")
	ErrBadSignature     = errors.New("no v1 signature matches the body")
)

// VerifySignature checks a webhook channel's request, for receivers: header is the
// Ledger-Signature value, body the raw request body (before any JSON decoding), secret the
// channel's secret. A timestamp older (or further ahead) than tolerance is refused, to stop
// replays; tolerance 0 means DefaultTolerance. Several v1 values (a secret being rotated) are
// accepted if any matches.
//
// The scheme is Stripe's, so stripe-go's webhook.ValidatePayloadWithTolerance(body, header,
// secret, tolerance) accepts the same requests when handed this header's value.
func VerifySignature(body []byte, header, secret string, tolerance time.Duration) error {
	return verifyAt(body, header, secret, tolerance, time.Now())
}

func verifyAt(body []byte, header, secret string, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrNoSignature
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureExpired
	}
	want := mac(body, []byte(secret), ts)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}
