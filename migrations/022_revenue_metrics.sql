-- Revenue metrics in one reporting currency. Rates come first from Stripe's own balance
-- transactions (a charge presented in one currency and settled in another carries Stripe's
-- exchange_rate), then from rates the operator loads with `ledger fx import FILE`. A missing rate
-- is never 1: the converted figure is NULL and the answer names the (currency, date) pair.
--
-- Rates are numeric, never float: a rate file's "0.006712" is that number exactly.
CREATE TABLE ledger.fx_rates (
    reporting_currency text NOT NULL CHECK (reporting_currency ~ '^[a-z]{3}$'),
    date date NOT NULL,
    currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$' AND currency <> reporting_currency),
    rate numeric NOT NULL CHECK (rate > 0),
    import_id bigint NOT NULL,
    PRIMARY KEY (reporting_currency, currency, date)
);

-- Every import is recorded, and so is every rate an import replaced: a figure converted last
-- month can be explained after the rate it used was corrected.
CREATE TABLE ledger.fx_imports (
    id bigserial PRIMARY KEY,
    reporting_currency text NOT NULL,
    file text NOT NULL,
    sha256 text NOT NULL,
    rows integer NOT NULL,
    added integer NOT NULL,
    replaced integer NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger.fx_rate_replacements (
    import_id bigint NOT NULL REFERENCES ledger.fx_imports (id),
    reporting_currency text NOT NULL,
    date date NOT NULL,
    currency text NOT NULL,
    old_rate numeric NOT NULL,
    old_import_id bigint NOT NULL,
    new_rate numeric NOT NULL,
    PRIMARY KEY (import_id, reporting_currency, currency, date)
);

ALTER TABLE ledger.fx_rates ADD FOREIGN KEY (import_id) REFERENCES ledger.fx_imports (id);

COMMENT ON TABLE ledger.fx_rates IS 'Exchange rates loaded by ledger fx import: units of reporting_currency per unit of currency on date (UTC). Used where no balance transaction of that day gives Stripe''s own rate.';
COMMENT ON COLUMN ledger.fx_rates.reporting_currency IS 'The currency the rate converts into (LEDGER_REPORTING_CURRENCY when the file was imported).';
COMMENT ON COLUMN ledger.fx_rates.date IS 'The UTC day the rate is for.';
COMMENT ON COLUMN ledger.fx_rates.currency IS 'The currency converted from.';
COMMENT ON COLUMN ledger.fx_rates.rate IS 'Units (major) of reporting_currency per unit (major) of currency, exact decimal.';
COMMENT ON COLUMN ledger.fx_rates.import_id IS 'The import (ledger.fx_imports) that set this rate.';
COMMENT ON TABLE ledger.fx_imports IS 'One row per ledger fx import: the file, its SHA-256, how many rates it added and replaced.';
COMMENT ON TABLE ledger.fx_rate_replacements IS 'Each rate an import replaced: the old rate, the import that had set it, and the new rate.';

-- ledger.fx_rate(c, r, d) is the rate of currency c into r on UTC day d: 1 when c = r; else the
-- exchange_rate of the latest balance transaction created on d whose source charge is in c and
-- which settles in r (Stripe: presentment amount x exchange_rate = settlement amount); else
-- ledger.fx_rates; else NULL. The balance transactions' table is looked up when the function runs,
-- so the function works before that read model exists (it then answers from the rates table).
CREATE FUNCTION ledger.fx_rate(p_currency text, p_reporting text, p_day date) RETURNS numeric
LANGUAGE plpgsql STABLE AS $fn$
DECLARE r numeric;
BEGIN
    IF p_currency = p_reporting THEN
        RETURN 1;
    END IF;
    IF to_regclass('ledger.balance_transactions') IS NOT NULL THEN
        EXECUTE $q$SELECT b.exchange_rate FROM ledger.balance_transactions b JOIN ledger.charges c ON c.id = b.source
                   WHERE b.currency = $1 AND c.currency = $2 AND b.exchange_rate IS NOT NULL
                     AND b.created >= $3::timestamp AT TIME ZONE 'UTC' AND b.created < ($3 + 1)::timestamp AT TIME ZONE 'UTC'
                   ORDER BY b.created DESC, b.id DESC LIMIT 1$q$
            INTO r USING p_reporting, p_currency, p_day;
        IF r IS NOT NULL THEN
            RETURN r;
        END IF;
    END IF;
    SELECT rate INTO r FROM ledger.fx_rates WHERE reporting_currency = p_reporting AND currency = p_currency AND date = p_day;
    RETURN r;
END
$fn$;

COMMENT ON FUNCTION ledger.fx_rate(text, text, date) IS 'Rate of a currency into the reporting currency on a UTC day: 1 for the same currency, else Stripe''s balance-transaction exchange_rate of that day, else ledger.fx_rates, else NULL (never 1).';
