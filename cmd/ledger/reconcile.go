package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/reconcile"
)

// stripeConfig is how every command reaches Stripe:
//
//	STRIPE_SECRET_KEY        a key (sk_… or rk_…), or a live and a test key separated by a comma
//	STRIPE_SECRET_KEY_TEST   the test key on its own (with a live key in STRIPE_SECRET_KEY)
//	STRIPE_CONNECT_ACCOUNTS  auto (default: GET /v1/accounts), none, or acct_a,acct_b
//	STRIPE_RATE_LIMIT_LIVE   requests a second per live key (default 90; Stripe allows 100)
//	STRIPE_RATE_LIMIT_TEST   requests a second per test key (default 22; Stripe allows 25)
//	STRIPE_API_BASE          the simulator or stripe-mock instead of api.stripe.com
//
// The keys are checked when set (one per mode, by prefix): a bad configuration is an error naming
// the variable, never the key, and the command exits 2.
func stripeConfig() (reconcile.StripeConfig, error) {
	cfg := reconcile.StripeConfig{APIKey: os.Getenv("STRIPE_SECRET_KEY"), TestKey: os.Getenv("STRIPE_SECRET_KEY_TEST"),
		APIBase: os.Getenv("STRIPE_API_BASE"), Accounts: os.Getenv("STRIPE_CONNECT_ACCOUNTS")}
	for _, v := range []struct {
		name string
		to   *float64
	}{{"STRIPE_RATE_LIMIT_LIVE", &cfg.LiveRateLimit}, {"STRIPE_RATE_LIMIT_TEST", &cfg.TestRateLimit}} {
		if s := os.Getenv(v.name); s != "" {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f <= 0 {
				return cfg, fmt.Errorf("%s %q: want requests a second, a number above 0", v.name, s)
			}
			*v.to = f
		}
	}
	switch a := strings.TrimSpace(cfg.Accounts); {
	case a == "", a == "auto", a == "none":
	default:
		for acct := range strings.SplitSeq(a, ",") {
			if !strings.HasPrefix(strings.TrimSpace(acct), "acct_") {
				return cfg, fmt.Errorf("STRIPE_CONNECT_ACCOUNTS: %q is not an account ID (want auto, none or acct_a,acct_b)", strings.TrimSpace(acct))
			}
		}
	}
	if !cfg.Configured() {
		return cfg, nil
	}
	if _, err := cfg.Keys(); err != nil {
		return cfg, err
	}
	if strings.TrimSpace(cfg.APIKey) == "" {
		// Only a test key: it is the key (the API and serve look at APIKey to know one is set).
		cfg.APIKey, cfg.TestKey = cfg.TestKey, ""
	}
	return cfg, nil
}

// scopeFlags limit a run to some modes and accounts.
func scopeFlags(livemode, account string) (reconcile.ScopeFilter, error) {
	var f reconcile.ScopeFilter
	switch livemode {
	case "", "all":
	case "true", "live":
		f.Livemode = new(bool)
		*f.Livemode = true
	case "false", "test":
		f.Livemode = new(bool)
	default:
		return f, fmt.Errorf("--livemode %q: want true (live), false (test) or all", livemode)
	}
	a, err := reconcile.ParseAccountFilter(account)
	if err != nil {
		return f, fmt.Errorf("--account: %w", err)
	}
	f.Account = a
	return f, nil
}

// parseTime reads a flag's time: RFC 3339 or a date (UTC midnight).
func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--%s %q: want a date (2026-05-01) or an RFC 3339 time (2026-05-01T12:00:00Z)", flag, s)
}

func reconcileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Compare the ledger with Stripe and repair it by appending (run, runs)",
	}
	var job, since, from, to, livemode, account string
	var dryRun, asJSON bool
	run := &cobra.Command{
		Use:   "run [job]",
		Short: "Run a reconciliation job now",
		Long: `run runs one job (or all of them; the job as an argument or --job) and records it in
ledger.reconcile_runs:

  events       list Stripe's events over a window (default: since the last proven window, at
               most 30 days) and append the ones missing from the log, as Stripe returned them
  events-fast  the same over events Stripe could not deliver (delivery_success=false)
  objects      compare subscriptions, charges and invoices with the ledger field by field; append
               a snapshot event for drift no event still in Stripe explains
  balance      fetch balance transactions (Stripe sends no events for them): every payout's
               (GET /v1/balance_transactions?payout=, payouts the ledger holds and those Stripe
               lists created since --from, default 30 days), then those of charges, refunds and
               disputes the ledger has none for; append them as snapshot events. A payout whose
               transactions do not add up to it is a finding (exit 1), not an error
  endpoints    report webhook endpoints that are disabled, miss event types or use another API
               version

Every job runs per scope: each configured mode (a key per mode: STRIPE_SECRET_KEY holds a live
and a test key separated by a comma, or the test key goes in STRIPE_SECRET_KEY_TEST) and each
account in it — the platform's own, and the connected accounts STRIPE_CONNECT_ACCOUNTS names (auto,
the default, lists them with GET /v1/accounts; none skips them), read with the Stripe-Account
header. --livemode and --account limit a run. Each scope has its own window and cursor; a scope
Stripe refuses (403 for an account the platform lost) is recorded as failed and the run, partial,
goes on with the others. A run that is cancelled or dies is resumed from its cursors by the next
run of the job. STRIPE_API_BASE points at the simulator or stripe-mock.
Exit code 0 when the ledger now agrees with Stripe, 1 when something is left (a dry run's
findings, unhealthy endpoints, a partial run), 2 when the run could not be made.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if cmd.Flags().Changed("job") && job != args[0] {
					return fmt.Errorf("job %q and --job %q: name one", args[0], job)
				}
				job = args[0]
			}
			jobs := reconcile.Jobs
			if job != "all" {
				j, err := reconcile.ParseJob(job)
				if err != nil {
					return err
				}
				jobs = []reconcile.Job{j}
			}
			f, err := parseTime("from", from)
			if err != nil {
				return err
			}
			t, err := parseTime("to", to)
			if err != nil {
				return err
			}
			if since != "" {
				if from != "" {
					return errors.New("--since and --from go separately")
				}
				d, err := time.ParseDuration(since)
				if err != nil || d <= 0 {
					return fmt.Errorf("--since %q: want a duration such as 96h", since)
				}
				f = time.Now().UTC().Add(-d)
			}
			scopes, cfg, pool, err := openReconcile(cmd.Context(), livemode, account)
			if err != nil {
				return err
			}
			defer pool.Close()
			r := reconcile.New(pool, reconcile.Config{Stripe: cfg, WebhookURL: os.Getenv("LEDGER_WEBHOOK_URL"),
				Logger: newLogger(slog.LevelWarn)})
			var left []string
			var runs []reconcile.Run
			for _, j := range jobs {
				res, err := r.Run(cmd.Context(), reconcile.Options{Job: j, From: f, To: t, DryRun: dryRun, Scopes: scopes})
				if err != nil && res.Status == "partial" {
					runs = append(runs, res)
					left = append(left, string(j))
					continue
				}
				if err != nil {
					if res.ID != 0 && !asJSON {
						printRuns([]reconcile.Run{res})
					}
					return err
				}
				runs = append(runs, res)
				if res.Status == "partial" || (dryRun && (res.MissingFound > 0 || len(res.Drift) > 0)) ||
					(j == reconcile.JobEndpoints && len(res.Drift) > 0) || (j == reconcile.JobBalance && res.Drift["payouts.mismatch"] > 0) {
					left = append(left, string(j))
				}
			}
			if asJSON {
				if err := json.NewEncoder(os.Stdout).Encode(runs); err != nil {
					return err
				}
			} else {
				printRuns(runs)
				for _, r := range runs {
					printFindings(r)
				}
			}
			if len(left) > 0 {
				return failed("findings left by %s (ledger reconcile runs --json shows them)", strings.Join(left, ", "))
			}
			return nil
		},
	}
	run.Flags().StringVar(&job, "job", "events", "events, events-fast, objects, balance, endpoints or all")
	run.Flags().StringVar(&since, "since", "", "check events created in this last duration (e.g. 96h)")
	run.Flags().StringVar(&from, "from", "", "check events (balance: payouts) created from this time (date or RFC 3339; events at most 30 days back)")
	run.Flags().StringVar(&to, "to", "", "check events created up to this time (default now)")
	run.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be repaired; append nothing")
	run.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	run.Flags().StringVar(&livemode, "livemode", "all", "only this mode: true (live), false (test) or all")
	run.Flags().StringVar(&account, "account", "all", "only this account: acct_…, platform (the platform's own) or all")

	var limit int
	var runsJob string
	runs := &cobra.Command{
		Use:   "runs",
		Short: "List recent reconciliation runs (newest first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var j reconcile.Job
			if runsJob != "" {
				var err error
				if j, err = reconcile.ParseJob(runsJob); err != nil {
					return err
				}
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			list, err := reconcile.ListRuns(cmd.Context(), pool, j, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(list)
			}
			printRuns(list)
			return nil
		},
	}
	runs.Flags().IntVar(&limit, "limit", 20, "how many runs")
	runs.Flags().StringVar(&runsJob, "job", "", "only this job")
	runs.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON, findings included")
	cmd.AddCommand(run, runs)
	return cmd
}

func printRuns(runs []reconcile.Run) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tJOB\tSTATUS\tTRIGGER\tSTARTED\tTOOK\tWINDOW\tREQUESTS\t429s\tSEEN\tMISSING\tREPAIRED\tDRIFT")
	for _, r := range runs {
		window := "—"
		if r.WindowFrom != nil && r.WindowTo != nil {
			window = r.WindowFrom.UTC().Format("2006-01-02T15:04") + ".." + r.WindowTo.UTC().Format("2006-01-02T15:04")
		}
		status := r.Status
		if r.DryRun {
			status += " (dry run)"
		}
		var drift []string
		for k, v := range r.Drift {
			drift = append(drift, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(drift)
		d := strings.Join(drift, " ")
		if d == "" {
			d = "—"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.Job, status, r.Trigger,
			r.StartedAt.UTC().Format(time.RFC3339), r.Duration().Round(time.Millisecond), window, r.Requests, r.RateLimited,
			r.EventsSeen, r.MissingFound, r.Repaired, d)
		if r.Error != "" {
			fmt.Fprintf(w, "\terror: %s\n", r.Error)
		}
		for _, s := range r.Scopes {
			line := fmt.Sprintf("\t%s %s: seen %d, missing %d, repaired %d, objects %d, requests %d", s.Scope(), s.Status,
				s.EventsSeen, s.MissingFound, s.Repaired, s.ObjectsChecked, s.Requests)
			if s.Error != "" {
				line += " — " + s.Error
			}
			fmt.Fprintln(w, line)
		}
	}
	_ = w.Flush()
}

// printFindings lists a run's findings, at most 20.
func printFindings(r reconcile.Run) {
	var findings []map[string]any
	if json.Unmarshal(r.Findings, &findings) != nil || len(findings) == 0 {
		return
	}
	fmt.Printf("\nrun %d (%s) findings:\n", r.ID, r.Job)
	for i, f := range findings {
		if i == 20 {
			fmt.Printf("  … %d more: ledger reconcile runs --json\n", len(findings)-20)
			break
		}
		b, _ := json.Marshal(f)
		fmt.Printf("  %s\n", b)
	}
}

func endpointsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "endpoints",
		Short: "Set up the Stripe webhook endpoint the ledger needs",
	}
	var url, mode string
	var connect bool
	setup := &cobra.Command{
		Use:   "setup --url URL [--livemode true|false] [--connect]",
		Short: "Create or update the webhook endpoint at URL with the events the read models need",
		Long: `setup makes sure Stripe has an enabled webhook endpoint at URL subscribed to every event type
the read models fold, at API version 2023-10-16. An existing endpoint at URL and that version is
updated; otherwise one is created and its signing secret printed — once: Stripe shows it only at
creation. It names the variable to add it to: STRIPE_WEBHOOK_SECRET_LIVE or _TEST for the
platform's endpoint of that mode, STRIPE_WEBHOOK_SECRET_CONNECT_LIVE or _CONNECT_TEST for the
Connect endpoint (--connect: connected accounts' events), comma-separated during a roll. The mode
is --livemode's (that mode's key from STRIPE_SECRET_KEY), else the first key's. A platform sets up
four: each mode's endpoint and Connect endpoint. An endpoint at URL with another API version
cannot be changed; setup creates a new one and names the old one to delete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := stripeConfig()
			if err != nil {
				return err
			}
			setup := reconcile.Setup{URL: url, Connect: connect}
			if mode != "" {
				live, err := strconv.ParseBool(mode)
				if err != nil {
					return fmt.Errorf("--livemode %q: want true or false", mode)
				}
				setup.Livemode = &live
			}
			res, err := reconcile.SetupEndpoint(cmd.Context(), cfg, setup)
			if err != nil {
				return err
			}
			ep := res.Endpoint
			if !res.Created {
				fmt.Printf("updated %s: %s, enabled, %d event types, API version %s; its signing secret is unchanged\n",
					ep.ID, ep.URL, len(ep.EnabledEvents), ep.APIVersion)
				return nil
			}
			fmt.Printf("created %s: %s, %d event types, API version %s\n", ep.ID, ep.URL, len(ep.EnabledEvents), ep.APIVersion)
			fmt.Printf("signing secret (shown once; add it to %s): %s\n", res.Variable, res.Secret)
			if res.Replaces != "" {
				fmt.Printf("%s at the same URL uses another API version: delete it once events arrive through %s\n", res.Replaces, ep.ID)
			}
			return nil
		},
	}
	setup.Flags().StringVar(&url, "url", os.Getenv("LEDGER_WEBHOOK_URL"), "the public URL of POST /webhooks/stripe (env LEDGER_WEBHOOK_URL)")
	setup.Flags().StringVar(&mode, "livemode", "", "the endpoint's mode, true or false (default: the first key's)")
	setup.Flags().BoolVar(&connect, "connect", false, "the Connect endpoint: connected accounts' events (Stripe's connect=true)")
	cmd.AddCommand(setup)
	return cmd
}

// openReconcile is what a reconciling command starts with: the scopes its --livemode and
// --account flags ask for, the Stripe configuration from the environment (an error without a
// key) and the migrated database.
func openReconcile(ctx context.Context, livemode, account string) (reconcile.ScopeFilter, reconcile.StripeConfig, *pgxpool.Pool, error) {
	scopes, err := scopeFlags(livemode, account)
	if err != nil {
		return scopes, reconcile.StripeConfig{}, nil, err
	}
	cfg, err := stripeConfig()
	if err != nil {
		return scopes, cfg, nil, err
	}
	if !cfg.Configured() {
		return scopes, cfg, nil, reconcile.ErrNoAPIKey
	}
	pool, err := openMigrated(ctx)
	return scopes, cfg, pool, err
}
