package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/api"
)

// tableColumns are what `--format table` shows of each list (csv and json show every column).
var tableColumns = map[string][]string{
	"subscriptions": {"id", "customer", "app_user_id", "status", "currency", "mrr", "current_period_end", "created"},
	"charges":       {"id", "customer", "status", "currency", "amount", "amount_refunded", "dispute_status", "created"},
	"invoices":      {"id", "customer", "subscription", "status", "currency", "total", "amount_paid", "created"},
	"refunds":       {"id", "charge", "status", "currency", "amount", "reason", "created"},
	"disputes":      {"id", "charge", "status", "currency", "amount", "reason", "created"},
	"customers":     {"id", "email", "name", "currency", "deleted", "created"},
}

var metricNames = []string{"mrr", "revenue", "churn", "movements"}

// queryCmd answers from the read models through the API's own handlers, in process: the CLI
// takes exactly the API's filters and gives exactly its answers.
func queryCmd() *cobra.Command {
	var format string
	var all bool
	var limit int
	filters := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "query RESOURCE | METRIC | metrics NAME",
		Short: "Query the read models and metrics (subscriptions, charges, invoices, refunds, disputes, customers; mrr, revenue, churn, movements)",
		Long: `query answers what the HTTP API answers, from the database directly:

  ledger query subscriptions --status active --currency usd
  ledger query charges --created-gte 2026-05-01 --created-lt 2026-06-01 --format csv > may.csv
  ledger query subscriptions --as-of 2026-05-31T23:59:59Z      # the state at that moment, from the log
  ledger query mrr --interval month --from 2026-01-01
  ledger query metrics refunds --interval day

Money is integer minor units with the currency beside it. --format table (default), csv or json.
Exit code 2 with the API's message for a bad filter.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, resource := "", ""
			switch {
			case args[0] == "metrics" && len(args) == 2:
				path = "/api/v1/metrics/" + args[1]
			case len(args) == 1 && contains(metricNames, args[0]):
				path = "/api/v1/metrics/" + args[0]
			case len(args) == 1 && tableColumns[args[0]] != nil:
				path, resource = "/api/v1/"+args[0], args[0]
			default:
				return fmt.Errorf("nothing to query as %q: try subscriptions, charges, invoices, refunds, disputes, customers, mrr, revenue, churn, movements or metrics NAME", strings.Join(args, " "))
			}
			if format != "table" && format != "csv" && format != "json" {
				return fmt.Errorf("--format %q: want table, csv or json", format)
			}
			q := url.Values{}
			for name, v := range filters {
				if *v != "" {
					q.Set(strings.ReplaceAll(name, "-", "_"), *v)
				}
			}
			if resource != "" && format != "csv" { // CSV streams every row
				q.Set("limit", fmt.Sprint(limit))
			}
			if format == "csv" {
				q.Set("format", "csv")
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			h := api.New(pool, api.Config{})
			call := func(u string) (*http.Response, error) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequestWithContext(cmd.Context(), http.MethodGet, u, nil))
				resp := rec.Result()
				if resp.StatusCode != http.StatusOK {
					var e struct{ Error struct{ Message string } }
					_ = json.NewDecoder(resp.Body).Decode(&e)
					return nil, errors.New(e.Error.Message)
				}
				return resp, nil
			}
			if format == "csv" {
				resp, err := call(path + "?" + q.Encode())
				if err != nil {
					return err
				}
				_, err = io.Copy(os.Stdout, resp.Body)
				return err
			}
			var rows []map[string]json.RawMessage
			for {
				resp, err := call(path + "?" + q.Encode())
				if err != nil {
					return err
				}
				var page struct {
					Data       []map[string]json.RawMessage `json:"data"`
					HasMore    bool                         `json:"has_more"`
					NextCursor string                       `json:"next_cursor"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
					return err
				}
				rows = append(rows, page.Data...)
				if !all || !page.HasMore {
					if page.HasMore {
						fmt.Fprintf(os.Stderr, "more rows: --all for every one, or --limit\n")
					}
					break
				}
				q.Set("cursor", page.NextCursor)
			}
			if format == "json" {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if rows == nil {
					rows = []map[string]json.RawMessage{}
				}
				return enc.Encode(rows)
			}
			cols := tableColumns[resource]
			if resource == "" && len(rows) > 0 {
				cols = []string{"period", "currency"}
				for k := range rows[0] {
					if k != "period" && k != "currency" {
						cols = append(cols, k)
					}
				}
				sort.Strings(cols[2:])
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, strings.ToUpper(strings.Join(cols, "\t")))
			for _, r := range rows {
				vals := make([]string, len(cols))
				for i, c := range cols {
					var v any
					_ = json.Unmarshal(r[c], &v)
					switch x := v.(type) {
					case nil:
						vals[i] = ""
					case string:
						vals[i] = x
					default:
						vals[i] = strings.Trim(string(r[c]), `"`)
					}
				}
				fmt.Fprintln(w, strings.Join(vals, "\t"))
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	for _, name := range []string{"status", "customer", "app-user-id", "currency", "email", "subscription", "charge", "invoice",
		"created-gte", "created-lt", "as-of", "from", "to", "interval"} {
		filters[name] = f.String(name, "", "filter: "+strings.ReplaceAll(name, "-", "_")+" (as the API's query parameter)")
	}
	f.StringVar(&format, "format", "table", "table, csv or json")
	f.IntVar(&limit, "limit", 100, "rows per page (lists)")
	f.BoolVar(&all, "all", false, "every page, not only the first (lists)")
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
