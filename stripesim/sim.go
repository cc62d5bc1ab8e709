// Package stripesim is a stateful, seeded Stripe account for tests, benchmarks and the demo.
//
// A Sim runs a business on a simulated clock (customers sign up through Checkout or the API,
// subscribe from a catalogue of every price and coupon shape in five currencies (catalogue.go),
// renew, fail payments and retry, change plans and quantities, pause, cancel, now and then undo a
// change within the same second; one-off charges, refunds and disputes; balance transactions with
// Stripe's fees, daily payouts, payment intents and credit notes: money.go), emits the events Stripe
// emits at API version 2023-10-16, delivers them as signed webhooks with Stripe's retry,
// duplicate and reordering behaviour (and configurable outages), and serves the Events API and
// object lists with Stripe's semantics (see Server). The same seed and scenario give the same
// events, byte for byte.
//
// A Platform is a Stripe Connect platform: its own account and N connected accounts, each in
// live and in test mode at once — one Sim per Scope (mode × account), with seeds derived from the
// platform's, on one simulated clock. Connected accounts' events carry "account":"acct_…" in
// their envelope (Config.Account). Four endpoints receive them (PlatformDelivery, indexed by
// Endpoint): platform-live, platform-test, connect-live (every connected account's live events)
// and connect-test, each with its own URL, secrets, retries (LiveRetries or TestRetries),
// outages and creation time (DeliveryConfig.Since: nothing older is ever sent). Platform.Runner
// plays it all; NewPlatformServer serves it, routing each request by the key's mode and the
// Stripe-Account header. Each scope's TruthMetrics (MRR by Stripe's definition, object counts,
// succeeded charges) and TruthMRR (daily MRR, ARR and movements under any MRR settings, per
// currency and in a reporting currency; mrr_truth.go) are computed from the Sim's own objects and
// their history, so a ledger is checked against figures its own code did not produce.
// PlatformScenarios are the named platforms.
package stripesim

import (
	"math/rand/v2"
	"sync"
	"time"
)

// APIVersion is the version events are rendered in for the webhook endpoint, unless
// Config.WebhookAPIVersion says otherwise.
const APIVersion = "2023-10-16"

// Unpinned is Config.WebhookAPIVersion for an endpoint with no API version of its own.
const Unpinned = "unpinned"

// Config describes the simulated account. Zero values take the documented defaults.
type Config struct {
	Seed      uint64
	Customers int           // customers arriving over ArrivalWindow; default 100
	Start     time.Time     // simulated time the account opens; default End - Duration
	End       time.Time     // simulated time the run stops; default now, truncated to the second
	Duration  time.Duration // default 90 days
	// ArrivalWindow is how long after Start customers keep arriving; default Duration.
	ArrivalWindow time.Duration
	Livemode      bool
	// Account, when set (acct_…), makes this a connected account of a platform: every event's
	// envelope carries "account":"acct_…", in webhooks and in the Events API, as Stripe renders
	// the events of connected accounts. "" is an account of its own (no account key).
	Account string
	// AccountAPIVersion renders events for the Events API when it differs from APIVersion, as
	// Stripe renders each event in the account's default version: the same event ID can then
	// differ in shape between webhook and API. "" means APIVersion.
	AccountAPIVersion string
	// UpgradeTo, when set, is the account's default API version from UpgradeAt on (an account
	// upgraded partway through its history): events created from then are rendered at it.
	UpgradeTo string
	UpgradeAt time.Time
	// WebhookAPIVersion is the webhook endpoint's version: "" pins it to APIVersion; Unpinned
	// renders each webhook at the account's default when its event was created, as Stripe does
	// for an endpoint made without a version; any other value pins it there.
	WebhookAPIVersion string
	// SettlementCurrency is the currency the account's balance and payouts are in (charges in
	// other currencies are converted at the day's rate); default SettlementCurrency. A
	// platform's connected accounts settle in their default currency.
	SettlementCurrency string
	// PayoutMismatch, when not zero, makes one payout (the first created in the second half of
	// the run) that many minor units larger than the transactions it lists: a payout whose
	// parts do not add up, for a reconciliation to find. Its own payout transaction carries
	// the wrong amount too, as the payout's.
	PayoutMismatch int64
	// PartialPayments is the chance that a subscription invoice of an account on 2025-05-28 or
	// later is paid in two parts: 40 % first, with a payment intent of its own (an invoice
	// payment that is not the default), then the rest with the invoice's own. Drawn from the
	// invoice payments' random stream; 0 (the default) pays every invoice at once.
	PartialPayments float64
}

func (c *Config) setDefaults() {
	if c.Customers <= 0 {
		c.Customers = 100
	}
	if c.Duration <= 0 {
		c.Duration = 90 * 24 * time.Hour
	}
	if c.End.IsZero() {
		if !c.Start.IsZero() {
			c.End = c.Start.Add(c.Duration)
		} else {
			c.End = time.Now().UTC().Truncate(time.Second)
		}
	}
	if c.Start.IsZero() {
		c.Start = c.End.Add(-c.Duration)
	}
	if c.ArrivalWindow <= 0 || c.ArrivalWindow > c.End.Sub(c.Start) {
		c.ArrivalWindow = c.End.Sub(c.Start)
	}
	if c.AccountAPIVersion == "" {
		c.AccountAPIVersion = APIVersion
	}
	if c.SettlementCurrency == "" {
		c.SettlementCurrency = SettlementCurrency
	}
	if c.WebhookAPIVersion == "" {
		c.WebhookAPIVersion = APIVersion
	}
}

