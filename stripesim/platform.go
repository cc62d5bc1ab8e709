package stripesim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Scope is one of a platform's books: a mode and an account. Stripe keeps them apart (objects,
// events, keys, endpoints), and so must a ledger.
type Scope struct {
	Livemode bool
	Account  string // "" for the platform's own account, else a connected account's acct_…
}

func (sc Scope) String() string {
	mode, acct := "test", sc.Account
	if sc.Livemode {
		mode = "live"
	}
	if acct == "" {
		acct = "platform"
	}
	return mode + "/" + acct
}

// Endpoint is where a scope's webhooks go: Stripe sends a platform's own events to its account
// endpoints and every connected account's events to its Connect endpoints, one set per mode.
func (sc Scope) Endpoint() Endpoint {
	switch {
	case sc.Account == "" && sc.Livemode:
		return PlatformLive
	case sc.Account == "":
		return PlatformTest
	case sc.Livemode:
		return ConnectLive
	}
	return ConnectTest
}

// Endpoint names one of a platform's four webhook endpoints; it indexes PlatformDelivery and
// PlatformDeliverers.
type Endpoint int

const (
	PlatformLive Endpoint = iota // the platform's own live events
	PlatformTest                 // the platform's own test events
	ConnectLive                  // every connected account's live events
	ConnectTest                  // every connected account's test events
)

// Endpoints are the four, in index order.
var Endpoints = []Endpoint{PlatformLive, PlatformTest, ConnectLive, ConnectTest}

var endpointNames = [...]string{"platform-live", "platform-test", "connect-live", "connect-test"}

func (e Endpoint) String() string {
	if e < 0 || int(e) >= len(endpointNames) {
		return fmt.Sprintf("Endpoint(%d)", int(e))
	}
	return endpointNames[e]
}

// Livemode is the mode of the events the endpoint receives.
func (e Endpoint) Livemode() bool { return e == PlatformLive || e == ConnectLive }

// Connect reports whether the endpoint receives connected accounts' events.
func (e Endpoint) Connect() bool { return e == ConnectLive || e == ConnectTest }

// ParseEndpoint reads an endpoint's name (platform-live, platform-test, connect-live,
// connect-test).
func ParseEndpoint(name string) (Endpoint, error) {
	for i, n := range endpointNames {
		if n == name {
			return Endpoint(i), nil
		}
	}
	return 0, fmt.Errorf("unknown endpoint %q (have %v)", name, endpointNames)
}

// PlatformDelivery configures the four endpoints; one with no URL gets no deliveries. Retries
// default to LiveRetries for the live ones and TestRetries for the test ones.
type PlatformDelivery [4]DeliveryConfig

// PlatformDeliverers are the four endpoints' deliverers (nil where no URL was configured).
type PlatformDeliverers [4]*Deliverer

