package reconcile_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/clock"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
)

// thinFetcher is a fetcher of the account on clk, its client unthrottled as the reconciler's.
func (a *account) thinFetcher(t *testing.T, clk clock.Clock, cfg reconcile.ThinConfig) *reconcile.ThinFetcher {
	t.Helper()
	cfg.Stripe = reconcile.StripeConfig{APIKey: "sk_test_thin", APIBase: a.api, RateLimit: 1000, BaseBackoff: time.Millisecond}
	cfg.Clock = clk
	f, err := reconcile.NewThinFetcher(a.db.Pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// thinCounts are ledger.thin_fetches by status, and the log's thin events and snapshots.
type thinCounts struct {
	thin, snapshots, withPrev                                int
	pending, retrying, fetched, covered, failed, unsupported int
}

func (a *account) thinCounts(t *testing.T) thinCounts {
	t.Helper()
	var c thinCounts
	if err := a.db.Pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM ledger.events WHERE type LIKE 'v1.%'),
		(SELECT count(*) FROM ledger.events WHERE type LIKE 'ledger.snapshot.%'),
		(SELECT count(*) FROM ledger.events_json WHERE type LIKE 'ledger.snapshot.%' AND payload->'data' ? 'previous_attributes'),
		count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'pending' AND attempts > 0),
		count(*) FILTER (WHERE status = 'fetched'), count(*) FILTER (WHERE status = 'covered'),
		count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'unsupported')
		FROM ledger.thin_fetches`).Scan(&c.thin, &c.snapshots, &c.withPrev, &c.pending, &c.retrying, &c.fetched, &c.covered, &c.failed, &c.unsupported); err != nil {
		t.Fatal(err)
	}
	return c
}

// An account whose endpoint is a thin event destination: the log holds its thin events, the
// running fetcher fetches each object once per burst of thin events and appends it, and the read
// models then equal the account.
func TestThinDestination(t *testing.T) {
	t.Parallel()
	a := play(t, "thin-destination", nil, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	c := a.thinCounts(t)
	if c.thin != len(a.sim.Events()) || c.snapshots != 0 {
		t.Fatalf("the log holds %d thin events of the account's %d, and %d snapshots", c.thin, len(a.sim.Events()), c.snapshots)
	}
	f := a.thinFetcher(t, clock.Real, reconcile.ThinConfig{Store: eventstore.New(a.db.Pool), BatchSize: 300})
	f.Signals.Passed.Init(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	// Passes follow each other while there is work (each append wakes the next); the one that
	// finds nothing pending is the end.
	passes := 0
	for p := f.Signals.Passed.Wait(); ; p = f.Signals.Passed.Wait() {
		passes++
		if p.Next.IsZero() && p.Fetched == 0 && p.Covered == 0 {
			break
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.matchesTruth(t, "subscriptions", "charges", "invoices", "customers")
	c = a.thinCounts(t)
	t.Logf("%d passes: %+v", passes, c)
	if c.pending != 0 || c.failed != 0 || c.fetched != c.snapshots || c.fetched+c.covered+c.unsupported != c.thin ||
		c.covered == 0 || c.withPrev == 0 {
		t.Fatalf("%+v", c)
	}
	// Fewer fetches than thin events: one answers a burst. Not fewer than objects.
	var objects int
	if err := a.db.Pool.QueryRow(ctx, `SELECT count(DISTINCT object_id) FROM ledger.thin_fetches WHERE status <> 'unsupported'`).Scan(&objects); err != nil {
		t.Fatal(err)
	}
	if c.fetched < objects || c.fetched >= c.thin {
		t.Fatalf("%d fetches for %d objects and %d thin events", c.fetched, objects, c.thin)
	}
	// Another pass fetches nothing.
	p, err := f.Pass(ctx)
	if err != nil || p.Fetched != 0 || p.Covered != 0 || !p.Next.IsZero() {
		t.Fatalf("%+v %v", p, err)
	}
}

// A fetch that fails is recorded on its thin events, shown by the status, retried after its
// back-off and given up after MaxAttempts; it holds up no other object.
func TestThinFetchFailuresAreRetried(t *testing.T) {
	t.Parallel()
	a := play(t, "thin-destination", nil, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	clk := testkit.NewClock(a.sim.Now())
	f := a.thinFetcher(t, clk, reconcile.ThinConfig{MaxAttempts: 2, FirstBackoff: 30 * time.Second})
	a.server.Fail("/v1/invoices/", http.StatusTooManyRequests)
	a.server.Fail("/v1/checkout/sessions/", http.StatusNotFound)
	drain := func() {
		t.Helper()
		for {
			p, err := f.Pass(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if p.Fetched == 0 && p.Covered == 0 && p.Retrying == 0 && p.Failed == 0 {
				return
			}
		}
	}
	drain()
	c := a.thinCounts(t)
	var invoices, sessions int
	if err := a.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE object_type = 'invoice'), count(*) FILTER (WHERE object_type = 'checkout.session')
		FROM ledger.thin_fetches`).Scan(&invoices, &sessions); err != nil {
		t.Fatal(err)
	}
	if invoices == 0 || sessions == 0 || c.retrying != invoices+sessions || c.pending != c.retrying || c.fetched == 0 {
		rows, _ := a.db.Pool.Query(ctx, `SELECT object_type, left(last_error, 200), count(*) FROM ledger.thin_fetches WHERE attempts > 0 GROUP BY 1, 2`)
		for rows.Next() {
			var typ, msg string
			var n int
			_ = rows.Scan(&typ, &msg, &n)
			t.Logf("%s %d: %s", typ, n, msg)
		}
		rows.Close()
		t.Fatalf("%d invoice and %d session thin events; %+v", invoices, sessions, c)
	}
	st, err := projections.ReadStatus(ctx, a.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if st.Thin.Retrying != c.retrying || len(st.Thin.Failing) == 0 || st.Thin.Failing[0].Attempts != 1 || st.Thin.Failing[0].NextAt == nil ||
		!st.Thin.Failing[0].NextAt.Equal(clk.Now().Add(30*time.Second)) {
		t.Fatalf("status %+v", st.Thin)
	}
	for _, fl := range st.Thin.Failing {
		want := "429"
		if strings.HasPrefix(fl.ObjectID, "cs_") {
			want = "404"
		}
		if !strings.Contains(fl.LastError, want) || strings.Contains(fl.LastError, "sk_test_thin") {
			t.Fatalf("%s: last error %q", fl.ObjectID, fl.LastError)
		}
	}
	// Not due yet: nothing is tried.
	if p, _ := f.Pass(ctx); p.Retrying != 0 || !p.Next.Equal(clk.Now().Add(30*time.Second)) {
		t.Fatalf("a pass before the back-off: %+v", p)
	}
	// Stripe answers invoices again; the sessions still 404, their second attempt is the last.
	a.server.Heal("/v1/invoices/")
	clk.Advance(31 * time.Second)
	drain()
	c = a.thinCounts(t)
	if c.pending != 0 || c.failed != sessions || c.fetched+c.covered+c.unsupported+c.failed != c.thin {
		t.Fatalf("%+v", c)
	}
	a.matchesTruth(t, "subscriptions", "charges", "invoices", "customers")
	if st, err = projections.ReadStatus(ctx, a.db.Pool); err != nil || st.Thin.Failed != sessions || st.Thin.Failing[0].NextAt != nil {
		t.Fatalf("status %+v %v", st.Thin, err)
	}
}
