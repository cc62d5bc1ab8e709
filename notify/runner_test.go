package notify_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/notify"
	"github.com/stripeledger/ledger/projections"
)

// testConfig is a small config: every Stripe rule on one channel, ledger-side rules on another.
const testConfig = `
channels:
  pay: {type: slack, url_env: PAY_URL}
  ops: {type: slack, url_env: OPS_URL}
rules:
  - name: payments
    events: [payment_intent.succeeded, charge.succeeded]
    channel: pay
    subject: "paid {{.amount_formatted}}"
  - name: big
    events: [charge.succeeded]
    channel: pay
    filter: {amount: {gte: 100000}, currency: [usd]}
    subject: "big {{.amount_formatted}}"
  - name: disputes
    events: [charge.dispute.created]
    channel: pay
    subject: "dispute {{.amount_formatted}} due {{.due_by}}"
  - name: ledger
    source: ledger
    events: [reconcile.missing, reconcile.failed, reconcile.drift, event.quarantined, endpoint.unhealthy]
    channel: ops
    subject: "{{.type}}"
    text: "{{.detail}}"
`

func testEnv(k string) string {
	if strings.HasSuffix(k, "_URL") {
		return "http://127.0.0.1:1/" + k
	}
	return ""
}

type bundle struct {
	db     *testkit.DB
	pool   *pgxpool.Pool
	store  *eventstore.Store
	cfg    *notify.Config
	clock  *testkit.Clock
	runner *notify.Runner
}

func setup(t *testing.T, config string) *bundle {
	t.Helper()
	db := testkit.New(t)
	cfg, err := notify.Parse([]byte(config), "test.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{db: db, pool: db.Pool, store: eventstore.New(db.Pool), cfg: cfg,
		clock: testkit.NewClock(time.Date(2024, 3, 4, 12, 0, 0, 0, time.UTC))}
	b.runner = b.newRunner(t)
	return b
}

