package stripesim

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Scenario is a named, documented setup: the account and how its webhooks fare.
type Scenario struct {
	Name        string
	Description string
	// Apply fills in cfg and dc (URL and Secrets are the caller's). cfg.End is set; Start is
	// derived from End and Duration afterwards.
	Apply func(cfg *Config, dc *DeliveryConfig)
}

// Scenarios are the named setups `stripesim run --scenario NAME` and tests use.
var Scenarios = map[string]Scenario{
	"steady": {
		Name:        "steady",
		Description: "200 customers over 90 days, test mode, 2% duplicate deliveries, endpoint always up: every event is delivered.",
		Apply: func(cfg *Config, dc *DeliveryConfig) {
			cfg.Customers, cfg.Duration = 200, 90*day
			dc.DupRate = 0.02
		},
	},
	"outage-4d": {
		Name: "outage-4d",
		Description: "Live mode, 200 customers over 90 days; the endpoint is unreachable for 4 days starting 20 days " +
			"before the end. Stripe retries for 3 days, so events from the outage's first ~day are never delivered; " +
			"they stay in the Events API (30 days) for reconciliation to find.",
		Apply: outage4d,
	},
	"burst-retry": {
		Name: "burst-retry",
		Description: "Test mode, 300 customers arriving within 2 days (dense same-second bursts); the endpoint is down for " +
			"2 hours in the middle of the arrivals, so those events are retried and delivered later, out of order; 10% duplicates.",
		Apply: func(cfg *Config, dc *DeliveryConfig) {
			cfg.Customers, cfg.Duration, cfg.ArrivalWindow = 300, 30*day, 2*day
			from := cfg.End.Add(-cfg.Duration).Add(day) // the middle of the arrivals
			dc.Outages = []Window{{From: from, To: from.Add(2 * time.Hour)}}
			dc.DupRate = 0.10
		},
	},
	"secret-roll": {
		Name: "secret-roll",
		Description: "As steady, but every delivery is signed with two secrets (a roll in progress: pass two " +
			"--secret flags), so the header carries two v1 signatures; either one alone verifies.",
		Apply: func(cfg *Config, dc *DeliveryConfig) {
			cfg.Customers, cfg.Duration = 100, 60*day
		},
	},
	"payout-mismatch": {
		Name: "payout-mismatch",
		Description: "As steady, but one payout in the second half of the run is $10.00 larger than the balance " +
			"transactions it lists (Config.PayoutMismatch): the payout that does not add up, for payout reconciliation to find.",
		Apply: func(cfg *Config, dc *DeliveryConfig) {
			cfg.Customers, cfg.Duration = 200, 90*day
			cfg.PayoutMismatch = 10_00
			dc.DupRate = 0.02
		},
	},
	"old-api-version": {
		Name: "old-api-version",
		Description: "As steady, but the account's default API version is 2020-08-27: webhooks (endpoint pinned to " +
			"2023-10-16) and the Events API render the same event in different shapes (charges carry a refunds list).",
		Apply: func(cfg *Config, dc *DeliveryConfig) {
			cfg.Customers, cfg.Duration = 100, 60*day
			cfg.AccountAPIVersion = "2020-08-27"
		},
	},
	"dahlia-account": {
		Name: "dahlia-account",
		Description: "As outage-4d, but the account's default API version is 2026-08-26.dahlia: webhooks (endpoint pinned to " +
			"2023-10-16) and the Events API render the same event in different shapes, so the events reconciliation repairs " +
			"come at dahlia (invoices name their subscription through parent and carry no charge or payment intent, " +
			"discounts name their coupon in source), and invoice_payment.paid is sent; 10% of subscription invoices are paid " +
			"in two parts, each its own invoice payment.",
		Apply: func(cfg *Config, dc *DeliveryConfig) {
			outage4d(cfg, dc)
			cfg.AccountAPIVersion, cfg.PartialPayments = "2026-08-26.dahlia", 0.1
		},
	},
	"thin-destination": {
		Name: "thin-destination",
		Description: "Test mode, 100 customers over 60 days, sent to a thin event destination (event destinations, " +
			"API 2026-09-30.endive): each event arrives as an unversioned v1.* notification naming its object, and " +
			"the ledger fetches the object and the v2 Event's changes itself. 2% duplicate deliveries.",
		Apply: func(cfg *Config, dc *DeliveryConfig) {
			cfg.Customers, cfg.Duration = 100, 60*day
			dc.Thin, dc.DupRate = true, 0.02
		},
	},
	"dahlia-upgrade": {
		Name: "dahlia-upgrade",
		Description: "As outage-4d, but the account is on 2023-10-16 until halfway through, then upgraded to " +
			"2026-08-26.dahlia, and its webhook endpoint pins no version: webhooks and the Events API change shape at the " +
			"upgrade, so the log holds both, and the repairs come at the default in force when each event was created.",
		Apply: func(cfg *Config, dc *DeliveryConfig) {
			outage4d(cfg, dc)
			cfg.UpgradeTo, cfg.UpgradeAt, cfg.WebhookAPIVersion = "2026-08-26.dahlia", cfg.End.Add(-cfg.Duration/2), Unpinned
		},
	},
}

