package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
	"github.com/stripeledger/ledger/webhook"
)

const (
	liveKey = "sk_live_reconcileplatform01"
	testKey = "sk_test_reconcileplatform02"
)

// platform is a simulated Connect platform (live and test, the platform's account and three
// connected accounts) that has played into a ledger over real HTTP: its four endpoints deliver
// to the real webhook handler, and its API, served by the simulator's platform server, routes
// by the key's mode and the Stripe-Account header.
type platform struct {
	db     *testkit.DB
	p      *stripesim.Platform
	server *stripesim.Server
	api    string
}

func playPlatform(t *testing.T, scenario string, customize func(*stripesim.PlatformConfig, *stripesim.PlatformDelivery)) *platform {
	t.Helper()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{})
	t.Cleanup(appender.Close)
	// Each endpoint signs with its own secret, configured as that endpoint's, as in production:
	// a connected account's event is attributed to a Connect endpoint and nothing is held.
	secrets := [4]string{"whsec_platform_live_rec", "whsec_platform_test_rec", "whsec_connect_live_rec", "whsec_connect_test_rec"}
	h, err := webhook.New(webhook.Config{Endpoints: webhook.EndpointSecrets{
		Live: secrets[stripesim.PlatformLive : stripesim.PlatformLive+1], Test: secrets[stripesim.PlatformTest : stripesim.PlatformTest+1],
		ConnectLive: secrets[stripesim.ConnectLive : stripesim.ConnectLive+1], ConnectTest: secrets[stripesim.ConnectTest : stripesim.ConnectTest+1]},
		Logger: slog.New(slog.DiscardHandler)}, appender, store, webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	t.Cleanup(hook.Close)
	var dc stripesim.PlatformDelivery
	for _, e := range stripesim.Endpoints {
		dc[e] = stripesim.DeliveryConfig{URL: hook.URL, Secrets: []string{secrets[e]}}
	}
	cfg, dc, err := stripesim.SetupPlatform(scenario, stripesim.PlatformConfig{Seed: 11, End: end}, dc)
	if err != nil {
		t.Fatal(err)
	}
	// Small enough to play and reconcile in seconds; the scenario's timeline is kept.
	cfg.Customers, cfg.TestCustomers, cfg.AccountCustomers, cfg.AccountTestCustomers = 24, 8, 10, 4
	if customize != nil {
		customize(&cfg, &dc)
	}
	p := stripesim.NewPlatform(cfg)
	ds := p.Deliverers(dc)
	if err := p.Runner(ds).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	server, err := stripesim.NewPlatformServer(p, ds, stripesim.ServerConfig{LiveKey: liveKey, TestKey: testKey, RateLimit: -1, LiveRateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(server)
	t.Cleanup(api.Close)
	var held int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.events WHERE hold_reason IS NOT NULL`).Scan(&held); err != nil || held != 0 {
		t.Fatalf("%d deliveries held as mismatched (%v): every endpoint's events came with its own secret", held, err)
	}
	return &platform{db: db, p: p, server: server, api: api.URL}
}

// reconciler reads the platform with both keys (STRIPE_SECRET_KEY="live,test"), fast.
func (pl *platform) reconciler(cfg reconcile.Config) *reconcile.Reconciler {
	if cfg.Stripe.APIKey == "" {
		cfg.Stripe.APIKey = liveKey + "," + testKey
	}
	cfg.Stripe.APIBase, cfg.Stripe.RateLimit, cfg.Stripe.BaseBackoff = pl.api, 1000, 20*time.Millisecond
	cfg.Now = pl.p.Now
	return reconcile.New(pl.db.Pool, cfg)
}

func scopeOf(sc stripesim.Scope) reconcile.Scope {
	return reconcile.Scope{Livemode: sc.Livemode, Account: sc.Account}
}

// missing is, per scope, the simulator's events not in the log.
func (pl *platform) missing(t *testing.T) map[stripesim.Scope][]string {
	t.Helper()
	have := map[string]bool{}
	rows, err := pl.db.Pool.Query(context.Background(), `SELECT event_id FROM ledger.events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		have[id] = true
	}
	rows.Close()
	out := map[stripesim.Scope][]string{}
	for _, sc := range pl.p.Scopes() {
		for _, ev := range pl.p.Sim(sc).Events() {
			if !have[ev.ID] {
				out[sc] = append(out[sc], ev.ID)
			}
		}
	}
	return out
}

func scopeRun(t *testing.T, run reconcile.Run, sc reconcile.Scope) reconcile.ScopeRun {
	t.Helper()
	for _, s := range run.Scopes {
		if s.Scope() == sc {
			return s
		}
	}
	t.Fatalf("run %d has no scope %s: %+v", run.ID, sc, run.Scopes)
	return reconcile.ScopeRun{}
}

// The connect scenario in live and test mode at once: the Connect live endpoint alone was down
// for four days. One events run over every scope finds each connected account's lost events in
// its own Events API (read with its Stripe-Account header and the live key) and appends them
// with their account; the platform's scopes and the test scopes find nothing missing. Each
// scope saw exactly its own account's events in its mode: the live key read the live scopes and
// the test key the test ones (the simulator serves a key only its own mode's books).
func TestConnectOutageRepairedPerAccount(t *testing.T) {
	t.Parallel()
	pl := playPlatform(t, "connect", nil)
	ctx := context.Background()
	before := pl.missing(t)
	lost := 0
	for sc, ids := range before {
		if sc.Account == "" || !sc.Livemode {
			t.Fatalf("%s lost %d events; only the Connect live endpoint was down", sc, len(ids))
		}
		lost += len(ids)
	}
	if lost == 0 {
		t.Fatal("the Connect outage lost no events")
	}
	run, err := pl.reconciler(reconcile.Config{}).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != "succeeded" || len(run.Scopes) != len(pl.p.Scopes()) || run.Repaired != lost || run.MissingFound != lost {
		t.Fatalf("run %s: %d scopes, %d missing, %d repaired; %d were lost", run.Status, len(run.Scopes), run.MissingFound, run.Repaired, lost)
	}
	for _, sc := range pl.p.Scopes() {
		sr := scopeRun(t, run, scopeOf(sc))
		if sr.Status != "succeeded" || sr.MissingFound != len(before[sc]) || sr.Repaired != len(before[sc]) {
			t.Errorf("%s: %+v, %d were lost", sc, sr, len(before[sc]))
		}
		inWindow := 0
		for _, ev := range pl.p.Sim(sc).Events() {
			if ev.Created >= sr.WindowFrom.Unix() && ev.Created <= sr.WindowTo.Unix() {
				inWindow++
			}
		}
		if sr.EventsSeen != inWindow {
			t.Errorf("%s saw %d events, its account has %d in the window", sc, sr.EventsSeen, inWindow)
		}
	}
	if left := pl.missing(t); len(left) != 0 {
		t.Fatalf("still missing: %v", left)
	}
	// The repaired events carry their connected account, as Stripe listed them.
	var platformRepaired, unaccounted int
	_ = pl.db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE account = ''), count(*) FILTER (WHERE account <> '' AND NOT livemode)
		FROM ledger.events WHERE source = 'reconcile'`).Scan(&platformRepaired, &unaccounted)
	if platformRepaired != 0 || unaccounted != 0 {
		t.Fatalf("%d platform and %d test events appended by reconcile", platformRepaired, unaccounted)
	}
	for _, sc := range pl.p.Scopes() {
		if sc.Account == "" || !sc.Livemode {
			continue
		}
		var n int
		_ = pl.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.events WHERE source = 'reconcile' AND account = $1 AND livemode`, sc.Account).Scan(&n)
		if n != len(before[sc]) {
			t.Errorf("%s: %d reconciled events in the log, %d lost", sc, n, len(before[sc]))
		}
	}
	// Each scope proved its own window: the next run of each starts from it.
	var windows int
	_ = pl.db.Pool.QueryRow(ctx, `SELECT count(DISTINCT (livemode, account)) FROM ledger.reconcile_coverage WHERE run_id = $1`, run.ID).Scan(&windows)
	if windows != len(pl.p.Scopes()) {
		t.Fatalf("%d scopes proved a window, want %d", windows, len(pl.p.Scopes()))
	}
	again, err := pl.reconciler(reconcile.Config{}).Run(ctx, reconcile.Options{Job: reconcile.JobEvents,
		Scopes: reconcile.ScopeFilter{Account: "platform"}})
	if err != nil || again.Repaired != 0 || len(again.Scopes) != 2 || !again.WindowFrom.After(*run.WindowFrom) {
		t.Fatalf("second run over the platform's scopes: %+v %v", again, err)
	}
}

