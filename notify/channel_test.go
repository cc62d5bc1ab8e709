package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/notify"
)

func testRow() notify.Row {
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return notify.Row{ID: 7, Rule: "payments", EventID: "evt_1", Channel: "ch",
		IdempotencyKey: notify.IdempotencyKey("payments", "evt_1"), EventCreated: &created,
		Message: notify.Message{Subject: "Payment ¥1,000 succeeded", Text: "pi_1 for cus_1\nsecond line",
			Fields: map[string]any{"amount": 1000, "currency": "jpy"}}}
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// receiver is a real HTTP server that answers with the statuses queued for it (200 once they are
// used up) and records every request.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	reqs     []recorded
	srv      *httptest.Server
}

type recorded struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, tlsOn bool, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{req.Header.Clone(), body})
		code := http.StatusOK
		if len(r.statuses) > 0 {
			code, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"ok":` + map[bool]string{true: "true", false: "false"}[code < 300] + `}`))
	})
	if tlsOn {
		r.srv = httptest.NewTLSServer(h)
	} else {
		r.srv = httptest.NewServer(h)
	}
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func TestSlackPostsTextAndBlocks(t *testing.T) {
	rcv := newReceiver(t, false)
	url := rcv.srv.URL + "/services/T000/B000/XXXXSECRET"
	ch, err := notify.NewChannel(notify.ChannelConfig{Name: "payments", Type: "slack", URLEnv: "SLACK_URL"},
		notify.ChannelOptions{Getenv: env("SLACK_URL", url)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Send(context.Background(), testRow()); err != nil {
		t.Fatal(err)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	var got struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(reqs[0].body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Text != "pi_1 for cus_1\nsecond line" || len(got.Blocks) != 2 || got.Blocks[0].Type != "header" ||
		got.Blocks[0].Text.Text != "Payment ¥1,000 succeeded" {
		t.Fatalf("body %s", reqs[0].body)
	}

	// The rule's own blocks are sent as they are.
	row := testRow()
	row.Message.Blocks = json.RawMessage(`[{"type":"divider"}]`)
	if err := ch.Send(context.Background(), row); err != nil {
		t.Fatal(err)
	}
	if b := string(rcv.requests()[1].body); !strings.Contains(b, `"blocks":[{"type":"divider"}]`) {
		t.Fatalf("body %s", b)
	}
}

func TestSlackErrorsNeverShowTheWebhookURL(t *testing.T) {
	rcv := newReceiver(t, false, 500)
	secretPath := "/services/T000/B000/XXXXSECRET"
	ch, err := notify.NewChannel(notify.ChannelConfig{Name: "payments", Type: "slack", URLEnv: "SLACK_URL"},
		notify.ChannelOptions{Getenv: env("SLACK_URL", rcv.srv.URL+secretPath)})
	if err != nil {
		t.Fatal(err)
	}
	err = ch.Send(context.Background(), testRow())
	if err == nil || notify.IsPermanent(err) || strings.Contains(err.Error(), "XXXXSECRET") {
		t.Fatalf("500: %v", err)
	}
	// A network error (nothing listens) is retried, and *url.Error's copy of the URL is dropped.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + secretPath
	ln.Close()
	ch, err = notify.NewChannel(notify.ChannelConfig{Name: "payments", Type: "slack", URLEnv: "SLACK_URL"},
		notify.ChannelOptions{Getenv: env("SLACK_URL", dead)})
	if err != nil {
		t.Fatal(err)
	}
	err = ch.Send(context.Background(), testRow())
	if err == nil || notify.IsPermanent(err) || strings.Contains(err.Error(), "XXXXSECRET") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("network error: %v", err)
	}
}

func TestChannelConfigErrorsNameTheVariableNotItsValue(t *testing.T) {
	for _, tc := range []struct {
		cfg  notify.ChannelConfig
		env  func(string) string
		want string
	}{
		{notify.ChannelConfig{Name: "p", Type: "slack", URLEnv: "SLACK_URL", Line: 4}, env(), "channel p (line 4): SLACK_URL is not set"},
		{notify.ChannelConfig{Name: "p", Type: "slack", URLEnv: "SLACK_URL"}, env("SLACK_URL", "http://hooks.example.com/s3cr3tvalue"), "SLACK_URL must be an https:// URL"},
		{notify.ChannelConfig{Name: "p", Type: "slack", URL: "https://hooks.example.com/s3cr3tvalue"}, env(), "name its variable with url_env"},
		{notify.ChannelConfig{Name: "e", Type: "webhook", URL: "https://erp.example.com/hook"}, env(), "needs secret_env"},
		{notify.ChannelConfig{Name: "e", Type: "webhook", URL: "https://erp.example.com/hook", SecretEnv: "ERP_SECRET"}, env(), "ERP_SECRET is not set"},
		{notify.ChannelConfig{Name: "m", Type: "email", SMTPEnv: "SMTP", From: "a@example.com", To: []string{"b@example.com"}}, env("SMTP", "smtps://u:s3cr3tvalue@mail"), "SMTP must be smtp://"},
		{notify.ChannelConfig{Name: "m", Type: "email", SMTPEnv: "SMTP", To: []string{"b@example.com"}}, env("SMTP", "smtp://u:s3cr3tvalue@mail:587"), "needs from"},
		{notify.ChannelConfig{Name: "x", Type: "pager"}, env(), `unknown type "pager"`},
	} {
		_, err := notify.NewChannel(tc.cfg, notify.ChannelOptions{Getenv: tc.env})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3tvalue") {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestWebhookIsSignedTheWayStripeSignsItsOwn(t *testing.T) {
	rcv := newReceiver(t, true)
	const secret = "whsec_erp_test_secret"
	ch, err := notify.NewChannel(notify.ChannelConfig{Name: "erp", Type: "webhook", URLEnv: "ERP_URL", SecretEnv: "ERP_SECRET"},
		notify.ChannelOptions{Getenv: env("ERP_URL", rcv.srv.URL+"/hook", "ERP_SECRET", secret), HTTPClient: rcv.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	row := testRow()
	for range 2 {
		if err := ch.Send(context.Background(), row); err != nil {
			t.Fatal(err)
		}
	}
	reqs := rcv.requests()
	for _, r := range reqs {
		sig := r.header.Get(notify.SignatureHeader)
		if err := notify.VerifySignature(r.body, sig, secret, 0); err != nil {
			t.Fatalf("VerifySignature: %v (%s)", err, sig)
		}
		// stripe-go's own verifier accepts the same header value.
		if err := webhook.ValidatePayloadWithTolerance(r.body, sig, secret, 5*time.Minute); err != nil {
			t.Fatalf("stripe-go ValidatePayloadWithTolerance: %v", err)
		}
		if err := notify.VerifySignature(r.body, sig, "whsec_other", 0); !errors.Is(err, notify.ErrBadSignature) {
			t.Fatalf("wrong secret: %v", err)
		}
		tampered := append([]byte(nil), r.body...)
		tampered[len(tampered)-2] ^= 1
		if err := notify.VerifySignature(tampered, sig, secret, 0); !errors.Is(err, notify.ErrBadSignature) {
			t.Fatalf("tampered body: %v", err)
		}
		if got := r.header.Get(notify.IdempotencyHeader); got != row.IdempotencyKey {
			t.Fatalf("Idempotency-Key %q, want %q", got, row.IdempotencyKey)
		}
		var p notify.WebhookPayload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.ID != row.IdempotencyKey || p.Rule != "payments" || p.EventID != "evt_1" || p.Message.Fields["currency"] != "jpy" {
			t.Fatalf("payload %s", r.body)
		}
	}
	old := notify.Sign([]byte("{}"), []byte(secret), time.Now().Add(-10*time.Minute))
	if err := notify.VerifySignature([]byte("{}"), old, secret, 0); !errors.Is(err, notify.ErrSignatureExpired) {
		t.Fatalf("a 10-minute-old signature: %v", err)
	}
	if err := notify.VerifySignature([]byte("{}"), "v1=00", secret, 0); !errors.Is(err, notify.ErrNoSignature) {
		t.Fatalf("no timestamp: %v", err)
	}
}

func TestReceiverStatusDecidesPermanentOrRetried(t *testing.T) {
	for _, tc := range []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{200, true, false}, {202, true, false}, {204, true, false},
		{301, false, true}, {400, false, true}, {401, false, true}, {403, false, true}, {404, false, true}, {410, false, true}, {422, false, true},
		{408, false, false}, {429, false, false}, {500, false, false}, {502, false, false}, {503, false, false},
	} {
		rcv := newReceiver(t, true, tc.status)
		ch, err := notify.NewChannel(notify.ChannelConfig{Name: "erp", Type: "webhook", URLEnv: "U", SecretEnv: "S"},
			notify.ChannelOptions{Getenv: env("U", rcv.srv.URL, "S", "s3cret"), HTTPClient: rcv.srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		err = ch.Send(context.Background(), testRow())
		if (err == nil) != tc.ok || notify.IsPermanent(err) != tc.permanent {
			t.Errorf("%d: err %v, permanent %v; want ok %v permanent %v", tc.status, err, notify.IsPermanent(err), tc.ok, tc.permanent)
		}
		var se *notify.SendError
		if err != nil && (!errors.As(err, &se) || se.Status != tc.status) {
			t.Errorf("%d: %#v", tc.status, err)
		}
	}
}

// smtpServer is an in-process SMTP server (go-smtp) offering STARTTLS with a certificate made for
// the test, and PLAIN auth only over TLS.
type smtpServer struct {
	addr  string
	roots *x509.CertPool
	mu    sync.Mutex
	mails []mailRecord
	// rcptErr, when set, answers RCPT TO.
	rcptErr error
}

type mailRecord struct {
	from, user string
	to         []string
	data       string
	tls        bool
}

type smtpSession struct {
	s    *smtpServer
	c    *smtp.Conn
	user string
	cur  mailRecord
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "ledger" || pass != "pa55word" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = user
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur = mailRecord{from: from, user: s.user}
	_, s.cur.tls = s.c.TLSConnectionState()
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.s.mu.Lock()
	err := s.s.rcptErr
	s.s.mu.Unlock()
	if err != nil {
		return err
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.s.mu.Lock()
	s.s.mails = append(s.s.mails, s.cur)
	s.s.mu.Unlock()
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	cert, roots := selfSigned(t)
	ss := &smtpServer{roots: roots}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: ss, c: c}, nil
	}))
	srv.Domain = "127.0.0.1"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ss.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ss
}

func (s *smtpServer) received() []mailRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mailRecord(nil), s.mails...)
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "notify test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

func emailChannel(t *testing.T, s *smtpServer, password string) notify.Channel {
	t.Helper()
	ch, err := notify.NewChannel(notify.ChannelConfig{Name: "finance", Type: "email", SMTPEnv: "SMTP",
		From: "Ledger <ledger@example.com>", To: []string{"finance@example.com", "ops@example.com"}},
		notify.ChannelOptions{Getenv: env("SMTP", "smtp://ledger:"+password+"@"+s.addr), TLSConfig: &tls.Config{RootCAs: s.roots}})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestEmailOverSTARTTLSWithPlainAuth(t *testing.T) {
	s := startSMTP(t)
	row := testRow()
	if err := emailChannel(t, s, "pa55word").Send(context.Background(), row); err != nil {
		t.Fatal(err)
	}
	got := s.received()
	if len(got) != 1 {
		t.Fatalf("%d mails", len(got))
	}
	m := got[0]
	if !m.tls || m.user != "ledger" || m.from != "ledger@example.com" || strings.Join(m.to, ",") != "finance@example.com,ops@example.com" {
		t.Fatalf("envelope %+v", m)
	}
	for _, want := range []string{"Message-ID: <" + row.IdempotencyKey + "@ledger.notify>", "Idempotency-Key: " + row.IdempotencyKey,
		"Subject: =?utf-8?q?Payment_=C2=A51,000_succeeded?=", "pi_1 for cus_1\r\nsecond line"} {
		if !strings.Contains(m.data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.data)
		}
	}

	// Bad credentials: SMTP 535 is permanent, and the password is not in the error.
	err := emailChannel(t, s, "wrongSECRET").Send(context.Background(), row)
	if err == nil || !notify.IsPermanent(err) || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("bad password: %v", err)
	}
}

func TestEmailReplyCodesDecidePermanentOrRetried(t *testing.T) {
	s := startSMTP(t)
	ch := emailChannel(t, s, "pa55word")
	for _, tc := range []struct {
		code      int
		permanent bool
	}{{550, true}, {553, true}, {451, false}, {452, false}} {
		s.mu.Lock()
		s.rcptErr = &smtp.SMTPError{Code: tc.code, Message: "no"}
		s.mu.Unlock()
		err := ch.Send(context.Background(), testRow())
		var se *notify.SendError
		if err == nil || notify.IsPermanent(err) != tc.permanent || !errors.As(err, &se) || se.Status != tc.code {
			t.Errorf("%d: %v", tc.code, err)
		}
	}
	// Nothing listening: retried.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	s.addr = ln.Addr().String()
	ln.Close()
	if err := emailChannel(t, s, "pa55word").Send(context.Background(), testRow()); err == nil || notify.IsPermanent(err) {
		t.Fatalf("server down: %v", err)
	}
}
