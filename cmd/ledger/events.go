package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/reconcile"
)

// eventRow is one event of the log as the events commands print it (the payload only in show).
type eventRow struct {
	Position   int64     `json:"position"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	Created    time.Time `json:"created"`
	ObjectID   string    `json:"object_id"`
	Source     string    `json:"source"`
	APIVersion string    `json:"api_version"`
	ReceivedAt time.Time `json:"received_at"`
	// Endpoint is the Stripe endpoint the webhook came to (null when not a webhook, or from before
	// endpoints were told apart); HoldReason why it disagrees with it (null when it agrees), and
	// Released whether an operator let it into the read models all the same.
	Endpoint   *string         `json:"endpoint"`
	HoldReason *string         `json:"hold_reason"`
	Released   bool            `json:"released"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	// Renderings are the event's other renderings, at other API versions (show only): the same
	// evt_ as an upgraded endpoint or the Events API sent it, kept for audit.
	Renderings []rendering `json:"renderings,omitempty"`
	// ThinFetch is where a thin event's fetch of its object stands (show only; null for other
	// events, and for a thin event the fetcher has not queued yet).
	ThinFetch *reconcile.ThinState `json:"thin_fetch,omitempty"`
}

// rendering is one other rendering of an event as show prints it.
type rendering struct {
	eventstore.Rendering
	Payload json.RawMessage `json:"payload"`
}

// eventsCmd reads the log: what arrived, from where, in which order, and each event's exact bytes.
func eventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read the event log: list events (by object, type, source, time) or show one with its exact payload",
	}
	var object, typ, source, since string
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List events in log order (newest last), filtered",
		Long: `list prints events of ledger.events in log order: position, Stripe's created, type, object,
source (webhook, reconcile, snapshot, import) and when the ledger received it.

  ledger events list --object sub_123                # an object's whole history
  ledger events list --type charge.refunded --since 72h
  ledger events list --source reconcile --json       # what reconciliation repaired

The last --limit events (default 50) that match are printed. Exit code 2 for a bad flag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 100000 {
				return fmt.Errorf("--limit %d: want 1 to 100000", limit)
			}
			if source != "" && source != "webhook" && source != "reconcile" && source != "snapshot" && source != "import" {
				return fmt.Errorf("--source %q: want webhook, reconcile, snapshot or import", source)
			}
			var after time.Time
			if since != "" {
				d, err := time.ParseDuration(since)
				if err != nil || d <= 0 {
					return fmt.Errorf("--since %q: want a positive duration such as 72h", since)
				}
				after = time.Now().Add(-d)
			}
			ctx := cmd.Context()
			pool, err := openMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			recs, err := eventstore.New(pool).List(ctx, eventstore.Filter{ObjectIDs: optional(object), Types: optional(typ),
				Source: domain.Source(source), CreatedFrom: after, Limit: limit, Latest: true})
			if err != nil {
				return fmt.Errorf("could not read the log: %w", err)
			}
			evs := make([]eventRow, 0, len(recs))
			for _, r := range recs {
				evs = append(evs, rowOf(&r))
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(evs)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POSITION\tCREATED\tTYPE\tOBJECT\tSOURCE\tEVENT\tRECEIVED")
			for _, e := range evs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Position, e.Created.UTC().Format(time.RFC3339), e.Type, e.ObjectID,
					e.Source, e.EventID, e.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z"))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&object, "object", "", "only events of this object (sub_…, ch_…, in_…)")
	list.Flags().StringVar(&typ, "type", "", "only events of this type (e.g. invoice.paid)")
	list.Flags().StringVar(&source, "source", "", "only events from webhook, reconcile, snapshot or import")
	list.Flags().StringVar(&since, "since", "", "only events Stripe created in this last duration (e.g. 72h)")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many (the latest that match)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var raw bool
	show := &cobra.Command{
		Use:   "show EVENT_ID",
		Short: "Show one event: where it sits in the log and its payload exactly as received",
		Long: `show prints an event's place in the log and its payload, the exact bytes Stripe sent (webhook)
