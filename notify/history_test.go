package notify_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/notify"
)

func TestDeliveriesListNewestFirstWithLatencyAndFilters(t *testing.T) {
	db := testkit.New(t)
	ctx := context.Background()
	created := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	ids := enqueue(t, db, "payments", "slack", created, "evt_1", "evt_2", "evt_3")
	other := enqueue(t, db, "failures", "email", created, "evt_9")[0]
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger.notify_outbox SET status = 'delivered', attempts = 1,
		delivered_at = event_created + interval '1500 milliseconds' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger.notify_outbox SET status = 'failed', attempts = 3,
		last_error = 'channel slack: permanent: 404' WHERE id = ANY($1)`, []int64{ids[1], other}); err != nil {
		t.Fatal(err)
	}
	all, err := notify.Deliveries(ctx, db.Pool, notify.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var order []int64
	for _, d := range all {
		order = append(order, d.ID)
	}
	if fmt.Sprint(order) != fmt.Sprint([]int64{other, ids[2], ids[1], ids[0]}) {
		t.Fatalf("order %v", order)
	}
	if d := all[3]; d.LatencyMS == nil || *d.LatencyMS != 1500 || d.Status != "delivered" {
		t.Fatalf("delivered row %+v", d)
	}
	if all[0].LatencyMS != nil {
		t.Fatalf("a failed row has a latency: %v", *all[0].LatencyMS)
	}
	failed, err := notify.Deliveries(ctx, db.Pool, notify.DeliveryFilter{Rule: "payments", Status: "failed"})
	if err != nil || len(failed) != 1 || failed[0].ID != ids[1] || *failed[0].LastError != "channel slack: permanent: 404" {
		t.Fatalf("payments failed: %+v %v", failed, err)
	}
	none, err := notify.Deliveries(ctx, db.Pool, notify.DeliveryFilter{Since: time.Now().Add(time.Hour)})
	if err != nil || len(none) != 0 {
		t.Fatalf("since in the future: %+v %v", none, err)
	}
	var bad *notify.BadFilter
	if _, err := notify.Deliveries(ctx, db.Pool, notify.DeliveryFilter{Status: "sent"}); !errors.As(err, &bad) {
		t.Fatalf("status sent: %v", err)
	}
	if _, err := notify.Deliveries(ctx, db.Pool, notify.DeliveryFilter{Limit: 5000}); !errors.As(err, &bad) {
		t.Fatalf("limit 5000: %v", err)
	}
}

func TestRetryPutsFailedRowsBackAndRefusesOthers(t *testing.T) {
	db := testkit.New(t)
	ctx := context.Background()
	ids := enqueue(t, db, "payments", "slack", time.Now(), "evt_1", "evt_2", "evt_3")
	if _, err := db.Pool.Exec(ctx, `UPDATE ledger.notify_outbox SET status = 'failed', attempts = 3, last_error = 'x'
		WHERE id = ANY($1)`, ids[:2]); err != nil {
		t.Fatal(err)
	}
	// A pending row named with a failed one: nothing changes.
	_, err := notify.Retry(ctx, db.Pool, notify.RetryRequest{IDs: []int64{ids[0], ids[2]}}, time.Now())
	var nf *notify.NotFailedError
	if !errors.As(err, &nf) || fmt.Sprint(nf.IDs) != fmt.Sprint([]int64{ids[2]}) {
		t.Fatalf("retry of a pending row: %v", err)
	}
	if s := state(t, db, ids[0]); s.status != "failed" {
		t.Fatalf("row changed by a refused retry: %+v", s)
	}
	now := time.Now().Truncate(time.Second)
	got, err := notify.Retry(ctx, db.Pool, notify.RetryRequest{IDs: []int64{ids[0]}}, now)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(ids[:1]) {
		t.Fatalf("retry one: %v %v", got, err)
	}
	if s := state(t, db, ids[0]); s.status != "pending" || s.attempts != 0 {
		t.Fatalf("retried row: %+v", s)
	}
	got, err = notify.Retry(ctx, db.Pool, notify.RetryRequest{AllFailed: true}, now)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(ids[1:2]) {
		t.Fatalf("retry all failed: %v %v", got, err)
	}
	var bad *notify.BadFilter
	if _, err := notify.Retry(ctx, db.Pool, notify.RetryRequest{}, now); !errors.As(err, &bad) {
		t.Fatalf("empty request: %v", err)
	}
}
