package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/query"
)

// closeCmd closes a month and shows closed ones, with package query (POST /api/v1/closes and
// GET /api/v1/closes/{period} answer the same).
func closeCmd() *cobra.Command {
	var by, format string
	cmd := &cobra.Command{
		Use:   "close YYYY-MM | close show YYYY-MM | close list",
		Short: "Close a month (UTC): freeze its figures as known now; show a close and its adjustments",
		Long: `close freezes a calendar month (UTC) as the ledger knows it now, recording the log position
its figures are of and when it was closed:

  ledger close 2026-11 --by "finance@example.com"
  ledger close show 2026-11                       # the figures as closed, the adjustments since, the figures today
  ledger close show 2026-11 --format csv > close-2026-11.csv
  ledger close show 2026-11 --format html > close-2026-11.html   # the printable report
  ledger close list

Figures per mode, account and currency: gross revenue, refunds, disputes lost, fees, net, payouts
paid in the month, open receivables at its end, MRR at its end. With LEDGER_REPORTING_CURRENCY
set, the close also freezes each currency's rate of the month's last day, and shows every mode's
and account's figures in that currency too. A closed month's figures never change; an event appended later that falls in it (a reconcile repair, a late webhook) is one of
its adjustments: the event, what it adds to each figure, and when it arrived.

Exit codes: 0 closed; 1 the month is closed already (the message says when); 2 the month has not
ended yet, or a malformed month (want YYYY-MM), or the database could not be reached.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := query.ParsePeriod(args[0])
			if err != nil {
				return badQuery(err)
			}
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: want text or json", format)
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
			c, err := query.New(pool, query.Config{FX: fx}).ClosePeriod(cmd.Context(), p, time.Now(), by)
			var closed *query.AlreadyClosedError
			var open *query.NotEndedError
			switch {
			case errors.As(err, &closed):
				return failed("%s", closed.Error())
			case errors.As(err, &open):
				return &exitError{code: 2, err: open}
			case err != nil:
				return err
			}
			if format == "json" {
				return printValue(c)
			}
			return printClose(os.Stdout, c)
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who closes the month (recorded as closed_by)")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	cmd.AddCommand(closeShowCmd(), closeListCmd())
	return cmd
}

func closeShowCmd() *cobra.Command {
	var format, livemode, account string
	cmd := &cobra.Command{
		Use:   "show YYYY-MM",
		Short: "A closed month: its figures as closed, the adjustments since, its figures today",
		Long: `show prints a closed month as GET /api/v1/closes/{period} answers it. --format text (default),
json, csv (the report finance files) or html (the printable report). --livemode and --account
limit it to one mode or account (default: both modes, every account). Exit code 1 when the
month is not closed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := query.ParsePeriod(args[0])
			if err != nil {
				return badQuery(err)
			}
			switch format {
			case "text", "json", "csv", "html":
			default:
				return fmt.Errorf("--format %q: want text, json, csv or html", format)
			}
			v := url.Values{}
			if livemode != "" {
				v.Set("livemode", livemode)
			}
			if account != "" {
				v.Set("account", account)
			}
			scope, err := query.ParseCloseScope(v)
			if err != nil {
				return badQuery(err)
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			c, err := query.New(pool, query.Config{}).ReadClose(cmd.Context(), p, scope)
			if errors.Is(err, query.ErrNotFound) {
				return failed("period %s is not closed: ledger close %s closes it", p, p)
			}
			if err != nil {
				return err
			}
			switch format {
			case "json":
				return printValue(c)
			case "csv":
				w := csv.NewWriter(os.Stdout)
				if err := w.WriteAll(query.CloseReportRows(c)); err != nil {
					return err
				}
				return w.Error()
			case "html":
				return query.WriteCloseReport(os.Stdout, c)
			}
			return printClose(os.Stdout, c)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, json, csv or html")
	cmd.Flags().StringVar(&livemode, "livemode", "", "true (live mode), false (test mode) or all (default)")
	cmd.Flags().StringVar(&account, "account", "", "platform, a connected account acct_..., or all (default)")
	return cmd
}

func closeListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Every closed month, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			cs, err := query.New(pool, query.Config{}).Closes(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PERIOD\tCLOSED_AT\tCLOSED_BY\tPOSITION\tHEAD")
			for _, c := range cs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\n", c.Period, c.ClosedAt.Format(time.RFC3339), str(c.ClosedBy), c.Position, c.Head)
			}
			return w.Flush()
		},
	}
}

