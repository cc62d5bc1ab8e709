package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/query"
)

// fxFromEnv is the reporting currency and rate date every command that answers metrics uses,
// read with the rest of the MRR settings (one parser, so serve, replay and query agree).
func fxFromEnv() (query.FX, error) {
	s, err := domain.ParseMRRSettings(os.Getenv)
	if err != nil {
		return query.FX{}, err
	}
	return query.FX{Reporting: s.ReportingCurrency, RateDate: s.FXRateDate}, nil
}

func fxCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "fx", Short: "Exchange rates for the reporting currency"}
	var reporting string
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Load exchange rates (CSV date,currency,rate) into ledger.fx_rates",
		Long: `import loads a rates file into ledger.fx_rates, for the days and currencies no balance
transaction gives Stripe's own rate of:

  date,currency,rate
  2026-05-01,eur,1.0853
  2026-05-01,jpy,0.006712

rate is units of the reporting currency (LEDGER_REPORTING_CURRENCY, or --reporting) per unit of
currency, an exact decimal. A file with any bad line is refused whole (exit 2) and the error
names the line; nothing is imported. A date and currency already held is replaced, and the rate
it replaced is recorded in ledger.fx_rate_replacements; every import is in ledger.fx_imports.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reporting == "" {
				return fmt.Errorf("no reporting currency: set LEDGER_REPORTING_CURRENCY (e.g. usd) or pass --reporting")
			}
			content, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("could not read the rates file: %w", err)
			}
			pool, err := openMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			res, err := query.New(pool, query.Config{}).ImportRates(cmd.Context(), reporting, args[0], content)
			if err != nil {
				return err
			}
			fmt.Printf("import %d: %d rates into %s, %d new, %d replaced (the old rates are in ledger.fx_rate_replacements)\n",
				res.ID, res.Rows, reporting, res.Added, res.Replaced)
			return nil
		},
	}
	imp.Flags().StringVar(&reporting, "reporting", os.Getenv("LEDGER_REPORTING_CURRENCY"), "the currency the rates convert into (env LEDGER_REPORTING_CURRENCY)")
	cmd.AddCommand(imp)
	return cmd
}