// accountVersion is the account's default API version at the simulated now.
func (s *Sim) accountVersion() string {
	if s.cfg.UpgradeTo != "" && !s.now.Before(s.cfg.UpgradeAt) {
		return s.cfg.UpgradeTo
	}
	return s.cfg.AccountAPIVersion
}

// Sim is the simulated account. Its methods are safe for concurrent use: the API server reads
// while the simulation runs.
type Sim struct {
	cfg Config

	mu  sync.RWMutex
	rng *rand.Rand
	// quirks draws the rare same-second reversals (secondThoughts), and their events' IDs, apart
	// from rng: adding them left the rest of every seed's account as it was, event for event.
	quirks *rand.Rand
	// payments draws the invoice payments of accounts on 2025-05-28 or later (invoicePaid),
	// and their events' IDs, apart from rng too: an account's history is the same at every
	// version, but for those events.
	payments *rand.Rand
	// couponRNG draws the IDs of the coupon.created events, apart from rng too: the events
	// around them are the same as before there were any.
	couponRNG *rand.Rand
	coupons   map[string]Coupon // the coupons made so far, by ID (coupon)

	now         time.Time
	queue       timeQueue[func()]
	events      []*Event
	byID        map[string]*Event
	objs        objects
	money       *moneyState    // balance, payouts, payment intents, credit notes (money.go)
	subscribers []func(*Event) // called for each new event, under mu
	hist        truthHistory   // every state of every subscription and customer, for the MRR truth
	thin        bool           // a thin destination takes its events: render each as a thin event too
	ownIntent   bool           // the next invoice charge gets a payment intent of its own (a partial payment)
	// endpointVersions are the versions of endpoints with one of their own
	// (DeliveryConfig.APIVersion): each event is rendered at each (Event.Renderings).
	endpointVersions map[string]bool
}

// New creates the account and schedules its customers' arrivals; Run plays it.
func New(cfg Config) *Sim {
	cfg.setDefaults()
	s := &Sim{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		// Another stream of the same seed.
		quirks:    rand.New(rand.NewPCG(cfg.Seed^0xc2b2ae3d27d4eb4f, cfg.Seed)),
		payments:  rand.New(rand.NewPCG(cfg.Seed^0x165667b19e3779f9, cfg.Seed^0x27d4eb2f165667c5)),
		couponRNG: rand.New(rand.NewPCG(cfg.Seed^0x9e3779b97f4a7c15, cfg.Seed^0xbf58476d1ce4e5b9)),
		now:       cfg.Start,
		byID:      map[string]*Event{},
		objs:      newObjects(),
	}
	for i := range cfg.Customers {
		at := cfg.Start.Add(time.Duration(s.rng.Int64N(int64(cfg.ArrivalWindow))))
		s.at(at, func() { s.newCustomer(i) })
	}
	s.money = newMoney(s)
	return s
}

// Config is the configuration in effect (defaults filled in).
func (s *Sim) Config() Config { return s.cfg }

// Now is the simulated time.
func (s *Sim) Now() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.now
}

// OnEvent registers f to be called (synchronously, in order) for every event emitted from now on.
func (s *Sim) OnEvent(f func(*Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subscribers = append(s.subscribers, f)
}

// Run plays the account until simulated time t (or Config.End when t is zero), running every
// action due by then in time order. It returns the number of events emitted.
func (s *Sim) Run(t time.Time) int {
	if t.IsZero() || t.After(s.cfg.End) {
		t = s.cfg.End
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := len(s.events)
	for {
		at, fn, ok := s.queue.popDue(t)
		if !ok {
			break
		}
		s.now = at
		fn()
	}
	if t.After(s.now) {
		s.now = t
	}
	return len(s.events) - before
}

// Done reports whether the simulated clock has reached Config.End.
func (s *Sim) Done() bool { return !s.Now().Before(s.cfg.End) }

// at schedules fn at simulated time t; actions at the same time run in scheduling order.
func (s *Sim) at(t time.Time, fn func()) {
	if t.Before(s.now) {
		t = s.now
	}
	s.queue.push(t, fn)
}

func (s *Sim) after(d time.Duration, fn func()) { s.at(s.now.Add(d), fn) }

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID makes a Stripe-like ID from the seeded generator.
func (s *Sim) newID(prefix string, n int) string { return randomID(s.rng, prefix, n) }

func randomID(rng *rand.Rand, prefix string, n int) string {
	b := make([]byte, 0, len(prefix)+1+n)
	b = append(b, prefix...)
	b = append(b, '_')
	for range n {
		b = append(b, base62[rng.IntN(len(base62))])
	}
	return string(b)
}

func (s *Sim) chance(p float64) bool { return s.rng.Float64() < p }

func (s *Sim) unix() int64 { return s.now.Unix() }
