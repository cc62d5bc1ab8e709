package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
)

// queryFlags are the flags `ledger query` takes: every list filter a read model declares, and the
// list and metric parameters, each named as the API's query parameter with - for _.
func queryFlags() []string {
	names := []string{"created-gte", "created-lt", "as-of", "known-at", "from", "to", "interval", "currency", "livemode", "account", "reporting"}
	for _, m := range projections.Models {
		for _, f := range m.Filters {
			if n := strings.ReplaceAll(f, "_", "-"); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// queryCmd answers from the read models with package query, which the HTTP API serves too: the
// CLI takes exactly the API's parameters and gives exactly its answers.
func queryCmd() *cobra.Command {
	var format string
	var all bool
	var limit int
	var idf *identityFlags
	filters := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "query RESOURCE | METRIC | metrics NAME",
		Short: "Query the read models and metrics (" + strings.Join(query.ResourceNames(), ", ") + "; " + strings.Join(query.MetricNames(), ", ") + ")",
		Long: `query answers what the HTTP API answers, from the database directly:

  ledger query subscriptions --status active --currency usd
  ledger query charges --created-gte 2026-05-01 --created-lt 2026-06-01 --format csv > may.csv
  ledger query subscriptions --as-of 2026-05-31T23:59:59Z      # Stripe's timeline at that moment
  ledger query charges --known-at position:120000               # what the ledger knew at that log position
  ledger query charges --as-of 2026-05-31 --known-at 2026-06-01T09:00:00Z   # May's end, as known on June 1st
  ledger query mrr --known-at position:120000                   # the MRR series as the ledger knew it
  ledger query mrr --interval month --from 2026-01-01
  ledger query metrics refunds --interval day
  ledger query mrr --livemode false                              # test mode
  ledger query mrr --account all                                 # each connected account, and the total
  ledger query mrr --reporting true                              # in LEDGER_REPORTING_CURRENCY
  ledger query subscribers --interval month                      # churn rates, ARPA, LTV, quick ratio
  ledger query cohorts --from 2026-01-01                         # NRR and GRR by monthly cohort
  ledger query charges --account acct_1Nv0FGQ9RKHgCVdK --livemode true

Metrics are of one mode and one account: live mode and the platform's own account unless
--livemode false (test mode) or --account acct_… / all (every account, one row each, plus rows
with account "all" adding them up per currency). Live and test mode are never added together.
Lists show both modes and every account unless filtered; each row says its livemode and account.

Money is integer minor units with the currency beside it; absent values are empty (JSON null).
--format table (default), csv or json. Exit code 2 with the API's message for a bad filter.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			metric, model := "", (*projections.Model)(nil)
			switch {
			case args[0] == "metrics" && len(args) == 2:
				metric = args[1]
			case len(args) == 1:
				if _, ok := query.MetricColumns(args[0]); ok {
					metric = args[0]
				} else if m, ok := query.Resource(args[0]); ok {
					model = m
				}
			}
			if metric == "" && model == nil {
				return fmt.Errorf("nothing to query as %q: try %s, %s or metrics NAME", strings.Join(args, " "),
					strings.Join(query.ResourceNames(), ", "), strings.Join(query.MetricNames(), ", "))
			}
			if format != "table" && format != "csv" && format != "json" {
				return fmt.Errorf("--format %q: want table, csv or json", format)
			}
			v := url.Values{}
			for name, val := range filters {
				if *val != "" {
					v.Set(strings.ReplaceAll(name, "-", "_"), *val)
				}
			}
			identity, err := idf.identity()
			if err != nil {
				return err
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			fx, err := fxFromEnv()
			if err != nil {
				return err
			}
			q := query.New(pool, query.Config{Identity: identity, FX: fx})
			if metric != "" {
				return queryMetric(cmd, q, metric, v, format)
			}
			l, err := query.ParseList(model, v)
			if err != nil {
				return badQuery(err)
			}
			if limit < 1 || limit > 1000 {
				return fmt.Errorf("--limit %d: want 1 to 1000", limit)
			}
			l.Limit = limit
			if format == "csv" {
				w := csv.NewWriter(os.Stdout)
				safe, header := query.CSVSafe(model), true
				if err := q.Rows(cmd.Context(), l, func(cells []string) error {
					if !header {
						safe(cells) // as the API's CSV: formulas in text cells neutralised
					}
					header = false
					return w.Write(cells)
				}); err != nil {
					return badQuery(err)
				}
				w.Flush()
				return w.Error()
			}
			var rows []map[string]json.RawMessage
			for {
				p, err := q.Page(cmd.Context(), l)
				if err != nil {
					return badQuery(err)
				}
				if err := appendObjects(&rows, p.Data); err != nil {
					return err
				}
				if !all || !p.HasMore {
					if p.HasMore {
						fmt.Fprintf(os.Stderr, "more rows: --all for every one, or --limit\n")
					}
					break
				}
				if l.After, err = query.DecodeCursor(p.NextCursor); err != nil {
					return err
				}
			}
			if format == "json" {
				return printJSON(rows)
			}
			return printTable(model.Brief, rows)
		},
	}
	f := cmd.Flags()
	for _, name := range queryFlags() {
		filters[name] = f.String(name, "", "filter: "+strings.ReplaceAll(name, "-", "_")+" (as the API's query parameter)")
	}
	f.StringVar(&format, "format", "table", "table, csv or json")
	f.IntVar(&limit, "limit", 100, "rows per page (lists)")
	f.BoolVar(&all, "all", false, "every page, not only the first (lists)")
	idf = addIdentityFlags(cmd)
	cmd.AddCommand(queryPayoutsCmd())
	return cmd
}

func queryMetric(cmd *cobra.Command, q *query.Queries, name string, v url.Values, format string) error {
	m, err := query.ParseMetric(name, v, time.Now())
	if err != nil {
		return badQuery(err)
	}
	ans, err := q.Answer(cmd.Context(), m)
	if err != nil {
		return err
	}
	data := ans.Data
	// What the rows cannot say goes to stderr, whatever the format, so a pipe keeps clean rows.
	if name != "revenue" && name != "refunds" {
		fmt.Fprintf(os.Stderr, "# unvalued: %d (subscriptions whose MRR could not be valued are left out)\n", ans.Unvalued)
	}
	if ans.Reporting != "" {
		fmt.Fprintf(os.Stderr, "# in %s, rates of the %s; missing rates: %s\n", ans.Reporting, map[string]string{query.FXPeriodStart: "movements' period start", query.FXReportDate: "report date"}[ans.RateDate], query.MissingRatesText(ans))
	}
	if format == "csv" {
		rows := query.SeriesRows(m, data)
		for _, row := range rows[1:] {
			row[1] = query.SpreadsheetSafe(row[1]) // currency, the one text column
		}
		return csv.NewWriter(os.Stdout).WriteAll(rows)
	}
	var rows []map[string]json.RawMessage
	if err := appendObjects(&rows, data); err != nil {
		return err
	}
	if format == "json" {
		return printJSON(rows)
	}
	cols := query.SeriesHeader(m)
	sort.Strings(cols[4:])
	fmt.Fprintln(os.Stderr, "# "+m.Scope.Describe())
	return printTable(cols, rows)
}

// appendObjects decodes JSON objects (a page's or a series' data) for printing.
func appendObjects(rows *[]map[string]json.RawMessage, data []json.RawMessage) error {
	for _, d := range data {
		var row map[string]json.RawMessage
		if err := json.Unmarshal(d, &row); err != nil {
			return err
		}
		*rows = append(*rows, row)
	}
	return nil
}

// badQuery turns a request the query package refused into a message (exit code 2).
func badQuery(err error) error {
	var br *query.BadRequest
	if errors.As(err, &br) {
		return errors.New(br.Message)
	}
	return err
}

func printJSON(rows []map[string]json.RawMessage) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if rows == nil {
		rows = []map[string]json.RawMessage{}
	}
	return enc.Encode(rows)
}

func printTable(cols []string, rows []map[string]json.RawMessage) error {
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
}
