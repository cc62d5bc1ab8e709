package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/notify"
)

// hookReceiver is a real HTTP receiver of a webhook channel: it answers what answer says and
// records the idempotency key of every request, in arrival order.
type hookReceiver struct {
	mu     sync.Mutex
	answer func(n int, key string) int // n counts requests from 1
	keys   []string
	srv    *httptest.Server
}

func newHookReceiver(t *testing.T, answer func(n int, key string) int) *hookReceiver {
	h := &hookReceiver{answer: answer}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		key := r.Header.Get(notify.IdempotencyHeader)
		h.mu.Lock()
		h.keys = append(h.keys, key)
		n := len(h.keys)
		answer := h.answer
		h.mu.Unlock()
		code := http.StatusOK
		if answer != nil {
			code = answer(n, key)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) setAnswer(f func(n int, key string) int) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

func (h *hookReceiver) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

func (h *hookReceiver) channel(t *testing.T, name string) notify.Channel {
	t.Helper()
	ch, err := notify.NewChannel(notify.ChannelConfig{Name: name, Type: "webhook", URLEnv: "U", SecretEnv: "S"},
		notify.ChannelOptions{Getenv: env("U", h.srv.URL+"/hook", "S", "whsec_test")})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// enqueue adds outbox rows as the runner would, due at notBefore.
func enqueue(t *testing.T, db *testkit.DB, rule, channel string, notBefore time.Time, eventIDs ...string) []int64 {
	t.Helper()
	var ids []int64
	for _, ev := range eventIDs {
		msg, _ := json.Marshal(notify.Message{Subject: "s " + ev, Text: "t " + ev})
		var id int64
		err := db.Pool.QueryRow(context.Background(), `INSERT INTO ledger.notify_outbox
			(rule, event_id, channel, idempotency_key, message, not_before, event_created)
			VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`,
			rule, ev, channel, notify.IdempotencyKey(rule, ev), msg, notBefore).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

type outboxState struct {
	status    string
	attempts  int
	lastError *string
	delivered *time.Time
}

func state(t *testing.T, db *testkit.DB, id int64) outboxState {
	t.Helper()
	var s outboxState
	err := db.Pool.QueryRow(context.Background(), `SELECT status, attempts, last_error, delivered_at
		FROM ledger.notify_outbox WHERE id = $1`, id).Scan(&s.status, &s.attempts, &s.lastError, &s.delivered)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs a deliverer until the test ends (or stop is called) and waits until it holds its
// lease and its router runs.
func start(t *testing.T, db *testkit.DB, cfg notify.DelivererConfig) (d *notify.Deliverer, stop func()) {
	t.Helper()
	if cfg.Retry.InitialInterval == 0 {
		cfg.Retry = notify.RetryConfig{MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}
	}
	d, err := notify.NewDeliverer(db.Pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Signals.Attempted.Init(t)
	d.Signals.Idle.Init(t)
	d.Signals.Started.Init(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	d.Signals.Started.Wait()
	return d, stop
}

func waitDelivered(t *testing.T, d *notify.Deliverer, n int) {
	t.Helper()
	for got := 0; got < n; {
		if a := d.Signals.Attempted.Wait(); a.Status == notify.StatusDelivered {
			got++
		}
	}
}

func TestDelivererSendsDueRowsInOrderAndMarksThemDelivered(t *testing.T) {
	db := testkit.New(t)
	rcv := newHookReceiver(t, nil)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	now := clk.Now()
	ids := enqueue(t, db, "payments", "erp", now, "evt_1", "evt_2", "evt_3")
	later := enqueue(t, db, "payments", "erp", now.Add(time.Hour), "evt_quiet")[0]
	// A digest member waits for its digest row and is never sent alone.
	digest := enqueue(t, db, "payments", "erp", now, "evt_digested")[0]
	if _, err := db.Pool.Exec(context.Background(), `UPDATE ledger.notify_outbox SET digest = true WHERE id = $1`, digest); err != nil {
		t.Fatal(err)
	}
	m := notify.NewDeliveryMetrics(prometheus.NewRegistry())
	d, _ := start(t, db, notify.DelivererConfig{Channels: map[string]notify.Channel{"erp": rcv.channel(t, "erp")},
		Clock: clk, Metrics: m})
	waitDelivered(t, d, 3)
	d.Signals.Idle.Wait()
	want := []string{notify.IdempotencyKey("payments", "evt_1"), notify.IdempotencyKey("payments", "evt_2"), notify.IdempotencyKey("payments", "evt_3")}
	if got := rcv.seen(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received %v, want %v", got, want)
	}
	for _, id := range ids {
		if s := state(t, db, id); s.status != "delivered" || s.attempts != 1 || s.delivered == nil || !s.delivered.Equal(now) || s.lastError != nil {
			t.Fatalf("row %d: %+v", id, s)
		}
	}
	if s := state(t, db, later); s.status != "pending" || s.attempts != 0 {
		t.Fatalf("the row due in an hour: %+v", s)
	}
	// The deliverer waits on the clock for the next due row.
	clk.Advance(time.Hour)
	waitDelivered(t, d, 1)
	if s := state(t, db, later); s.status != "delivered" {
		t.Fatalf("after an hour: %+v", s)
	}
	if s := state(t, db, digest); s.status != "pending" || s.attempts != 0 {
		t.Fatalf("digest member: %+v", s)
	}
	// A row added later is sent when the deliverer is woken.
	late := enqueue(t, db, "payments", "erp", clk.Now(), "evt_4")[0]
	d.Wake()
	waitDelivered(t, d, 1)
	if s := state(t, db, late); s.status != "delivered" {
		t.Fatalf("woken: %+v", s)
	}
	if got := testutil.ToFloat64(m.Sent.WithLabelValues("payments", "erp")); got != 5 {
		t.Fatalf("sent counter %v, want 5", got)
	}
}

func TestPermanentAnswersFailAtOnceAndRetryableOnesAreRetried(t *testing.T) {
	db := testkit.New(t)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	gone := enqueue(t, db, "payments", "gone", clk.Now(), "evt_404")[0]
	flaky := enqueue(t, db, "payments", "flaky", clk.Now(), "evt_flaky")[0]
	rcvGone := newHookReceiver(t, func(int, string) int { return http.StatusNotFound })
	rcvFlaky := newHookReceiver(t, func(n int, _ string) int {
		if n <= 2 {
			return []int{http.StatusTooManyRequests, http.StatusServiceUnavailable}[n-1]
		}
		return http.StatusOK
	})
	m := notify.NewDeliveryMetrics(prometheus.NewRegistry())
	d, _ := start(t, db, notify.DelivererConfig{Clock: clk, Metrics: m, Channels: map[string]notify.Channel{
		"gone": rcvGone.channel(t, "gone"), "flaky": rcvFlaky.channel(t, "flaky")}})
	// gone: one attempt, failed for good; flaky: 429, 503, then 200 within one round.
	for settled := 0; settled < 2; {
		if a := d.Signals.Attempted.Wait(); a.Status != notify.StatusPending {
			settled++
		}
	}
	if s := state(t, db, gone); s.status != "failed" || s.attempts != 1 || s.lastError == nil || len(rcvGone.seen()) != 1 {
		t.Fatalf("404: %+v, %d requests", s, len(rcvGone.seen()))
	} else if want := "404 Not Found"; !strings.Contains(*s.lastError, want) {
		t.Fatalf("last error %q lacks %q", *s.lastError, want)
	}
	if s := state(t, db, flaky); s.status != "delivered" || s.attempts != 3 || s.lastError != nil {
		t.Fatalf("429, 503, 200: %+v", s)
	}
	for name, want := range map[string]float64{"failed gone": 1, "retried flaky": 2, "sent flaky": 1, "sent gone": 0} {
		var c prometheus.Counter
		switch name {
		case "failed gone":
			c = m.Failed.WithLabelValues("payments", "gone")
		case "retried flaky":
			c = m.Retried.WithLabelValues("payments", "flaky")
		case "sent flaky":
			c = m.Sent.WithLabelValues("payments", "flaky")
		case "sent gone":
			c = m.Sent.WithLabelValues("payments", "gone")
		}
		if got := testutil.ToFloat64(c); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

func TestChannelDownForAnHourRecoversInOrderWithoutHoldingUpTheOthers(t *testing.T) {
	db := testkit.New(t)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	start0 := clk.Now()
	down := newHookReceiver(t, func(int, string) int { return http.StatusServiceUnavailable })
	up := newHookReceiver(t, nil)
	events := []string{"evt_a", "evt_b", "evt_c", "evt_d", "evt_e"}
	downIDs := enqueue(t, db, "payments", "down", start0, events...)
	upIDs := enqueue(t, db, "payments-up", "up", start0, events...)
	d, _ := start(t, db, notify.DelivererConfig{Clock: clk, Backoff: time.Minute, MaxBackoff: 10 * time.Minute,
		Channels: map[string]notify.Channel{"down": down.channel(t, "down"), "up": up.channel(t, "up")}})

	// While "down" answers 503, "up" delivers everything. An hour of 503s on "down": each round
	// retries its first row only (the channel is paused after it), the outbox back-off doubles
	// to its 10-minute cap, and nothing is lost or failed.
	for upDelivered := 0; upDelivered < len(upIDs) || clk.Now().Before(start0.Add(time.Hour)); {
		a := d.Signals.Attempted.Wait()
		if a.Channel == "up" {
			if a.Status == notify.StatusDelivered {
				upDelivered++
			}
			continue
		}
		if a.ID != downIDs[0] || a.Status != notify.StatusPending || a.Err == nil {
			t.Fatalf("while down: %+v", a)
		}
		if a.NotBefore.After(clk.Now()) {
			clk.Set(a.NotBefore)
		}
	}
	if s := state(t, db, downIDs[0]); s.attempts < 6 || s.status != "pending" || s.lastError == nil {
		t.Fatalf("after an hour down: %+v", s)
	}
	for _, id := range downIDs[1:] {
		if s := state(t, db, id); s.attempts != 0 || s.status != "pending" {
			t.Fatalf("row %d behind the failing one: %+v", id, s)
		}
	}
	// Back up: the next round delivers all five, in order.
	before := len(down.seen())
	down.setAnswer(nil)
	clk.Advance(10 * time.Minute)
	for n := 0; n < len(downIDs); {
		if a := d.Signals.Attempted.Wait(); a.Channel == "down" && a.Status == notify.StatusDelivered {
			n++
		}
	}
	var want []string
	for _, ev := range events {
		want = append(want, notify.IdempotencyKey("payments", ev))
	}
	got := down.seen()[before:]
	// The round in flight when the clock moved may have sent the first row once more: the key
	// is the same, and the rest follow in order.
	if len(got) > 0 && len(got) == len(want)+1 && got[0] == want[0] {
		got = got[1:]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after recovery %v, want %v", got, want)
	}
	for _, id := range downIDs {
		if s := state(t, db, id); s.status != "delivered" || s.lastError != nil {
			t.Fatalf("row %d: %+v", id, s)
		}
	}
}

func TestExhaustedAttemptsFailTheRowAndItsChannelMovesOn(t *testing.T) {
	db := testkit.New(t)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	rcv := newHookReceiver(t, func(_ int, key string) int {
		if key == notify.IdempotencyKey("r", "evt_bad") {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	ids := enqueue(t, db, "r", "erp", clk.Now(), "evt_bad", "evt_ok")
	d, _ := start(t, db, notify.DelivererConfig{Clock: clk, MaxAttempts: 3,
		Channels: map[string]notify.Channel{"erp": rcv.channel(t, "erp")}})
	waitDelivered(t, d, 1)
	if s := state(t, db, ids[0]); s.status != "failed" || s.attempts != 3 || s.lastError == nil || !strings.Contains(*s.lastError, "502") {
		t.Fatalf("out of attempts: %+v", s)
	}
	if s := state(t, db, ids[1]); s.status != "delivered" {
		t.Fatalf("the next row: %+v", s)
	}
}

func TestRestartMidwayLosesNothingAndRepeatsOnlyTheRowInFlight(t *testing.T) {
	db := testkit.New(t)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	events := []string{"evt_1", "evt_2", "evt_3", "evt_4", "evt_5", "evt_6"}
	ids := enqueue(t, db, "r", "erp", clk.Now(), events...)
	inFlight := make(chan struct{})
	release := make(chan struct{})
	rcv := newHookReceiver(t, func(n int, _ string) int {
		if n == 3 { // the third notification hangs until the deliverer has stopped
			close(inFlight)
			<-release
		}
		return http.StatusOK
	})
	ch := rcv.channel(t, "erp")
	_, stop := start(t, db, notify.DelivererConfig{Clock: clk, Channels: map[string]notify.Channel{"erp": ch}})
	<-inFlight
	stop()
	close(release)
	for i, id := range ids {
		want := "pending"
		if i < 2 {
			want = "delivered"
		}
		if s := state(t, db, id); s.status != want {
			t.Fatalf("after the stop, row %d: %+v", i, s)
		}
	}
	d, _ := start(t, db, notify.DelivererConfig{Clock: clk, Channels: map[string]notify.Channel{"erp": ch}})
	waitDelivered(t, d, 4)
	counts := map[string]int{}
	for _, k := range rcv.seen() {
		counts[k]++
	}
	for i, ev := range events {
		want := 1
		if i == 2 {
			want = 2 // the one in flight at the stop, with the same key
		}
		if got := counts[notify.IdempotencyKey("r", ev)]; got != want {
			t.Errorf("%s received %d times, want %d", ev, got, want)
		}
		if s := state(t, db, ids[i]); s.status != "delivered" {
			t.Errorf("%s: %+v", ev, s)
		}
	}
}