// All are the configured deliverers in endpoint order.
func (ds PlatformDeliverers) All() []*Deliverer {
	var out []*Deliverer
	for _, d := range ds {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// PlatformConfig describes a Connect platform. Zero values take the documented defaults.
type PlatformConfig struct {
	Seed uint64
	// Accounts is the number of connected accounts; default 3, < 0 for none.
	Accounts int
	// Customers arrive at the platform's own account in live mode; default 100.
	Customers int
	// TestCustomers arrive at the platform's own account in test mode; default Customers / 4.
	TestCustomers int
	// AccountCustomers arrive at each connected account in live mode; default 30.
	AccountCustomers int
	// AccountTestCustomers arrive at each connected account in test mode; default
	// AccountCustomers / 4.
	AccountTestCustomers int
	// The one simulated clock every scope runs on, as in Config.
	Start, End    time.Time
	Duration      time.Duration
	ArrivalWindow time.Duration
	// AccountAPIVersion is every scope's default API version (Config.AccountAPIVersion).
	AccountAPIVersion string
	// Customize, when set, has the last word on each scope's Config (its seed, counts, versions).
	Customize func(sc Scope, cfg *Config)
}

func (c *PlatformConfig) setDefaults() {
	if c.Accounts == 0 {
		c.Accounts = 3
	}
	if c.Accounts < 0 {
		c.Accounts = 0
	}
	if c.Customers <= 0 {
		c.Customers = 100
	}
	if c.TestCustomers <= 0 {
		c.TestCustomers = max(1, c.Customers/4)
	}
	if c.AccountCustomers <= 0 {
		c.AccountCustomers = 30
	}
	if c.AccountTestCustomers <= 0 {
		c.AccountTestCustomers = max(1, c.AccountCustomers/4)
	}
	// The clock is settled once, here, so that every scope shares it to the second.
	clock := Config{Start: c.Start, End: c.End, Duration: c.Duration, ArrivalWindow: c.ArrivalWindow, Customers: 1}
	clock.setDefaults()
	c.Start, c.End, c.Duration, c.ArrivalWindow = clock.Start, clock.End, clock.Duration, clock.ArrivalWindow
}

// Account is a connected account as Stripe's API renders it (GET /v1/accounts), trimmed to what
// a ledger reads; field names as in stripe-mock v0.183.0's spec.
type Account struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	BusinessProfile  AccountProfile    `json:"business_profile"`
	BusinessType     *string           `json:"business_type"`
	Capabilities     map[string]string `json:"capabilities"`
	ChargesEnabled   bool              `json:"charges_enabled"`
	Controller       AccountController `json:"controller"`
	Country          string            `json:"country"`
	Created          int64             `json:"created"`
	DefaultCurrency  string            `json:"default_currency"`
	DetailsSubmitted bool              `json:"details_submitted"`
	Email            *string           `json:"email"`
	Metadata         map[string]string `json:"metadata"`
	PayoutsEnabled   bool              `json:"payouts_enabled"`
	Type             string            `json:"type"` // standard or express
}

type AccountProfile struct {
	Name *string `json:"name"`
	URL  *string `json:"url"`
}

type AccountController struct {
	Type string `json:"type"` // account (a standard account controls itself) or application
}

// Platform is a Stripe Connect platform: its own account and N connected accounts, each in live
// and in test mode at once — a Sim per Scope, each with its own seed (derived from the
// platform's), all on one simulated clock. Connected accounts have their own customers, direct
// charges and subscriptions; their events carry "account". The platform's account ID, its
// Connect application ID (ca_…) and the connected accounts' IDs are drawn from the seed: the same
// seed gives the same IDs, objects and events, byte for byte.
type Platform struct {
	cfg      PlatformConfig
	id       string
	app      string
	accounts []Account
	scopes   []Scope
	sims     map[Scope]*Sim
}

// The countries and default currencies connected accounts are drawn from.
var accountCountries = []struct{ country, currency string }{{"US", "usd"}, {"FR", "eur"}, {"GB", "gbp"}, {"JP", "jpy"}}

// NewPlatform creates the platform and every scope's account; Run or a Runner plays them.
func NewPlatform(cfg PlatformConfig) *Platform {
	cfg.setDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed^0xacc7, cfg.Seed^0x5eed))
	p := &Platform{cfg: cfg, id: randomID(rng, "acct", 16), app: randomID(rng, "ca", 32), sims: map[Scope]*Sim{}}
	for i := range cfg.Accounts {
		a := Account{ID: randomID(rng, "acct", 16), Object: "account", Capabilities: map[string]string{
			"card_payments": "active", "transfers": "active"}, ChargesEnabled: true, DetailsSubmitted: true,
			Metadata: map[string]string{}, PayoutsEnabled: true, Type: "standard", Controller: AccountController{Type: "account"}}
		if rng.IntN(2) == 1 {
			a.Type, a.Controller.Type = "express", "application"
		}
		c := accountCountries[rng.IntN(len(accountCountries))]
		a.Country, a.DefaultCurrency = c.country, c.currency
		a.Created = cfg.Start.Add(-time.Duration(1+rng.IntN(365)) * day).Unix()
		a.BusinessType = ptr("company")
		a.BusinessProfile.Name = ptr(fmt.Sprintf("Merchant %d", i+1))
		a.Email = ptr("owner+" + a.ID[5:11] + "@example.com")
		p.accounts = append(p.accounts, a)
	}
	p.scopes = []Scope{{Livemode: true}, {Livemode: false}}
	for _, a := range p.accounts {
		p.scopes = append(p.scopes, Scope{true, a.ID}, Scope{false, a.ID})
	}
	for i, sc := range p.scopes {
		c := Config{Seed: splitmix(cfg.Seed + uint64(i+1)*0x9e3779b97f4a7c15), Start: cfg.Start, End: cfg.End,
			Duration: cfg.Duration, ArrivalWindow: cfg.ArrivalWindow, Livemode: sc.Livemode, Account: sc.Account,
			AccountAPIVersion: cfg.AccountAPIVersion}
		if a, ok := p.account(sc.Account); ok {
			c.SettlementCurrency = a.DefaultCurrency // the connected account's profile
		}
		switch {
		case sc.Account == "" && sc.Livemode:
			c.Customers = cfg.Customers
		case sc.Account == "":
			c.Customers = cfg.TestCustomers
		case sc.Livemode:
			c.Customers = cfg.AccountCustomers
		default:
			c.Customers = cfg.AccountTestCustomers
		}
		if cfg.Customize != nil {
			cfg.Customize(sc, &c)
		}
		p.sims[sc] = New(c)
	}
	return p
}

