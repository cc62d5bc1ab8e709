package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// email sends over SMTP. STARTTLS is required: a server that does not offer it is refused, except
// on a loopback host (a local sink), and credentials are never sent without TLS. The server, user
// and password come from smtp_env as smtp://user:password@host:587.
type email struct {
	name     string
	addr     string // host:port
	host     string
	user     string
	password string
	from     string
	to       []string
	o        ChannelOptions
}

func newEmail(c ChannelConfig, o ChannelOptions) (*email, error) {
	if c.SMTPEnv == "" {
		return nil, configError(c, "an email channel needs smtp_env, the variable holding smtp://user:password@host:587")
	}
	raw := o.Getenv(c.SMTPEnv)
	if raw == "" {
		return nil, configError(c, fmt.Sprintf("%s is not set", c.SMTPEnv))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		// url.Parse's error repeats the text, password and all: say only what is wrong.
		return nil, configError(c, fmt.Sprintf("%s must be smtp://user:password@host:port", c.SMTPEnv))
	}
	port := u.Port()
	if port == "" {
		port = "587"
	}
	if c.From == "" {
		return nil, configError(c, "an email channel needs from")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return nil, configError(c, fmt.Sprintf("from %q is not an address", c.From))
	}
	if len(c.To) == 0 {
		return nil, configError(c, "an email channel needs to: at least one address")
	}
	for _, t := range c.To {
		if _, err := mail.ParseAddress(t); err != nil {
			return nil, configError(c, fmt.Sprintf("to %q is not an address", t))
		}
	}
	e := &email{name: c.Name, addr: net.JoinHostPort(u.Hostname(), port), host: u.Hostname(), from: c.From, to: c.To, o: o}
	if u.User != nil {
		e.user = u.User.Username()
		e.password, _ = u.User.Password()
	}
	return e, nil
}

func (e *email) Send(ctx context.Context, row Row) error {
	ctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	msg := e.render(row, time.Now())
	err := e.send(ctx, msg)
	if err == nil {
		return nil
	}
	se := &SendError{Channel: e.name, Err: fmt.Errorf("SMTP %s: %w", e.addr, err)}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		// SMTP's own rule: 4yz is transient, 5yz is permanent.
		se.Status = tp.Code
		se.Permanent = tp.Code >= 500
	}
	var cfg *smtpConfigError
	if errors.As(err, &cfg) {
		se.Permanent = true
	}
	return se
}

type smtpConfigError struct{ msg string }

func (e *smtpConfigError) Error() string { return e.msg }

func (e *email) send(ctx context.Context, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancelled ctx ends a conversation stuck on a silent server.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	tlsOn := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{ServerName: e.host, MinVersion: tls.VersionTLS12}
		if e.o.TLSConfig != nil {
			cfg = e.o.TLSConfig.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = e.host
			}
		}
		if err := c.StartTLS(cfg); err != nil {
			return err
		}
		tlsOn = true
	} else if !isLoopbackHost(e.host) {
		return &smtpConfigError{"the server does not offer STARTTLS; refusing to send in the clear"}
	}
	if e.user != "" {
		if !tlsOn {
			return &smtpConfigError{"refusing to send credentials without TLS"}
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return &smtpConfigError{"the server offers no AUTH, but the URL has credentials"}
		}
		if err := c.Auth(smtp.PlainAuth("", e.user, e.password, e.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(bareAddress(e.from)); err != nil {
		return err
	}
	for _, t := range e.to {
		if err := c.Rcpt(bareAddress(t)); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil { // the server's answer to the whole message
		return err
	}
	return c.Quit()
}

func bareAddress(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}

// render builds the RFC 5322 message. The Message-ID is derived from the idempotency key (the
// same on every attempt, so a mail system or a reader can spot a repeat), and the key is also in
// an Idempotency-Key header.
func (e *email) render(row Row, now time.Time) []byte {
	var b bytes.Buffer
	subject := row.Message.Subject
	if subject == "" {
		subject = row.Rule + ": " + row.EventID
	}
	if row.Late || row.Message.Late {
		if !strings.Contains(subject, "late (repaired)") {
			subject = "[late (repaired)] " + subject
		}
	}
	// No header value may break the header block (a rule or event ID is not trusted to).
	clean := strings.NewReplacer("\r", " ", "\n", " ")
	hdr := func(k, v string) { b.WriteString(k + ": " + clean.Replace(v) + "\r\n") }
	hdr("From", e.from)
	hdr("To", strings.Join(e.to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", now.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+row.IdempotencyKey+"@ledger.notify>")
	hdr(IdempotencyHeader, row.IdempotencyKey)
	hdr("X-Ledger-Rule", row.Rule)
	hdr("X-Ledger-Event", row.EventID)
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	text := row.Message.Text
	if text == "" {
		text = row.Message.Subject
	}
	_, _ = qp.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n")))
	_ = qp.Close()
	b.WriteString("\r\n")
	return b.Bytes()
}
