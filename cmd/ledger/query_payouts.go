package main

import (
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/query"
)

// queryPayoutsCmd is `ledger query payouts`: the payout reconciliation, as GET
// /api/v1/payouts/reconciliation (and /{id}, /unreconciled) answers it.
func queryPayoutsCmd() *cobra.Command {
	var format, payout, kind string
	var unreconciled, all bool
	flags := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "payouts",
		Short: "Payout reconciliation: each payout against its balance transactions, and what does not reconcile",
		Long: `payouts reconciles every payout with the balance transactions it paid out, grouped by reporting
category (charges, refunds, disputes, fees, adjustments, transfers, other), their sum and
whether it equals the payout's amount (MATCH):

  ledger query payouts                         # newest arrival first
  ledger query payouts --match false --livemode true
  ledger query payouts --payout po_1Nv0FG...   # one payout and each of its transactions
  ledger query payouts --unreconciled          # mismatched payouts, charges with no balance
                                               # transaction 2 days on, unmatched transactions
  ledger query payouts --format csv --all > payouts.csv

Money is integer minor units with the currency beside it. --format table (default), csv or
json. Exit code 2 with the API's message for a bad filter; 1 when --unreconciled finds
anything (so a script can alert on it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "csv" && format != "json" {
				return fmt.Errorf("--format %q: want table, csv or json", format)
			}
			v := url.Values{}
			for name, val := range flags {
				if *val != "" {
					v.Set(strings.ReplaceAll(name, "-", "_"), *val)
				}
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			q := query.New(pool, query.Config{})
			switch {
			case payout != "":
				d, err := q.Payout(cmd.Context(), payout)
				if err != nil {
					return badQuery(err)
				}
				if format == "json" {
					return printValue(d)
				}
				return printPayoutDetail(d, format == "csv")
			case unreconciled:
				scope, err := query.ParseCloseScope(url.Values{"livemode": v["livemode"], "account": v["account"]})
				if err != nil {
					return badQuery(err)
				}
				found, err := q.Unreconciled(cmd.Context(), scope, kind, time.Now())
				if err != nil {
					return badQuery(err)
				}
				if err := printUnreconciled(found, format); err != nil {
					return err
				}
				if len(found) > 0 {
					return failed("%d things do not reconcile", len(found))
				}
				return nil
			}
			p, err := query.ParsePayouts(v)
			if err != nil {
				return badQuery(err)
			}
			rows, more, err := q.ReconcilePayouts(cmd.Context(), p, all || format == "csv")
			if err != nil {
				return err
			}
			if more {
				fmt.Fprintln(os.Stderr, "more payouts: --all for every one, or --limit")
			}
			switch format {
			case "json":
				return printValue(rows)
			case "csv":
				w := csv.NewWriter(os.Stdout)
				_ = w.Write(query.PayoutColumns)
				for _, r := range rows {
					_ = w.Write(r.Cells())
				}
				w.Flush()
				return w.Error()
			}
			fmt.Fprintln(os.Stderr, "# "+p.Scope.Describe())
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PAYOUT\tMODE\tACCOUNT\tARRIVAL\tSTATUS\tCURRENCY\tAMOUNT\tCHARGES\tREFUNDS\tDISPUTES\tFEES\tADJUSTMENTS\tTRANSFERS\tOTHER\tTOTAL\tMATCH")
			for _, r := range rows {
				m := "✓"
				if !r.Match {
					m = fmt.Sprintf("✗ %+d", r.Difference)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Payout, mode(r.Livemode), accountName(r.Account),
					r.ArrivalDate.Format(time.DateOnly), r.Status, r.Currency, r.Amount, r.Charges, r.Refunds, r.Disputes, r.Fees, r.Adjustments,
					r.Transfers, r.Other, r.Total, m)
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	for _, name := range []string{"livemode", "account", "status", "currency", "match", "arrival-gte", "arrival-lt", "limit"} {
		flags[name] = f.String(name, "", "filter: "+strings.ReplaceAll(name, "-", "_")+" (as the API's query parameter)")
	}
	f.StringVar(&format, "format", "table", "table, csv or json")
	f.StringVar(&payout, "payout", "", "one payout (po_...): its reconciliation and every balance transaction it listed")
	f.BoolVar(&unreconciled, "unreconciled", false, "what does not reconcile instead (exit 1 when anything)")
	f.StringVar(&kind, "kind", "", "with --unreconciled: "+strings.Join(query.FindingKinds, ", "))
	f.BoolVar(&all, "all", false, "every payout, not only the first --limit (default 100)")
	return cmd
}

func printPayoutDetail(d query.PayoutDetail, asCSV bool) error {
	if asCSV {
		w := csv.NewWriter(os.Stdout)
		_ = w.Write([]string{"payout", "id", "type", "reporting_category", "amount", "fee", "net", "currency", "source", "status", "available_on", "created", "counted", "source_known"})
		for _, t := range d.BalanceTransactions {
			known := ""
			if t.SourceKnown != nil {
				known = strconv.FormatBool(*t.SourceKnown)
			}
			_ = w.Write([]string{d.Payout, t.ID, t.Type, t.ReportingCategory, strconv.FormatInt(t.Amount, 10), strconv.FormatInt(t.Fee, 10),
				strconv.FormatInt(t.Net, 10), t.Currency, query.SpreadsheetSafe(str(t.Source)), t.Status, t.AvailableOn.Format(time.RFC3339),
				t.Created.Format(time.RFC3339), strconv.FormatBool(t.Counted), known})
		}
		w.Flush()
		return w.Error()
	}
	m := "✓ reconciles"
	if !d.Match {
		m = fmt.Sprintf("✗ does not reconcile: its transactions add up to %d, %+d from the payout", d.Total, d.Difference)
	}
	fmt.Printf("Payout %s (%s, %s): %d %s, %s, arrival %s — %s\n", d.Payout, mode(d.Livemode), accountName(d.Account), d.Amount, d.Currency,
		d.Status, d.ArrivalDate.Format(time.DateOnly), m)
	fmt.Printf("charges %d, refunds %d, disputes %d, fees %d, adjustments %d, transfers %d, other %d = %d\n\n",
		d.Charges, d.Refunds, d.Disputes, d.Fees, d.Adjustments, d.Transfers, d.Other, d.Total)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTYPE\tCATEGORY\tAMOUNT\tFEE\tNET\tSOURCE\tCREATED\tNOTE")
	for _, t := range d.BalanceTransactions {
		note := ""
		switch {
		case !t.Counted:
			note = "the payout's own"
		case t.SourceKnown != nil && !*t.SourceKnown:
			note = "unmatched: the ledger does not hold its source"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", t.ID, t.Type, t.ReportingCategory, t.Amount, t.Fee, t.Net, str(t.Source),
			t.Created.Format(time.RFC3339), note)
	}
	return w.Flush()
}

func printUnreconciled(found []query.Finding, format string) error {
	switch format {
	case "json":
		return printValue(found)
	case "csv":
		w := csv.NewWriter(os.Stdout)
		_ = w.Write(query.FindingColumns)
		for _, f := range found {
			_ = w.Write(f.Cells())
		}
		w.Flush()
		return w.Error()
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tOBJECT\tMODE\tACCOUNT\tCURRENCY\tAMOUNT\tSINCE\tDETAIL")
	for _, f := range found {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.Kind, f.Object, mode(f.Livemode), accountName(f.Account), f.Currency, f.Amount,
			f.Since.Format(time.RFC3339), f.Detail)
	}
	return w.Flush()
}
