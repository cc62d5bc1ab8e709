package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/internal/testsignal"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
	"github.com/stripeledger/ledger/webhook"
)

const secret = "whsec_reconcile_test"

var end = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// account is a simulated Stripe account that has played into a ledger over real HTTP: webhooks
// to the real handler, the Events API and object lists served for the reconciler.
type account struct {
	db     *testkit.DB
	sim    *stripesim.Sim
	server *stripesim.Server
	api    string
}

func play(t *testing.T, scenario string, customize func(*stripesim.Config, *stripesim.DeliveryConfig), serverCfg stripesim.ServerConfig) *account {
	t.Helper()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{})
	t.Cleanup(appender.Close)
	h, err := webhook.New(webhook.Config{Secrets: []string{secret}, Logger: slog.New(slog.DiscardHandler)}, appender, store,
		webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	t.Cleanup(hook.Close)
	cfg, dc, err := stripesim.Setup(scenario, stripesim.Config{Seed: 5, End: end}, stripesim.DeliveryConfig{URL: hook.URL, Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	if customize != nil {
		customize(&cfg, &dc)
	}
	sim := stripesim.New(cfg)
	d := stripesim.NewDeliverer(sim, dc)
	server := stripesim.NewServer(sim, d, serverCfg)
	api := httptest.NewServer(server)
	t.Cleanup(api.Close)
	if err := (&stripesim.Runner{Sim: sim, Deliverer: d}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &account{db: db, sim: sim, server: server, api: api.URL}
}

func (a *account) reconciler(rateLimit float64) *reconcile.Reconciler {
	return a.reconcilerWith(rateLimit, reconcile.Config{})
}

// reconcilerWith is a reconciler of the account with cfg's page size and hooks, on the
// simulator's clock, its Stripe client limited to rateLimit requests a second (0: the default).
func (a *account) reconcilerWith(rateLimit float64, cfg reconcile.Config) *reconcile.Reconciler {
	if rateLimit == 0 {
		rateLimit = 1000 // the simulator enforces none here: the tests need not wait on the default
	}
	// The key of the account's mode, as against Stripe: a scope's events say its mode.
	key := "sk_test_reconcile"
	if a.sim.Config().Livemode {
		key = "sk_live_reconcile"
	}
	cfg.Stripe = reconcile.StripeConfig{APIKey: key, APIBase: a.api, RateLimit: rateLimit, BaseBackoff: 20 * time.Millisecond}
	cfg.Now = a.sim.Now
	return reconcile.New(a.db.Pool, cfg)
}

// logged is the set of event IDs in the log.
func (a *account) logged(t *testing.T) map[string]bool {
	t.Helper()
	rows, err := a.db.Pool.Query(context.Background(), `SELECT event_id FROM ledger.events`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		out[id] = true
	}
	rows.Close()
	return out
}

// missing is the simulator's events (created at or after since) not in the log.
func (a *account) missing(t *testing.T, since time.Time) []string {
	t.Helper()
	have := a.logged(t)
	var out []string
	for _, ev := range a.sim.Events() {
		if ev.Created >= since.Unix() && !have[ev.ID] {
			out = append(out, ev.ID)
		}
	}
	return out
}

// matchesTruth rebuilds the read models and compares the given kinds with the simulator's state.
func (a *account) matchesTruth(t *testing.T, kinds ...string) {
	t.Helper()
	ctx := context.Background()
	st, err := projections.Rebuild(ctx, a.db.Pool, projections.Config{})
	if err != nil {
		t.Fatal(err)
	}
	truth := a.sim.Truth()
	for _, kind := range kinds {
		var objs []json.RawMessage
		_ = json.Unmarshal(truth.Objects[kind], &objs)
		if st.Rows[kind] != len(objs) {
			t.Errorf("ledger.%s has %d rows, the account %d objects", kind, st.Rows[kind], len(objs))
		}
	}
	queries := map[string]string{
		"subscriptions": `SELECT count(*) FROM ledger.subscriptions s JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = s.id
			WHERE o->>'status' <> s.status OR (o->>'current_period_end')::bigint <> extract(epoch FROM s.current_period_end)
			   OR (o->>'cancel_at_period_end')::boolean <> s.cancel_at_period_end`,
		"charges": `SELECT count(*) FROM ledger.charges c JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = c.id
			WHERE (o->>'amount')::bigint <> c.amount OR (o->>'amount_refunded')::bigint <> c.amount_refunded OR o->>'status' <> c.status
			   OR c.attention IS NULL AND o->>'invoice' IS DISTINCT FROM c.invoice`,
		"invoices": `SELECT count(*) FROM ledger.invoices i JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = i.id
			WHERE o->>'status' <> i.status OR (o->>'amount_paid')::bigint <> i.amount_paid
			   OR o->>'subscription' IS DISTINCT FROM i.subscription OR (o->>'tax')::bigint IS DISTINCT FROM i.tax
			   OR i.attention IS NULL AND (o->>'payment_intent' IS DISTINCT FROM i.payment_intent OR o->>'charge' IS DISTINCT FROM i.charge)`,
	}
	for _, kind := range kinds {
		q, ok := queries[kind]
		if !ok {
			continue
		}
		var n int
		if err := a.db.Pool.QueryRow(ctx, q, string(truth.Objects[kind])).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d %s differ from the account", n, kind)
		}
	}
}

// After a four-day outage Stripe gave up on some events; one events run appends exactly those,
// after which the log holds every event of the account and the read models equal its state. A
// second run finds nothing.
func TestEventsRunRepairsTheOutage(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", nil, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	before := a.missing(t, time.Time{})
	if len(before) < 10 {
		t.Fatalf("the outage left only %d events undelivered", len(before))
	}
	run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != "succeeded" || run.MissingFound != len(before) || run.Repaired != len(before) || run.EventsSeen == 0 {
		t.Fatalf("run %+v; %d events were missing", run, len(before))
	}
	if after := a.missing(t, time.Time{}); len(after) != 0 {
		t.Fatalf("%d events still missing: %v", len(after), after[:min(5, len(after))])
	}
	var reconciled int
	_ = a.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.events WHERE source = 'reconcile'`).Scan(&reconciled)
	if reconciled != len(before) || len(a.logged(t)) != len(a.sim.Events()) {
		t.Fatalf("%d reconciled events, %d in the log, %d in the account", reconciled, len(a.logged(t)), len(a.sim.Events()))
	}
	a.matchesTruth(t, "subscriptions", "charges", "invoices", "customers")

	again, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if err != nil || again.MissingFound != 0 || again.Repaired != 0 {
		t.Fatalf("second run: %+v %v", again, err)
	}
	if !again.WindowFrom.After(*run.WindowFrom) {
		t.Fatalf("the second run did not start from the proven window: %v vs %v", again.WindowFrom, run.WindowFrom)
	}
	fast, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobEventsFast})
	if err != nil || fast.MissingFound != 0 || fast.EventsSeen == 0 {
		t.Fatalf("fast pass after repair: %+v %v", fast, err)
	}
}

// A dry run reports what is missing and writes nothing but its run row; the fast pass
// (delivery_success=false) finds the same events.
func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) { c.Customers = 80 }, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	missing := a.missing(t, time.Time{})
	for _, job := range []reconcile.Job{reconcile.JobEvents, reconcile.JobEventsFast} {
		run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: job, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if !run.DryRun || run.MissingFound != len(missing) || run.Repaired != 0 {
			t.Fatalf("%s dry run: %+v, %d missing", job, run, len(missing))
		}
		var findings []map[string]any
		_ = json.Unmarshal(run.Findings, &findings)
		if len(findings) != len(missing) {
			t.Fatalf("%s dry run lists %d findings, want %d", job, len(findings), len(missing))
		}
	}
	if still := a.missing(t, time.Time{}); len(still) != len(missing) {
		t.Fatalf("a dry run appended %d events", len(missing)-len(still))
	}
	var coverage int
	_ = a.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.reconcile_coverage`).Scan(&coverage)
	if coverage != 0 {
		t.Fatal("a dry run recorded a proven window")
	}
}

// With the simulator enforcing a rate limit and the reconciler asking for more, the run still
// completes: 429s are retried with back-off, and nothing is appended twice. The simulator allows
// one request per 100 ms with no burst, so any two requests closer than that meet a 429 however
// fast or slow the machine is.
func TestRateLimitedRunCompletes(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) { c.Customers = 60 }, stripesim.ServerConfig{RateLimit: 10, Burst: 1})
	missing := a.missing(t, time.Time{})
	run, err := a.reconcilerWith(200, reconcile.Config{PageSize: 10}).Run(context.Background(), reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	if run.RateLimited == 0 || run.Requests <= run.RateLimited || run.Repaired != len(missing) {
		t.Fatalf("run %+v, %d missing", run, len(missing))
	}
	if len(a.logged(t)) != len(a.sim.Events()) {
		t.Fatalf("%d events in the log, %d in the account", len(a.logged(t)), len(a.sim.Events()))
	}
}

