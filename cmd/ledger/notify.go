package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/notify"
)

// notifySubcommands are the `ledger notify` subcommands other files add (deliveries, retry),
// each registering itself from an init function.
var notifySubcommands []func() *cobra.Command

func notifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Notifications: the rules of LEDGER_NOTIFY_CONFIG, backfill, deliveries",
	}
	cmd.AddCommand(notifyRulesCmd(), notifyBackfillCmd())
	for _, sub := range notifySubcommands {
		cmd.AddCommand(sub())
	}
	return cmd
}

// notifyConfigPath is --config, else LEDGER_NOTIFY_CONFIG.
func notifyConfigPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p := os.Getenv(notify.EnvConfig); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("no notification config: give --config FILE or set %s", notify.EnvConfig)
}

func notifyRulesCmd() *cobra.Command {
	var config, check string
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List the notification rules as loaded, with their channels and first positions",
		Long: `rules loads the config (--config, else LEDGER_NOTIFY_CONFIG) and lists each rule: its source,
event types, channel, schedule (quiet hours, digest) and the log position it fires after (the head
when the runner first saw it; "new" for a rule the runner has not seen yet).

--check FILE only checks a file, without a database: exit 0 when it loads, 2 with the file, line
and problem when it does not (unknown field, event type or channel, bad template, a channel whose
secret variable is unset).`,
		Example: `  ledger notify rules --check docs/notify.example.yaml
  LEDGER_NOTIFY_CONFIG=notify.yaml ledger notify rules`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check != "" {
				cfg, err := notify.Load(check, nil)
				if err != nil {
					return err // exit 2, the error names the line
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d rules, %d channels\n", check, len(cfg.Rules), len(cfg.Channels))
				return nil
			}
			ctx := cmd.Context()
			cfg, pool, err := openNotify(ctx, config)
			if err != nil {
				return err
			}
			defer pool.Close()
			seen, err := notify.RulesSeen(ctx, pool)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "RULE\tSOURCE\tEVENTS\tCHANNEL\tSCHEDULE\tFIRES AFTER")
			for _, r := range cfg.Rules {
				ch := cfg.Channels[r.Channel]
				first := "new"
				if s, ok := seen[r.Name]; ok {
					first = fmt.Sprintf("position %d (%s)", s.FirstPosition, s.FirstSeenAt.UTC().Format(time.RFC3339))
					if r.Source == notify.SourceLedger {
						first = "findings from " + s.FirstSeenAt.UTC().Format(time.RFC3339)
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s (%s)\t%s\t%s\n", r.Name, r.Source, strings.Join(r.Events, ","), r.Channel, ch.Type, schedule(r), first)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "config file (default $"+notify.EnvConfig+")")
	cmd.Flags().StringVar(&check, "check", "", "only check this file: exit 2 with the line of the first problem")
	return cmd
}

func schedule(r *notify.Rule) string {
	var parts []string
	if q := r.QuietHours; q != nil {
		parts = append(parts, fmt.Sprintf("quiet %s–%s %s", clockTime(q.From), clockTime(q.To), q.Location))
	}
	if r.Digest != "" {
		parts = append(parts, r.Digest+" digest")
	}
	if len(parts) == 0 {
		return "at once"
	}
	return strings.Join(parts, ", ")
}

func clockTime(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

func notifyBackfillCmd() *cobra.Command {
	var config, since string
	cmd := &cobra.Command{
		Use:   "backfill RULE --since T",
		Short: "Enqueue a rule's notifications for events from before it was first seen",
		Long: `backfill enqueues RULE's matches among the events Stripe created from --since on (RFC 3339, a
date, or a duration back from now such as 72h), marked backfill. A new rule fires only for
events that arrive after the runner first saw it; this reaches back. It is idempotent: a
(rule, event) already in the outbox is left as it is, so running it twice adds nothing.`,
		Example: `  ledger notify backfill disputes --since 2024-03-01`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since == "" {
				return errors.New("--since is required")
			}
			from, err := parseSince(since)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, pool, err := openNotify(ctx, config)
			if err != nil {
				return err
			}
			defer pool.Close()
			n, err := notify.Backfill(ctx, pool, cfg, args[0], from)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d notifications enqueued for events created since %s\n", args[0], n, from.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "config file (default $"+notify.EnvConfig+")")
	cmd.Flags().StringVar(&since, "since", "", "events created from then on: RFC 3339, a date, or a duration such as 72h")
	return cmd
}

// parseSince reads --since: a duration back from now, or a time (parseTime).
func parseSince(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--since %q: want a positive duration", s)
		}
		return time.Now().Add(-d), nil
	}
	return parseTime("since", s)
}

// loadNotifyConfig loads LEDGER_NOTIFY_CONFIG for serve: nil (and one info line) when unset,
// an error naming the line when the file is refused.
func loadNotifyConfig(log *slog.Logger) (*notify.Config, error) {
	path := os.Getenv(notify.EnvConfig)
	if path == "" {
		log.Info("notifications off: " + notify.EnvConfig + " is not set")
		return nil, nil
	}
	cfg, err := notify.Load(path, nil)
	if err != nil {
		return nil, err
	}
	log.Info("notifications on", "config", path, "rules", len(cfg.Rules), "channels", len(cfg.Channels))
	return cfg, nil
}

// startNotifyRunner runs the outbox runner under its lease until ctx ends; the channel closes
// when it has stopped.
func startNotifyRunner(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, cfg *notify.Config, log *slog.Logger) (<-chan struct{}, error) {
	r, err := notify.NewRunner(pool, notify.RunnerConfig{Config: cfg, Store: store, Logger: log})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	return done, nil
}

// openNotify loads the notification config (--config, else LEDGER_NOTIFY_CONFIG) and opens the
// migrated database, as the commands that read rules against the log start.
func openNotify(ctx context.Context, config string) (*notify.Config, *pgxpool.Pool, error) {
	path, err := notifyConfigPath(config)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := notify.Load(path, nil)
	if err != nil {
		return nil, nil, err
	}
	pool, err := openMigrated(ctx)
	return cfg, pool, err
}
