package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/devsink"
	"github.com/stripeledger/ledger/internal/testkit"
)

// `ledger dev` with no LEDGER_NOTIFY_CONFIG points the default rules at its own Slack and SMTP
// sinks: once the simulator's outage is repaired, the sinks hold the rules' notifications —
// every delivered outbox row's channel among them, and a late (repaired) one — and the printed
// /notifications page serves them.
func TestDevSendsTheDefaultRulesToItsSinks(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	simPort := freePort(t)
	dev := startLedger(t, []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=whsec_dev_test", "LEDGER_API_TOKEN=tok_dev_test",
		"LEDGER_RECONCILE_SCHEDULE=events-fast=@every 2s"},
		"dev", "--addr", "127.0.0.1:0", "--sim-addr", "127.0.0.1:"+simPort, "--sim-seconds", "0", "--log-level", "info")
	addr := dev.listening(t)
	line := dev.stdout.waitFor(t, "the notifications line", func(l string) bool { return strings.Contains(l, "notifications http://") })
	m := regexp.MustCompile(`Slack (http://[0-9.:]+)/slack/`).FindStringSubmatch(line)
	if m == nil || !strings.Contains(line, "http://"+addr+"/notifications") {
		t.Fatalf("the notifications line: %q", line)
	}
	// The sink answers once a late (repaired) notification has arrived.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m[1]+"/received?until=late", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("no late notification reached the sinks: %v\n%s", err, dev.stdout.String())
	}
	var got devsink.Received
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || !got.HasLate() {
		t.Fatalf("the sinks hold %d Slack messages, %d emails, late %v (%v)", len(got.Slack), len(got.Email), got.HasLate(), err)
	}
	// Every channel the outbox delivered to by now has its messages in a sink. The outbox is read
	// first and the sinks after: a sink holds a message before its row is marked delivered, so
	// in this order a delivery that lands between the two reads cannot make them disagree.
	rows, err := db.Pool.Query(context.Background(), `SELECT channel, count(*) FROM ledger.notify_outbox WHERE status = 'delivered' GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	byChannel := map[string]int{}
	delivered := 0
	for rows.Next() {
		var ch string
		var n int
		if err := rows.Scan(&ch, &n); err != nil {
			t.Fatal(err)
		}
		byChannel[ch] = n
		delivered += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(m[1] + "/received")
	if err != nil {
		t.Fatal(err)
	}
	got = devsink.Received{}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	channels := map[string]int{}
	for _, s := range got.Slack {
		channels[s.Channel]++
	}
	channels["finance"] += len(got.Email)
	for ch, n := range byChannel {
		if channels[ch] == 0 {
			t.Errorf("the outbox delivered %d to %s, its sink holds none", n, ch)
		}
	}
	if delivered == 0 || channels["payments"] == 0 {
		t.Fatalf("delivered %d, sinks by channel %v", delivered, channels)
	}
	// The dashboard's page reads the same.
	req, _ = http.NewRequest(http.MethodGet, "http://"+addr+"/notifications/received", nil)
	req.AddCookie(&http.Cookie{Name: "ledger_token", Value: "tok_dev_test"})
	page, err := http.DefaultClient.Do(req)
	if err != nil || page.StatusCode != http.StatusOK {
		t.Fatalf("/notifications/received: %v %v", page, err)
	}
	page.Body.Close()
}
