package audit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/audit"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/internal/testsignal"
)

// Requests whose path or peer address Postgres would refuse as text or inet (%00, %ff, a
// link-local peer with a zone, a peer that is no address) are audited all the same, and the
// writer keeps writing the records that come after them.
func TestHostileRequestsDoNotStopTheWriter(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	w := audit.NewWriter(db.Pool, audit.Config{Retry: time.Millisecond, Registry: reg})
	defer w.Close(ctx)
	g := &auth.Guard{Tokens: auth.MustParseEnv("fin:read:tok_read"), Audit: w}
	h := g.Require("GET /api/v1/charges/{id}", auth.Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if fake := r.Header.Get("X-Test-Remote"); fake != "" {
			r.RemoteAddr = fake // what a listener on a link-local interface, or a broken one, hands over
		}
		h.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	call := func(path, token, remote string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if remote != "" {
			req.Header.Set("X-Test-Remote", remote)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	call("/api/v1/charges/%00", "tok_any", "")
	call("/api/v1/charges/%ff", "tok_any", "")
	call("/api/v1/charges/ch_1", "tok_read", "[fe80::1%eth0]:5000")
	call("/api/v1/charges/ch_2", "tok_read", "not an address")
	call("/api/v1/charges/ch_3", "tok_read", "")

	fctx, cancel := context.WithTimeout(ctx, testsignal.Timeout)
	defer cancel()
	if err := w.Flush(fctx); err != nil {
		t.Fatalf("the writer stopped writing: %v", err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT path, coalesce(host(client_addr), 'NULL') FROM ledger.audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	for rows.Next() {
		var p, c string
		if err := rows.Scan(&p, &c); err != nil {
			t.Fatal(err)
		}
		got = append(got, [2]string{p, c})
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want := [][2]string{
		{"/api/v1/charges/%00", "127.0.0.1"},
		{"/api/v1/charges/%ff", "127.0.0.1"},
		{"/api/v1/charges/ch_1", "fe80::1"},
		{"/api/v1/charges/ch_2", "NULL"},
		{"/api/v1/charges/ch_3", "127.0.0.1"},
	}
	if len(got) != len(want) {
		t.Fatalf("rows %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %q, want %q", i, got[i], want[i])
		}
	}
	if lost := counter(t, reg, "ledger_audit_records_lost_total"); lost != 0 {
		t.Errorf("%v records lost", lost)
	}
}

// Text that is not valid UTF-8 or holds NUL is made valid before it is queued, so no field a
// caller passes can make Postgres refuse the row.
func TestRecordMakesTextValid(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	w := audit.NewWriter(db.Pool, audit.Config{})
	defer w.Close(ctx)
	r := rec(1, "ops", auth.Operate, 200)
	r.Method, r.Route, r.Path, r.Client = "G\x00ET", "GET /x\xff", "/a\x00b\xffc", "fe80::1%eth0"
	w.Record(ctx, r)
	r = rec(2, "ops", auth.Operate, 200)
	r.Client = "300.1.1.1"
	w.Record(ctx, r)
	fctx, cancel := context.WithTimeout(ctx, testsignal.Timeout)
	defer cancel()
	if err := w.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	all, err := audit.List(ctx, db.Pool, audit.Filter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("%d %v", len(all), err)
	}
	if e := all[1]; e.Method != "GET" || e.Route != "GET /x\uFFFD" || e.Path != "/ab\uFFFDc" || e.Client == nil || *e.Client != "fe80::1" {
		t.Errorf("cleaned %+v", e)
	}
	if e := all[0]; e.Client != nil {
		t.Errorf("an address that does not parse is NULL, got %q", *e.Client)
	}
}

// A row Postgres refuses for its data (here a role the table's CHECK refuses) is counted lost
// and logged; the rest of its batch and every later batch are written, never retried forever.
func TestRefusedRowIsLostNotRetriedForever(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	w := audit.NewWriter(db.Pool, audit.Config{Batch: 100, Retry: time.Millisecond, Registry: reg})
	defer w.Close(ctx)
	// One Flush after all seven makes them one batch or a few; either way the bad one is inside.
	for i := range 7 {
		role := auth.Operate
		if i == 3 {
			role = auth.Role(9)
		}
		w.Record(ctx, rec(i, "ops", role, 200))
	}
	fctx, cancel := context.WithTimeout(ctx, testsignal.Timeout)
	defer cancel()
	if err := w.Flush(fctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	w.Record(ctx, rec(10, "ops", auth.Operate, 200))
	if err := w.Flush(fctx); err != nil {
		t.Fatalf("flush after the refused row: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.audit_log`).Scan(&n); err != nil || n != 7 {
		t.Fatalf("%d rows (%v), want 7", n, err)
	}
	if lost := counter(t, reg, "ledger_audit_records_lost_total"); lost != 1 {
		t.Fatalf("lost %v, want 1", lost)
	}
}

// With the queue full, Record gives up when its request's context ends, counting the record
// lost, instead of holding the request.
func TestRecordGivesUpWhenTheRequestEnds(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	failed := make(chan struct{}, 100)
	w := audit.NewWriter(db.Pool, audit.Config{Queue: 1, Retry: time.Hour, Registry: reg,
		Failed: func(int, error) { failed <- struct{}{} }})
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE ledger.audit_log RENAME TO audit_log_away`); err != nil {
		t.Fatal(err)
	}
	w.Record(ctx, rec(1, "ops", auth.Operate, 200)) // taken by the writer, which cannot write it
	select {
	case <-failed:
	case <-time.After(testsignal.Timeout):
		t.Fatal("the write did not fail")
	}
	w.Record(ctx, rec(2, "ops", auth.Operate, 200)) // fills the queue
	gone, cancel := context.WithCancel(ctx)
	cancel()
	w.Record(gone, rec(3, "ops", auth.Operate, 200)) // would block for good
	if lost := counter(t, reg, "ledger_audit_records_lost_total"); lost != 1 {
		t.Fatalf("lost %v, want 1", lost)
	}
	cctx, ccancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer ccancel()
	if err := w.Close(cctx); err == nil {
		t.Fatal("Close wrote records into a missing table")
	}
	if lost := counter(t, reg, "ledger_audit_records_lost_total"); lost != 3 {
		t.Fatalf("lost %v after Close, want 3", lost)
	}
}

// Close returns by its deadline even while a write is stuck (here behind a lock on the table),
// counting what it could not write as lost.
func TestCloseKeepsItsDeadline(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	w := audit.NewWriter(db.Pool, audit.Config{Registry: reg})
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE ledger.audit_log IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Record(ctx, rec(i, "ops", auth.Operate, 200))
	}
	const deadline = 200 * time.Millisecond
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	if err := w.Close(cctx); err == nil {
		t.Fatal("Close says it wrote into a locked table")
	}
	// Each write has 10 s of its own; Close must not wait for one. 5 s leaves room for a loaded
	// machine and none for a write's timeout.
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close took %v with a deadline of %v", took, deadline)
	}
	if lost := counter(t, reg, "ledger_audit_records_lost_total"); lost != 3 {
		t.Fatalf("lost %v, want 3", lost)
	}
}
