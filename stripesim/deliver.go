package stripesim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// LiveRetries is the delay before each retry in live mode: exponential back-off, and nothing is
// attempted later than three days after the first attempt.
var LiveRetries = []time.Duration{
	time.Minute, 5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour,
	8 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour, 12 * time.Hour,
}

// TestRetries is test mode's: three retries over a few hours.
var TestRetries = []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}

// Window is a span of simulated time.
type Window struct{ From, To time.Time }

func (w Window) contains(t time.Time) bool { return !t.Before(w.From) && t.Before(w.To) }

// DeliveryConfig says where and how webhooks go. Zero values take the documented defaults.
type DeliveryConfig struct {
	URL string // the endpoint, e.g. http://127.0.0.1:8080/webhooks/stripe
	// Secrets sign each delivery; with two (a secret roll in progress) every header carries a v1
	// for each, as Stripe does until the old secret expires.
	Secrets []string
	// Retries is the retry schedule; default LiveRetries when the account is in live mode,
	// TestRetries otherwise.
	Retries []time.Duration
	// DupRate is the chance that a delivered event is delivered once more (at-least-once).
	DupRate float64
	// Outages are simulated windows in which the endpoint is unreachable.
	Outages []Window
	// Concurrency is the number of deliveries in flight at once; default 32.
	Concurrency int
	// Timeout bounds one attempt in real time; Stripe's is 30 s in live mode. Default 10 s.
	Timeout time.Duration
	// Jitter spreads first attempts over this much simulated time, so events of the same second
	// arrive in no particular order; default 5 s.
	Jitter time.Duration
	// Client sends the requests; default one sized for Concurrency.
	Client *http.Client
	// Since is when the endpoint was created: events created before it are never sent (Stripe
	// sends an endpoint only the events created while it exists and is enabled). Zero: the
	// endpoint has always existed.
	Since time.Time
	// Disabled are windows in which the endpoint was disabled: events created in them are never
	// sent either (unlike Outages, whose events are attempted and retried).
	Disabled []Window
	// Thin makes the endpoint a thin event destination: it is sent each event's unversioned
	// thin notification (v1.*, naming the object; thin.go) instead of the event itself.
	Thin bool
	// APIVersion is the endpoint's own version, when it is not the account's webhook version
	// (Config.WebhookAPIVersion): a version pins it, Unpinned renders each event at the
	// account's default when it was created. Two endpoints at two versions are sent the same
	// event in two shapes, as during an endpoint upgrade.
	APIVersion string
	// EnabledEvents are the event types the endpoint is subscribed to, as Stripe's
	// enabled_events; nil or "*" sends every type.
	EnabledEvents []string
}

// enabled reports whether the endpoint is subscribed to events of type typ.
func (c *DeliveryConfig) enabled(typ string) bool {
	return len(c.EnabledEvents) == 0 || slices.Contains(c.EnabledEvents, "*") || slices.Contains(c.EnabledEvents, typ)
}

// sends reports whether the endpoint existed and was enabled when an event was created.
func (c *DeliveryConfig) sends(created int64) bool {
	t := time.Unix(created, 0)
	if !c.Since.IsZero() && t.Before(c.Since) {
		return false
	}
	for _, w := range c.Disabled {
		if w.contains(t) {
			return false
		}
	}
	return true
}

// Attempt is one line of the delivery log.
type Attempt struct {
	EventID   string        `json:"event_id"`
	Type      string        `json:"type"`
	N         int           `json:"attempt"`  // 1 for the first delivery
	SimTime   time.Time     `json:"sim_time"` // when Stripe would have sent it
	Status    int           `json:"status"`   // HTTP status; 0 when unreachable
	Error     string        `json:"error,omitempty"`
	Duplicate bool          `json:"duplicate"` // a repeat of a delivered event
	GaveUp    bool          `json:"gave_up"`   // failed, and it was the last attempt
	Took      time.Duration `json:"took_ns"`
}

// Deliverer sends the events of one or more Sims to one endpoint with Stripe's retry behaviour.
// A Connect endpoint is one Deliverer over every connected account's Sim of its mode.
type Deliverer struct {
	sims []*Sim // their locks guard the events' delivery state; taken in this order
	cfg  DeliveryConfig
	rng  *rand.Rand

	mu      sync.Mutex
	pending timeQueue[*pendingAttempt]
	log     []Attempt
	stats   DeliveryStats
}

// DeliveryStats counts what happened.
type DeliveryStats struct {
	Events     int `json:"events"`
	Attempts   int `json:"attempts"`
	Delivered  int `json:"delivered"`
	Retried    int `json:"retried"`
	Duplicates int `json:"duplicates"`
	GaveUp     int `json:"gave_up"`
	// BeforeEndpoint counts events never sent because they were created before the endpoint
	// existed (Since) or while it was disabled.
	BeforeEndpoint int `json:"before_endpoint,omitempty"`
	// NotEnabled counts events of types the endpoint is not subscribed to (EnabledEvents).
	NotEnabled int `json:"not_enabled,omitempty"`
}

type pendingAttempt struct {
	at        time.Time
	ev        *Event
	n         int
	duplicate bool
}

// NewDeliverer subscribes to sim's events. Call it before running the sim.
func NewDeliverer(sim *Sim, cfg DeliveryConfig) *Deliverer {
	return newDeliverer([]*Sim{sim}, sim.cfg.Livemode, sim.cfg.Seed^0xde11, cfg)
}

