// Command stripesim is a simulated Stripe account: it plays a seeded business on a simulated
// clock, delivers its events as signed webhooks with Stripe's retry behaviour, and serves the
// Events API and object lists so stripe-go (and the ledger's reconciliation) can talk to it.
//
//	stripesim serve --webhook-url http://127.0.0.1:8080/webhooks/stripe --secret whsec_… [--scenario steady]
//	stripesim run   --webhook-url … --secret … --scenario outage-4d     # play to the end, print stats
//	stripesim truth --scenario steady --seed 1                          # objects and events as JSON
//	stripesim scenarios                                                 # what each scenario does
//
// The platform scenarios (connect, connect-late) play a Connect platform: the platform's own
// account and its connected accounts, each in live and test mode, delivered to four endpoints —
// platform-live, platform-test, connect-live, connect-test. --webhook-url sends all four to one
// URL; --platform-live-url … --connect-test-url override it per endpoint. Each endpoint signs
// with its own secret: --platform-live-secret … --connect-test-secret, else --secret (or
// $STRIPE_WEBHOOK_SECRET) for all, else one generated per endpoint. serve accepts --live-key and
// --test-key (generated when absent). Generated secrets and keys are never logged, not even in
// part: --print-config writes the whole configuration, secrets and keys included, as one JSON
// line to stdout before the platform plays — the one place an operator asks to see them.
//
//	stripesim serve --scenario connect --webhook-url http://127.0.0.1:8080/webhooks/stripe --print-config
//	stripesim truth --scenario connect --livemode=false --account acct_…   # one scope's truth
//
// Exit codes: 0 success, 1 a run finished with undelivered events it was not told to expect,
// 2 bad flags or an unreachable endpoint.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/stripeledger/ledger/stripesim"
)

type secrets []string

func (s *secrets) String() string     { return fmt.Sprintf("%d secrets", len(*s)) }
func (s *secrets) Set(v string) error { *s = append(*s, v); return nil }

type options struct {
	scenario   string
	seed       uint64
	webhookURL string
	secrets    secrets
	addr       string
	apiKey     string
	rate       float64
	speed      float64
	end        string

	// A platform scenario's.
	endpointURLs    [4]string // by stripesim.Endpoint
	endpointSecrets [4]string
	liveKey         string
	testKey         string
	liveRate        float64
	printConfig     bool
	livemode        bool   // truth: the scope's mode
	account         string // truth: the scope's account, or platform
}

func (o *options) platform() bool {
	_, ok := stripesim.PlatformScenarios[o.scenario]
	return ok
}

func flags(name string, args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&o.scenario, "scenario", "steady", "scenario: "+strings.Join(append(stripesim.ScenarioNames(), stripesim.PlatformScenarioNames()...), ", "))
	fs.Uint64Var(&o.seed, "seed", 1, "seed: the same seed and scenario give the same events, byte for byte")
	fs.StringVar(&o.end, "end", "", "simulated end of the account (RFC 3339); default now")
	if name != "truth" {
		fs.StringVar(&o.webhookURL, "webhook-url", "", "endpoint to deliver webhooks to (none: no deliveries)")
		fs.Var(&o.secrets, "secret", "signing secret (repeat for a roll in progress; default $STRIPE_WEBHOOK_SECRET, comma-separated)")
		fs.Float64Var(&o.speed, "speed", 0, "simulated seconds per real second (0: as fast as the endpoint answers)")
	}
	if name != "truth" {
		for _, e := range stripesim.Endpoints {
			fs.StringVar(&o.endpointURLs[e], e.String()+"-url", "", "platform scenarios: the "+e.String()+" endpoint's URL (default --webhook-url)")
			fs.StringVar(&o.endpointSecrets[e], e.String()+"-secret", "", "platform scenarios: the "+e.String()+" endpoint's signing secret (default --secret, else generated)")
		}
		fs.BoolVar(&o.printConfig, "print-config", false, "platform scenarios: print the configuration, secrets and keys included, as JSON to stdout before playing")
	} else {
		fs.BoolVar(&o.livemode, "livemode", true, "platform scenarios: the scope's mode")
		fs.StringVar(&o.account, "account", "platform", "platform scenarios: the scope's account (acct_…, or platform)")
	}
	if name == "serve" {
		fs.StringVar(&o.addr, "addr", "127.0.0.1:12111", "API listen address (point STRIPE_API_BASE here)")
		fs.StringVar(&o.apiKey, "api-key", "", "accept only this API key (default: any sk_… or rk_…)")
		fs.Float64Var(&o.rate, "rate-limit", 25, "API requests per second before 429 (negative: no limit); a platform's, per test key")
		fs.Float64Var(&o.liveRate, "live-rate-limit", 100, "platform scenarios: API requests per second per live key before 429")
		fs.StringVar(&o.liveKey, "live-key", "", "platform scenarios: the live key, sk_live_… or rk_live_… (default generated)")
		fs.StringVar(&o.testKey, "test-key", "", "platform scenarios: the test key, sk_test_… or rk_test_… (default generated)")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if len(o.secrets) == 0 {
		for _, s := range strings.Split(os.Getenv("STRIPE_WEBHOOK_SECRET"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.secrets = append(o.secrets, s)
			}
		}
	}
	if o.platform() {
		return o, nil // secrets are per endpoint, generated when not given
	}
	if o.webhookURL != "" && len(o.secrets) == 0 {
		return nil, errors.New("--webhook-url needs --secret (or STRIPE_WEBHOOK_SECRET)")
	}
	return o, nil
}