// A run cancelled halfway is recorded as cancelled with its cursor; the next run resumes from it
// (same window) and the two together append every missing event once. The first run is
// cancelled from its own goroutine right after it recorded its first page, so it stops there
// whatever the machine's speed.
func TestCancelledRunResumes(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", nil, stripesim.ServerConfig{RateLimit: -1})
	missing := a.missing(t, time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const page = 50
	first, err := a.reconcilerWith(0, reconcile.Config{PageSize: page, AfterPage: func(r reconcile.Run) {
		if r.Cursor != "" {
			cancel()
		}
	}}).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %+v %v", first, err)
	}
	if first.Status != "cancelled" || first.Cursor == "" || first.EventsSeen != page {
		t.Fatalf("first run recorded as %+v", first)
	}
	second, err := a.reconciler(0).Run(context.Background(), reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	if second.ResumedFrom == nil || *second.ResumedFrom != first.ID || !second.WindowFrom.Equal(*first.WindowFrom) {
		t.Fatalf("second run did not resume the first: %+v", second)
	}
	if first.Repaired+second.Repaired != len(missing) || len(a.missing(t, time.Time{})) != 0 {
		t.Fatalf("repaired %d + %d, %d were missing", first.Repaired, second.Repaired, len(missing))
	}
	inWindow := 0
	for _, ev := range a.sim.Events() {
		if ev.Created >= first.WindowFrom.Unix() && ev.Created <= first.WindowTo.Unix() {
			inWindow++
		}
	}
	if first.EventsSeen+second.EventsSeen > inWindow+50 {
		t.Fatalf("the resumed run re-listed the window: %d + %d seen, %d in it", first.EventsSeen, second.EventsSeen, inWindow)
	}
}

// Two processes starting the same job at the same moment: one runs it, the other is told it is
// already running. The run that got in holds on its first page until the other has been
// answered, so the two overlap however fast either is.
func TestOneRunAtATime(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) { c.Customers = 60 }, stripesim.ServerConfig{RateLimit: -1})
	answered := make(chan struct{})
	var once sync.Once
	hold := func(reconcile.Run) {
		select {
		case <-answered:
		case <-time.After(testsignal.Timeout): // both got in: the counts below fail the test
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.reconcilerWith(0, reconcile.Config{AfterPage: hold}).Run(context.Background(), reconcile.Options{Job: reconcile.JobEvents})
			if errs[i] != nil {
				once.Do(func() { close(answered) })
			}
		}()
	}
	wg.Wait()
	var ran, refused int
	for _, err := range errs {
		switch {
		case err == nil:
			ran++
		case errors.Is(err, reconcile.ErrAlreadyRunning):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if ran != 1 || refused != 1 {
		t.Fatalf("%d ran, %d refused", ran, refused)
	}
	runs, err := reconcile.ListRuns(context.Background(), a.db.Pool, reconcile.JobEvents, 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("%d runs recorded (%v)", len(runs), err)
	}
}

// Events older than 30 days that were never delivered are beyond the Events API: the drift check
// finds the objects they changed, appends snapshots of Stripe's objects, and the read models then
// equal the account's state. A second run finds nothing and appends nothing.
func TestObjectDriftRepairedBySnapshots(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, dc *stripesim.DeliveryConfig) {
		c.Customers = 120
		from := c.End.Add(-60 * 24 * time.Hour)
		dc.Outages = []stripesim.Window{{From: from, To: from.Add(4 * 24 * time.Hour)}}
	}, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	if len(a.missing(t, time.Time{})) == 0 {
		t.Fatal("the outage lost no events")
	}
	if recent := a.missing(t, end.Add(-reconcile.Retention)); len(recent) != 0 {
		t.Fatalf("%d lost events are still in the Events API; this test is about older ones", len(recent))
	}

	dry, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobObjects, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Drift) == 0 || dry.Repaired != 0 || dry.ObjectsChecked == 0 {
		t.Fatalf("dry run: %+v", dry)
	}
	run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobObjects})
	if err != nil {
		t.Fatal(err)
	}
	if run.Repaired == 0 || len(run.Drift) == 0 {
		t.Fatalf("run: %+v", run)
	}
	var snapshots int
	_ = a.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.events WHERE source = 'snapshot' AND type LIKE 'ledger.snapshot.%'`).Scan(&snapshots)
	if snapshots != run.Repaired {
		t.Fatalf("%d snapshot events, %d repaired", snapshots, run.Repaired)
	}
	a.matchesTruth(t, "subscriptions", "charges", "invoices")

	again, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobObjects})
	if err != nil || again.Repaired != 0 || len(again.Drift) != 0 {
		t.Fatalf("second run: %+v %v", again, err)
	}
}

// On an account whose default API version is dahlia, the events the outage lost are repaired
// as the Events API renders them, at dahlia: their invoices name the subscription through
// parent and their tax through total_taxes; their invoices' payment intents, and their
// charges' invoices, come from the invoice payments (invoice_payment.paid) and the payment
// intents. The read models still equal the account, but for the links no event gives
// (an unpaid invoice's payment intent: Stripe sends no event for an open invoice payment),
// which are NULL and said so in attention.
func TestEventsRunRepairsAtDahlia(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) {
		c.AccountAPIVersion = "2026-08-26.dahlia"
	}, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if err != nil || run.Repaired == 0 {
		t.Fatalf("run %+v %v", run, err)
	}
	a.matchesTruth(t, "subscriptions", "charges", "invoices", "customers")
	// The events the webhooks brought are kept at dahlia too, beside them, as the Events API
	// rendered them; the log holds each event once.
	var logged, renderings, webhookRenderings int
	if err := a.db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger.events),
		(SELECT count(*) FROM ledger.event_renderings WHERE api_version = '2026-08-26.dahlia' AND source = 'reconcile'),
		(SELECT count(*) FROM ledger.events e JOIN ledger.event_renderings r USING (event_id) WHERE e.source = 'webhook')`).Scan(&logged, &renderings, &webhookRenderings); err != nil {
		t.Fatal(err)
	}
	if logged != len(a.sim.Events()) || renderings == 0 || renderings != webhookRenderings {
		t.Fatalf("%d events logged of %d; %d dahlia renderings, %d of webhook events", logged, len(a.sim.Events()), renderings, webhookRenderings)
	}
	again, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	var after int
	_ = a.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.event_renderings`).Scan(&after)
	if err != nil || again.Repaired != 0 || again.MissingFound != 0 || after != renderings {
		t.Fatalf("second run: %+v %v; %d renderings, %d before", again, err, after, renderings)
	}
	// The rows whose latest event is a repaired (dahlia) one.
	var invoices, linked, unlinked, charges, chargesLinked, payments int
	if err := a.db.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM ledger.invoices i JOIN ledger.events e USING (event_id) WHERE e.source = 'reconcile'),
		(SELECT count(*) FROM ledger.invoices i JOIN ledger.events e USING (event_id) WHERE e.source = 'reconcile' AND i.payment_intent IS NOT NULL),
		(SELECT count(*) FROM ledger.invoices WHERE attention LIKE '%not known%'),
		(SELECT count(*) FROM ledger.charges c JOIN ledger.events e USING (event_id) WHERE e.source = 'reconcile'),
		(SELECT count(*) FROM ledger.charges c JOIN ledger.events e USING (event_id) WHERE e.source = 'reconcile' AND c.invoice IS NOT NULL),
		(SELECT count(*) FROM ledger.invoice_payments)`).Scan(&invoices, &linked, &unlinked, &charges, &chargesLinked, &payments); err != nil {
		t.Fatal(err)
	}
	if invoices == 0 || linked == 0 || charges == 0 || chargesLinked == 0 || payments == 0 {
		t.Fatalf("%d invoices at dahlia (%d linked to their payment; %d invoices not), %d charges at dahlia (%d linked to their invoice), %d invoice payments",
			invoices, linked, unlinked, charges, chargesLinked, payments)
	}
	t.Logf("%d invoices at dahlia (%d linked to their payment; %d invoices not), %d charges at dahlia (%d linked to their invoice), %d invoice payments",
		invoices, linked, unlinked, charges, chargesLinked, payments)
}