or listed (reconcile). A webhook's endpoint is the one whose signing secret verified it; an event
held because it disagrees with its endpoint shows the reason, and whether it was released. The
same event as it arrived again at another API version (an upgraded endpoint, the Events API) is
shown after it: kept for audit, never folded. For a thin event it says where the fetch of its
object stands. --raw prints only the payload, byte for byte. Exit code 1 when the log does not
hold the event.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pool, err := openMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			r, err := eventstore.New(pool).Get(ctx, args[0])
			if errors.Is(err, eventstore.ErrNotFound) {
				return failed("the log holds no event %s", args[0])
			}
			if err != nil {
				return fmt.Errorf("could not read the log: %w", err)
			}
			e := rowOf(&r)
			e.Payload = r.Payload
			others, err := eventstore.New(pool).Renderings(ctx, r.ID)
			if err != nil {
				return err
			}
			for _, o := range others {
				e.Renderings = append(e.Renderings, rendering{o, o.Payload})
			}
			thin := domain.IsThin(e.Type)
			if thin {
				if e.ThinFetch, err = reconcile.ThinStateOf(ctx, pool, e.EventID); err != nil {
					return err
				}
			}
			if raw {
				_, err := os.Stdout.Write(e.Payload)
				return err
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(e)
			}
			fmt.Printf("event        %s\nposition     %d\ntype         %s\ncreated      %s\nobject       %s\nsource       %s\napi_version  %s\nreceived_at  %s\n",
				e.EventID, e.Position, e.Type, e.Created.UTC().Format(time.RFC3339), e.ObjectID, e.Source, e.APIVersion,
				e.ReceivedAt.UTC().Format(time.RFC3339Nano))
			if e.Endpoint != nil {
				fmt.Printf("endpoint     %s\n", *e.Endpoint)
			}
			switch {
			case e.HoldReason != nil && e.Released:
				fmt.Printf("hold         %s (released: in the read models)\n", *e.HoldReason)
			case e.HoldReason != nil:
				fmt.Printf("hold         %s (held out of the read models; release: ledger projections retry %s)\n", *e.HoldReason, e.EventID)
			}
			if thin {
				fmt.Printf("thin fetch   %s\n", thinFetchLine(e.ThinFetch))
			}
			fmt.Println()
			fmt.Println(strings.TrimRight(string(e.Payload), "\n"))
			for _, o := range e.Renderings {
				fmt.Printf("\nalso rendered at %s (%s, received %s; kept for audit, not folded)\n%s\n", o.APIVersion, o.Source,
					o.ReceivedAt.UTC().Format(time.RFC3339Nano), strings.TrimRight(string(o.Payload), "\n"))
			}
			return nil
		},
	}
	show.Flags().BoolVar(&raw, "raw", false, "print only the payload, byte for byte")
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON (payload included)")
	cmd.AddCommand(list, show)
	return cmd
}

func rowOf(r *eventstore.Record) eventRow {
	return eventRow{Position: r.Position, EventID: r.ID, Type: r.Type, Created: r.CreatedTime(), ObjectID: r.ObjectID,
		Source: string(r.Source), APIVersion: r.APIVersion, ReceivedAt: r.ReceivedAt,
		Endpoint: orNull(string(r.Endpoint)), HoldReason: orNull(r.HoldReason), Released: r.Released}
}

// orNull is v, or null for "".
func orNull(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// optional is a one-value filter, or none for "".
func optional(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

// thinFetchLine says where a thin event's fetch stands, for show.
func thinFetchLine(s *reconcile.ThinState) string {
	if s == nil {
		return "not queued yet (the thin fetcher runs in ledger serve when STRIPE_SECRET_KEY is set)"
	}
	at := func(t *time.Time) string {
		if t == nil {
			return "?"
		}
		return t.UTC().Format(time.RFC3339)
	}
	switch s.Status {
	case "fetched":
		return fmt.Sprintf("fetched at %s: snapshot %s", at(s.DoneAt), domain.Deref(s.SnapshotID))
	case "covered":
		return fmt.Sprintf("covered by the fetch for %s", domain.Deref(s.CoveredBy))
	case "failed":
		return fmt.Sprintf("given up after %d attempt(s): %s (ledger projections refetch to try again)", s.Attempts, domain.Deref(s.LastError))
	case "unsupported":
		return "not fetched: no read model holds its object"
	}
	if s.Attempts > 0 {
		return fmt.Sprintf("pending, %d attempt(s) failed, next at %s: %s", s.Attempts, at(s.NextAt), domain.Deref(s.LastError))
	}
	return "pending"
}