func (b *bundle) newRunner(t *testing.T) *notify.Runner {
	t.Helper()
	r, err := notify.NewRunner(b.pool, notify.RunnerConfig{Config: b.cfg, Clock: b.clock, SweepInterval: time.Hour,
		PollInterval: 5 * time.Millisecond, LeaseInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.Signals.Filled.Init(t)
	return r
}

// catchUp runs a runner until its checkpoint reaches the log's head, then stops it.
func (b *bundle) catchUp(t *testing.T, r *notify.Runner) {
	t.Helper()
	// Registering first moves the checkpoint past history no rule fires for, as Run does.
	if _, err := r.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	head, err := b.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	at, err := b.store.Checkpoint(context.Background(), notify.CheckpointName)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if at < head.Position {
		r.Signals.Filled.WaitUntil(func(p int64) bool { return p >= head.Position })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// event is a Stripe event of type typ whose data.object is obj (with id and object added).
func event(id, typ string, created int64, obj map[string]any, source domain.Source) domain.Event {
	objType := map[string]string{"charge.dispute.created": "dispute", "payment_intent.succeeded": "payment_intent",
		"checkout.session.completed": "checkout.session", "customer.subscription.deleted": "subscription"}[typ]
	if objType == "" {
		objType = typ[:strings.IndexByte(typ, '.')]
	}
	if _, ok := obj["id"]; !ok {
		obj["id"] = "obj_" + id
	}
	obj["object"] = objType
	body, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2023-10-16", "created": created,
		"livemode": false, "type": typ, "data": map[string]any{"object": obj}})
	if err != nil {
		panic(err)
	}
	sig := ""
	if source == domain.SourceWebhook {
		sig = fmt.Sprintf("t=%d,v1=%064x", created, 0)
	}
	ev, err := domain.NewEvent(body, source, sig)
	if err != nil {
		panic(err)
	}
	return ev
}

func charge(id string, created, amount int64, currency string) domain.Event {
	return event(id, "charge.succeeded", created, map[string]any{"amount": amount, "currency": currency, "status": "succeeded",
		"customer": "cus_1", "billing_details": map[string]any{"email": "a@example.com"}, "metadata": map[string]any{"plan": "pro"}}, domain.SourceWebhook)
}

func (b *bundle) append(t *testing.T, evs ...domain.Event) {
	t.Helper()
	res, err := b.store.Append(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// outbox reads every row as rule/event_id, sorted.
func (b *bundle) outbox(t *testing.T) []notify.Row {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT id, rule, event_id, position, channel, idempotency_key, message,
		late, digest, backfill, digest_of, status, not_before, event_created FROM ledger.notify_outbox ORDER BY rule, event_id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (notify.Row, error) {
		var r notify.Row
		err := row.Scan(&r.ID, &r.Rule, &r.EventID, &r.Position, &r.Channel, &r.IdempotencyKey, &r.Message, &r.Late, &r.Digest,
			&r.Backfill, &r.DigestOf, &r.Status, &r.NotBefore, &r.EventCreated)
		return r, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(rows []notify.Row) string {
	var s []string
	for _, r := range rows {
		s = append(s, r.Rule+"/"+r.EventID)
	}
	return strings.Join(s, " ")
}

const t0 = 1709553600 // 2024-03-04 12:00 UTC

func TestSameEventsTwiceOutOfOrderAndAfterReplayNotifyOnce(t *testing.T) {
	b := setup(t, testConfig)
	ctx := context.Background()
	if _, err := b.runner.Register(ctx); err != nil {
		t.Fatal(err)
	}
	// Out of order (created runs backwards), and each delivered twice: in one call and again.
	evs := []domain.Event{charge("evt_3", t0+30, 250000, "usd"), charge("evt_2", t0+20, 500, "usd"), charge("evt_1", t0+10, 700, "eur")}
	b.append(t, append(evs, evs[0], evs[2])...)
	b.append(t, evs...)
	b.catchUp(t, b.runner)
	want := "big/evt_3 payments/evt_1 payments/evt_2 payments/evt_3"
	if got := keys(b.outbox(t)); got != want {
		t.Fatalf("outbox %q, want %q", got, want)
	}

	// Reconciliation finds the same events again (same IDs): the log has them, nothing is added.
	again := make([]domain.Event, len(evs))
	for i, e := range evs {
		e.Source, e.Signature = domain.SourceReconcile, ""
		again[i] = e
	}
	b.append(t, again...)

	// A replay of the read models: the outbox is not touched, and the runner adds nothing after.
	if _, err := projections.Rebuild(ctx, b.pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if got := keys(b.outbox(t)); got != want {
		t.Fatalf("after replay: outbox %q, want %q", got, want)
	}
	// A runner that lost its checkpoint (a crash before the commit, or a restore) repeats the
	// whole log: each (rule, event) finds its row and nothing is added.
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstore.SetCheckpoint(ctx, tx, notify.CheckpointName, 0); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	b.catchUp(t, b.newRunner(t))
	rows := b.outbox(t)
	if got := keys(rows); got != want {
		t.Fatalf("after a repeat: outbox %q, want %q", got, want)
	}
	for _, r := range rows {
		if r.IdempotencyKey != notify.IdempotencyKey(r.Rule, r.EventID) || r.Position == nil || r.Status != notify.StatusPending {
			t.Errorf("row %+v", r)
		}
	}
}

func TestNewRuleFiresOnlyFromTheHeadAndBackfillReachesBack(t *testing.T) {
	b := setup(t, testConfig)
	ctx := context.Background()
	b.append(t, charge("evt_old1", t0, 100, "usd"), charge("evt_old2", t0+1, 100, "usd"))
	b.catchUp(t, b.runner) // the rules are seen now, at position 2
	b.append(t, charge("evt_new", t0+2, 100, "usd"))
	b.catchUp(t, b.runner)
	if got := keys(b.outbox(t)); got != "payments/evt_new" {
		t.Fatalf("outbox %q: a new rule fired for history", got)
	}
	seen, err := notify.RulesSeen(ctx, b.pool)
	if err != nil {
		t.Fatal(err)
	}
	if seen["payments"].FirstPosition != 2 {
		t.Fatalf("first position %+v", seen["payments"])
	}

	n, err := notify.Backfill(ctx, b.pool, b.cfg, "payments", time.Unix(t0+1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("backfill added %d, want 1 (evt_old2; evt_old1 is before --since, evt_new is there)", n)
	}
	rows := b.outbox(t)
	if got := keys(rows); got != "payments/evt_new payments/evt_old2" {
		t.Fatalf("outbox %q", got)
	}
	if !rows[1].Backfill || rows[0].Backfill || !strings.HasPrefix(rows[1].Message.Subject, "[backfill] ") {
		t.Fatalf("backfill marks: %+v / %+v", rows[0], rows[1])
	}
	if n, err := notify.Backfill(ctx, b.pool, b.cfg, "payments", time.Unix(t0-100, 0)); err != nil || n != 1 {
		t.Fatalf("second backfill from earlier: %d %v, want 1 (evt_old1 only)", n, err)
	}
	if n, err := notify.Backfill(ctx, b.pool, b.cfg, "payments", time.Unix(t0-100, 0)); err != nil || n != 0 {
		t.Fatalf("repeated backfill: %d %v, want 0", n, err)
	}
	if _, err := notify.Backfill(ctx, b.pool, b.cfg, "nope", time.Unix(t0, 0)); err == nil {
		t.Fatal("backfill of an unknown rule")
	}
}

func TestLateRepairedEventsAreMarkedAndPastTheHorizonGoToADigest(t *testing.T) {
	b := setup(t, testConfig)
	ctx := context.Background()
	if _, err := b.runner.Register(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	onTime := charge("evt_ontime", now.Unix(), 100, "usd")
	repaired := charge("evt_late", now.Add(-3*time.Hour).Unix(), 100, "usd")
	repaired.Source, repaired.Signature = domain.SourceReconcile, ""
	ancient := charge("evt_ancient", now.Add(-8*24*time.Hour).Unix(), 100, "usd")
	ancient.Source, ancient.Signature = domain.SourceReconcile, ""
	// A webhook three hours late is Stripe's retry, not a repair: not marked.
	retried := charge("evt_retried", now.Add(-3*time.Hour).Unix(), 100, "usd")
	b.append(t, onTime, repaired, ancient, retried)
	b.catchUp(t, b.runner)
	rows := map[string]notify.Row{}
	for _, r := range b.outbox(t) {
		rows[r.EventID] = r
	}
	if r := rows["evt_late"]; !r.Late || r.Digest || !strings.HasSuffix(r.Message.Subject, "late (repaired)") || !r.Message.Late {
		t.Errorf("repaired event: %+v", r)
	}
	for _, id := range []string{"evt_ontime", "evt_retried"} {
		if r := rows[id]; r.Late || r.Digest || strings.Contains(r.Message.Subject, "late") {
			t.Errorf("%s marked late: %+v", id, r)
		}
	}
	a := rows["evt_ancient"]
	if !a.Late || !a.Digest {
		t.Fatalf("past the horizon: %+v", a)
	}
	if want := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC); !a.NotBefore.Equal(want) {
		t.Fatalf("digest due %v, want the day's end %v", a.NotBefore, want)
	}

	// Before the period ends a sweep gathers nothing; after it, one digest carries the event.
	if n, err := b.runner.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("early sweep: %d %v", n, err)
	}
	b.clock.Set(time.Date(2024, 3, 5, 0, 0, 1, 0, time.UTC))
	if n, err := b.runner.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want 1 digest", n, err)
	}
	var digest notify.Row
	for _, r := range b.outbox(t) {
		switch {
		case strings.HasPrefix(r.EventID, "digest:"):
			digest = r
		case r.EventID == "evt_ancient":
			a = r
		}
	}
	if a.Status != notify.StatusDigested || a.DigestOf == nil || *a.DigestOf != digest.EventID {
		t.Fatalf("member %+v of digest %q", a, digest.EventID)
	}
	if digest.Digest || digest.Status != notify.StatusPending || !digest.Late || digest.Message.Subject != "payments: 1 notifications" ||
		!strings.Contains(digest.Message.Text, "late (repaired)") || digest.Channel != "pay" {
		t.Fatalf("digest %+v", digest)
	}
	if n, err := b.runner.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("a second sweep: %d %v", n, err)
	}
}

func TestQuietHoursHoldUntilTheWindowEnds(t *testing.T) {
	b := setup(t, `
channels:
  pay: {type: slack, url_env: PAY_URL}
rules:
  - name: quiet
    events: [charge.succeeded]
    channel: pay
    subject: x
    quiet_hours: {from: "11:00", to: "14:30", timezone: Europe/Paris}
  - name: hourly
    events: [charge.succeeded]
    channel: pay
    subject: "h {{.id}}"
    digest: hourly
`)
	ctx := context.Background()
	if _, err := b.runner.Register(ctx); err != nil {
		t.Fatal(err)
	}
	// The clock says 12:00 UTC = 13:00 in Paris: inside the window, which ends 14:30 Paris.
	b.append(t, charge("evt_q1", t0, 100, "usd"), charge("evt_q2", t0, 100, "usd"))
	b.catchUp(t, b.runner)
	for _, r := range b.outbox(t) {
		switch r.Rule {
		case "quiet":
			if want := time.Date(2024, 3, 4, 13, 30, 0, 0, time.UTC); !r.NotBefore.Equal(want) || r.Digest {
				t.Errorf("quiet %s: not before %v, want %v", r.EventID, r.NotBefore, want)
			}
		case "hourly":
			if want := time.Date(2024, 3, 4, 13, 0, 0, 0, time.UTC); !r.NotBefore.Equal(want) || !r.Digest {
				t.Errorf("hourly %s: not before %v (digest %v), want %v", r.EventID, r.NotBefore, r.Digest, want)
			}
		}
	}
	b.clock.Advance(time.Hour)
	if n, err := b.runner.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	var digests int
	for _, r := range b.outbox(t) {
		if strings.HasPrefix(r.EventID, "digest:hourly:pay:") {
			digests++
			if r.Message.Subject != "hourly: 2 notifications" || !strings.Contains(r.Message.Text, "h evt_q1") || !strings.Contains(r.Message.Text, "h evt_q2") {
				t.Errorf("digest %+v", r.Message)
			}
		}
	}
	if digests != 1 {
		t.Fatalf("%d digests", digests)
	}
}

func TestHeldEventsNotifyOnlyOnceReleased(t *testing.T) {
	b := setup(t, testConfig)
	ctx := context.Background()
	if _, err := b.runner.Register(ctx); err != nil {
		t.Fatal(err)
	}
	// A test-mode event that came to the live endpoint is held out of the read models.
	held := charge("evt_held", t0, 100, "usd")
	if _, err := b.store.AppendDelivered(ctx, []domain.Event{held}, []eventstore.Endpoint{eventstore.EndpointLive}); err != nil {
		t.Fatal(err)
	}
	b.catchUp(t, b.runner)
	if got := keys(b.outbox(t)); got != "" {
		t.Fatalf("a held event notified: %q", got)
	}
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := eventstore.Release(ctx, tx, "evt_held"); err != nil || !ok {
		t.Fatalf("release: %v %v", ok, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := b.runner.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after the release: %d %v", n, err)
	}
	if n, err := b.runner.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	if got := keys(b.outbox(t)); got != "payments/evt_held" {
		t.Fatalf("outbox %q", got)
	}
}

func TestLedgerSideRules(t *testing.T) {
	b := setup(t, testConfig+`
  - name: lag
    source: ledger
    events: [projection.lag]
    lag_over: 1m
    channel: ops
    subject: lag
    text: "{{.detail}}"
`)
	ctx := context.Background()
	// A finding from before the rules were first seen is history: not notified.
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := b.pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO ledger.reconcile_runs (job, status, finished_at, missing_found) VALUES ('events', 'succeeded', now() - interval '1 day', 3)`)
	if _, err := b.runner.Register(ctx); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO ledger.reconcile_runs (id, job, status, finished_at, missing_found, repaired) VALUES (41, 'events', 'succeeded', now() + interval '1 second', 4, 4)`)
	exec(`INSERT INTO ledger.reconcile_runs (id, job, status, finished_at, error) VALUES (42, 'objects', 'failed', now() + interval '1 second', 'Stripe answered 500')`)
	exec(`INSERT INTO ledger.reconcile_runs (id, job, status, finished_at, drift) VALUES (43, 'objects', 'succeeded', now() + interval '1 second', '{"subscriptions.status": 2}')`)
	exec(`INSERT INTO ledger.reconcile_runs (id, job, status, finished_at, findings) VALUES (44, 'endpoints', 'succeeded', now() + interval '1 second',
		'[{"endpoint":"we_1","livemode":true,"problem":"disabled","detail":"x"}]')`)
	exec(`INSERT INTO ledger.reconcile_runs (id, job, status, finished_at) VALUES (45, 'events', 'succeeded', now() + interval '1 second')`) // nothing found
	exec(`INSERT INTO ledger.reconcile_runs (id, job, status) VALUES (46, 'events', 'running')`)
	exec(`INSERT INTO ledger.projection_quarantine (projection, event_id, position, event_type, object_id, error, quarantined_at)
		VALUES ('read_models', 'evt_bad', 1, 'charge.succeeded', 'ch_1', 'bad amount', now() + interval '1 second')`)
	// The read models are behind: an event waited two minutes and nothing folded it.
	ev := charge("evt_waiting", t0, 100, "usd")
	ev.ReceivedAt = time.Now().Add(-2 * time.Minute)
	b.append(t, ev)

	b.runner.Signals.Swept.Init(t)
	n, err := b.runner.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"lag/ledger:projection_lag:0",
		"ledger/ledger:quarantine:read_models:evt_bad",
		"ledger/ledger:reconcile_run:41:missing",
		"ledger/ledger:reconcile_run:42:failed",
		"ledger/ledger:reconcile_run:43:drift",
		"ledger/ledger:reconcile_run:44:endpoints",
	}
	rows := b.outbox(t)
	if got := keys(rows); got != strings.Join(want, " ") || n != len(want) || b.runner.Signals.Swept.Wait() != n {
		t.Fatalf("outbox %q (%d added), want %q", got, n, want)
	}
	details := map[string]string{}
	for _, r := range rows {
		details[r.EventID] = r.Message.Text
		if r.Channel != "ops" || r.Position != nil {
			t.Errorf("row %+v", r)
		}
	}
	for key, want := range map[string]string{
		"ledger:reconcile_run:41:missing":       "found 4 events missing from the log and appended 4",
		"ledger:reconcile_run:42:failed":        "failed: Stripe answered 500",
		"ledger:reconcile_run:43:drift":         "subscriptions.status 2",
		"ledger:reconcile_run:44:endpoints":     "we_1 (live): disabled",
		"ledger:projection_lag:0":               "1 events and 2m",
		"ledger:quarantine:read_models:evt_bad": "bad amount",
	} {
		if !strings.Contains(details[key], want) {
			t.Errorf("%s: %q, want %q in it", key, details[key], want)
		}
	}
	// Read again, they add nothing.
	if n, err := b.runner.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
}

// A batch with many matching events is rendered in chunks on every core: every row is there
// once, and rows are still added in the log's order (IDs rise with positions, and within an
// event follow the rules' order in the config), which is the order the deliverer sends in.
func TestManyEventsInOneBatchAreAddedInLogOrder(t *testing.T) {
	b := setup(t, testConfig)
	if _, err := b.runner.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 700
	evs := make([]domain.Event, 0, n)
	big := 0
	for i := range n {
		amount := int64(500 + i)
		if i%7 == 0 {
			amount, big = 200000, big+1
		}
		evs = append(evs, charge(fmt.Sprintf("evt_%04d", i), t0+int64(i), amount, "usd"))
	}
	b.append(t, evs...)
	b.catchUp(t, b.runner)
	rows := b.outbox(t)
	if len(rows) != n+big {
		t.Fatalf("%d rows, want %d (%d payments, %d big)", len(rows), n+big, n, big)
	}
	rank := map[string]int{"payments": 0, "big": 1}
	slices.SortFunc(rows, func(x, y notify.Row) int { return cmp.Compare(x.ID, y.ID) })
	for i := 1; i < len(rows); i++ {
		p, q := rows[i-1], rows[i]
		if *p.Position > *q.Position || (*p.Position == *q.Position && rank[p.Rule] >= rank[q.Rule]) {
			t.Fatalf("row %d (%s/%s at %d) added after row %d (%s/%s at %d)", q.ID, q.Rule, q.EventID, *q.Position,
				p.ID, p.Rule, p.EventID, *p.Position)
		}
	}
}
