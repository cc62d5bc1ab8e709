package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/stripeledger/ledger/internal/devsink"
	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/notify"
)

// devNotifications starts ledger dev's local Slack-compatible and SMTP sinks and points the
// default rules at them: it copies docs/notify.example.yaml to .data/dev-notify.yaml, sets
// LEDGER_NOTIFY_CONFIG to it, and sets each of its channels' variables (Slack URLs, the SMTP
// server, a webhook channel's URL and secret) to the sinks — the variables name local
// addresses only, so nothing secret is made up or printed. With LEDGER_NOTIFY_CONFIG already
// set it does nothing (nil sinks): notifications then go where that file says.
func devNotifications() (*devsink.Sinks, error) {
	if os.Getenv(notify.EnvConfig) != "" {
		return nil, nil
	}
	root := pgboot.RepoRoot()
	example, err := os.ReadFile(filepath.Join(root, "docs", "notify.example.yaml"))
	if err != nil {
		return nil, fmt.Errorf("ledger dev points the default notification rules at local sinks and needs docs/notify.example.yaml (or set %s): %w", notify.EnvConfig, err)
	}
	// The channels, read with every variable set, so that the file alone says which to point.
	cfg, err := notify.Parse(example, "docs/notify.example.yaml", func(name string) string {
		if strings.HasPrefix(name, "LEDGER_NOTIFY_") { // settings, not channels (the late horizon)
			return os.Getenv(name)
		}
		if strings.Contains(name, "SMTP") {
			return "smtp://127.0.0.1:1"
		}
		return "http://127.0.0.1:1"
	})
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, ".data", "dev-notify.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("could not create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, example, 0o644); err != nil {
		return nil, fmt.Errorf("could not write the development notify config: %w", err)
	}
	sinks, err := devsink.Start(devsink.Config{})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cfg.Channels))
	for name := range cfg.Channels {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	set := func(name, value string) {
		if name != "" {
			errs = append(errs, os.Setenv(name, value))
		}
	}
	for _, name := range names {
		c := cfg.Channels[name]
		switch c.Type {
		case "slack", "webhook":
			// The Slack sink takes any JSON with text; a webhook channel's signed body has it too.
			set(c.URLEnv, sinks.SlackURL(name))
			set(c.SecretEnv, "whsec_ledger_dev_local_sink")
		case "email":
			set(c.SMTPEnv, sinks.SMTPURL())
		}
	}
	set(notify.EnvConfig, path)
	if os.Getenv(notify.EnvLateHorizon) == "" {
		// The simulated outage ends weeks before the account's end, past the default 7-day
		// horizon: dev pages late events as far back as the Events API reaches (30 days), so the
		// repaired ones show on the page, marked late, rather than in tomorrow's digest.
		set(notify.EnvLateHorizon, "720h")
	}
	if err := errors.Join(errs...); err != nil {
		_ = sinks.Close()
		return nil, err
	}
	return sinks, nil
}
