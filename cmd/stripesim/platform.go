package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/stripeledger/ledger/stripesim"
)

// platformRun is a platform scenario ready to play, with what was generated for it.
type platformRun struct {
	p         *stripesim.Platform
	dc        stripesim.PlatformDelivery
	ds        stripesim.PlatformDeliverers
	generated []string // what was generated rather than given: endpoint secrets, keys
}

func randomSecret(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// buildPlatform sets the scenario up: each endpoint gets its URL (its own flag, else
// --webhook-url; none: no deliveries) and its secret (its own flag, else --secret, else one
// generated).
func (o *options) buildPlatform(deliver bool) (*platformRun, error) {
	end, err := o.endOfAccount()
	if err != nil {
		return nil, err
	}
	run := &platformRun{}
	var dc stripesim.PlatformDelivery
	for _, e := range stripesim.Endpoints {
		if !deliver {
			break
		}
		url := o.endpointURLs[e]
		if url == "" {
			url = o.webhookURL
		}
		if url == "" {
			continue
		}
		var secrets []string
		switch {
		case o.endpointSecrets[e] != "":
			secrets = []string{o.endpointSecrets[e]}
		case len(o.secrets) > 0:
			secrets = o.secrets
		default:
			secrets = []string{randomSecret("whsec_")}
			run.generated = append(run.generated, e.String()+" secret")
		}
		dc[e] = stripesim.DeliveryConfig{URL: url, Secrets: secrets}
	}
	cfg, dc, err := stripesim.SetupPlatform(o.scenario, stripesim.PlatformConfig{Seed: o.seed, End: end}, dc)
	if err != nil {
		return nil, err
	}
	run.p, run.dc = stripesim.NewPlatform(cfg), dc
	run.ds = run.p.Deliverers(dc)
	return run, nil
}

// platformConfig is what --print-config prints: everything a ledger needs to be set up against
// the platform, secrets and keys included.
type platformConfig struct {
	Scenario    string                    `json:"scenario"`
	Seed        uint64                    `json:"seed"`
	API         string                    `json:"api,omitempty"`
	LiveKey     string                    `json:"live_key,omitempty"`
	TestKey     string                    `json:"test_key,omitempty"`
	Platform    string                    `json:"platform"`
	Application string                    `json:"application"`
	Accounts    []string                  `json:"accounts"`
	Endpoints   map[string]endpointConfig `json:"endpoints"`
	Start       time.Time                 `json:"start"`
	End         time.Time                 `json:"end"`
}

type endpointConfig struct {
	URL     string    `json:"url"`
	Secrets []string  `json:"secrets"`
	Since   time.Time `json:"since,omitzero"`
}

func (r *platformRun) config(o *options, api, liveKey, testKey string) platformConfig {
	c := platformConfig{Scenario: o.scenario, Seed: o.seed, API: api, LiveKey: liveKey, TestKey: testKey,
		Platform: r.p.ID(), Application: r.p.Application(), Endpoints: map[string]endpointConfig{},
		Start: r.p.Config().Start, End: r.p.Config().End}
	for _, a := range r.p.Accounts() {
		c.Accounts = append(c.Accounts, a.ID)
	}
	for _, e := range stripesim.Endpoints {
		if r.dc[e].URL != "" {
			c.Endpoints[e.String()] = endpointConfig{URL: r.dc[e].URL, Secrets: r.dc[e].Secrets, Since: r.dc[e].Since}
		}
	}
	return c
}

func printJSONLine(v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(out))
	return err
}

// endpointsForLog names each endpoint's URL, never its secret.
func (r *platformRun) endpointsForLog() map[string]string {
	m := map[string]string{}
	for _, e := range stripesim.Endpoints {
		if r.dc[e].URL != "" {
			m[e.String()] = r.dc[e].URL
		}
	}
	return m
}

func (r *platformRun) stats() map[string]stripesim.DeliveryStats {
	m := map[string]stripesim.DeliveryStats{}
	for _, e := range stripesim.Endpoints {
		if r.ds[e] != nil {
			m[e.String()] = r.ds[e].Stats()
		}
	}
	return m
}

func servePlatform(ctx context.Context, log *slog.Logger, o *options) error {
	r, err := o.buildPlatform(o.webhookURL != "" || o.endpointURLs != [4]string{})
	if err != nil {
		return err
	}
	liveKey, testKey := o.liveKey, o.testKey
	if liveKey == "" {
		liveKey = randomSecret("sk_live_")
		r.generated = append(r.generated, "live key")
	}
	if testKey == "" {
		testKey = randomSecret("sk_test_")
		r.generated = append(r.generated, "test key")
	}
	handler, err := stripesim.NewPlatformServer(r.p, r.ds, stripesim.ServerConfig{LiveKey: liveKey, TestKey: testKey,
		RateLimit: o.rate, LiveRateLimit: o.liveRate})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	if o.printConfig {
		if err := printJSONLine(r.config(o, url, liveKey, testKey)); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("stripesim platform API", "url", url, "scenario", o.scenario, "seed", o.seed, "platform", r.p.ID(),
		"accounts", len(r.p.Accounts()), "webhooks", r.endpointsForLog(), "generated", r.generated)
	if len(r.generated) > 0 && !o.printConfig {
		log.Warn("secrets or keys were generated and are shown nowhere; pass --print-config, or give them as flags")
	}
	start := time.Now()
	runner := r.p.Runner(r.ds)
	runner.Speed = o.speed
	if err := runner.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	if ctx.Err() == nil {
		log.Info("platform played", "took", time.Since(start).Round(time.Millisecond).String(), "deliveries", r.stats())
		<-ctx.Done() // keep serving the API
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func runPlatform(ctx context.Context, log *slog.Logger, o *options) error {
	if o.webhookURL == "" && o.endpointURLs == [4]string{} {
		return errors.New("run needs --webhook-url or an endpoint's --…-url (use truth to see the events without delivering them)")
	}
	r, err := o.buildPlatform(true)
	if err != nil {
		return err
	}
	if o.printConfig {
		if err := printJSONLine(r.config(o, "", "", "")); err != nil {
			return err
		}
	} else if len(r.generated) > 0 {
		log.Warn("signing secrets were generated and are shown nowhere; pass --print-config, or give them as flags",
			"generated", r.generated)
	}
	start := time.Now()
	runner := r.p.Runner(r.ds)
	runner.Speed = o.speed
	if err := runner.Run(ctx); err != nil {
		return err
	}
	st := r.stats()
	if err := printJSONLine(map[string]any{"scenario": o.scenario, "seed": o.seed, "took": time.Since(start).String(), "endpoints": st}); err != nil {
		return err
	}
	for name, s := range st {
		if s.Attempts > 0 && s.Delivered == 0 {
			return fmt.Errorf("%w: nothing was delivered to the %s endpoint (%s)", exitCode(2), name, r.endpointsForLog()[name])
		}
	}
	return nil
}

func truthPlatform(o *options) error {
	r, err := o.buildPlatform(false)
	if err != nil {
		return err
	}
	sc := stripesim.Scope{Livemode: o.livemode}
	if o.account != "platform" && o.account != r.p.ID() {
		sc.Account = o.account
	}
	r.p.Run(time.Time{})
	t, ok := r.p.Truth(sc)
	if !ok {
		var have []string
		for _, a := range r.p.Accounts() {
			have = append(have, a.ID)
		}
		return fmt.Errorf("--account %q: not an account of this platform (have platform, %v)", o.account, have)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}
