// Package devsink is what `ledger dev` sends its notifications to, so a newcomer sees them
// without a Slack workspace or a mail server: a Slack-compatible incoming-webhook receiver
// (HTTP, POST /slack/{channel}) and an SMTP server (github.com/emersion/go-smtp), both keeping
// what they received in memory, newest last, and serving it as JSON for the dashboard's
// /notifications page.
//
// It is a development tool: it listens on loopback, accepts any sender, offers no STARTTLS
// (the email channel allows that on a loopback host only) and keeps at most Config.Keep
// messages of each kind.
package devsink

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Config configures the sinks. Zero values take the documented defaults.
type Config struct {
	// HTTPAddr is where the Slack-compatible receiver listens. Default 127.0.0.1:0 (any port).
	HTTPAddr string
	// SMTPAddr is where the SMTP server listens. Default 127.0.0.1:0.
	SMTPAddr string
	// Keep bounds the messages kept of each kind (the oldest go first). Default 1000.
	Keep int
	// MaxBytes bounds one message. Default 1 MiB.
	MaxBytes int64
}

func (c *Config) setDefaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:0"
	}
	if c.SMTPAddr == "" {
		c.SMTPAddr = "127.0.0.1:0"
	}
	if c.Keep <= 0 {
		c.Keep = 1000
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 20
	}
}

// SlackMessage is one POST to the Slack-compatible receiver.
type SlackMessage struct {
	Channel        string          `json:"channel"` // the path's {channel}
	Text           string          `json:"text"`
	Blocks         json.RawMessage `json:"blocks,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"` // the Idempotency-Key header, if sent
	ReceivedAt     time.Time       `json:"received_at"`
}