// splitmix is SplitMix64's finaliser: nearby inputs give unrelated seeds.
func splitmix(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Config is the configuration in effect (defaults filled in).
func (p *Platform) Config() PlatformConfig { return p.cfg }

// ID is the platform's own account ID (acct_…).
func (p *Platform) ID() string { return p.id }

// Application is the platform's Connect application ID (ca_…), which Stripe shows as the
// application of its Connect webhook endpoints.
func (p *Platform) Application() string { return p.app }

// Accounts are the connected accounts, in creation order of the platform (not of their created
// times).
func (p *Platform) Accounts() []Account { return append([]Account(nil), p.accounts...) }

// account returns a connected account by ID.
func (p *Platform) account(id string) (Account, bool) {
	for _, a := range p.accounts {
		if a.ID == id {
			return a, true
		}
	}
	return Account{}, false
}

// Scopes are every scope: the platform live and test, then each connected account live and test.
func (p *Platform) Scopes() []Scope { return append([]Scope(nil), p.scopes...) }

// Sim is a scope's account, nil for a scope the platform does not have.
func (p *Platform) Sim(sc Scope) *Sim { return p.sims[sc] }

// Sims are every scope's account, in Scopes order.
func (p *Platform) Sims() []*Sim {
	out := make([]*Sim, len(p.scopes))
	for i, sc := range p.scopes {
		out[i] = p.sims[sc]
	}
	return out
}

// EndpointSims are the sims whose events an endpoint receives.
func (p *Platform) EndpointSims(e Endpoint) []*Sim {
	var out []*Sim
	for _, sc := range p.scopes {
		if sc.Endpoint() == e {
			out = append(out, p.sims[sc])
		}
	}
	return out
}

// Truth snapshots one scope; ok is false for a scope the platform does not have.
func (p *Platform) Truth(sc Scope) (t Truth, ok bool) {
	s := p.sims[sc]
	if s == nil {
		return Truth{}, false
	}
	return s.Truth(), true
}

// MoneyTruth is one scope's money figures (Sim.MoneyTruth); ok is false for a scope the
// platform does not have.
func (p *Platform) MoneyTruth(sc Scope) (t MoneyTruth, ok bool) {
	s := p.sims[sc]
	if s == nil {
		return MoneyTruth{}, false
	}
	return s.MoneyTruth(), true
}

// Metrics are every scope's TruthMetrics, in Scopes order.
func (p *Platform) Metrics() []TruthMetrics {
	out := make([]TruthMetrics, len(p.scopes))
	for i, sc := range p.scopes {
		out[i] = p.sims[sc].TruthMetrics()
	}
	return out
}

// Now is the platform's simulated time (every scope's, once a step has been played).
func (p *Platform) Now() time.Time { return p.sims[p.scopes[0]].Now() }

// Run plays every scope until simulated time t (or the end when t is zero), without webhooks.
// It returns the number of events emitted.
func (p *Platform) Run(t time.Time) int {
	n := 0
	for _, s := range p.Sims() {
		n += s.Run(t)
	}
	return n
}

// Deliverers subscribes the four endpoints to their scopes' events (none for an endpoint
// without a URL). Call it before playing the platform.
func (p *Platform) Deliverers(dc PlatformDelivery) PlatformDeliverers {
	var ds PlatformDeliverers
	for _, e := range Endpoints {
		if dc[e].URL == "" {
			continue
		}
		cfg := dc[e]
		if cfg.Retries == nil {
			cfg.Retries = TestRetries
			if e.Livemode() {
				cfg.Retries = LiveRetries
			}
		}
		ds[e] = NewDelivererFor(p.EndpointSims(e), cfg)
	}
	return ds
}

// Runner plays every scope on one clock and delivers to the given endpoints.
func (p *Platform) Runner(ds PlatformDeliverers) *Runner {
	return &Runner{Sims: p.Sims(), Deliverers: ds.All()}
}
