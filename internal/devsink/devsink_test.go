package devsink_test

import (
	"bytes"
	"context"
	"net/http"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/devsink"
)

// A Slack-style POST and an SMTP message (quoted-printable, encoded subject) are kept as a
// reader would see them and served as JSON; a POST without text is refused as Slack refuses it.
func TestSinksKeepWhatTheyReceive(t *testing.T) {
	t.Parallel()
	s, err := devsink.Start(devsink.Config{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	post := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, s.SlackURL("payments"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "ntf_1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post(`{"text":"Payment received: 12.00 USD","blocks":[{"type":"section"}]}`); c != 200 {
		t.Fatalf("slack post: %d", c)
	}
	if c := post(`{"blocks":`); c != 400 {
		t.Fatalf("a broken payload: %d, want 400", c)
	}
	if c := post(`{}`); c != 400 {
		t.Fatalf("no text: %d, want 400", c)
	}
	msg := "From: ledger@example.com\r\nTo: finance@example.com\r\nSubject: =?utf-8?q?Subscription_canceled:_sub=5F1_=E2=80=94_late?=\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSubscription sub_1 was cancel=\r\ned.\r\n"
	if err := smtp.SendMail(strings.TrimPrefix(s.SMTPURL(), "smtp://"), nil, "ledger@example.com", []string{"finance@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Wait(ctx, func(r devsink.Received) bool { return len(r.Email) == 1 }); err != nil {
		t.Fatal(err)
	}
	got := s.Received()
	if len(got.Slack) != 1 || got.Slack[0].Channel != "payments" || got.Slack[0].Text != "Payment received: 12.00 USD" ||
		got.Slack[0].IdempotencyKey != "ntf_1" || !bytes.Contains(got.Slack[0].Blocks, []byte("section")) {
		t.Fatalf("slack: %+v", got.Slack)
	}
	if e := got.Email[0]; e.Subject != "Subscription canceled: sub_1 — late" || !strings.HasPrefix(e.Text, "Subscription sub_1 was canceled.") ||
		e.From != "ledger@example.com" || len(e.To) != 1 || e.To[0] != "finance@example.com" {
		t.Fatalf("email: %+v", e)
	}
	for range 3 {
		post(`{"text":"more"}`)
	}
	if n := len(s.Received().Slack); n != 2 {
		t.Fatalf("kept %d Slack messages, Keep is 2", n)
	}
}
