package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
)

// identityFlags are how app user IDs are found. serve (the live runner), replay and
// `projections retry` must agree, so all three read the same flags and environment.
type identityFlags struct {
	mode, key string
}

func addIdentityFlags(cmd *cobra.Command) *identityFlags {
	f := &identityFlags{}
	cmd.Flags().StringVar(&f.mode, "identity", envOr("LEDGER_IDENTITY", "metadata"),
		"how app user IDs are found: metadata, customer_id or anonymous (env LEDGER_IDENTITY)")
	cmd.Flags().StringVar(&f.key, "metadata-key", envOr("LEDGER_IDENTITY_METADATA_KEY", "app_user_id"),
		"the metadata key holding the app user ID with --identity metadata (env LEDGER_IDENTITY_METADATA_KEY)")
	return f
}

func (f *identityFlags) identity() (domain.Identity, error) {
	id := domain.Identity{Mode: domain.IdentityMode(f.mode), MetadataKey: f.key}
	return id, id.Validate()
}

// checkProjection validates replay's --projection: the read models are one projection today, named so
// that more can be added without changing the command.
func checkProjection(name string) error {
	if name != projections.StateName {
		return fmt.Errorf("--projection %q: the only projection is %q (every read model)", name, projections.StateName)
	}
	return nil
}

// openResolved resolves the database and opens a pool, leaving its schema as it is (a check of
// the log must not change it).
func openResolved(ctx context.Context) (*pgxpool.Pool, error) {
	db, err := resolveDB(ctx, dbOptions{})
	if err != nil {
		return nil, err
	}
	return openPool(ctx, db.URL)
}

// openMigrated resolves the database, brings its schema up to date and opens a pool.
func openMigrated(ctx context.Context) (*pgxpool.Pool, error) {
	db, err := resolveDB(ctx, dbOptions{})
	if err != nil {
		return nil, err
	}
	if _, _, err := migrateURL(ctx, db.URL); err != nil {
		return nil, err
	}
	return openPool(ctx, db.URL)
}

func projectionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projections",
		Short: "Inspect the live projection and re-apply quarantined events",
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the projection's position, lag, active runner and quarantined events",
		Long: `status prints how far the read models are behind the log (in events and seconds), which
process runs the live projection, and every quarantined event with its error: events the read
models could not fold, and events held because they disagree with the Stripe endpoint they came
to (a live event signed with the test endpoint's secret, a connected account's event on a
platform endpoint, a platform event on a Connect endpoint), whose error starts with the reason.
It also counts the thin events (event destinations' v1.* notifications) by how the fetch of their
object stands, and lists each whose fetch failed: its attempts, last error and next attempt.
Exit code 0 when nothing needs attention, 1 when events are quarantined or a thin event's fetch
has been given up, 2 when it could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			st, err := projections.ReadStatus(cmd.Context(), pool)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			} else {
				printStatus(st)
			}
			if held := heldCount(st); held > 0 {
				return failed("%d event(s) quarantined, %d of them held because they disagree with their endpoint; "+
					"fix the cause, then: ledger projections retry --all (held ones only by name, after a look: ledger events show EVENT_ID)",
					len(st.Quarantine), held)
			}
			if len(st.Quarantine) > 0 {
				return failed("%d event(s) quarantined; fix the cause, then: ledger projections retry --all", len(st.Quarantine))
			}
			if st.Thin.Failed > 0 {
				return failed("%d thin event(s) whose object could not be fetched after every attempt; fix the cause, then: "+
					"ledger projections refetch --failed (or let ledger reconcile objects repair their objects)", st.Thin.Failed)
			}
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")

	var all bool
	retry := &cobra.Command{
		Use:   "retry [EVENT_ID...]",
		Short: "Fold quarantined events again (name them, or --all); naming a held event releases it",
		Long: `retry lets quarantined events back in and re-folds their objects. Events that still cannot
be folded go back into the quarantine with the new error. Use the same --identity as serve.

