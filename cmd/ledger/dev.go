package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
	"github.com/stripeledger/ledger/webhook"
)

// devCmd is what `make run` starts: the ledger on its embedded default database, installing
// Postgres from the distribution if this machine has none.
func devCmd() *cobra.Command {
	// A line per webhook would bury the URLs while the simulator replays months of events.
	o := serveOptions{db: dbOptions{install: true}, logLevel: "warn"}
	var simAddr, scenario string
	var simSeconds float64
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the ledger on the embedded default database (what `make run` starts)",
		Long: `dev runs serve on the embedded default database. Without any STRIPE_WEBHOOK_SECRET* variable
it uses signing secrets of its own, one per endpoint (live, test, Connect live, Connect test),
kept in .data/dev-webhook-secret* (mode 0600, never printed); the test endpoint's,
.data/dev-webhook-secret, is the one local senders sign test-mode webhooks with. Without
STRIPE_SECRET_KEY it also starts the Stripe simulator, which plays a seeded account and delivers
its events to the ledger as signed webhooks, each endpoint's with that endpoint's secret (or
STRIPE_WEBHOOK_SECRET's) — by default a live-mode account with a four-day outage whose lost
events the scheduled reconciliation then repairs, watchable on the dashboard;
--sim-scenario connect plays a Connect platform with connected accounts in live and test mode at
once (the dashboard's test-mode switch and account selector then have something to show). The
dashboard's token is LEDGER_API_TOKEN, or one of its own kept in .data/dev-api-token and printed.

Unless LEDGER_NOTIFY_CONFIG is set, dev also runs a Slack-compatible incoming-webhook receiver
and an SMTP server on loopback, writes the default rules (docs/notify.example.yaml) to
.data/dev-notify.yaml with every channel pointed at them, and shows what they received at
/notifications — the outage's repaired events among them, marked late.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secretNote := "STRIPE_WEBHOOK_SECRET_*"
			secrets, err := webhook.LoadSecrets(os.Getenv)
			if noSecretVariables() {
				// (LoadSecrets refused the empty configuration; dev brings its own.)
				// None configured: one of dev's own per endpoint (live, test, Connect live and
				// test), so the simulator signs each mode's events as Stripe would and the mode
				// check applies; the test endpoint's is the one local senders (`stripe listen`)
				// sign test-mode webhooks with.
				dir := filepath.Join(pgboot.RepoRoot(), ".data")
				var own webhook.EndpointSecrets
				for _, f := range []struct {
					file string
					list *[]string
				}{{"dev-webhook-secret", &own.Test}, {"dev-webhook-secret-live", &own.Live},
					{"dev-webhook-secret-connect-live", &own.ConnectLive}, {"dev-webhook-secret-connect-test", &own.ConnectTest}} {
					secret, derr := devSecret(filepath.Join(dir, f.file))
					if derr != nil {
						return derr
					}
					*f.list = []string{secret}
				}
				secrets, err = own, nil
				secretNote = filepath.Join(dir, "dev-webhook-secret*") + "; the test endpoint's is dev-webhook-secret"
			}
			if err != nil {
				return err
			}
			o.secrets = &secrets
			// The token printed for the dashboard: LEDGER_API_TOKEN's first, else one of dev's own
			// with role admin (the person running dev may do everything).
			token := firstToken(os.Getenv("LEDGER_API_TOKEN"))
			if token == "" {
				t, err := devSecretWithPrefix(filepath.Join(pgboot.RepoRoot(), ".data", "dev-api-token"), "tok_")
				if err != nil {
					return err
				}
				token = t
				o.apiTokens = auth.MustParseEnv("dev:admin:" + token)
			}
			if o.checkpointKey == "" {
				// Checkpoints on by default, so `make run` shows the proof: a key of its own
				// under .data, a checkpoint a minute into .data/checkpoints.jsonl.
				if err := devCheckpoints(&o, cmd); err != nil {
					return err
				}
			}
			if !cmd.Flags().Changed("reconcile-schedule") && os.Getenv("LEDGER_RECONCILE_SCHEDULE") == "" {
				// Often enough that the outage's repair shows within a minute.
				o.schedule = "events-fast=@every 20s; events=@every 2m; objects=@every 10m; endpoints=@every 1h"
			}
			if os.Getenv("STRIPE_SECRET_KEY") == "" && simAddr != "" {
				// Reconciliation runs against the simulator's Events API and object lists.
				if o.stripe, err = devStripe(scenario, simAddr); err != nil {
					return err
				}
			}
			// The default notification rules, pointed at local Slack and SMTP sinks.
			sinks, err := devNotifications()
			if err != nil {
				return err
			}
			if sinks != nil {
				defer sinks.Close()
				o.devSinks = sinks.Handler()
			}
			o.ready = func(ctx context.Context, addr, metricsAddr string, pool *pgxpool.Pool) {
				base := "http://" + strings.Replace(strings.Replace(addr, "[::]", "localhost", 1), "0.0.0.0", "localhost", 1)
				fmt.Printf("\nledger is up:\n"+
					"  webhooks   POST %s/webhooks/stripe   (signing secret: %s)\n"+
					"  health     %s/healthz\n"+
					"  readiness  %s/readyz\n"+
					"  metrics    %s\n"+
					"  dashboard  %s/   (token: %s)\n"+
					"  API        %s/api/v1/   (Authorization: Bearer <token>; %s/api/v1/openapi.json)\n",
					base, secretNote, base, base, metricsURL(metricsAddr, base), base, token, base, base)
				if sinks != nil {
					fmt.Printf("  notifications %s/notifications   (the default rules, sent to local sinks: Slack %s, SMTP %s)\n",
						base, sinks.SlackURL("{channel}"), sinks.SMTPURL())
				}
				if o.checkpointSink != "" {
					fmt.Printf("  checkpoints %s   (ledger verify --checkpoints %s --public-key %s.pub)\n",
						strings.TrimPrefix(o.checkpointSink, "file:"), strings.TrimPrefix(o.checkpointSink, "file:"), o.checkpointKey)
				}
				if os.Getenv("STRIPE_SECRET_KEY") != "" || simAddr == "" {
					fmt.Printf("  forward real test-mode events with: stripe listen --forward-to %s/webhooks/stripe\n\nCtrl-C stops it.\n\n",
						strings.TrimPrefix(base, "http://"))
					return
				}
				if err := startSimulator(ctx, simAddr, scenario, simSeconds, base+"/webhooks/stripe", secrets, pool); err != nil {
					fmt.Fprintln(os.Stderr, "ledger dev: Stripe simulator not started:", err)
				}
			}
			return serve(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.addr, "addr", envOr("LEDGER_ADDR", "127.0.0.1:8080"), "listen address (env LEDGER_ADDR)")
	cmd.Flags().StringVar(&simAddr, "sim-addr", "127.0.0.1:12111", "where the Stripe simulator's API listens when STRIPE_SECRET_KEY is unset (\"\" to run without it)")
	cmd.Flags().StringVar(&scenario, "sim-scenario", "outage-4d", "the simulator's scenario: "+strings.Join(append(stripesim.ScenarioNames(), stripesim.PlatformScenarioNames()...), ", ")+
		" (connect: a Connect platform with connected accounts, live and test mode at once)")
	cmd.Flags().Float64Var(&simSeconds, "sim-seconds", 45, "real seconds the simulated account takes to play (0: as fast as the ledger answers)")
	addServeFlags(cmd, &o)
	return cmd
}

// noSecretVariables says whether every STRIPE_WEBHOOK_SECRET* variable serve reads is unset.
func noSecretVariables() bool {
	for _, name := range webhook.SecretVariables {
		if strings.TrimSpace(os.Getenv(name)) != "" {
			return false
		}
	}
	return true
}

// firstToken is the token of LEDGER_API_TOKEN's first entry (plain, or NAME:ROLE:TOKEN).
func firstToken(env string) string {
	first, _, _ := strings.Cut(env, ",")
	first = strings.TrimSpace(first)
	if parts := strings.SplitN(first, ":", 3); len(parts) == 3 {
		if _, err := auth.ParseRole(parts[1]); err == nil {
			return parts[2]
		}
	}
	return first
}

// metricsURL is where dev's /metrics is: its own listener, else the main port (token needed).
func metricsURL(metricsAddr, base string) string {
	if metricsAddr == "" {
		return base + "/metrics   (with an operate or admin token)"
	}
	return "http://" + metricsAddr + "/metrics"
}

// Dev's own API keys for the simulator, one per mode: reconciliation reads each mode's Events
// API and object lists with that mode's key, as against Stripe.
const (
	devLiveKey = "sk_live_ledger_dev"
	devTestKey = "sk_test_ledger_dev"
)

// devStripe is dev's reconciliation configuration against the simulator for a scenario: the
// key of the scenario's mode (both keys for a platform scenario, which plays both modes).
func devStripe(scenario, simAddr string) (*reconcile.StripeConfig, error) {
	cfg := &reconcile.StripeConfig{APIBase: "http://" + simAddr}
	if _, ok := stripesim.PlatformScenarios[scenario]; ok {
		cfg.APIKey = devLiveKey + "," + devTestKey
		return cfg, nil
	}
	sc, _, err := stripesim.Setup(scenario, stripesim.Config{Seed: 1}, stripesim.DeliveryConfig{})
	if err != nil {
		return nil, fmt.Errorf("%w; platform scenarios: %v", err, stripesim.PlatformScenarioNames())
	}
	// One account in one mode: no connected accounts to list.
	cfg.APIKey, cfg.Accounts = devTestKey, "none"
	if sc.Livemode {
		cfg.APIKey = devLiveKey
	}
	return cfg, nil
}

// signingSecrets are the secrets the simulator signs an endpoint's deliveries with: that
// endpoint's, else the legacy unstated ones (which verify any mode).
func signingSecrets(secrets webhook.EndpointSecrets, e stripesim.Endpoint) []string {
	if own := *secrets.Of(endpointOf(e)); len(own) > 0 {
		return own
	}
	return secrets.Unstated
}

// startSimulator plays a simulated Stripe account (or a Connect platform: --sim-scenario
// connect) that delivers signed webhooks to the ledger and serves the Events API, as real Stripe
// would with `stripe listen`. Each endpoint's deliveries are signed with that endpoint's secret.
//
// serve's live projection folds the events into the read models as they arrive.
func startSimulator(ctx context.Context, addr, scenario string, seconds float64, webhookURL string, secrets webhook.EndpointSecrets, pool *pgxpool.Pool) error {
	var handler http.Handler
	var runner *stripesim.Runner
	var stats func() []stripesim.DeliveryStats
	var span time.Duration
	var what string
	if _, ok := stripesim.PlatformScenarios[scenario]; ok {
		var dc stripesim.PlatformDelivery
		for _, e := range stripesim.Endpoints {
			if sec := signingSecrets(secrets, e); len(sec) > 0 {
				dc[e] = stripesim.DeliveryConfig{URL: webhookURL, Secrets: sec}
			}
		}
		cfg, dc, err := stripesim.SetupPlatform(scenario, stripesim.PlatformConfig{Seed: 1}, dc)
		if err != nil {
			return err
		}
		p := stripesim.NewPlatform(cfg)
		ds := p.Deliverers(dc)
		srv, err := stripesim.NewPlatformServer(p, ds, stripesim.ServerConfig{LiveKey: devLiveKey, TestKey: devTestKey})
		if err != nil {
			return err
		}
		handler, runner, span = srv, p.Runner(ds), cfg.End.Sub(cfg.Start)
		stats = func() (out []stripesim.DeliveryStats) {
			for _, d := range ds.All() {
				out = append(out, d.Stats())
			}
			return out
		}
		what = fmt.Sprintf("a Connect platform with %d connected accounts, live and test mode, over %d days", len(p.Accounts()), int(span.Hours()/24))
	} else {
		cfg, dc, err := stripesim.Setup(scenario, stripesim.Config{Seed: 1}, stripesim.DeliveryConfig{URL: webhookURL})
		if err != nil {
			return err
		}
		e := stripesim.PlatformTest
		if cfg.Livemode {
			e = stripesim.PlatformLive
		}
		if dc.Secrets = signingSecrets(secrets, e); len(dc.Secrets) == 0 {
			return fmt.Errorf("the scenario plays a %s account: set %s (or STRIPE_WEBHOOK_SECRET)", e, webhook.SecretVariables[endpointOf(e)])
		}
		sim := stripesim.New(cfg)
		d := stripesim.NewDeliverer(sim, dc)
		handler, runner, span = stripesim.NewServer(sim, d, stripesim.ServerConfig{}), &stripesim.Runner{Sim: sim, Deliverer: d}, cfg.End.Sub(cfg.Start)
		stats = func() []stripesim.DeliveryStats { return []stripesim.DeliveryStats{d.Stats()} }
		what = fmt.Sprintf("%d customers over %d days, %s", cfg.Customers, int(span.Hours()/24), map[bool]string{true: "live mode", false: "test mode"}[cfg.Livemode])
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	api := "http://" + ln.Addr().String()
	fmt.Printf("\nStripe simulator (scenario %s, %s) is feeding it:\n"+
		"  API        %s   (STRIPE_API_BASE; keys %s and %s)\n"+
		"  truth      %s/sim/truth\n"+
		"  deliveries %s/sim/deliveries\n\nCtrl-C stops both.\n\n",
		scenario, what, api, devLiveKey, devTestKey, api, api)
	go func() {
		start := time.Now()
		if seconds > 0 {
			runner.Speed = span.Seconds() / seconds
		}
		if err := runner.Run(ctx); err == nil {
			var st stripesim.DeliveryStats
			for _, s := range stats() {
				st.Events += s.Events
				st.Delivered += s.Delivered
				st.Retried += s.Retried
				st.Duplicates += s.Duplicates
				st.GaveUp += s.GaveUp
			}
			fmt.Printf("Stripe simulator: %d events played in %s: %d delivered, %d retried, %d duplicates, %d given up\n",
				st.Events, time.Since(start).Round(time.Millisecond), st.Delivered, st.Retried, st.Duplicates, st.GaveUp)
			if st, err := projections.ReadStatus(ctx, pool); err == nil {
				fmt.Printf("read models: the live projection is at position %d of %d (ledger projections status)\n", st.Position, st.Head)
			}
		}
	}()
	return nil
}

// endpointOf is the ledger's name for a simulator endpoint.
func endpointOf(e stripesim.Endpoint) eventstore.Endpoint {
	switch e {
	case stripesim.PlatformLive:
		return eventstore.EndpointLive
	case stripesim.PlatformTest:
		return eventstore.EndpointTest
	case stripesim.ConnectLive:
		return eventstore.EndpointConnectLive
	}
	return eventstore.EndpointConnectTest
}

// devCheckpoints points dev's checkpoints at a key and a file under .data, making the key on
// first use.
func devCheckpoints(o *serveOptions, cmd *cobra.Command) error {
	data := filepath.Join(pgboot.RepoRoot(), ".data")
	key := filepath.Join(data, "dev-checkpoint.key")
	if _, err := os.Stat(key); err != nil {
		if err := os.MkdirAll(data, 0o755); err != nil {
			return fmt.Errorf("could not create %s: %w", data, err)
		}
		if _, err := integrity.GenerateKey(key); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("could not make the development checkpoint key: %w", err)
		}
	}
	o.checkpointKey = key
	if o.checkpointSink == "" {
		o.checkpointSink = "file:" + filepath.Join(data, "checkpoints.jsonl")
	}
	if !cmd.Flags().Changed("checkpoint-interval") && os.Getenv("LEDGER_CHECKPOINT_INTERVAL") == "" {
		o.checkpointInterval = time.Minute
	}
	return nil
}

// devSecret reads the local development signing secret, creating it on first use.
func devSecret(path string) (string, error) { return devSecretWithPrefix(path, "whsec_") }

// devSecretWithPrefix reads a local development secret, creating it on first use.
func devSecretWithPrefix(path, prefix string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	secret := prefix + hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("could not create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("could not write the development signing secret: %w", err)
	}
	return secret, nil
}
