package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// Channel sends one notification. Send is called again for the same row after a retryable error
// or a crash, so a channel hands the row's IdempotencyKey to its receiver on every attempt.
type Channel interface {
	Send(ctx context.Context, row Row) error
}

// SendError is a channel's failure. Permanent errors (a receiver's 4xx other than 408 and 429, an
// SMTP 5xx, a message the channel cannot build) fail the delivery for good; every other error —
// 408, 429, 5xx, an SMTP 4xx, a network error, a timeout — is retried with back-off.
//
// Its text never holds a secret: URLs are masked to their scheme and host, and SMTP credentials
// are never part of it.
type SendError struct {
	Channel   string
	Permanent bool
	Status    int // the receiver's HTTP status or SMTP reply code; 0 when none came
	Err       error
}

func (e *SendError) Error() string {
	kind := "retryable"
	if e.Permanent {
		kind = "permanent"
	}
	return fmt.Sprintf("channel %s: %s: %v", e.Channel, kind, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err fails a delivery for good.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}

// ChannelOptions are what every channel of a config shares.
type ChannelOptions struct {
	// Getenv reads the variables the channels' *_env fields name. Default os.Getenv.
	Getenv func(string) string
	// HTTPClient sends the slack and webhook channels' requests. Default: a client with a 30 s
	// timeout that follows no redirects (a redirect would carry a signed body elsewhere).
	HTTPClient *http.Client
	// TLSConfig is the email channel's STARTTLS configuration (tests trust their own CA with
	// it). Default: the system roots, the server's host name.
	TLSConfig *tls.Config
	// Timeout bounds one attempt of any channel when ctx has no earlier deadline. Default 30 s.
	Timeout time.Duration
}

func (o *ChannelOptions) setDefaults() {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Timeout:       o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
}

// NewChannels builds every channel of a config, keyed by name. A channel whose variable is
// unset or malformed is refused with an error naming the channel, its line and the variable —
// never the variable's value.
func NewChannels(cfgs map[string]ChannelConfig, o ChannelOptions) (map[string]Channel, error) {
	o.setDefaults()
	out := make(map[string]Channel, len(cfgs))
	for name, c := range cfgs {
		if c.Name == "" {
			c.Name = name
		}
		ch, err := NewChannel(c, o)
		if err != nil {
			return nil, err
		}
		out[name] = ch
	}
	return out, nil
}

// NewChannel builds one channel of its config.
func NewChannel(c ChannelConfig, o ChannelOptions) (Channel, error) {
	o.setDefaults()
	switch c.Type {
	case "slack":
		return newSlack(c, o)
	case "webhook":
		return newWebhook(c, o)
	case "email":
		return newEmail(c, o)
	default:
		return nil, configError(c, fmt.Sprintf("unknown type %q (slack, webhook or email)", c.Type))
	}
}

func configError(c ChannelConfig, msg string) error {
	if c.Line > 0 {
		return fmt.Errorf("channel %s (line %d): %s", c.Name, c.Line, msg)
	}
	return fmt.Errorf("channel %s: %s", c.Name, msg)
}

// channelURL reads a slack or webhook channel's URL from its variable (or the file, for a webhook
// whose URL is no secret). HTTPS is required except on a loopback host (a local sink, a test).
func channelURL(c ChannelConfig, o ChannelOptions) (*url.URL, error) {
	raw := c.URL
	if c.URLEnv != "" {
		raw = o.Getenv(c.URLEnv)
		if raw == "" {
			return nil, configError(c, fmt.Sprintf("%s is not set", c.URLEnv))
		}
	} else if c.Type == "slack" && raw != "" {
		return nil, configError(c, "a slack channel's URL is a secret: name its variable with url_env, not url")
	}
	if raw == "" {
		return nil, configError(c, "no URL: set url_env to the variable holding it")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, configError(c, fmt.Sprintf("%s does not hold an absolute URL", where(c)))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return nil, configError(c, fmt.Sprintf("%s must be an https:// URL (http:// only to a loopback host)", where(c)))
	}
	return u, nil
}

func where(c ChannelConfig) string {
	if c.URLEnv != "" {
		return c.URLEnv
	}
	return "url"
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// maskURL is how a channel's URL appears in errors and logs: scheme and host only, since a Slack
// incoming-webhook URL's path is its secret (and a webhook's query may hold a token).
func maskURL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + "/…"
}

// post sends one JSON body and classifies the answer.
func post(ctx context.Context, o ChannelOptions, name string, u *url.URL, body []byte, header http.Header) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return &SendError{Channel: name, Permanent: true, Err: fmt.Errorf("could not build the request to %s", maskURL(u))}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "stripe-ledger-notify/1")
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &SendError{Channel: name, Err: fmt.Errorf("POST %s: %w", maskURL(u), err)}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &SendError{Channel: name, Status: resp.StatusCode, Permanent: permanentStatus(resp.StatusCode),
		Err: fmt.Errorf("POST %s: %s%s", maskURL(u), resp.Status, quoteSnippet(snippet))}
}

// permanentStatus: a 4xx says the request itself is wrong and will be wrong again, except 408
// (the receiver timed out) and 429 (it is rate limiting). 3xx is not followed, and is permanent
// too: the configured URL is not the receiver's.
func permanentStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return false
	case code >= 300 && code < 500:
		return true
	default:
		return false
	}
}

func quoteSnippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if !utf8.ValidString(s) {
		return ""
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return fmt.Sprintf(": %q", s)
}