An event held because it disagrees with its endpoint (its error starts with mode_mismatch,
account_on_platform_endpoint or no_account_on_connect_endpoint) is released only when named:
the release is recorded (ledger.event_releases), the event is folded now and by every replay
after. --all retries the events that could not be folded and leaves held ones held.
Exit code 0 when every retried event was folded, 1 when some are still quarantined.`,
	}
	idf := addIdentityFlags(retry)
	retry.Flags().BoolVar(&all, "all", false, "retry every quarantined event")
	retry.RunE = func(cmd *cobra.Command, args []string) error {
		if all == (len(args) > 0) {
			return errors.New("name the events to retry, or pass --all (not both)")
		}
		id, err := idf.identity()
		if err != nil {
			return err
		}
		pool, err := openMigrated(cmd.Context())
		if err != nil {
			return err
		}
		defer pool.Close()
		res, err := projections.Retry(cmd.Context(), pool, projections.RetryConfig{EventIDs: args, Identity: id})
		if errors.Is(err, projections.ErrNotQuarantined) {
			return failed("%v", err)
		}
		if err != nil {
			return err
		}
		fmt.Printf("retried %d event(s): %d folded, %d still quarantined\n", res.Resolved+res.Failed, res.Resolved, res.Failed)
		if res.Released > 0 {
			fmt.Printf("released %d held event(s) into the read models\n", res.Released)
		}
		if res.Held > 0 {
			fmt.Printf("%d held event(s) left held: name them to release them (ledger projections status lists them)\n", res.Held)
		}
		for id, why := range res.Errors {
			fmt.Printf("  %s: %s\n", id, why)
		}
		if res.Failed > 0 {
			return failed("%d event(s) still quarantined", res.Failed)
		}
		return nil
	}
	var failedOnly bool
	refetch := &cobra.Command{
		Use:   "refetch [THIN_EVENT_ID...]",
		Short: "Fetch thin events' objects again (name them, or --failed for every one given up)",
		Long: `refetch puts thin events back in the thin fetcher's queue, due now and with their attempts
reset: the named ones (fetched, covered or failed), or with --failed every one whose fetch was
given up after its last attempt (ledger projections status lists them). The fetcher in a running
ledger serve takes them at its next pass, within a second.
Exit code 0 when every named event was queued, 1 when one is not a queued thin event.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if failedOnly == (len(args) > 0) {
				return errors.New("name the thin events to fetch again, or pass --failed (not both)")
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			n, err := reconcile.Refetch(cmd.Context(), pool, args, failedOnly)
			if errors.Is(err, reconcile.ErrNoThinEvent) {
				return failed("queued %d; %v", n, err)
			}
			if err != nil {
				return err
			}
			fmt.Printf("queued %d thin event(s) to fetch again\n", n)
			return nil
		},
	}
	refetch.Flags().BoolVar(&failedOnly, "failed", false, "every thin event whose fetch was given up")
	cmd.AddCommand(status, retry, refetch)
	return cmd
}

func printStatus(st projections.Status) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	runner := st.Runner
	if runner == "" {
		runner = "none active (is `ledger serve` running?)"
	}
	fmt.Fprintf(w, "projection\t%s\n", st.Projection)
	fmt.Fprintf(w, "position\t%d of %d\n", st.Position, st.Head)
	fmt.Fprintf(w, "lag\t%d events, %.3fs\n", st.Lag, st.LagSeconds)
	fmt.Fprintf(w, "runner\t%s\n", runner)
	fmt.Fprintf(w, "last moved\t%s\n", fmtTime(st.UpdatedAt))
	fmt.Fprintf(w, "last replay\t%s\n", fmtTime(st.RebuiltAt))
	schema := "as declared"
	if st.Schema == nil || *st.Schema != st.Declared {
		schema = fmt.Sprintf("built from other declarations: the runner rebuilds them (declared %s)", st.Declared)
	}
	fmt.Fprintf(w, "tables\t%s\n", schema)
	fmt.Fprintf(w, "ambiguous\t%d same-second group(s) of events ordered by event ID (ledger.ordering_ambiguities)\n", st.Ambiguous)
	fmt.Fprintf(w, "quarantined\t%d\n", len(st.Quarantine))
	t := st.Thin
	fmt.Fprintf(w, "thin events\t%d to fetch (%d retrying after a failure), %d failed, %d fetched, %d covered by a later fetch, %d about objects no read model holds\n",
		t.Pending, t.Retrying, t.Failed, t.Fetched, t.Covered, t.Unsupported)
	_ = w.Flush()
	if len(st.Quarantine) > 0 {
		fmt.Println()
		w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "POSITION\tEVENT\tTYPE\tOBJECT\tATTEMPTS\tERROR")
		for _, q := range st.Quarantine {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\n", q.Position, q.EventID, q.EventType, q.ObjectID, q.Attempts, strings.ReplaceAll(q.Error, "\n", " "))
		}
		_ = w.Flush()
	}
	if len(t.Failing) > 0 {
		fmt.Println()
		w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "THIN EVENT\tTYPE\tOBJECT\tSTATUS\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
		for _, f := range t.Failing {
			next := "never (given up)"
			if f.NextAt != nil {
				next = f.NextAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.EventID, f.Type, f.ObjectID, f.Status, f.Attempts, next, strings.ReplaceAll(f.LastError, "\n", " "))
		}
		_ = w.Flush()
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339) + " (" + time.Since(*t).Round(time.Second).String() + " ago)"
}

// heldCount is how many of the quarantined events are held for disagreeing with their endpoint.
func heldCount(st projections.Status) int {
	n := 0
	for _, q := range st.Quarantine {
		if q.HoldReason != nil {
			n++
		}
	}
	return n
}