// outage4d is the outage-4d scenario's setting.
func outage4d(cfg *Config, dc *DeliveryConfig) {
	cfg.Customers, cfg.Duration, cfg.Livemode = 200, 90*day, true
	from := cfg.End.Add(-20 * day)
	dc.Outages = []Window{{From: from, To: from.Add(4 * day)}}
}

// ScenarioNames lists the scenarios in a stable order.
func ScenarioNames() []string { return slices.Sorted(maps.Keys(Scenarios)) }

// Setup builds a scenario's configuration on top of base (seed, end time, URL, secrets).
func Setup(name string, base Config, dc DeliveryConfig) (Config, DeliveryConfig, error) {
	sc, ok := Scenarios[name]
	if !ok {
		return base, dc, fmt.Errorf("unknown scenario %q (have %v)", name, ScenarioNames())
	}
	cfg := base
	if cfg.End.IsZero() {
		cfg.End = time.Now().UTC().Truncate(time.Second)
	}
	sc.Apply(&cfg, &dc)
	cfg.Start = cfg.End.Add(-cfg.Duration)
	return cfg, dc, nil
}

// PlatformScenario is a named, documented Connect platform: its scopes and how its four
// endpoints fare.
type PlatformScenario struct {
	Name        string
	Description string
	// Apply fills in cfg and dc (the endpoints' URLs and Secrets are the caller's). cfg.End is
	// set; Start is derived from End and Duration afterwards.
	Apply func(cfg *PlatformConfig, dc *PlatformDelivery)
}

// PlatformScenarios are the named platforms `stripesim run --scenario NAME` and tests use; their
// names do not clash with Scenarios'.
var PlatformScenarios = map[string]PlatformScenario{
	"connect": {
		Name: "connect",
		Description: "A Connect platform with 3 connected accounts, live and test at once (separate keys and " +
			"secrets, four endpoints), 60 days: the platform has 60 live and 15 test customers, each account 20 " +
			"and 5. The connect-live endpoint alone is unreachable for 4 days from 20 days before the end: events " +
			"from the outage's first ~day outlive Stripe's 3-day retries and must be found by reconciliation.",
		Apply: func(cfg *PlatformConfig, dc *PlatformDelivery) {
			cfg.Accounts, cfg.Duration = 3, 60*day
			cfg.Customers, cfg.TestCustomers, cfg.AccountCustomers, cfg.AccountTestCustomers = 60, 15, 20, 5
			from := cfg.End.Add(-20 * day)
			dc[ConnectLive].Outages = []Window{{From: from, To: from.Add(4 * day)}}
		},
	},
	"connect-late": {
		Name: "connect-late",
		Description: "The connect platform with 90 days of history, but every endpoint created only 2 days " +
			"before the end (the ledger starts late): nothing older is ever sent, so backfill must list objects " +
			"and events to catch up.",
		Apply: func(cfg *PlatformConfig, dc *PlatformDelivery) {
			cfg.Accounts, cfg.Duration = 3, 90*day
			cfg.Customers, cfg.TestCustomers, cfg.AccountCustomers, cfg.AccountTestCustomers = 60, 15, 20, 5
			for _, e := range Endpoints {
				dc[e].Since = cfg.End.Add(-2 * day)
			}
		},
	},
}

// PlatformScenarioNames lists the platform scenarios in a stable order.
func PlatformScenarioNames() []string { return slices.Sorted(maps.Keys(PlatformScenarios)) }

// SetupPlatform builds a platform scenario's configuration on top of base (seed, end time) and
// dc (the endpoints' URLs and secrets).
func SetupPlatform(name string, base PlatformConfig, dc PlatformDelivery) (PlatformConfig, PlatformDelivery, error) {
	sc, ok := PlatformScenarios[name]
	if !ok {
		return base, dc, fmt.Errorf("unknown platform scenario %q (have %v)", name, PlatformScenarioNames())
	}
	cfg := base
	if cfg.End.IsZero() {
		cfg.End = time.Now().UTC().Truncate(time.Second)
	}
	sc.Apply(&cfg, &dc)
	cfg.Start = cfg.End.Add(-cfg.Duration)
	return cfg, dc, nil
}
