-- A close in the reporting currency. When the ledger runs with LEDGER_REPORTING_CURRENCY, a close
-- also freezes the rate of each of its currencies into that currency: the rate of the period's
-- last day (UTC) as ledger.fx_rate answers it at the close (Stripe's balance-transaction
-- exchange_rate of that day, else the rates table; NULL when neither has one, never 1). The
-- figures in the reporting currency are the frozen figures at the frozen rates, so a rate
-- imported or corrected later never moves them; a close made without a reporting currency has
-- no rates and stays per currency.
-- The reporting currency a close was made with is on the close itself, so a close of a month
-- with no figures (and so no rates) still says it was made in one.
ALTER TABLE ledger.closes ADD COLUMN reporting_currency text CHECK (reporting_currency ~ '^[a-z]{3}$');
COMMENT ON COLUMN ledger.closes.reporting_currency IS 'LEDGER_REPORTING_CURRENCY when the period was closed (its figures are also shown in it, at the rates in ledger.close_rates); NULL when none was set.';

CREATE TABLE ledger.close_rates (
    period             date NOT NULL REFERENCES ledger.closes (period),
    reporting_currency text NOT NULL CHECK (reporting_currency ~ '^[a-z]{3}$'),
    currency           text NOT NULL,
    rate_date          date NOT NULL,
    rate               numeric CHECK (rate > 0),
    PRIMARY KEY (period, currency)
);

CREATE TRIGGER close_rates_final BEFORE UPDATE OR DELETE ON ledger.close_rates FOR EACH ROW EXECUTE FUNCTION ledger.closes_are_final();
CREATE TRIGGER close_rates_final_truncate BEFORE TRUNCATE ON ledger.close_rates FOR EACH STATEMENT EXECUTE FUNCTION ledger.closes_are_final();

COMMENT ON TABLE ledger.close_rates IS 'The exchange rates a close converts its figures into the reporting currency at, frozen with it (one row per currency of the close). Never changed.';
COMMENT ON COLUMN ledger.close_rates.period IS 'The closed month (its first day, UTC).';
COMMENT ON COLUMN ledger.close_rates.reporting_currency IS 'LEDGER_REPORTING_CURRENCY when the period was closed: the currency the figures are converted into.';
COMMENT ON COLUMN ledger.close_rates.currency IS 'A currency of the close''s figures.';
COMMENT ON COLUMN ledger.close_rates.rate_date IS 'The UTC day whose rate was frozen: the period''s last day.';
COMMENT ON COLUMN ledger.close_rates.rate IS 'Units (major) of reporting_currency per unit (major) of currency, exact; NULL when no rate was found (the converted figures are NULL, never at a rate of 1).';

-- Whoever can read the closes can read their rates.
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT DISTINCT grantee FROM information_schema.table_privileges
             WHERE table_schema = 'ledger' AND table_name = 'close_figures' AND privilege_type = 'SELECT'
               AND grantee NOT IN ('PUBLIC', current_user) LOOP
        EXECUTE format('GRANT SELECT ON ledger.close_rates TO %I', g.grantee);
    END LOOP;
END $$;