func (o *options) endOfAccount() (time.Time, error) {
	if o.end == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, o.end)
	if err != nil {
		return time.Time{}, fmt.Errorf("--end: %w", err)
	}
	return t.UTC(), nil
}

func (o *options) build() (*stripesim.Sim, *stripesim.Deliverer, error) {
	end, err := o.endOfAccount()
	if err != nil {
		return nil, nil, err
	}
	base := stripesim.Config{Seed: o.seed, End: end}
	cfg, dc, err := stripesim.Setup(o.scenario, base, stripesim.DeliveryConfig{URL: o.webhookURL, Secrets: o.secrets})
	if err != nil {
		return nil, nil, err
	}
	sim := stripesim.New(cfg)
	var d *stripesim.Deliverer
	if o.webhookURL != "" {
		d = stripesim.NewDeliverer(sim, dc)
	}
	return sim, d, nil
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd := os.Args[1]; cmd {
	case "serve", "run", "truth":
		var o *options
		if o, err = flags(cmd, os.Args[2:]); err != nil {
			break
		}
		switch {
		case cmd == "serve" && o.platform():
			err = servePlatform(ctx, log, o)
		case cmd == "serve":
			err = serve(ctx, log, o)
		case cmd == "run" && o.platform():
			err = runPlatform(ctx, log, o)
		case cmd == "run":
			err = run(ctx, o)
		case o.platform():
			err = truthPlatform(o)
		default:
			err = truth(o)
		}
	case "scenarios":
		for _, n := range stripesim.ScenarioNames() {
			fmt.Printf("%-16s %s\n", n, stripesim.Scenarios[n].Description)
		}
		for _, n := range stripesim.PlatformScenarioNames() {
			fmt.Printf("%-16s %s\n", n, stripesim.PlatformScenarios[n].Description)
		}
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stripesim:", err)
		var ee exitCode
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(2)
	}
}

type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: stripesim serve|run|truth|scenarios [flags]   (stripesim CMD -h for flags)")
}

func serve(ctx context.Context, log *slog.Logger, o *options) error {
	sim, d, err := o.build()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: stripesim.NewServer(sim, d, stripesim.ServerConfig{APIKey: o.apiKey, RateLimit: o.rate}),
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("stripesim API", "url", "http://"+ln.Addr().String(), "scenario", o.scenario, "seed", o.seed, "webhooks", o.webhookURL)
	start := time.Now()
	if err := (&stripesim.Runner{Sim: sim, Deliverer: d, Speed: o.speed}).Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	if ctx.Err() == nil {
		log.Info("account played", "events", len(sim.Events()), "took", time.Since(start).Round(time.Millisecond).String(), "deliveries", statsOf(d))
		<-ctx.Done() // keep serving the API
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func statsOf(d *stripesim.Deliverer) any {
	if d == nil {
		return nil
	}
	return d.Stats()
}

func run(ctx context.Context, o *options) error {
	if o.webhookURL == "" {
		return errors.New("run needs --webhook-url (use truth to see the events without delivering them)")
	}
	sim, d, err := o.build()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := (&stripesim.Runner{Sim: sim, Deliverer: d, Speed: o.speed}).Run(ctx); err != nil {
		return err
	}
	st := d.Stats()
	out, _ := json.MarshalIndent(map[string]any{"scenario": o.scenario, "seed": o.seed, "took": time.Since(start).String(), "deliveries": st}, "", "  ")
	fmt.Println(string(out))
	if st.Attempts > 0 && st.Delivered == 0 {
		return fmt.Errorf("%w: nothing was delivered to %s", exitCode(2), o.webhookURL)
	}
	return nil
}

func truth(o *options) error {
	sim, _, err := o.build()
	if err != nil {
		return err
	}
	sim.Run(time.Time{})
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(sim.Truth())
}
