package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/notify"
)

func init() {
	notifySubcommands = append(notifySubcommands, notifyDeliveriesCmd, notifyRetryCmd)
}

func notifyDeliveriesCmd() *cobra.Command {
	var rule, status, since, format string
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List notifications newest first: rule, event, channel, attempts, status, latency, last error",
		Long: `deliveries lists the outbox (ledger.notify_outbox) newest first. Latency is from the event's
creation at Stripe to the channel's acceptance. A failed row shows its last error; ` + "`ledger notify retry`" + `
sends it again. Exit 2 for a bad filter.`,
		Example: `  ledger notify deliveries --status failed
  ledger notify deliveries --rule payments --since 24h --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := notify.DeliveryFilter{Rule: rule, Status: status, Limit: limit}
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: want table or json", format)
			}
			if since != "" {
				t, err := parseSince(since)
				if err != nil {
					return err
				}
				f.Since = t
			}
			ctx := cmd.Context()
			pool, err := openMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			list, err := notify.Deliveries(ctx, pool, f)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				for _, d := range list {
					if err := enc.Encode(d); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRULE\tEVENT\tCHANNEL\tATTEMPTS\tSTATUS\tLATENCY\tLAST ERROR")
			for _, d := range list {
				latency := "-"
				if d.LatencyMS != nil {
					latency = (time.Duration(*d.LatencyMS) * time.Millisecond).String()
				}
				lastErr := "-"
				if d.LastError != nil {
					lastErr = *d.LastError
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Rule, d.EventID, d.Channel, d.Attempts, d.Status, latency, lastErr)
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&rule, "rule", "", "only this rule")
	fl.StringVar(&status, "status", "", "only this status: "+strings.Join(notify.Statuses, ", "))
	fl.StringVar(&since, "since", "", "enqueued from then on: RFC 3339, a date, or a duration such as 24h")
	fl.IntVar(&limit, "limit", 100, "at most this many rows (1 to 1000)")
	fl.StringVar(&format, "format", "table", "table or json (one object a line)")
	return cmd
}

func notifyRetryCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "retry ID... | --all-failed",
		Short: "Send failed notifications again",
		Long: `retry puts failed notifications back in the outbox, due now, with their attempts counted afresh;
the running deliverer sends them within its poll interval. When a named notification is not
failed (or does not exist) nothing is retried and the exit code is 1.`,
		Example: `  ledger notify retry 41 42
  ledger notify retry --all-failed`,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := notify.RetryRequest{AllFailed: all}
			for _, a := range args {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil || id <= 0 {
					return fmt.Errorf("%q is not a notification ID (the ID column of ledger notify deliveries)", a)
				}
				req.IDs = append(req.IDs, id)
			}
			if all == (len(req.IDs) > 0) {
				return errors.New("name the notifications to retry, or give --all-failed, not both")
			}
			ctx := cmd.Context()
			pool, err := openMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			ids, err := notify.Retry(ctx, pool, req, time.Now())
			if errors.Is(err, notify.ErrNotFailed) {
				return failed("%v", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d notifications to be sent again: %v\n", len(ids), ids)
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all-failed", false, "every failed notification")
	return cmd
}

// startNotifyDeliverer sends the outbox's rows to the config's channels under the deliverer's
// lease until ctx ends; the channel closes when it has stopped. A channel whose variable is
// unset was refused when the config loaded.
func startNotifyDeliverer(ctx context.Context, pool *pgxpool.Pool, cfg *notify.Config, reg prometheus.Registerer, log *slog.Logger) (<-chan struct{}, error) {
	channels, err := notify.NewChannels(cfg.Channels, notify.ChannelOptions{Getenv: os.Getenv})
	if err != nil {
		return nil, err
	}
	poll := 100 * time.Millisecond
	if v := os.Getenv("LEDGER_NOTIFY_POLL"); v != "" {
		if poll, err = time.ParseDuration(v); err != nil || poll <= 0 {
			return nil, fmt.Errorf("LEDGER_NOTIFY_POLL %q: want a positive duration such as 100ms", v)
		}
	}
	d, err := notify.NewDeliverer(pool, notify.DelivererConfig{Channels: channels, PollInterval: poll,
		Logger: log, Metrics: notify.NewDeliveryMetrics(reg)})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	return done, nil
}
