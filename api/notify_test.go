package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/notify"
)

func TestNotifyDeliveriesAndRetryOverHTTP(t *testing.T) {
	db := testkit.New(t)
	ctx := context.Background()
	var ids []int64
	for i, st := range []string{"delivered", "failed", "pending"} {
		ev := fmt.Sprintf("evt_%d", i)
		var id int64
		err := db.Pool.QueryRow(ctx, `INSERT INTO ledger.notify_outbox (rule, event_id, channel, idempotency_key, message,
			status, attempts, last_error, event_created, delivered_at)
			VALUES ('payments', $1, 'slack', $2, '{"subject":"s","text":"t"}', $3, 1,
			CASE WHEN $3 = 'failed' THEN 'channel slack: permanent: 404 Not Found' END, now() - interval '2 seconds',
			CASE WHEN $3 = 'delivered' THEN now() END) RETURNING id`, ev, notify.IdempotencyKey("payments", ev), st).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(operateTokens)}))
	defer srv.Close()

	code, body := get(t, srv.URL+"/api/v1/notify/deliveries", "tok_read")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID        int64   `json:"id"`
			Status    string  `json:"status"`
			LatencyMS *int64  `json:"latency_ms"`
			LastError *string `json:"last_error"`
			Key       string  `json:"idempotency_key"`
		} `json:"data"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || list.Object != "list" || len(list.Data) != 3 {
		t.Fatalf("%d %s", code, body)
	}
	if d := list.Data[2]; d.ID != ids[0] || d.LatencyMS == nil || *d.LatencyMS < 1900 || d.Key != notify.IdempotencyKey("payments", "evt_0") {
		t.Fatalf("oldest (delivered) row: %+v", d)
	}
	if d := list.Data[1]; d.Status != "failed" || d.LatencyMS != nil || d.LastError == nil {
		t.Fatalf("failed row: %+v", d)
	}
	code, body = get(t, srv.URL+"/api/v1/notify/deliveries?status=failed&rule=payments&since=1h&limit=5", "tok_read")
	if code != 200 || !strings.Contains(body, fmt.Sprintf(`"id":%d`, ids[1])) || strings.Contains(body, fmt.Sprintf(`"id":%d,`, ids[0])) {
		t.Fatalf("filtered: %d %s", code, body)
	}
	for _, q := range []string{"status=sent", "limit=0", "limit=5000", "since=yesterday", "colour=red"} {
		if code, body := get(t, srv.URL+"/api/v1/notify/deliveries?"+q, "tok_read"); code != 400 {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}

	// Retry needs operate; a pending row named is refused whole; the failed one goes back.
	if code, _, _ := post(t, srv.URL+"/api/v1/notify/retry", "tok_read", `{"all_failed":true}`); code != http.StatusForbidden {
		t.Fatalf("retry with a read token: %d", code)
	}
	code, _, body = post(t, srv.URL+"/api/v1/notify/retry", "tok_operate", fmt.Sprintf(`{"ids":[%d,%d]}`, ids[1], ids[2]))
	if code != http.StatusNotFound || !strings.Contains(body, "not_failed") {
		t.Fatalf("retry of a pending row: %d %s", code, body)
	}
	if code, _, body := post(t, srv.URL+"/api/v1/notify/retry", "tok_operate", `{}`); code != 400 {
		t.Fatalf("empty retry: %d %s", code, body)
	}
	code, _, body = post(t, srv.URL+"/api/v1/notify/retry", "tok_operate", fmt.Sprintf(`{"ids":[%d]}`, ids[1]))
	if code != 200 || body != fmt.Sprintf(`{"object":"notify_retry","retried":[%d]}`, ids[1])+"\n" && !strings.Contains(body, fmt.Sprintf(`"retried":[%d]`, ids[1])) {
		t.Fatalf("retry: %d %s", code, body)
	}
	var status string
	if err := db.Pool.QueryRow(ctx, `SELECT status FROM ledger.notify_outbox WHERE id = $1`, ids[1]).Scan(&status); err != nil || status != "pending" {
		t.Fatalf("after retry: %s %v", status, err)
	}
}