// A connected account the platform can no longer reach (Stripe answers 403): that account's
// scopes are recorded as failed with Stripe's message, the run is partial, and every other
// scope is reconciled. A live key the simulator does not know fails the live scopes (401) while
// the test key's go through: each mode is read with its own key.
func TestUnreachableAccountMakesARunPartial(t *testing.T) {
	t.Parallel()
	pl := playPlatform(t, "connect", nil)
	ctx := context.Background()
	revoked := pl.p.Accounts()[1].ID
	pl.server.Revoke(revoked)
	// The account list still names it (Stripe does until the platform refreshes it): the
	// reconciler is configured with the three accounts.
	var accts []string
	for _, a := range pl.p.Accounts() {
		accts = append(accts, a.ID)
	}
	run, err := pl.reconciler(reconcile.Config{Stripe: reconcile.StripeConfig{Accounts: strings.Join(accts, ",")}}).Run(ctx,
		reconcile.Options{Job: reconcile.JobEvents})
	if err == nil || run.Status != "partial" {
		t.Fatalf("run %s, err %v", run.Status, err)
	}
	for _, sr := range run.Scopes {
		sc := sr.Scope()
		switch {
		case sc.Account == revoked:
			if sr.Status != "failed" || !strings.Contains(sr.Error, "403") || !strings.Contains(sr.Error, revoked) {
				t.Errorf("%s: %s %q", sc, sr.Status, sr.Error)
			}
		case sr.Status != "succeeded":
			t.Errorf("%s: %s %q", sc, sr.Status, sr.Error)
		}
		if strings.Contains(sr.Error, liveKey) || strings.Contains(sr.Error, testKey) {
			t.Fatalf("the key is in the run's error: %s", sr.Error)
		}
	}
	for sc, ids := range pl.missing(t) {
		if sc.Account != revoked {
			t.Errorf("%s still misses %d events", sc, len(ids))
		}
	}

	wrong, err := pl.reconciler(reconcile.Config{Stripe: reconcile.StripeConfig{APIKey: "sk_live_notthisplatformskey," + testKey,
		Accounts: "none"}}).Run(ctx, reconcile.Options{Job: reconcile.JobEvents})
	if err == nil || wrong.Status != "partial" {
		t.Fatalf("wrong live key: %s %v", wrong.Status, err)
	}
	if live, test := scopeRun(t, wrong, reconcile.Scope{Livemode: true}), scopeRun(t, wrong, reconcile.Scope{}); live.Status != "failed" ||
		!strings.Contains(live.Error, "401") || test.Status != "succeeded" || strings.Contains(live.Error, "notthisplatform") {
		t.Fatalf("live %+v, test %+v", live, test)
	}
}

