package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/reconcile"
)

// stripeConfig is how every command reaches Stripe: STRIPE_SECRET_KEY and STRIPE_API_BASE.
func stripeConfig() reconcile.StripeConfig {
	return reconcile.StripeConfig{APIKey: os.Getenv("STRIPE_SECRET_KEY"), APIBase: os.Getenv("STRIPE_API_BASE")}
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
	var job, since, from, to string
	var dryRun, asJSON bool
	run := &cobra.Command{
		Use:   "run",
		Short: "Run a reconciliation job now",
		Long: `run runs one job (or all of them) and records it in ledger.reconcile_runs:

  events       list Stripe's events over a window (default: since the last proven window, at
               most 30 days) and append the ones missing from the log, as Stripe returned them
  events-fast  the same over events Stripe could not deliver (delivery_success=false)
  objects      compare subscriptions, charges and invoices with the ledger field by field; append
               a snapshot event for drift no event still in Stripe explains
  endpoints    report webhook endpoints that are disabled, miss event types or use another API
               version

Needs STRIPE_SECRET_KEY (and STRIPE_API_BASE for the simulator or stripe-mock). A run that is
cancelled or dies is resumed from its cursor by the next run of the job.
Exit code 0 when the ledger now agrees with Stripe, 1 when something is left (a dry run's
findings, unhealthy endpoints, a partial run), 2 when the run could not be made.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			cfg := stripeConfig()
			if cfg.APIKey == "" {
				return reconcile.ErrNoAPIKey
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			r := reconcile.New(pool, reconcile.Config{Stripe: cfg, WebhookURL: os.Getenv("LEDGER_WEBHOOK_URL"),
				Logger: newLogger(slog.LevelWarn)})
			var left []string
			var runs []reconcile.Run
			for _, j := range jobs {
				res, err := r.Run(cmd.Context(), reconcile.Options{Job: j, From: f, To: t, DryRun: dryRun})
				if err != nil {
					if res.ID != 0 && !asJSON {
						printRuns([]reconcile.Run{res})
					}
					return err
				}
				runs = append(runs, res)
				if res.Status == "partial" || (dryRun && (res.MissingFound > 0 || len(res.Drift) > 0)) ||
					(j == reconcile.JobEndpoints && len(res.Drift) > 0) {
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
	run.Flags().StringVar(&job, "job", "events", "events, events-fast, objects, endpoints or all")
	run.Flags().StringVar(&since, "since", "", "check events created in this last duration (e.g. 96h)")
	run.Flags().StringVar(&from, "from", "", "check events created from this time (date or RFC 3339; at most 30 days back)")
	run.Flags().StringVar(&to, "to", "", "check events created up to this time (default now)")
	run.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be repaired; append nothing")
	run.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")

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
	var url string
	setup := &cobra.Command{
		Use:   "setup --url URL",
		Short: "Create or update the webhook endpoint at URL with the events the read models need",
		Long: `setup makes sure Stripe has an enabled webhook endpoint at URL subscribed to every event type
the read models fold, at API version 2023-10-16. An existing endpoint at URL and that version is
updated; otherwise one is created and its signing secret printed — once: Stripe shows it only at
creation. Add it to STRIPE_WEBHOOK_SECRET (comma-separated during a roll). An endpoint at URL with
another API version cannot be changed; setup creates a new one and names the old one to delete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := reconcile.SetupEndpoint(cmd.Context(), stripeConfig(), url)
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
			fmt.Printf("signing secret (shown once; add it to STRIPE_WEBHOOK_SECRET): %s\n", res.Secret)
			if res.Replaces != "" {
				fmt.Printf("%s at the same URL uses another API version: delete it once events arrive through %s\n", res.Replaces, ep.ID)
			}
			return nil
		},
	}
	setup.Flags().StringVar(&url, "url", os.Getenv("LEDGER_WEBHOOK_URL"), "the public URL of POST /webhooks/stripe (env LEDGER_WEBHOOK_URL)")
	cmd.AddCommand(setup)
	return cmd
}
