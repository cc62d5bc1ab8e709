package reconcile_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/clock"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/notify"
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

// A fetch that fails (429, 404, a timeout) is recorded on its thin events, shown by the status,
// retried after its back-off and given up after MaxAttempts; it holds up no other object.
func TestThinFetchFailuresAreRetried(t *testing.T) {
	t.Parallel()
	a := play(t, "thin-destination", nil, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	clk := testkit.NewClock(a.sim.Now())
	reg := prometheus.NewRegistry()
	f := a.thinFetcher(t, clk, reconcile.ThinConfig{MaxAttempts: 2, FirstBackoff: 30 * time.Second, Registerer: reg,
		FetchTimeout: 250 * time.Millisecond})
	metric := func(name, outcome string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() != name || outcome != "" && m.GetLabel()[0].GetValue() != outcome {
					continue
				}
				if m.Counter != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		return 0
	}
	a.server.Fail("/v1/invoices/", http.StatusTooManyRequests)
	a.server.Fail("/v1/checkout/sessions/", http.StatusNotFound)
	a.server.Fail("/v1/credit_notes/", stripesim.Hang) // a timeout
	drainThin(t, f)
	c := a.thinCounts(t)
	var invoices, sessions, notes int
	if err := a.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE object_type = 'invoice'), count(*) FILTER (WHERE object_type = 'checkout.session'),
		count(*) FILTER (WHERE object_type = 'credit_note') FROM ledger.thin_fetches`).Scan(&invoices, &sessions, &notes); err != nil {
		t.Fatal(err)
	}
	if invoices == 0 || sessions == 0 || notes == 0 || c.retrying != invoices+sessions+notes || c.pending != c.retrying || c.fetched == 0 {
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
	if metric("ledger_thin_events_total", "retrying") != float64(c.retrying) || metric("ledger_thin_events_pending", "") != float64(c.pending) ||
		metric("ledger_thin_events_total", "fetched") != float64(c.fetched) {
		t.Fatalf("metrics: retrying %v, pending %v, fetched %v; %+v", metric("ledger_thin_events_total", "retrying"),
			metric("ledger_thin_events_pending", ""), metric("ledger_thin_events_total", "fetched"), c)
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
		switch {
		case strings.HasPrefix(fl.ObjectID, "cs_"):
			want = "404"
		case strings.HasPrefix(fl.ObjectID, "cn_"):
			want = "deadline exceeded"
		}
		if !strings.Contains(fl.LastError, want) || strings.Contains(fl.LastError, "sk_test_thin") {
			t.Fatalf("%s: last error %q", fl.ObjectID, fl.LastError)
		}
	}
	// Not due yet: nothing is tried.
	if p, _ := f.Pass(ctx); p.Retrying != 0 || !p.Next.Equal(clk.Now().Add(30*time.Second)) {
		t.Fatalf("a pass before the back-off: %+v", p)
	}
	// Stripe answers invoices again; the sessions still 404 and the credit note still times out:
	// their second attempt is the last.
	a.server.Heal("/v1/invoices/")
	clk.Advance(31 * time.Second)
	drainThin(t, f)
	c = a.thinCounts(t)
	if c.pending != 0 || c.failed != sessions+notes || c.fetched+c.covered+c.unsupported+c.failed != c.thin {
		t.Fatalf("%+v", c)
	}
	a.matchesTruth(t, "subscriptions", "charges", "invoices", "customers")
	if metric("ledger_thin_events_total", "failed") != float64(sessions+notes) || metric("ledger_thin_events_pending", "") != 0 {
		t.Fatalf("metrics: failed %v, pending %v", metric("ledger_thin_events_total", "failed"), metric("ledger_thin_events_pending", ""))
	}
	if st, err = projections.ReadStatus(ctx, a.db.Pool); err != nil || st.Thin.Failed != sessions+notes || st.Thin.Failing[0].NextAt != nil {
		t.Fatalf("status %+v %v", st.Thin, err)
	}
}

// A Connect platform whose four endpoints are thin destinations, live and test: each thin
// event's object is fetched with its mode's key, for its connected account (Stripe-Account on
// v1, Stripe-Context on v2), and every scope's read models equal the account's.
func TestThinDestinationsOnAPlatform(t *testing.T) {
	t.Parallel()
	pl := playPlatform(t, "connect", func(_ *stripesim.PlatformConfig, dc *stripesim.PlatformDelivery) {
		for _, e := range stripesim.Endpoints {
			dc[e].Thin, dc[e].Outages = true, nil
		}
	})
	ctx := context.Background()
	f, err := reconcile.NewThinFetcher(pl.db.Pool, reconcile.ThinConfig{Clock: testkit.NewClock(pl.p.Now()),
		Stripe: reconcile.StripeConfig{APIKey: liveKey + "," + testKey, APIBase: pl.api, RateLimit: 1000, BaseBackoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := f.Pass(ctx)
		if err != nil || p.Retrying != 0 || p.Failed != 0 {
			t.Fatalf("%+v %v", p, err)
		}
		if p.Fetched == 0 && p.Covered == 0 {
			break
		}
	}
	var accounts, fetched, pending int
	if err := pl.db.Pool.QueryRow(ctx, `SELECT count(DISTINCT (livemode, account)), count(*) FILTER (WHERE status = 'fetched'),
		count(*) FILTER (WHERE status = 'pending') FROM ledger.thin_fetches`).Scan(&accounts, &fetched, &pending); err != nil {
		t.Fatal(err)
	}
	if accounts != len(pl.p.Scopes()) || fetched == 0 || pending != 0 {
		t.Fatalf("thin events of %d scopes of %d, %d fetched, %d pending", accounts, len(pl.p.Scopes()), fetched, pending)
	}
	pl.readModelsMatch(t)
}

// A thin event held because it disagrees with its endpoint (a test-mode one signed for the
// live endpoint) is not fetched until an operator releases it.
func TestHeldThinEventsWaitForRelease(t *testing.T) {
	t.Parallel()
	a := smallThinAccount(t, 5, 10)
	ctx := context.Background()
	clk := testkit.NewClock(a.sim.Now())
	f := a.thinFetcher(t, clk, reconcile.ThinConfig{})
	drainThin(t, f)
	var customer string
	for _, ev := range a.sim.Events() {
		if ev.Type == "customer.created" {
			customer = ev.ObjectID
			break
		}
	}
	// A later thin event of the customer, arriving on the live endpoint.
	held := thinEvent(t, "evt_test_65heldheld", "v1.customer.updated", "customer", customer, a.sim.Now())
	held.Source, held.Signature = domain.SourceWebhook, "t=1,v1=00"
	app := eventstore.NewAppender(eventstore.New(a.db.Pool), eventstore.AppenderConfig{})
	defer app.Close()
	res, err := app.AppendFrom(ctx, eventstore.EndpointLive, []domain.Event{held})
	if err != nil || res[0].Err != nil {
		t.Fatalf("%v %+v", err, res)
	}
	status := func() (s string, attempts int) {
		t.Helper()
		if err := a.db.Pool.QueryRow(ctx, `SELECT status, attempts FROM ledger.thin_fetches WHERE event_id = $1`, held.ID).Scan(&s, &attempts); err != nil {
			t.Fatal(err)
		}
		return s, attempts
	}
	// Nothing is due while it is held: the pass says so, and a running fetcher sleeps.
	if p, err := f.Pass(ctx); err != nil || p.Fetched+p.Covered != 0 || !p.Next.IsZero() {
		t.Fatalf("a held thin event was answered, or is due: %+v %v", p, err)
	}
	if s, n := status(); s != "pending" || n != 0 {
		t.Fatalf("held: %s after %d attempts", s, n)
	}
	tx, err := a.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := eventstore.Release(ctx, tx, held.ID); !ok || err != nil {
		t.Fatalf("release: %t %v", ok, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := f.Pass(ctx); err != nil || p.Fetched+p.Covered != 1 {
		t.Fatalf("released: %+v %v", p, err)
	}
	if s, _ := status(); s != "fetched" && s != "covered" {
		t.Fatalf("released: %s", s)
	}
}

// A thin event of the same second as an object's last fetch, ranked below that fetch's thin event
// but not shown to be older than the fetch, is not taken as answered: the object is fetched again
// for the later-ranked thin event, and the new snapshot sorts after the old one.
func TestThinEventsOfTheFetchsSecondAreFetchedAgain(t *testing.T) {
	t.Parallel()
	a := smallThinAccount(t, 5, 10)
	ctx := context.Background()
	var last time.Time
	if err := a.db.Pool.QueryRow(ctx, `SELECT max(created) FROM ledger.events WHERE type LIKE 'v1.customer.%'`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	// The fetches are made in the second of the last customer event.
	clk := testkit.NewClock(last)
	f := a.thinFetcher(t, clk, reconcile.ThinConfig{})
	drainThin(t, f)
	var latest, customer, snapshot string
	if err := a.db.Pool.QueryRow(ctx, `SELECT event_id, object_id, snapshot_id FROM ledger.thin_fetches
		WHERE status = 'fetched' AND object_type = 'customer' AND created = $1 ORDER BY event_id DESC LIMIT 1`, last).Scan(&latest, &customer, &snapshot); err != nil {
		t.Fatal(err)
	}
	// A creation (the lowest rank) in that second, which the fetch may have come before.
	early := thinEvent(t, "evt_test_650000000000", "v1.customer.created", "customer", customer, last)
	if res, err := eventstore.New(a.db.Pool).Append(ctx, []domain.Event{early}); err != nil || res[0].Err != nil {
		t.Fatalf("%v %+v", err, res)
	}
	clk.Advance(time.Second)
	p, err := f.Pass(ctx)
	if err != nil || p.Fetched != 1 || p.Covered != 1 {
		t.Fatalf("%+v %v", p, err)
	}
	var status, coveredBy, refetched string
	if err := a.db.Pool.QueryRow(ctx, `SELECT e.status, e.covered_by, l.snapshot_id FROM ledger.thin_fetches e, ledger.thin_fetches l
		WHERE e.event_id = $1 AND l.event_id = $2`, early.ID, latest).Scan(&status, &coveredBy, &refetched); err != nil {
		t.Fatal(err)
	}
	if status != "covered" || coveredBy != latest || refetched <= snapshot {
		t.Fatalf("the early event is %s (by %s); the latest's snapshot %s, before %s", status, coveredBy, refetched, snapshot)
	}
	// One the fetch came well after is answered without a fetch.
	clk.Advance(time.Minute)
	again := thinEvent(t, "evt_test_650000000001", "v1.customer.updated", "customer", customer, last.Add(-10*time.Second))
	if res, err := eventstore.New(a.db.Pool).Append(ctx, []domain.Event{again}); err != nil || res[0].Err != nil {
		t.Fatalf("%v %+v", err, res)
	}
	if p, err := f.Pass(ctx); err != nil || p.Fetched != 0 || p.Covered != 1 {
		t.Fatalf("%+v %v", p, err)
	}
}

// A deletion's thin event whose object Stripe no longer answers for: a customer's is the
// deletion (Stripe's deleted customer), another kind's is given up at once, not retried.
func TestThinDeletionsOfGoneObjects(t *testing.T) {
	t.Parallel()
	a := smallThinAccount(t, 3, 5)
	ctx := context.Background()
	created, err := domain.NewEvent(fmt.Appendf(nil, `{"id":"evt_gonecoupon","object":"event","api_version":"2026-08-26.dahlia","created":%d,"livemode":false,`+
		`"type":"coupon.created","data":{"object":{"id":"GONE10","object":"coupon","created":%d,"duration":"forever","duration_in_months":null,`+
		`"percent_off":10,"amount_off":null,"currency":null,"livemode":false,"metadata":{},"name":"Gone","valid":true}}}`, a.sim.Now().Unix()-60, a.sim.Now().Unix()-60),
		domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	evs := []domain.Event{thinEvent(t, "evt_test_65goneinvoice", "v1.invoice.deleted", "invoice", "in_gone", a.sim.Now()),
		thinEvent(t, "evt_test_65gonecustomer", "v1.customer.deleted", "customer", "cus_gone", a.sim.Now()),
		created, thinEvent(t, "evt_test_65gonecoupon", "v1.coupon.deleted", "coupon", "GONE10", a.sim.Now())}
	if res, err := eventstore.New(a.db.Pool).Append(ctx, evs); err != nil || res[0].Err != nil || res[1].Err != nil || res[2].Err != nil || res[3].Err != nil {
		t.Fatalf("%v %+v", err, res)
	}
	f := a.thinFetcher(t, testkit.NewClock(a.sim.Now()), reconcile.ThinConfig{})
	drainThin(t, f)
	var status, lastError string
	var attempts int
	if err := a.db.Pool.QueryRow(ctx, `SELECT status, attempts, last_error FROM ledger.thin_fetches WHERE event_id = 'evt_test_65goneinvoice'`).Scan(&status, &attempts, &lastError); err != nil ||
		status != "failed" || attempts != 1 || !strings.Contains(lastError, "404 for the deleted invoice") {
		t.Fatalf("the gone invoice: %s after %d attempts (%s) %v", status, attempts, lastError, err)
	}
	var deleted bool
	if err := a.db.Pool.QueryRow(ctx, `SELECT (payload->'data'->'object'->>'deleted')::boolean FROM ledger.events_json
		WHERE type = 'ledger.snapshot.customer' AND object_id = 'cus_gone'`).Scan(&deleted); err != nil || !deleted {
		t.Fatalf("the gone customer's snapshot: deleted %t, %v", deleted, err)
	}
	// A gone coupon is deleted and keeps its terms: discounts that use it go on.
	if _, err := projections.Rebuild(ctx, a.db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	var pct string
	if err := a.db.Pool.QueryRow(ctx, `SELECT deleted, percent_off::text FROM ledger.coupons WHERE id = 'GONE10'`).Scan(&deleted, &pct); err != nil || !deleted || pct != "10" {
		t.Fatalf("the gone coupon: deleted %t, percent_off %s, %v", deleted, pct, err)
	}
}

// thinEvent is a test-mode thin event about an object, imported (no signature).
func thinEvent(t *testing.T, id, typ, objectType, objectID string, created time.Time) domain.Event {
	t.Helper()
	ev, err := domain.NewEvent(fmt.Appendf(nil, `{"id":%q,"object":"v2.core.event","type":%q,"created":%q,"livemode":false,`+
		`"related_object":{"id":%q,"type":%q,"url":"/v1/%ss/%s"}}`, id, typ, created.UTC().Format(time.RFC3339), objectID, objectType,
		objectType, objectID), domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// smallThinAccount is a thin destination's account of a few customers over a few days.
func smallThinAccount(t *testing.T, customers, days int) *account {
	t.Helper()
	return play(t, "thin-destination", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) {
		c.Customers, c.Duration = customers, time.Duration(days)*24*time.Hour
	}, stripesim.ServerConfig{RateLimit: -1})
}

// drainThin passes until a pass does nothing.
func drainThin(t *testing.T, f *reconcile.ThinFetcher) {
	t.Helper()
	for {
		p, err := f.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if p.Fetched+p.Covered+p.Retrying+p.Failed == 0 {
			return
		}
	}
}

// A thin destination's events notify once their object is fetched: each as the Stripe event it
// announces (v1.invoice.paid as invoice.paid), once, keyed by the thin event, with the fields of
// the object the fetch brought; those a fetch for a later one covered too. Nothing notifies
// before the fetch, and a second sweep adds nothing.
func TestThinEventsNotifyOnceFetched(t *testing.T) {
	t.Parallel()
	a := smallThinAccount(t, 3, 5)
	ctx := context.Background()
	cfg, err := notify.Parse([]byte(`
channels:
  pay: {type: slack, url_env: PAY_URL}
rules:
  - name: billing
    events: [customer.subscription.created, invoice.paid]
    channel: pay
    subject: "{{.type}} {{.object_id}} {{.amount_formatted}}"
`), "thin.yaml", func(k string) string { return map[string]string{"PAY_URL": "http://127.0.0.1:1/hook"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	clk := testkit.NewClock(a.sim.Now())
	r, err := notify.NewRunner(a.db.Pool, notify.RunnerConfig{Config: cfg, Clock: clk, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx); err != nil {
		t.Fatal(err)
	}
	// The rule was in force before the account's events came: it fires for all of them.
	if _, err := a.db.Pool.Exec(ctx, `UPDATE ledger.notify_rules_seen SET first_position = 0`); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("a sweep before any fetch added %d (%v)", n, err)
	}
	drainThin(t, a.thinFetcher(t, clk, reconcile.ThinConfig{}))
	var want, covered int
	if err := a.db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'covered') FROM ledger.thin_fetches
		WHERE type IN ('v1.customer.subscription.created', 'v1.invoice.paid') AND status IN ('fetched', 'covered')`).Scan(&want, &covered); err != nil {
		t.Fatal(err)
	}
	n, err := r.Sweep(ctx)
	if err != nil || n != want || want == 0 {
		t.Fatalf("the sweep after the fetches added %d of %d (%v)", n, want, err)
	}
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("a second sweep added %d (%v)", n, err)
	}
	var wrong int
	if err := a.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.notify_outbox o JOIN ledger.thin_fetches t ON t.event_id = o.event_id
		WHERE o.message->>'subject' NOT LIKE substr(t.type, 4) || ' ' || t.object_id || '%'
		   OR (t.type = 'v1.invoice.paid' AND o.message->>'subject' !~ ' [0-9]+\.[0-9]{2} [A-Z]{3}$')`).Scan(&wrong); err != nil || wrong != 0 {
		t.Fatalf("%d notifications do not name their event, object and amount (%v)", wrong, err)
	}
	t.Logf("%d thin events notified, %d of them covered by a later fetch", want, covered)
}