// NewDelivererFor subscribes one endpoint to the events of several sims, which must share a mode
// (an endpoint is live or test); the default retry schedule follows that mode (test mode when
// sims is empty). Call it before running the sims.
func NewDelivererFor(sims []*Sim, cfg DeliveryConfig) *Deliverer {
	live := len(sims) > 0 && sims[0].cfg.Livemode
	seed := uint64(0xde11)
	for _, s := range sims {
		if s.cfg.Livemode != live {
			panic("stripesim: one endpoint takes the events of one mode, live or test")
		}
		seed = seed*0x9e3779b97f4a7c15 ^ s.cfg.Seed
	}
	return newDeliverer(sims, live, seed, cfg)
}

func newDeliverer(sims []*Sim, live bool, seed uint64, cfg DeliveryConfig) *Deliverer {
	if cfg.Retries == nil {
		cfg.Retries = TestRetries
		if live {
			cfg.Retries = LiveRetries
		}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 5 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{
			MaxIdleConns: cfg.Concurrency, MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency}}
	}
	d := &Deliverer{sims: sims, cfg: cfg, rng: rand.New(rand.NewPCG(seed, 1))}
	for _, sim := range sims {
		sim.mu.Lock()
		sim.thin = sim.thin || cfg.Thin
		if cfg.APIVersion != "" {
			if sim.endpointVersions == nil {
				sim.endpointVersions = map[string]bool{}
			}
			sim.endpointVersions[cfg.APIVersion] = true
		}
		sim.mu.Unlock()
		sim.OnEvent(func(ev *Event) {
			d.mu.Lock()
			defer d.mu.Unlock()
			if !d.cfg.sends(ev.Created) {
				d.stats.BeforeEndpoint++
				return
			}
			if !d.cfg.enabled(ev.Type) {
				d.stats.NotEnabled++
				return
			}
			d.stats.Events++
			at := time.Unix(ev.Created, 0).Add(time.Duration(d.rng.Int64N(int64(d.cfg.Jitter) + 1)))
			d.push(&pendingAttempt{at: at, ev: ev, n: 1})
		})
	}
	return d
}

// Config is the delivery configuration in effect (defaults filled in).
func (d *Deliverer) Config() DeliveryConfig { return d.cfg }

func (d *Deliverer) push(a *pendingAttempt) { d.pending.push(a.at, a) }

// next is the simulated time of the earliest pending attempt.
func (d *Deliverer) next() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending.next()
}

// Log is the delivery log so far.
func (d *Deliverer) Log() []Attempt {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Attempt(nil), d.log...)
}

// Stats are the counts so far.
func (d *Deliverer) Stats() DeliveryStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// deliverDue sends every attempt due by simulated time t, concurrently and in shuffled order,
// waits for them, and schedules what follows (retries, duplicates).
func (d *Deliverer) deliverDue(ctx context.Context, t time.Time) {
	d.mu.Lock()
	var batch []*pendingAttempt
	for {
		_, a, ok := d.pending.popDue(t)
		if !ok {
			break
		}
		batch = append(batch, a)
	}
	d.rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	d.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	results := make([]Attempt, len(batch))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(d.cfg.Concurrency, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i] = d.attempt(ctx, batch[i])
			}
		}()
	}
	for i := range batch {
		work <- i
	}
	close(work)
	wg.Wait()

	for _, sim := range d.sims { // event delivery state is read by the API under its sim's lock
		sim.mu.Lock()
	}
	d.mu.Lock()
	for i, a := range batch {
		r := &results[i]
		d.stats.Attempts++
		a.ev.Attempts++
		ok := r.Status >= 200 && r.Status < 300
		switch {
		case ok && a.duplicate:
			d.stats.Duplicates++
		case ok:
			a.ev.Delivered = true
			d.stats.Delivered++
			if d.cfg.DupRate > 0 && d.rng.Float64() < d.cfg.DupRate {
				d.push(&pendingAttempt{at: a.at.Add(time.Duration(d.rng.Int64N(int64(10 * time.Second)))), ev: a.ev, n: a.n + 1, duplicate: true})
			}
		case a.duplicate:
			// a failed duplicate is not retried: the event was delivered already
		case a.n-1 < len(d.cfg.Retries):
			d.stats.Retried++
			d.push(&pendingAttempt{at: a.at.Add(d.cfg.Retries[a.n-1]), ev: a.ev, n: a.n + 1})
		default:
			r.GaveUp = true
			a.ev.GaveUp = true
			d.stats.GaveUp++
		}
		d.log = append(d.log, *r)
	}
	d.mu.Unlock()
	for _, sim := range d.sims {
		sim.mu.Unlock()
	}
}

var errUnreachable = errors.New("endpoint unreachable (simulated outage)")

func (d *Deliverer) attempt(ctx context.Context, a *pendingAttempt) Attempt {
	r := Attempt{EventID: a.ev.ID, Type: a.ev.Type, N: a.n, SimTime: a.at, Duplicate: a.duplicate}
	for _, w := range d.cfg.Outages {
		if w.contains(a.at) {
			r.Error = errUnreachable.Error()
			return r
		}
	}
	start := time.Now()
	body := a.ev.Webhook
	switch {
	case d.cfg.Thin:
		body = a.ev.Thin
	case d.cfg.APIVersion != "":
		body = a.ev.Renderings[d.cfg.APIVersion]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Stripe-Signature", SignatureHeader(body, time.Now(), d.cfg.Secrets...))
	resp, err := d.cfg.Client.Do(req)
	r.Took = time.Since(start)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r.Status = resp.StatusCode
	return r
}

// SignatureHeader is Stripe-Signature for body at time t: "t=…,v1=…" with one v1 per secret.
func SignatureHeader(body []byte, t time.Time, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	h := make([]byte, 0, 16+len(secrets)*68)
	h = append(h, "t="...)
	h = append(h, ts...)
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		h = append(h, ",v1="...)
		h = hex.AppendEncode(h, mac.Sum(nil))
	}
	return string(h)
}
