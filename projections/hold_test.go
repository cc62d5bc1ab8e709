package projections_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
)

// delivery is a webhook event as the handler appends it: with the endpoint that verified it.
type delivery struct {
	id, typ, charge string
	created, amount int64
	livemode        bool
	account         string
	from            eventstore.Endpoint
}

func (d delivery) body() []byte {
	acct := ""
	if d.account != "" {
		acct = fmt.Sprintf(`"account":%q,`, d.account)
	}
	return fmt.Appendf(nil, `{"id":%q,"object":"event",%s"api_version":"2023-10-16","created":%d,"livemode":%t,"type":%q,`+
		`"data":{"object":{"id":%q,"object":"charge","amount":%d,"amount_captured":%d,"currency":"usd","status":"succeeded","paid":true,"livemode":%t,"created":%d}}}`,
		d.id, acct, d.created, d.livemode, d.typ, d.charge, d.amount, d.amount, d.livemode, d.created)
}

func appendDelivered(t *testing.T, pool *pgxpool.Pool, ds ...delivery) {
	t.Helper()
	var evs []domain.Event
	var from []eventstore.Endpoint
	for _, d := range ds {
		e, err := domain.NewEvent(d.body(), domain.SourceWebhook, fmt.Sprintf("t=%d,v1=%064x", d.created, 0))
		if err != nil {
			t.Fatal(err)
		}
		evs, from = append(evs, e), append(from, d.from)
	}
	res, err := eventstore.New(pool).AppendDelivered(context.Background(), evs, from)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// charges are ledger.charges' amounts by ID.
func charges(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s *string
	if err := pool.QueryRow(context.Background(), `SELECT string_agg(id || '=' || amount, ' ' ORDER BY id) FROM ledger.charges`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// holds are the open quarantine's held events: ID -> reason.
func holds(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	st, err := projections.ReadStatus(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, q := range st.Quarantine {
		if q.HoldReason != nil {
			if !strings.HasPrefix(q.Error, *q.HoldReason+": ") || !strings.Contains(q.Error, "ledger projections retry "+q.EventID) {
				t.Errorf("%s: the error %q does not start with its reason and say how to release it", q.EventID, q.Error)
			}
			out[q.EventID] = *q.HoldReason
		} else {
			out[q.EventID] = "fold failure"
		}
	}
	return out
}

// Events that disagree with their endpoint stay out of the read models, live and on a full
// replay, listed in the quarantine with their reason, until an operator names one in retry: it
// is then released and folded, and stays folded by every replay after; the others stay held,
// and retrying "all" does not release them. A fold failure beside them keeps its own semantics.
func TestHeldEventsStayOutUntilReleased(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	r := startRunner(t, db.Pool, projections.RunnerConfig{})
	appendDelivered(t, db.Pool,
		delivery{"evt_ok", "charge.succeeded", "ch_ok", 1780000000, 500, false, "", eventstore.EndpointTest},
		// A "live" update of ch_ok signed by the test endpoint's secret: held, so ch_ok stays 500.
		delivery{"evt_live_on_test", "charge.updated", "ch_ok", 1780000005, 99900, true, "", eventstore.EndpointTest},
		delivery{"evt_acct_on_platform", "charge.succeeded", "ch_acct", 1780000001, 700, true, "acct_1", eventstore.EndpointLive},
		delivery{"evt_platform_on_connect", "charge.succeeded", "ch_plat", 1780000002, 800, false, "", eventstore.EndpointConnectTest},
		delivery{"evt_connect_ok", "charge.succeeded", "ch_conn", 1780000003, 300, false, "acct_1", eventstore.EndpointConnectTest},
	)
	appendRaw(t, db.Pool, poisonCharge("evt_poison", "ch_bad", 1780000004))
	caughtUp(t, r, db.Pool)

	const agreeing = "ch_conn=300 ch_ok=500"
	wantHolds := map[string]string{"evt_live_on_test": eventstore.HoldModeMismatch, "evt_acct_on_platform": eventstore.HoldAccountOnPlatform,
		"evt_platform_on_connect": eventstore.HoldNoAccountOnConnect, "evt_poison": "fold failure"}
	check := func(when, wantCharges string, want map[string]string) {
		t.Helper()
		if got := charges(t, db.Pool); got != wantCharges {
			t.Errorf("%s: charges %q, want %q", when, got, wantCharges)
		}
		if got := holds(t, db.Pool); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: quarantine %v, want %v", when, got, want)
		}
	}
	check("live", agreeing, wantHolds)
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	check("after a replay", agreeing, wantHolds)

	// Retrying everything retries the fold failure and leaves the held events held.
	res, err := projections.Retry(ctx, db.Pool, projections.RetryConfig{})
	if err != nil || res.Failed != 1 || res.Released != 0 || res.Held != 3 {
		t.Fatalf("retry all: %+v %v", res, err)
	}
	check("after retry all", agreeing, wantHolds)

	// Naming a held event releases it: its object is folded with it.
	res, err = projections.Retry(ctx, db.Pool, projections.RetryConfig{EventIDs: []string{"evt_live_on_test"}})
	if err != nil || res.Resolved != 1 || res.Released != 1 {
		t.Fatalf("release: %+v %v", res, err)
	}
	delete(wantHolds, "evt_live_on_test")
	check("after the release", "ch_conn=300 ch_ok=99900", wantHolds)
	if rec, err := eventstore.New(db.Pool).Get(ctx, "evt_live_on_test"); err != nil || !rec.Released || rec.Held() || rec.HoldReason != eventstore.HoldModeMismatch {
		t.Fatalf("released record: %+v %v", rec, err)
	}
	// A released event stays released: naming it again finds nothing to retry.
	if _, err := projections.Retry(ctx, db.Pool, projections.RetryConfig{EventIDs: []string{"evt_live_on_test"}}); err == nil {
		t.Fatal("retrying a released event again: no error")
	}

	// A held event released before the runner reached it: the runner folds it and never lists it.
	appendDelivered(t, db.Pool, delivery{"evt_late", "charge.succeeded", "ch_late", 1780000009, 400, true, "", eventstore.EndpointTest})
	if res, err := projections.Retry(ctx, db.Pool, projections.RetryConfig{EventIDs: []string{"evt_late"}}); err != nil || res.Released != 1 {
		t.Fatalf("early release: %+v %v", res, err)
	}
	// Then one more agreeing event, so the runner's fold of the log's head is observable.
	appendDelivered(t, db.Pool, delivery{"evt_after", "charge.succeeded", "ch_after", 1780000010, 100, false, "", eventstore.EndpointTest})
	caughtUp(t, r, db.Pool)
	const released = "ch_after=100 ch_conn=300 ch_late=400 ch_ok=99900"
	check("live after an early release", released, wantHolds)

	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	check("replayed after the releases", released, wantHolds)
}

// A release that commits while a replay runs — after the replay read the log, before it swapped
// its tables in — is not undone by the swap: the released event is in the new tables and no
// longer listed as held.
func TestReleaseDuringAReplayStays(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	appendDelivered(t, db.Pool,
		delivery{id: "evt_ok", typ: "charge.succeeded", charge: "ch_1", created: 1_700_000_000, amount: 100, livemode: false, from: eventstore.EndpointTest},
		delivery{id: "evt_held", typ: "charge.updated", charge: "ch_1", created: 1_700_000_100, amount: 250, livemode: true, from: eventstore.EndpointTest})
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if got := charges(t, db.Pool); got != "ch_1=100" || holds(t, db.Pool)["evt_held"] != eventstore.HoldModeMismatch {
		t.Fatalf("before: charges %q, holds %v", got, holds(t, db.Pool))
	}
	released := false
	_, err := projections.Rebuild(ctx, db.Pool, projections.Config{Progress: func(p projections.Progress) {
		if p.Phase == "fold" && !released {
			released = true
			if res, err := projections.Retry(ctx, db.Pool, projections.RetryConfig{EventIDs: []string{"evt_held"}}); err != nil || res.Released != 1 {
				t.Errorf("release during the replay: %+v %v", res, err)
			}
		}
	}})
	if err != nil || !released {
		t.Fatalf("replay: %v (released during it: %t)", err, released)
	}
	if got, h := charges(t, db.Pool), holds(t, db.Pool); got != "ch_1=250" || len(h) != 0 {
		t.Fatalf("after the replay: charges %q, holds %v; want the released update folded and nothing held", got, h)
	}
}
