package stripesim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/stripesim"
)

// endpoint is a webhook receiver that verifies every delivery with stripe-go's own code.
type endpoint struct {
	mu       sync.Mutex
	secret   string
	received map[string]int    // event ID -> deliveries
	bodies   map[string][]byte // event ID -> body
	order    []string
	failing  bool
}

func newEndpoint(t *testing.T, secret string) (*endpoint, string) {
	e := &endpoint{secret: secret, received: map[string]int{}, bodies: map[string][]byte{}}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv.URL
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	// ConstructEvent's checks: HMAC over the raw body and 300 s tolerance; any API version (an
	// unpinned endpoint's webhooks come at the account's default). A thin event is no v1 Event
	// (its created is a string): its signature alone is checked.
	sig := r.Header.Get("Stripe-Signature")
	ev, err := stripewebhook.ConstructEventWithOptions(body, sig, e.secret,
		stripewebhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil && bytes.Contains(body, []byte(`"object":"v2.core.event"`)) {
		if err = stripewebhook.ValidatePayload(body, sig, e.secret); err == nil {
			err = json.Unmarshal(body, &struct {
				ID *string `json:"id"`
			}{&ev.ID})
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failing {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	e.received[ev.ID]++
	e.bodies[ev.ID] = body
	e.order = append(e.order, ev.ID)
	w.WriteHeader(http.StatusOK)
}

func play(t *testing.T, cfg stripesim.Config, dc stripesim.DeliveryConfig) (*stripesim.Sim, *stripesim.Deliverer) {
	t.Helper()
	if cfg.End.IsZero() {
		cfg.End = end
	}
	sim := stripesim.New(cfg)
	d := stripesim.NewDeliverer(sim, dc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := (&stripesim.Runner{Sim: sim, Deliverer: d}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	return sim, d
}

func TestWebhooksVerifyAndArriveOutOfOrder(t *testing.T) {
	t.Parallel()
	const secret = "whsec_sim_test"
	ep, url := newEndpoint(t, secret)
	sim, d := play(t, stripesim.Config{Seed: 21, Customers: 40, Duration: 40 * 24 * time.Hour},
		stripesim.DeliveryConfig{URL: url, Secrets: []string{secret}, DupRate: 0.2})
	events := sim.Events()
	st := d.Stats()
	if st.Delivered != len(events) || st.GaveUp != 0 || st.Duplicates == 0 {
		t.Fatalf("stats %+v for %d events", st, len(events))
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	dups := 0
	for _, ev := range events {
		n := ep.received[ev.ID]
		if n == 0 {
			t.Fatalf("%s never arrived", ev.ID)
		}
		dups += n - 1
		if !bytes.Equal(ep.bodies[ev.ID], ev.Webhook) {
			t.Fatalf("%s arrived altered", ev.ID)
		}
	}
	if dups != st.Duplicates {
		t.Fatalf("endpoint saw %d duplicates, deliverer counted %d", dups, st.Duplicates)
	}
	// Same-second bursts are delivered concurrently and shuffled: the arrival order is not the
	// creation order.
	inversions := 0
	seq := map[string]int{}
	for _, ev := range events {
		seq[ev.ID] = ev.Seq
	}
	for i := 1; i < len(ep.order); i++ {
		if seq[ep.order[i]] < seq[ep.order[i-1]] {
			inversions++
		}
	}
	if inversions == 0 {
		t.Fatal("events arrived exactly in creation order")
	}
}

func TestSecretRollSignsWithBoth(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret := "whsec_old_secret", "whsec_new_secret"
	epOld, urlOld := newEndpoint(t, oldSecret)
	epNew, urlNew := newEndpoint(t, newSecret)
	for _, url := range []string{urlOld, urlNew} {
		cfg, dc, err := stripesim.Setup("secret-roll", stripesim.Config{Seed: 2, End: end}, stripesim.DeliveryConfig{URL: url, Secrets: []string{oldSecret, newSecret}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Customers = 15
		sim, d := play(t, cfg, dc)
		if st := d.Stats(); st.Delivered != len(sim.Events()) {
			t.Fatalf("%s: %+v", url, st)
		}
	}
	if len(epOld.received) == 0 || len(epOld.received) != len(epNew.received) {
		t.Fatalf("old secret verified %d, new %d", len(epOld.received), len(epNew.received))
	}
	h := stripesim.SignatureHeader([]byte("{}"), time.Unix(1700000000, 0), oldSecret, newSecret)
	if bytes.Count([]byte(h), []byte(",v1=")) != 2 {
		t.Fatalf("header %q", h)
	}
}

// Test mode gives up after three retries over a few hours: an endpoint that always fails gets
// each event exactly four times, at the scheduled offsets, and the Events API reports them as
// not delivered.
func TestTestModeRetrySchedule(t *testing.T) {
	t.Parallel()
	ep, url := newEndpoint(t, "whsec_x")
	ep.failing = true
	sim, d := play(t, stripesim.Config{Seed: 4, Customers: 5, Duration: 20 * 24 * time.Hour},
		stripesim.DeliveryConfig{URL: url, Secrets: []string{"whsec_x"}})
	events := sim.Events()
	byEvent := map[string][]stripesim.Attempt{}
	for _, a := range d.Log() {
		byEvent[a.EventID] = append(byEvent[a.EventID], a)
	}
	for _, ev := range events {
		as := byEvent[ev.ID]
		if len(as) != 1+len(stripesim.TestRetries) {
			t.Fatalf("%s: %d attempts", ev.ID, len(as))
		}
		for i := 1; i < len(as); i++ {
			if got := as[i].SimTime.Sub(as[i-1].SimTime); got != stripesim.TestRetries[i-1] || as[i].N != i+1 {
				t.Fatalf("%s: retry %d after %s", ev.ID, i, got)
			}
		}
		if !as[len(as)-1].GaveUp || as[0].Status != 500 {
			t.Fatalf("%s: %+v", ev.ID, as[len(as)-1])
		}
	}
	if st := d.Stats(); st.GaveUp != len(events) || st.Delivered != 0 {
		t.Fatalf("%+v", st)
	}
}

// A 4-day outage in live mode: Stripe retries for up to 3 days, so an event is lost exactly when
// its whole schedule falls inside the outage. Everything else arrives.
func TestOutageDropsExactlyWhatOutlivesTheRetries(t *testing.T) {
	t.Parallel()
	const secret = "whsec_outage"
	ep, url := newEndpoint(t, secret)
	cfg, dc, err := stripesim.Setup("outage-4d", stripesim.Config{Seed: 9, End: end}, stripesim.DeliveryConfig{URL: url, Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Customers = 60
	sim, d := play(t, cfg, dc)
	outage := dc.Outages[0]
	var lastRetry time.Duration
	for _, r := range stripesim.LiveRetries {
		lastRetry += r
	}
	firstAttempt := map[string]time.Time{}
	for _, a := range d.Log() {
		if a.N == 1 {
			firstAttempt[a.EventID] = a.SimTime
		}
	}
	lost, delivered := 0, 0
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, ev := range sim.Events() {
		first := firstAttempt[ev.ID]
		shouldBeLost := !first.Before(outage.From) && first.Add(lastRetry).Before(outage.To)
		got := ep.received[ev.ID] > 0
		if got == shouldBeLost {
			t.Fatalf("%s first attempted %s: delivered=%v, outage %s–%s", ev.ID, first, got, outage.From, outage.To)
		}
		if got {
			delivered++
		} else {
			lost++
			if !ev.GaveUp {
				t.Fatalf("%s lost but not given up", ev.ID)
			}
		}
	}
	if lost == 0 || delivered == 0 {
		t.Fatalf("lost %d, delivered %d: the outage should lose some and not all", lost, delivered)
	}
	if st := d.Stats(); st.GaveUp != lost || st.Retried == 0 {
		t.Fatalf("%+v, lost %d", st, lost)
	}
}

func TestDeterministicBySeed(t *testing.T) {
	t.Parallel()
	render := func(seed uint64, version string) [][]byte {
		sim := stripesim.New(stripesim.Config{Seed: seed, Customers: 50, End: end, AccountAPIVersion: version})
		sim.Run(time.Time{})
		var out [][]byte
		for _, ev := range sim.Events() {
			out = append(out, ev.Webhook, ev.API)
		}
		return out
	}
	a, b, c := render(42, ""), render(42, ""), render(43, "")
	if len(a) != len(b) {
		t.Fatalf("%d vs %d events", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("event %d differs between two runs of seed 42", i/2)
		}
	}
	if len(a) == len(c) && bytes.Equal(a[0], c[0]) {
		t.Fatal("seeds 42 and 43 gave the same account")
	}

	// Another account default version renders the API copy differently, the webhook copy not.
	old := render(42, "2020-08-27")
	differ := 0
	for i := 0; i < len(a); i += 2 {
		if !bytes.Equal(old[i], a[i]) {
			t.Fatalf("webhook body %d changed with the account version", i/2)
		}
		if !bytes.Equal(old[i+1], a[i+1]) {
			differ++
		}
	}
	if differ != len(a)/2 || !bytes.Contains(old[1], []byte(`"api_version":"2020-08-27"`)) {
		t.Fatalf("%d of %d API renderings differ", differ, len(a)/2)
	}
	charges := 0
	for i := 0; i < len(a); i += 2 {
		if bytes.Contains(a[i], []byte(`"type":"charge.succeeded"`)) {
			charges++
			if bytes.Contains(old[i], []byte(`"refunds":{`)) || !bytes.Contains(old[i+1], []byte(`"refunds":{"object":"list"`)) {
				t.Fatalf("charge %d: the 2020-08-27 API copy should embed refunds, the webhook copy not", i/2)
			}
		}
	}
	if charges == 0 {
		t.Fatal("no charges to compare")
	}
}

// Every named scenario plays to the end; only those with the outage lose events.
func TestScenariosPlay(t *testing.T) {
	t.Parallel()
	for _, name := range stripesim.ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			secrets := []string{"whsec_a"}
			if name == "secret-roll" {
				secrets = append(secrets, "whsec_b")
			}
			_, url := newEndpoint(t, "whsec_a")
			cfg, dc, err := stripesim.Setup(name, stripesim.Config{Seed: 5, End: end}, stripesim.DeliveryConfig{URL: url, Secrets: secrets})
			if err != nil {
				t.Fatal(err)
			}
			sim, d := play(t, cfg, dc)
			st := d.Stats()
			if st.Events != len(sim.Events()) || st.Events < 100 {
				t.Fatalf("%+v", st)
			}
			lost := st.Events - st.Delivered
			if outage := name == "outage-4d" || name == "dahlia-account" || name == "dahlia-upgrade"; outage != (lost > 0) || lost != st.GaveUp {
				t.Fatalf("%s: %+v", name, st)
			}
			unreconciled := 0
			for _, po := range sim.MoneyTruth().Payouts {
				if !po.Reconciled {
					unreconciled++
				}
			}
			if (name == "payout-mismatch") != (unreconciled == 1) || unreconciled > 1 {
				t.Fatalf("%s: %d payouts do not add up", name, unreconciled)
			}
			if name == "burst-retry" && (st.Retried == 0 || st.Duplicates == 0) {
				t.Fatalf("burst-retry neither retried nor duplicated: %+v", st)
			}
		})
	}
	if _, _, err := stripesim.Setup("nope", stripesim.Config{}, stripesim.DeliveryConfig{}); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}