func printValue(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func accountName(a *string) string {
	if a == nil {
		return "platform"
	}
	return *a
}

// printClose prints a close as three tables: as closed, the adjustments, the figures today.
func printClose(out io.Writer, c query.Close) error {
	fmt.Fprintf(out, "Close %s: %s to %s (UTC), closed %s", c.Period, c.Start.Format(time.DateOnly), c.End.Format(time.DateOnly), c.ClosedAt.Format(time.RFC3339))
	if c.ClosedBy != nil {
		fmt.Fprintf(out, " by %s", *c.ClosedBy)
	}
	fmt.Fprintf(out, ", figures of log position %d (head %d)\nShows %s. Amounts in minor units.\n", c.Position, c.Head, c.Includes)
	figures := func(title string, rows []query.Figures) error {
		cells := make([][]string, len(rows))
		for i, f := range rows {
			cells[i] = []string{mode(f.Livemode), accountName(f.Account), f.Currency}
			for _, n := range query.FigureNames {
				cells[i] = append(cells[i], strconv.FormatInt(f.Get(n), 10))
			}
		}
		return figureTable(out, title, cells)
	}
	if err := figures("FIGURES AS CLOSED", c.Figures); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nADJUSTMENTS SINCE THE CLOSE: %d\n", len(c.Adjustments))
	if len(c.Adjustments) > 0 {
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "EVENT\tTYPE\tOBJECT\tCREATED\tARRIVED\tSOURCE\tMODE\tACCOUNT\tCURRENCY\tEFFECT")
		for _, a := range c.Adjustments {
			var effect []string
			for _, n := range query.FigureNames {
				if v := a.Effect.Get(n); v != 0 {
					effect = append(effect, fmt.Sprintf("%s %+d", n, v))
				}
			}
			if len(effect) == 0 {
				effect = []string{"none"}
			}
			event := str(a.EventID)
			if event == "" {
				event = "(no later event)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", event, str(a.EventType), str(a.Object), tsString(a.Created), tsString(a.ReceivedAt),
				str(a.Source), mode(a.Livemode), accountName(a.Account), str(a.Currency), strings.Join(effect, ", "))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if err := figures("FIGURES WITH THE ADJUSTMENTS", c.Adjusted); err != nil {
		return err
	}
	r := c.Reporting
	if r == nil {
		fmt.Fprintln(out, "\nNo reporting currency: the month was closed without LEDGER_REPORTING_CURRENCY.")
		return nil
	}
	var rates []string
	for _, x := range r.Rates {
		rates = append(rates, fmt.Sprintf("%s %s", x.Currency, orNone(x.Rate)))
	}
	fmt.Fprintf(out, "\nIN %s AT THE RATES OF %s, FROZEN WITH THE CLOSE: %s\n", strings.ToUpper(r.Currency), r.RateDate, strings.Join(rates, ", "))
	if len(r.MissingRates) > 0 {
		fmt.Fprintf(out, "No rate frozen with the close for %s: the figures that need one are blank.\n", strings.Join(r.MissingRates, ", "))
	}
	reporting := func(title string, rows []query.ReportingFigures) error {
		cells := make([][]string, len(rows))
		for i, f := range rows {
			cells[i] = []string{mode(f.Livemode), accountName(f.Account), f.Currency}
			for _, n := range query.FigureNames {
				v := "" // no rate
				if p := f.Get(n); p != nil {
					v = strconv.FormatInt(*p, 10)
				}
				cells[i] = append(cells[i], v)
			}
		}
		return figureTable(out, title, cells)
	}
	if err := reporting("AS CLOSED, IN "+strings.ToUpper(r.Currency), r.Figures); err != nil {
		return err
	}
	return reporting("WITH THE ADJUSTMENTS, IN "+strings.ToUpper(r.Currency), r.Adjusted)
}

// figureTable prints a titled table of figures rows: mode, account, currency, then each figure.
func figureTable(out io.Writer, title string, rows [][]string) error {
	fmt.Fprintf(out, "\n%s\n", title)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "MODE\tACCOUNT\tCURRENCY\t"+strings.ToUpper(strings.Join(query.FigureNames, "\t"))+"\t")
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t")+"\t")
	}
	return w.Flush()
}

func orNone(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}

func mode(live bool) string {
	if live {
		return "live"
	}
	return "test"
}

func tsString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