// An account upgraded to dahlia halfway through, whose endpoint pins no version: the log holds
// webhooks at both versions, the repairs come at the default in force when each event was
// created, and the read models still equal the account.
func TestEventsRunRepairsAcrossAnUpgrade(t *testing.T) {
	t.Parallel()
	a := play(t, "dahlia-upgrade", nil, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if err != nil || run.Repaired == 0 {
		t.Fatalf("run %+v %v", run, err)
	}
	a.matchesTruth(t, "subscriptions", "charges", "invoices", "customers")
	var old, dahlia int
	if err := a.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE api_version = '2023-10-16'), count(*) FILTER (WHERE api_version = '2026-08-26.dahlia')
		FROM ledger.events WHERE source = 'webhook'`).Scan(&old, &dahlia); err != nil || old == 0 || dahlia == 0 {
		t.Fatalf("webhooks at 2023-10-16: %d, at dahlia: %d (%v)", old, dahlia, err)
	}
	if logged := len(a.logged(t)); logged != len(a.sim.Events()) {
		t.Fatalf("%d events logged of %d", logged, len(a.sim.Events()))
	}
}

// The endpoints job reports disabled endpoints, missing event types and other API versions;
// setup creates an endpoint with the right events and version (showing its secret once) and then
// updates it in place.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	a := play(t, "steady", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) { c.Customers = 5 }, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	v := "2023-10-16"
	old := "2020-08-27"
	a.server.AddWebhookEndpoint(stripesim.WebhookEndpoint{URL: "https://a.example/webhooks/stripe", APIVersion: &v, EnabledEvents: []string{"*"}, Status: "disabled"})
	a.server.AddWebhookEndpoint(stripesim.WebhookEndpoint{URL: "https://b.example/webhooks/stripe", APIVersion: &old, EnabledEvents: []string{"charge.succeeded"}})
	a.server.AddWebhookEndpoint(stripesim.WebhookEndpoint{URL: "https://c.example/webhooks/stripe", EnabledEvents: []string{"*"}})
	run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobEndpoints})
	if err != nil {
		t.Fatal(err)
	}
	if run.Drift["endpoints.disabled"] != 1 || run.Drift["endpoints.missing_events"] != 1 || run.Drift["endpoints.api_version"] != 1 ||
		run.Drift["endpoints.unpinned"] != 1 || run.ObjectsChecked != 3 {
		t.Fatalf("endpoints run: %+v", run.Drift)
	}

	cfg := reconcile.StripeConfig{APIKey: "sk_test_reconcile", APIBase: a.api}
	url := "https://ledger.example/webhooks/stripe"
	res, err := reconcile.SetupEndpoint(ctx, cfg, reconcile.Setup{URL: url})
	if err != nil || !res.Created || len(res.Secret) < 10 || res.Endpoint.APIVersion != v {
		t.Fatalf("setup: %+v %v", res, err)
	}
	if problems := reconcile.CheckEndpoint(res.Endpoint); len(problems) != 0 {
		t.Fatalf("the endpoint setup made has problems: %+v", problems)
	}
	again, err := reconcile.SetupEndpoint(ctx, cfg, reconcile.Setup{URL: url})
	if err != nil || again.Created || again.Endpoint.ID != res.Endpoint.ID || again.Secret != "" {
		t.Fatalf("second setup: %+v %v", again, err)
	}
	// An endpoint at an old API version cannot be changed: setup makes a new one and says which to delete.
	replaced, err := reconcile.SetupEndpoint(ctx, cfg, reconcile.Setup{URL: "https://b.example/webhooks/stripe"})
	if err != nil || !replaced.Created || replaced.Replaces == "" {
		t.Fatalf("setup over an old version: %+v %v", replaced, err)
	}
	// Stripe allows 16 endpoints a mode: setup says so before asking for a seventeenth.
	for i := 0; i < reconcile.MaxEndpoints; i++ {
		a.server.AddWebhookEndpoint(stripesim.WebhookEndpoint{URL: fmt.Sprintf("https://x%d.example/webhooks/stripe", i), APIVersion: &v, EnabledEvents: []string{"*"}})
	}
	if _, err := reconcile.SetupEndpoint(ctx, cfg, reconcile.Setup{URL: "https://new.example/webhooks/stripe"}); err == nil ||
		!strings.Contains(err.Error(), "16 webhook endpoints") && !strings.Contains(err.Error(), "Stripe's limit") {
		t.Fatalf("setup past the limit: %v", err)
	}
}

// The schedulers' clock: a fake one, moved by the tests, an hour ahead of real time. The runs'
// started_at come from Postgres's real clock, and the checks for "already ran for this time"
// compare them with the scheduler's times; an hour ahead, every run a test makes lies before
// every scheduled time of the test, as runs of a real scheduler lie before its next time.
func schedulerClock() *testkit.Clock {
	return testkit.NewClock(time.Now().UTC().Add(time.Hour).Truncate(time.Minute).Add(30 * time.Second))
}

// everyMinute schedules the fast events pass at the start of every minute.
const everyMinute = "events-fast=* * * * *"

// scheduler starts a scheduler of the account's jobs on clock, with its signals on and hook as
// its reconciler's AfterPage; stop ends it and waits for it (also done when the test ends).
func (a *account) scheduler(t *testing.T, clock reconcile.Clock, hook func(reconcile.Run)) (s *reconcile.Scheduler, stop func()) {
	t.Helper()
	s, err := reconcile.NewScheduler(a.reconcilerWith(0, reconcile.Config{AfterPage: hook}), everyMinute,
		reconcile.SchedulerConfig{Clock: clock, LeaseInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Signals.Waiting.Init(t)
	s.Signals.RunStarted.Init(t)
	s.Signals.RunFinished.Init(t)
	s.Signals.Skipped.Init(t)
	s.Lease().Signals.Gained.Init(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return s, stop
}

// finished waits for s's next run to finish and checks it is the one expected and succeeded.
func finished(t *testing.T, s *reconcile.Scheduler, trigger string, at time.Time) reconcile.ScheduledRun {
	t.Helper()
	r := s.Signals.RunFinished.Wait()
	if r.Job != reconcile.JobEventsFast || r.Trigger != trigger || (!at.IsZero() && !r.At.Equal(at)) {
		t.Fatalf("finished %s %s at %s, want events-fast %s at %s", r.Job, r.Trigger, r.At, trigger, at)
	}
	if r.Err != nil || r.Run.Status != "succeeded" {
		t.Fatalf("%s run: %+v %v", trigger, r.Run, r.Err)
	}
	return r
}

// tick moves clock to the time s waits for next and returns it.
func tick(s *reconcile.Scheduler, clock *testkit.Clock) time.Time {
	at := s.Signals.Waiting.Wait()
	clock.Set(at)
	return at
}

// Two schedulers (two serve processes) on one database: the one holding the lease catches up the
// job that never ran and then runs it at each scheduled time; the other stands by until the
// first stops, then takes over, beginning with a catch-up of the time that passed. Runs of the
// job never overlap, and together they repair the outage.
func TestSchedulers(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) { c.Customers = 40 }, stripesim.ServerConfig{RateLimit: -1})
	if _, _, err := reconcile.ParseSchedule("events=not a spec"); err == nil {
		t.Fatal("a bad spec was accepted")
	}
	if _, _, err := reconcile.ParseSchedule("refunds=@hourly"); err == nil {
		t.Fatal("an unknown job was accepted")
	}
	clock := schedulerClock()
	first, stopFirst := a.scheduler(t, clock, nil)
	first.Lease().Signals.Gained.Wait()
	second, _ := a.scheduler(t, clock, nil)

	finished(t, first, "catch-up", time.Time{})
	for range 2 {
		at := tick(first, clock)
		finished(t, first, "schedule", at)
	}
	if second.Lease().Held() {
		t.Fatal("the standby holds the scheduler's lease too")
	}

	stopFirst()
	second.Lease().Signals.Gained.Wait()
	finished(t, second, "catch-up", time.Time{})
	at := tick(second, clock)
	finished(t, second, "schedule", at)

	runs, err := reconcile.ListRuns(context.Background(), a.db.Pool, reconcile.JobEventsFast, 100)
	if err != nil {
		t.Fatal(err)
	}
	triggers := map[string]int{}
	for i, r := range runs {
		triggers[r.Trigger]++
		if r.Status != "succeeded" {
			t.Errorf("run %d: %s %s", r.ID, r.Status, r.Error)
		}
		if i > 0 && r.FinishedAt != nil && r.FinishedAt.After(runs[i-1].StartedAt) {
			t.Errorf("runs %d and %d overlap", r.ID, runs[i-1].ID)
		}
	}
	if len(runs) != 5 || triggers["catch-up"] != 2 || triggers["schedule"] != 3 {
		t.Fatalf("%d runs, by trigger: %v", len(runs), triggers)
	}
	if len(a.missing(t, time.Time{})) != 0 {
		t.Fatal("the scheduled runs did not repair the outage")
	}
}

// A scheduled time that comes while the job's previous run is still going is skipped, and the
// job runs again at the next time.
func TestSchedulerSkipsAJobStillRunning(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) { c.Customers = 10 }, stripesim.ServerConfig{RateLimit: -1})
	release := make(chan struct{})
	hold := func(r reconcile.Run) {
		if r.Trigger != "schedule" {
			return
		}
		select {
		case <-release:
		case <-time.After(testsignal.Timeout):
		}
	}
	clock := schedulerClock()
	s, _ := a.scheduler(t, clock, hold)
	finished(t, s, "catch-up", time.Time{})
	at := tick(s, clock)
	s.Signals.RunStarted.WaitUntil(func(r reconcile.ScheduledRun) bool { return r.Trigger == "schedule" })
	held := tick(s, clock) // the run started at `at` is held on its first page
	if skipped := s.Signals.Skipped.Wait(); skipped.Job != reconcile.JobEventsFast || !skipped.At.Equal(held) {
		t.Fatalf("skipped %+v, want events-fast at %s", skipped, held)
	}
	close(release)
	finished(t, s, "schedule", at)
	finished(t, s, "schedule", tick(s, clock))
}

// A run that panics is recorded as failed and ends with the panic as its error; the scheduler
// goes on, and the job's next run resumes the failed one from its cursor.
func TestSchedulerRecoversAPanickingRun(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) { c.Customers = 10 }, stripesim.ServerConfig{RateLimit: -1})
	var panicked atomic.Bool
	boom := func(r reconcile.Run) {
		if r.Trigger == "schedule" && panicked.CompareAndSwap(false, true) {
			panic("a bug in a reconcile job")
		}
	}
	clock := schedulerClock()
	s, _ := a.scheduler(t, clock, boom)
	finished(t, s, "catch-up", time.Time{})
	tick(s, clock)
	r := s.Signals.RunFinished.Wait()
	if r.Err == nil || !strings.Contains(r.Err.Error(), "panicked") {
		t.Fatalf("the panicking run finished with %v", r.Err)
	}
	runs, err := reconcile.ListRuns(context.Background(), a.db.Pool, reconcile.JobEventsFast, 1)
	if err != nil || len(runs) != 1 || runs[0].Status != "failed" || !strings.Contains(runs[0].Error, "a bug") {
		t.Fatalf("the panicking run is recorded as %+v (%v)", runs, err)
	}
	next := finished(t, s, "schedule", tick(s, clock))
	if next.Run.ResumedFrom == nil || *next.Run.ResumedFrom != runs[0].ID {
		t.Fatalf("the next run %+v did not resume the failed run %d", next.Run, runs[0].ID)
	}
}

// A run whose process died (its heartbeat stopped) is closed as failed by the next run of the
// job, which resumes from its cursor over the same window.
func TestDeadRunResumed(t *testing.T) {
	t.Parallel()
	a := play(t, "outage-4d", func(c *stripesim.Config, _ *stripesim.DeliveryConfig) { c.Customers = 60 }, stripesim.ServerConfig{RateLimit: -1})
	ctx := context.Background()
	missing := a.missing(t, time.Time{})
	// What a process killed mid-run leaves: a running row, its window and cursor, a stale heartbeat.
	from, to := end.Add(-reconcile.Retention+time.Hour), end
	var dead int64
	if err := a.db.Pool.QueryRow(ctx, `INSERT INTO ledger.reconcile_runs (job, status, window_from, window_to, cursor, heartbeat_at, started_at, scopes)
		VALUES ('events', 'running', $1, $2, 'desc:', now() - interval '5 minutes', now() - interval '6 minutes',
		        jsonb_build_array(jsonb_build_object('livemode', true, 'account', null, 'status', 'running',
		                          'window_from', $1::timestamptz, 'window_to', $2::timestamptz, 'cursor', 'desc:'))) RETURNING id`, from, to).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	run, err := a.reconciler(0).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	if run.ResumedFrom == nil || *run.ResumedFrom != dead || !run.WindowFrom.Equal(from) || run.Repaired != len(missing) {
		t.Fatalf("run %+v did not resume dead run %d", run, dead)
	}
	old, err := reconcile.GetRun(ctx, a.db.Pool, dead)
	if err != nil || old.Status != "failed" || !strings.Contains(old.Error, "stopped") {
		t.Fatalf("dead run recorded as %+v %v", old, err)
	}
}