// Email is one message the SMTP server accepted.
type Email struct {
	From       string    `json:"from"`
	To         []string  `json:"to"`
	Subject    string    `json:"subject"`
	Text       string    `json:"text"`
	MessageID  string    `json:"message_id,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// Received is everything the sinks hold, oldest first.
type Received struct {
	Slack []SlackMessage `json:"slack"`
	Email []Email        `json:"email"`
}

// Sinks are the two receivers.
type Sinks struct {
	cfg Config

	mu      sync.Mutex
	slack   []SlackMessage
	email   []Email
	changed chan struct{} // closed and replaced on every message

	httpLn, smtpLn net.Listener
	httpSrv        *http.Server
	smtpSrv        *smtp.Server
}

// Start listens on both addresses and serves until Close.
func Start(cfg Config) (*Sinks, error) {
	cfg.setDefaults()
	s := &Sinks{cfg: cfg, changed: make(chan struct{})}
	var err error
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("could not listen for the Slack sink on %s: %w", cfg.HTTPAddr, err)
	}
	if s.smtpLn, err = net.Listen("tcp", cfg.SMTPAddr); err != nil {
		s.httpLn.Close()
		return nil, fmt.Errorf("could not listen for the SMTP sink on %s: %w", cfg.SMTPAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/{channel}", s.receiveSlack)
	mux.Handle("GET /received", s.Handler())
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.smtpSrv = smtp.NewServer(backend{s})
	s.smtpSrv.Domain = "localhost"
	s.smtpSrv.MaxMessageBytes = cfg.MaxBytes
	s.smtpSrv.MaxRecipients = 100
	s.smtpSrv.ReadTimeout = 30 * time.Second
	s.smtpSrv.WriteTimeout = 30 * time.Second
	go func() { _ = s.httpSrv.Serve(s.httpLn) }()
	go func() { _ = s.smtpSrv.Serve(s.smtpLn) }()
	return s, nil
}

// SlackURL is the incoming-webhook URL of a channel (what SLACK_*_WEBHOOK_URL points at).
func (s *Sinks) SlackURL(channel string) string {
	return "http://" + s.httpLn.Addr().String() + "/slack/" + channel
}

// SMTPURL is the SMTP server's URL (what LEDGER_SMTP_URL points at).
func (s *Sinks) SMTPURL() string { return "smtp://" + s.smtpLn.Addr().String() }

// Close stops both servers.
func (s *Sinks) Close() error {
	return errors.Join(s.httpSrv.Close(), s.smtpSrv.Close())
}

// Received is a copy of what the sinks hold.
func (s *Sinks) Received() Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Received{Slack: append([]SlackMessage{}, s.slack...), Email: append([]Email{}, s.email...)}
}

// Changed returns a channel closed by the next message received (a test waits on it).
func (s *Sinks) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// HasLate says whether any message received is marked late (repaired).
func (r Received) HasLate() bool {
	for _, m := range r.Slack {
		if IsLate(m.Text) {
			return true
		}
	}
	for _, e := range r.Email {
		if IsLate(e.Subject) || IsLate(e.Text) {
			return true
		}
	}
	return false
}

// IsLate says whether a message's text carries the late (repaired) mark.
func IsLate(s string) bool { return strings.Contains(strings.ToLower(s), "late (repaired)") }

// Handler serves Received as JSON (the dashboard's /notifications page reads it). With
// ?until=late it answers once a late (repaired) message is there (or the request ends): a
// test or a script waits on it instead of polling.
func (s *Sinks) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("until") {
		case "":
		case "late":
			if err := s.Wait(r.Context(), Received.HasLate); err != nil {
				return
			}
		default:
			http.Error(w, `until takes one value: late`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(s.Received())
	})
}

func (s *Sinks) add(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
	if n := len(s.slack) - s.cfg.Keep; n > 0 {
		s.slack = append([]SlackMessage{}, s.slack[n:]...)
	}
	if n := len(s.email) - s.cfg.Keep; n > 0 {
		s.email = append([]Email{}, s.email[n:]...)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// receiveSlack answers as Slack's incoming webhooks do: 200 "ok", or 400 with a reason
// ("invalid_payload", "no_text").
func (s *Sinks) receiveSlack(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBytes))
	if err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	var m struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	if m.Text == "" && len(m.Blocks) == 0 {
		http.Error(w, "no_text", http.StatusBadRequest)
		return
	}
	s.add(func() {
		s.slack = append(s.slack, SlackMessage{Channel: r.PathValue("channel"), Text: m.Text, Blocks: m.Blocks,
			IdempotencyKey: r.Header.Get("Idempotency-Key"), ReceivedAt: time.Now().UTC()})
	})
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
}

type backend struct{ s *Sinks }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *Sinks
	from string
	to   []string
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error { x.from = from; return nil }
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error   { x.to = append(x.to, to); return nil }
func (x *session) Reset()                                      { x.from, x.to = "", nil }
func (x *session) Logout() error                               { return nil }

// Data keeps the message as a reader of the mail would see it: the subject and the plain-text
// body (the text/plain part of a multipart message).
func (x *session) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "not an RFC 5322 message: " + err.Error()}
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	body := io.Reader(msg.Body)
	switch strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	text, err := plainText(msg.Header.Get("Content-Type"), body)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unreadable body: " + err.Error()}
	}
	e := Email{From: x.from, To: append([]string{}, x.to...), Subject: subject, Text: text,
		MessageID: msg.Header.Get("Message-Id"), ReceivedAt: time.Now().UTC()}
	x.s.add(func() { x.s.email = append(x.s.email, e) })
	return nil
}

func plainText(contentType string, body io.Reader) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if contentType == "" || err != nil {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		first := ""
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return first, nil
			}
			if err != nil {
				return "", err
			}
			b, err := io.ReadAll(p)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
				return string(b), nil
			}
			if first == "" {
				first = string(b)
			}
		}
	}
	b, err := io.ReadAll(body)
	return string(b), err
}

// Wait blocks until have says the sinks hold what it wants, or ctx ends.
func (s *Sinks) Wait(ctx context.Context, have func(Received) bool) error {
	for {
		changed := s.Changed()
		if have(s.Received()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
