package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/audit"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/internal/testsignal"
)

func rec(i int, name string, role auth.Role, status int) auth.Record {
	return auth.Record{At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second), Token: name, Role: role,
		Method: "GET", Route: "GET /api/v1/charges/{id}", Path: fmt.Sprintf("/api/v1/charges/ch_%d", i), Status: status,
		Client: "203.0.113.7", Duration: 1500 * time.Microsecond}
}

// Every record from concurrent requests is written, once, with every field; the listing filters
// by time, token and status, newest first; an unknown token's record names no token.
func TestWriterRecordsEveryCall(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	w := audit.NewWriter(db.Pool, audit.Config{Batch: 7, Queue: 16, Registry: reg})
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				n := g*30 + i
				switch {
				case n%10 == 0:
					w.Record(ctx, rec(n, "", auth.Public, 401))
				case n%10 == 1:
					w.Record(ctx, rec(n, "finance", auth.Read, 403))
				default:
					w.Record(ctx, rec(n, "ops", auth.Operate, 200))
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var total, distinct, unknown int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT path), count(*) FILTER (WHERE token_name IS NULL AND role IS NULL AND status = 401)
		FROM ledger.audit_log`).Scan(&total, &distinct, &unknown); err != nil {
		t.Fatal(err)
	}
	if total != 300 || distinct != 300 || unknown != 30 {
		t.Fatalf("%d rows, %d distinct, %d unknown", total, distinct, unknown)
	}
	if got := counter(t, reg, "ledger_audit_records_written_total"); got != 300 {
		t.Fatalf("written counter %v", got)
	}

	all, err := audit.List(ctx, db.Pool, audit.Filter{Limit: 1000})
	if err != nil || len(all) != 300 {
		t.Fatalf("%d %v", len(all), err)
	}
	first := all[0]
	if first.Path != "/api/v1/charges/ch_299" || first.Route != "GET /api/v1/charges/{id}" || first.Method != "GET" || first.Duration != 1500 ||
		first.Client == nil || *first.Client != "203.0.113.7" || first.Token == nil || *first.Token != "ops" || *first.Role != "operate" {
		t.Fatalf("newest %+v", first)
	}
	forbidden, err := audit.List(ctx, db.Pool, audit.Filter{Token: "finance", Status: 403, Since: rec(150, "", 0, 0).At, Limit: 100})
	if err != nil || len(forbidden) != 15 {
		t.Fatalf("finance's 403s since the 150th: %d %v", len(forbidden), err)
	}
	if got, _ := audit.List(ctx, db.Pool, audit.Filter{}); len(got) != 50 {
		t.Fatalf("default limit: %d", len(got))
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	w.Record(ctx, rec(1000, "ops", auth.Operate, 200)) // after Close: counted lost, never a panic
	if got := counter(t, reg, "ledger_audit_records_lost_total"); got != 1 {
		t.Fatalf("lost counter %v", got)
	}
}

// When the table cannot be written, the writer keeps the batch and retries; the records arrive
// once it can, none lost and none twice.
func TestWriterRetriesFailedWrites(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	failed := make(chan error, 100)
	w := audit.NewWriter(db.Pool, audit.Config{Retry: 10 * time.Millisecond, Registry: reg,
		Failed: func(_ int, err error) { failed <- err }})
	defer w.Close(ctx)
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE ledger.audit_log RENAME TO audit_log_away`); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.Record(ctx, rec(i, "ops", auth.Operate, 200))
	}
	select {
	case <-failed:
	case <-time.After(testsignal.Timeout):
		t.Fatal("no write failed while the table was away")
	}
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE ledger.audit_log_away RENAME TO audit_log`); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.audit_log`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("%d rows after the retry (%v)", n, err)
	}
}

// counter is the value of a counter reg holds.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