// The configuration's keys: one per mode, by prefix; the errors name the variable, never a key.
func TestKeys(t *testing.T) {
	t.Parallel()
	keys, err := reconcile.StripeConfig{APIKey: " sk_live_a1 , rk_test_b2"}.Keys()
	if err != nil || keys[true] != "sk_live_a1" || keys[false] != "rk_test_b2" {
		t.Fatalf("%v %v", keys, err)
	}
	keys, err = reconcile.StripeConfig{APIKey: "rk_live_a1", TestKey: "sk_test_b2"}.Keys()
	if err != nil || keys[true] != "rk_live_a1" || keys[false] != "sk_test_b2" {
		t.Fatalf("%v %v", keys, err)
	}
	for _, c := range []struct {
		cfg  reconcile.StripeConfig
		want string
	}{
		{reconcile.StripeConfig{APIKey: "sk_test_a1,sk_test_b2"}, "STRIPE_SECRET_KEY: two test keys"},
		{reconcile.StripeConfig{APIKey: "sk_live_a1,pk_live_b2"}, "STRIPE_SECRET_KEY: entry 2"},
		{reconcile.StripeConfig{APIKey: "sk_test_a1", TestKey: "sk_test_b2"}, "both hold a test key"},
		{reconcile.StripeConfig{TestKey: "sk_live_b2"}, "STRIPE_SECRET_KEY_TEST: not a test key"},
		{reconcile.StripeConfig{}, "no Stripe API key"},
	} {
		_, err := c.cfg.Keys()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "_a1") || strings.Contains(err.Error(), "_b2") {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// pageCount cancels a run at its nth recorded page.
func cancelAt(n int, cancel func()) func(reconcile.Run) {
	pages := 0
	return func(reconcile.Run) {
		if pages++; pages == n {
			cancel()
		}
	}
}

// truthCounts is, per scope, the number of objects of each kind the simulator holds.
func (pl *platform) objectCount() int {
	n := 0
	for _, sc := range pl.p.Scopes() {
		m := pl.p.Sim(sc).TruthMetrics()
		for _, c := range m.Counts {
			n += c
		}
		n += m.Coupons
		// The money objects the objects job compares too (balance transactions are the balance
		// job's).
		money := pl.p.Sim(sc).MoneyTruth().Counts
		for _, kind := range []domain.Kind{domain.KindPayouts, domain.KindPaymentIntents, domain.KindCreditNotes} {
			n += money[string(kind)]
		}
	}
	return n
}

// An objects run cancelled part-way resumes from its cursor: the next run skips the scopes the
// first finished and, in the scope where it stopped, the kinds it had listed in full, and goes
// on from the page it had reached; between them they compare every object exactly once.
func TestObjectsRunResumes(t *testing.T) {
	t.Parallel()
	pl := playPlatform(t, "connect", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancelled in the third scope, mid-way through its third kind.
	stop := func(r reconcile.Run) {
		for i, sr := range r.Scopes {
			if sr.Status == "running" && i >= 2 && len(sr.KindsDone) >= 2 && !strings.HasSuffix(sr.Cursor, ":") &&
				strings.HasPrefix(sr.Cursor, string(domain.KindInvoices)+":") {
				cancel()
			}
		}
	}
	first, err := pl.reconciler(reconcile.Config{PageSize: 3, AfterPage: stop}).Run(ctx, reconcile.Options{Job: reconcile.JobObjects})
	if first.Status != "cancelled" || err == nil {
		t.Fatalf("first run: %s %v", first.Status, err)
	}
	var stopped reconcile.ScopeRun
	finished := 0
	for _, sr := range first.Scopes {
		switch sr.Status {
		case "succeeded":
			finished++
		case "cancelled":
			stopped = sr
		}
	}
	if stopped.Cursor == "" || len(stopped.KindsDone) == 0 || finished == 0 {
		t.Fatalf("the first run stopped at %+v after %d scopes; the test wants it part-way through a later scope", stopped, finished)
	}
	second, err := pl.reconciler(reconcile.Config{PageSize: 3}).Run(context.Background(), reconcile.Options{Job: reconcile.JobObjects})
	if err != nil || second.ResumedFrom == nil || *second.ResumedFrom != first.ID {
		t.Fatalf("second run: %+v %v", second, err)
	}
	skipped := 0
	for _, sr := range second.Scopes {
		if sr.Status == "skipped" {
			skipped++
		}
	}
	resumed := scopeRun(t, second, stopped.Scope())
	if skipped != finished || !slices.Equal(resumed.KindsDone, []domain.Kind{domain.KindCoupons, domain.KindCustomers, domain.KindSubscriptions,
		domain.KindInvoices, domain.KindCharges, domain.KindRefunds, domain.KindDisputes, domain.KindCheckoutSessions,
		domain.KindPayouts, domain.KindPaymentIntents, domain.KindCreditNotes}) {
		t.Fatalf("%d scopes skipped, %d finished before; resumed scope %+v", skipped, finished, resumed)
	}
	if total := pl.objectCount(); first.ObjectsChecked+second.ObjectsChecked != total {
		t.Fatalf("compared %d + %d objects, the platform has %d: the resumed run redid or skipped some",
			first.ObjectsChecked, second.ObjectsChecked, total)
	}
}

// readModelsMatch rebuilds the read models and checks each scope's against the simulator's own
// objects and TruthMetrics: rows per kind, MRR and succeeded charges per currency, and the
// fields finance reads of each object.
func (pl *platform) readModelsMatch(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := projections.Rebuild(ctx, pl.db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	for _, sc := range pl.p.Scopes() {
		truth := pl.p.Sim(sc).TruthMetrics()
		for kind, want := range truth.Counts {
			var got int
			q := fmt.Sprintf(`SELECT count(*) FROM ledger.%s WHERE livemode = $1 AND account IS NOT DISTINCT FROM $2`, kind)
			if kind == "customers" {
				q += " AND NOT deleted"
			}
			if err := pl.db.Pool.QueryRow(ctx, q, sc.Livemode, scopeOf(sc).AccountOrNil()).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: ledger.%s has %d rows, the account %d", sc, kind, got, want)
			}
		}
		sums := func(q string) map[string]int64 {
			rows, err := pl.db.Pool.Query(ctx, q, sc.Livemode, scopeOf(sc).AccountOrNil())
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]int64{}
			for rows.Next() {
				var cur string
				var n int64
				_ = rows.Scan(&cur, &n)
				if n != 0 {
					out[cur] = n
				}
			}
			return out
		}
		mrr := sums(`SELECT currency, sum(mrr)::bigint FROM ledger.subscriptions WHERE livemode = $1 AND account IS NOT DISTINCT FROM $2 GROUP BY 1`)
		charges := sums(`SELECT currency, sum(amount)::bigint FROM ledger.charges WHERE status = 'succeeded' AND livemode = $1
			AND account IS NOT DISTINCT FROM $2 GROUP BY 1`)
		for cur, want := range truth.MRR {
			if want != 0 && mrr[cur] != want {
				t.Errorf("%s: MRR %s %d, the account %d", sc, cur, mrr[cur], want)
			}
		}
		for cur, want := range truth.SucceededCharges {
			if charges[cur] != want {
				t.Errorf("%s: succeeded charges %s %d, the account %d", sc, cur, charges[cur], want)
			}
		}
		objs := pl.p.Sim(sc).Truth().Objects
		for kind, q := range map[string]string{
			"subscriptions": `SELECT count(*) FROM ledger.subscriptions s JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = s.id
				WHERE o->>'status' <> s.status OR (o->>'cancel_at_period_end')::boolean <> s.cancel_at_period_end`,
			"invoices": `SELECT count(*) FROM ledger.invoices i JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = i.id
				WHERE o->>'status' <> i.status OR (o->>'amount_paid')::bigint <> i.amount_paid`,
			"charges": `SELECT count(*) FROM ledger.charges c JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = c.id
				WHERE (o->>'amount_refunded')::bigint <> c.amount_refunded OR o->>'status' <> c.status`,
			"refunds": `SELECT count(*) FROM ledger.refunds r JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = r.id
				WHERE (o->>'amount')::bigint <> r.amount OR o->>'status' <> r.status`,
			"disputes": `SELECT count(*) FROM ledger.disputes d JOIN jsonb_array_elements($1::jsonb) o ON o->>'id' = d.id
				WHERE o->>'status' <> d.status`,
		} {
			var n int
			if err := pl.db.Pool.QueryRow(ctx, q, string(objs[kind])).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s: %d %s differ from the account", sc, n, kind)
			}
		}
	}
}

// Backfill over connect-late: 90 days of history, every endpoint created 2 days before the end.
// A backfill cancelled part-way and run again leaves every scope's read models equal to the
// account's objects and figures; a further backfill appends nothing. Along the way the drift
// check finds every one of the seven kinds missing somewhere, and a customer the ledger holds
// that Stripe no longer has (its deletion never arrived) is marked deleted.
func TestBackfill(t *testing.T) {
	t.Parallel()
	pl := playPlatform(t, "connect-late", nil)
	ctx := context.Background()
	// A customer of the platform's test account that was deleted in Stripe while no webhook
	// arrived: the ledger has its creation, Stripe answers 404 for it.
	ghost := fmt.Sprintf(`{"id":"evt_ghostcustomer01","object":"event","api_version":"2023-10-16","created":%d,"livemode":false,`+
		`"type":"customer.created","data":{"object":{"id":"cus_ghost01","object":"customer","created":%d,"email":"gone@example.com",`+
		`"name":null,"currency":null,"metadata":{}}}}`, end.Add(-40*24*time.Hour).Unix(), end.Add(-40*24*time.Hour).Unix())
	ev, err := domain.NewEvent([]byte(ghost), domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	// And a coupon deleted the same way: it is marked deleted, and keeps its terms.
	ghostCoupon := fmt.Sprintf(`{"id":"evt_ghostcoupon01","object":"event","api_version":"2023-10-16","created":%d,"livemode":false,`+
		`"type":"coupon.created","data":{"object":{"id":"GHOST15","object":"coupon","created":%d,"duration":"forever","duration_in_months":null,`+
		`"percent_off":15,"amount_off":null,"currency":null,"livemode":false,"metadata":{},"name":null,"valid":true}}}`,
		end.Add(-40*24*time.Hour).Unix(), end.Add(-40*24*time.Hour).Unix())
	cev, err := domain.NewEvent([]byte(ghostCoupon), domain.SourceImport, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eventstore.New(pl.db.Pool).Append(ctx, []domain.Event{ev, cev}); err != nil {
		t.Fatal(err)
	}

	// A dispute whose latest state in the ledger is not Stripe's: disputes are too rare in
	// the simulator to lose one beyond the Events API's 30 days, so the ledger is given a later
	// update Stripe never sent.
	disputed := false
	for _, sc := range pl.p.Scopes() {
		var disputes []map[string]any
		_ = json.Unmarshal(pl.p.Sim(sc).Truth().Objects["disputes"], &disputes)
		if len(disputes) == 0 {
			continue
		}
		d := disputes[0]
		d["status"] = map[bool]string{true: "lost", false: "won"}[d["status"] == "won"]
		env := map[string]any{"id": "evt_skeweddispute01", "object": "event", "api_version": "2023-10-16", "created": end.Add(-time.Hour).Unix(),
			"livemode": sc.Livemode, "type": "charge.dispute.updated", "data": map[string]any{"object": d}}
		if sc.Account != "" {
			env["account"] = sc.Account
		}
		body, _ := json.Marshal(env)
		skewed, err := domain.NewEvent(body, domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eventstore.New(pl.db.Pool).Append(ctx, []domain.Event{skewed}); err != nil {
			t.Fatal(err)
		}
		disputed = true
		break
	}
	if !disputed {
		t.Fatal("the platform has no dispute")
	}

	var reports []reconcile.Progress
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first, err := pl.reconciler(reconcile.Config{PageSize: 20, AfterPage: cancelAt(25, cancel)}).Run(cctx,
		reconcile.Options{Job: reconcile.JobObjects, Trigger: "backfill", Progress: func(p reconcile.Progress) { reports = append(reports, p) }})
	if first.Status != "cancelled" || err == nil {
		t.Fatalf("first backfill: %s %v", first.Status, err)
	}
	if len(reports) == 0 || reports[len(reports)-1].Done <= 0 || reports[len(reports)-1].Done >= 1 {
		t.Fatalf("progress of the cancelled backfill: %+v", reports[len(reports)-1:])
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Done < reports[i-1].Done {
			t.Fatalf("progress went back from %.3f to %.3f", reports[i-1].Done, reports[i].Done)
		}
	}
	run, err := pl.reconciler(reconcile.Config{PageSize: 20}).Run(ctx, reconcile.Options{Job: reconcile.JobObjects, Trigger: "backfill"})
	if err != nil || run.ResumedFrom == nil || *run.ResumedFrom != first.ID {
		t.Fatalf("resumed backfill: %+v %v", run, err)
	}
	drift := map[string]int{}
	for _, r := range []reconcile.Run{first, run} {
		for k, v := range r.Drift {
			drift[k] += v
		}
	}
	if drift["disputes.status"] != 1 {
		t.Errorf("the dispute's status drift was not found: %v", drift)
	}
	for _, kind := range []string{"customers", "subscriptions", "invoices", "charges", "refunds", "checkout_sessions"} {
		if drift[kind+".missing"] == 0 {
			t.Errorf("no %s found missing: %v", kind, drift)
		}
	}
	if drift["customers.deleted"] != 1 || drift["coupons.deleted"] != 1 {
		t.Errorf("the deleted customer and coupon were not found: %v", drift)
	}
	pl.readModelsMatch(t)
	var deleted bool
	if err := pl.db.Pool.QueryRow(ctx, `SELECT deleted FROM ledger.customers WHERE id = 'cus_ghost01'`).Scan(&deleted); err != nil || !deleted {
		t.Fatalf("the customer Stripe deleted reads deleted=%v (%v)", deleted, err)
	}
	var pct string
	if err := pl.db.Pool.QueryRow(ctx, `SELECT deleted, percent_off::text FROM ledger.coupons WHERE id = 'GHOST15'`).Scan(&deleted, &pct); err != nil || !deleted || pct != "15" {
		t.Fatalf("the coupon Stripe deleted reads deleted=%v percent_off %s (%v)", deleted, pct, err)
	}

	var before, after int
	_ = pl.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.events`).Scan(&before)
	again, err := pl.reconciler(reconcile.Config{}).Run(ctx, reconcile.Options{Job: reconcile.JobObjects, Trigger: "backfill"})
	_ = pl.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.events`).Scan(&after)
	if err != nil || again.Repaired != 0 || len(again.Drift) != 0 || after != before {
		t.Fatalf("second backfill: %v, drift %v, %d events appended (%v)", again.Status, again.Drift, after-before, err)
	}
}

// The endpoints job checks each mode's account endpoint and Connect endpoint.
func TestEndpointsPerMode(t *testing.T) {
	t.Parallel()
	pl := playPlatform(t, "connect", func(_ *stripesim.PlatformConfig, dc *stripesim.PlatformDelivery) {
		dc[stripesim.ConnectTest].URL = "" // no Connect endpoint in test mode
	})
	run, err := pl.reconciler(reconcile.Config{}).Run(context.Background(), reconcile.Options{Job: reconcile.JobEndpoints})
	if err != nil {
		t.Fatal(err)
	}
	var findings []reconcile.EndpointProblem
	_ = json.Unmarshal(run.Findings, &findings)
	if len(run.Scopes) != 2 || run.ObjectsChecked != 3 || len(findings) != 1 || findings[0].Problem != "none" ||
		!findings[0].Connect || findings[0].Livemode {
		t.Fatalf("endpoints run: %d scopes, %d checked, findings %+v", len(run.Scopes), run.ObjectsChecked, findings)
	}
}

// endpoints setup creates the endpoint it is asked for — a mode's account endpoint or its
// Connect endpoint — with that mode's key, names the variable its secret belongs in, and the
// endpoints job is then content: each mode has both.
func TestSetupConnectEndpoints(t *testing.T) {
	t.Parallel()
	pl := playPlatform(t, "connect", func(_ *stripesim.PlatformConfig, dc *stripesim.PlatformDelivery) {
		dc[stripesim.ConnectTest].URL = "" // the test-mode Connect endpoint is missing
	})
	ctx := context.Background()
	cfg := reconcile.StripeConfig{APIKey: liveKey + "," + testKey, APIBase: pl.api}
	url := "https://ledger.example/webhooks/stripe"
	no, yes := false, true
	res, err := reconcile.SetupEndpoint(ctx, cfg, reconcile.Setup{URL: url, Livemode: &no, Connect: true})
	if err != nil || !res.Created || res.Endpoint.Application == "" || res.Endpoint.Livemode || res.Variable != "STRIPE_WEBHOOK_SECRET_CONNECT_TEST" || res.Secret == "" {
		t.Fatalf("test-mode Connect endpoint: %+v %v", res, err)
	}
	again, err := reconcile.SetupEndpoint(ctx, cfg, reconcile.Setup{URL: url, Livemode: &no, Connect: true})
	if err != nil || again.Created || again.Endpoint.ID != res.Endpoint.ID {
		t.Fatalf("the same again: %+v %v", again, err)
	}
	// At the same URL, the account endpoint is another endpoint; in live mode, another again.
	acct, err := reconcile.SetupEndpoint(ctx, cfg, reconcile.Setup{URL: url, Livemode: &no})
	if err != nil || !acct.Created || acct.Endpoint.Application != "" || acct.Variable != "STRIPE_WEBHOOK_SECRET_TEST" {
		t.Fatalf("test-mode account endpoint: %+v %v", acct, err)
	}
	live, err := reconcile.SetupEndpoint(ctx, cfg, reconcile.Setup{URL: url, Livemode: &yes, Connect: true})
	if err != nil || !live.Created || !live.Endpoint.Livemode || live.Variable != "STRIPE_WEBHOOK_SECRET_CONNECT_LIVE" {
		t.Fatalf("live Connect endpoint: %+v %v", live, err)
	}
	run, err := pl.reconciler(reconcile.Config{}).Run(ctx, reconcile.Options{Job: reconcile.JobEndpoints})
	var findings []reconcile.EndpointProblem
	_ = json.Unmarshal(run.Findings, &findings)
	for _, f := range findings {
		if f.Problem == "none" {
			t.Fatalf("after setup, an endpoint is still missing: %+v (%v)", f, err)
		}
	}
	if _, err := reconcile.SetupEndpoint(ctx, reconcile.StripeConfig{APIKey: testKey, APIBase: pl.api}, reconcile.Setup{URL: url, Livemode: &yes}); err == nil ||
		!strings.Contains(err.Error(), "no live key") {
		t.Fatalf("a live endpoint without a live key: %v", err)
	}
}

// An Events API that lists, for a connected account, events that are not that account's (here a
// server that ignores Stripe-Account and answers with the platform's own): none of them is
// appended for the account — they are findings — while the platform's scope appends its own.
func TestEventsOfAnotherScopeAreNotAppended(t *testing.T) {
	t.Parallel()
	a := play(t, "steady", func(c *stripesim.Config, dc *stripesim.DeliveryConfig) {
		c.Customers = 6
		dc.Outages = []stripesim.Window{{From: c.Start, To: c.End.Add(time.Hour)}} // nothing delivered
	}, stripesim.ServerConfig{RateLimit: -1})
	cfg := reconcile.Config{Now: a.sim.Now, Stripe: reconcile.StripeConfig{APIKey: "sk_test_reconcile", APIBase: a.api, RateLimit: 1000,
		Accounts: "acct_notreallyhers"}}
	run, err := reconcile.New(a.db.Pool, cfg).Run(context.Background(), reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	var appended, withAccount int
	if err := a.db.Pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE account <> '') FROM ledger.events`).Scan(&appended, &withAccount); err != nil {
		t.Fatal(err)
	}
	// Every event the platform's Events API still keeps (30 days) was listed twice: appended
	// once for the platform, refused once for the account.
	if appended == 0 || withAccount != 0 || run.Drift["events.scope_mismatch"] != appended || run.Status != "succeeded" {
		t.Fatalf("%d events appended (%d with an account); %d scope mismatches found; run %s", appended, withAccount, run.Drift["events.scope_mismatch"], run.Status)
	}
}

// A run over a window asked for by hand and cancelled half-way is not resumed by the next
// default run: that run checks its own window (from the horizon, nothing being proven yet) and
// the narrow window is never recorded as proven coverage.
func TestAHandPickedWindowIsNotResumedByADefaultRun(t *testing.T) {
	t.Parallel()
	a := play(t, "steady", func(c *stripesim.Config, dc *stripesim.DeliveryConfig) {
		c.Customers = 12
		dc.Outages = []stripesim.Window{{From: c.Start, To: c.End.Add(time.Hour)}} // nothing delivered
	}, stripesim.ServerConfig{RateLimit: -1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	narrowFrom := a.sim.Now().Add(-5 * 24 * time.Hour)
	cut, err := a.reconcilerWith(0, reconcile.Config{PageSize: 3, AfterPage: cancelAt(1, cancel)}).
		Run(ctx, reconcile.Options{Job: reconcile.JobEvents, From: narrowFrom})
	if err == nil || cut.Status != "cancelled" || cut.Scopes[0].Cursor == "" || !cut.Scopes[0].Explicit {
		t.Fatalf("the hand-picked run: %+v %v", cut, err)
	}
	next, err := a.reconciler(0).Run(context.Background(), reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	if next.ResumedFrom != nil || next.Scopes[0].WindowFrom == nil || !next.Scopes[0].WindowFrom.Before(narrowFrom) {
		t.Fatalf("the default run resumed %v, window from %v (the narrow window began %s)", next.ResumedFrom, next.Scopes[0].WindowFrom, narrowFrom)
	}
	var narrow int
	if err := a.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.reconcile_coverage WHERE window_from >= $1`, narrowFrom).Scan(&narrow); err != nil || narrow != 0 {
		t.Fatalf("%d proven windows start inside the narrow one (%v)", narrow, err)
	}
}
