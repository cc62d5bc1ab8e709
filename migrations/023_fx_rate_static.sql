-- ledger.fx_rate looked up the balance-transaction rate with EXECUTE, which parses and plans the
-- query again on every call: a reporting-currency answer by service-period start asks for one
-- rate per (currency, day) of its movements, thousands at a time, and spent seconds planning.
-- The same lookup as a static query is planned once per session and its plan kept. PL/pgSQL
-- plans a statement when it first runs it, so the query may still name a projection table that
-- does not exist yet: the to_regclass check keeps it from running before then. The answer is
-- unchanged: 1 for the same currency, else Stripe's balance-transaction exchange_rate of that
-- day, else ledger.fx_rates, else NULL (never 1).
CREATE OR REPLACE FUNCTION ledger.fx_rate(p_currency text, p_reporting text, p_day date) RETURNS numeric
LANGUAGE plpgsql STABLE AS $fn$
DECLARE r numeric;
BEGIN
    IF p_currency = p_reporting THEN
        RETURN 1;
    END IF;
    IF to_regclass('ledger.balance_transactions') IS NOT NULL THEN
        SELECT b.exchange_rate INTO r FROM ledger.balance_transactions b JOIN ledger.charges c ON c.id = b.source
        WHERE b.currency = p_reporting AND c.currency = p_currency AND b.exchange_rate IS NOT NULL
          AND b.created >= p_day::timestamp AT TIME ZONE 'UTC' AND b.created < (p_day + 1)::timestamp AT TIME ZONE 'UTC'
        ORDER BY b.created DESC, b.id DESC LIMIT 1;
        IF r IS NOT NULL THEN
            RETURN r;
        END IF;
    END IF;
    SELECT rate INTO r FROM ledger.fx_rates WHERE reporting_currency = p_reporting AND currency = p_currency AND date = p_day;
    RETURN r;
END
$fn$;
