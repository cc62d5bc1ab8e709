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

-- The metric views gain the pause and resume kinds (LEDGER_MRR_PAUSED=zero), at the end of their
-- columns, so privileges on them survive (CREATE OR REPLACE VIEW may only add columns at the
-- end). A paused subscription no longer counts among active_subscribers; a resumed one does
-- again. The function body is resolved when it runs (see 013).
SET LOCAL check_function_bodies = off;

CREATE FUNCTION ledger.metrics_daily_v3_rows() RETURNS TABLE (
    day date, currency text, livemode boolean, account text, mrr bigint, arr bigint, active_subscribers bigint,
    new_mrr bigint, expansion_mrr bigint, contraction_mrr bigint, churned_mrr bigint, reactivation_mrr bigint,
    gross_revenue bigint, refunds bigint, disputed bigint, dispute_losses bigint, net_revenue bigint,
    payments bigint, failed_payments bigint, failed_amount bigint, pause_mrr bigint, resume_mrr bigint
) LANGUAGE sql STABLE AS $fn$
WITH moves AS (
    SELECT (at AT TIME ZONE 'UTC')::date AS day, currency, livemode, coalesce(account, '') AS acct,
           sum(amount) FILTER (WHERE kind = 'new')          AS new_mrr,
           sum(amount) FILTER (WHERE kind = 'expansion')    AS expansion_mrr,
           sum(amount) FILTER (WHERE kind = 'contraction')  AS contraction_mrr,
           sum(amount) FILTER (WHERE kind = 'churn')        AS churned_mrr,
           sum(amount) FILTER (WHERE kind = 'reactivation') AS reactivation_mrr,
           sum(amount) FILTER (WHERE kind = 'pause')        AS pause_mrr,
           sum(amount) FILTER (WHERE kind = 'resume')       AS resume_mrr,
           sum(amount) AS mrr_change,
           count(*) FILTER (WHERE kind IN ('new', 'reactivation', 'resume')) - count(*) FILTER (WHERE kind IN ('churn', 'pause')) AS subscriber_change
    FROM ledger.subscription_movements GROUP BY 1, 2, 3, 4
), pays AS (
    SELECT (created AT TIME ZONE 'UTC')::date AS day, currency, livemode, coalesce(account, '') AS acct,
           sum(amount) FILTER (WHERE status = 'succeeded') AS gross_revenue,
           count(*) FILTER (WHERE status = 'succeeded')    AS payments,
           count(*) FILTER (WHERE status = 'failed')       AS failed_payments,
           sum(amount) FILTER (WHERE status = 'failed')    AS failed_amount
    FROM ledger.charges GROUP BY 1, 2, 3, 4
), refs AS (
    SELECT (created AT TIME ZONE 'UTC')::date AS day, currency, livemode, coalesce(account, '') AS acct, sum(amount) AS refunds
    FROM ledger.refunds WHERE status = 'succeeded' GROUP BY 1, 2, 3, 4
), disp AS (
    SELECT (created AT TIME ZONE 'UTC')::date AS day, currency, livemode, coalesce(account, '') AS acct,
           sum(amount) AS disputed, sum(amount) FILTER (WHERE status = 'lost') AS dispute_losses
    FROM ledger.disputes GROUP BY 1, 2, 3, 4
), keys AS (
    SELECT day, currency, livemode, acct FROM moves UNION SELECT day, currency, livemode, acct FROM pays
    UNION SELECT day, currency, livemode, acct FROM refs UNION SELECT day, currency, livemode, acct FROM disp
), span AS (
    SELECT currency, livemode, acct, min(day) AS first FROM keys GROUP BY currency, livemode, acct
), grid AS (
    SELECT s.currency, s.livemode, s.acct, d::date AS day
    FROM span s, generate_series(s.first, greatest((now() AT TIME ZONE 'UTC')::date, (SELECT max(day) FROM keys)), interval '1 day') d
)
SELECT g.day, g.currency, g.livemode, nullif(g.acct, '') AS account,
       (sum(coalesce(m.mrr_change, 0)) OVER w)::bigint             AS mrr,
       (12 * sum(coalesce(m.mrr_change, 0)) OVER w)::bigint        AS arr,
       (sum(coalesce(m.subscriber_change, 0)) OVER w)::bigint      AS active_subscribers,
       coalesce(m.new_mrr, 0)::bigint          AS new_mrr,
       coalesce(m.expansion_mrr, 0)::bigint    AS expansion_mrr,
       coalesce(m.contraction_mrr, 0)::bigint  AS contraction_mrr,
       coalesce(m.churned_mrr, 0)::bigint      AS churned_mrr,
       coalesce(m.reactivation_mrr, 0)::bigint AS reactivation_mrr,
       coalesce(p.gross_revenue, 0)::bigint    AS gross_revenue,
       coalesce(r.refunds, 0)::bigint          AS refunds,
       coalesce(x.disputed, 0)::bigint         AS disputed,
       coalesce(x.dispute_losses, 0)::bigint   AS dispute_losses,
       (coalesce(p.gross_revenue, 0) - coalesce(r.refunds, 0) - coalesce(x.dispute_losses, 0))::bigint AS net_revenue,
       coalesce(p.payments, 0)::bigint         AS payments,
       coalesce(p.failed_payments, 0)::bigint  AS failed_payments,
       coalesce(p.failed_amount, 0)::bigint    AS failed_amount,
       coalesce(m.pause_mrr, 0)::bigint        AS pause_mrr,
       coalesce(m.resume_mrr, 0)::bigint       AS resume_mrr
FROM grid g
LEFT JOIN moves m ON m.day = g.day AND m.currency = g.currency AND m.livemode = g.livemode AND m.acct = g.acct
LEFT JOIN pays  p ON p.day = g.day AND p.currency = g.currency AND p.livemode = g.livemode AND p.acct = g.acct
LEFT JOIN refs  r ON r.day = g.day AND r.currency = g.currency AND r.livemode = g.livemode AND r.acct = g.acct
LEFT JOIN disp  x ON x.day = g.day AND x.currency = g.currency AND x.livemode = g.livemode AND x.acct = g.acct
WINDOW w AS (PARTITION BY g.currency, g.livemode, g.acct ORDER BY g.day)
$fn$;

CREATE OR REPLACE VIEW ledger.metrics_daily AS
SELECT day, currency, mrr, arr, active_subscribers, new_mrr, expansion_mrr, contraction_mrr, churned_mrr, reactivation_mrr, gross_revenue, refunds, disputed, dispute_losses, net_revenue, payments, failed_payments, failed_amount, livemode, account, pause_mrr, resume_mrr
FROM ledger.metrics_daily_v3_rows();

CREATE OR REPLACE VIEW ledger.metrics_monthly AS
SELECT date_trunc('month', day)::date AS month, currency,
       (array_agg(mrr ORDER BY day DESC))[1]                AS mrr,
       (array_agg(arr ORDER BY day DESC))[1]                AS arr,
       (array_agg(active_subscribers ORDER BY day DESC))[1] AS active_subscribers,
       sum(new_mrr)::bigint AS new_mrr, sum(expansion_mrr)::bigint AS expansion_mrr,
       sum(contraction_mrr)::bigint AS contraction_mrr, sum(churned_mrr)::bigint AS churned_mrr,
       sum(reactivation_mrr)::bigint AS reactivation_mrr,
       sum(gross_revenue)::bigint AS gross_revenue, sum(refunds)::bigint AS refunds,
       sum(disputed)::bigint AS disputed, sum(dispute_losses)::bigint AS dispute_losses,
       sum(net_revenue)::bigint AS net_revenue, sum(payments)::bigint AS payments,
       sum(failed_payments)::bigint AS failed_payments, sum(failed_amount)::bigint AS failed_amount,
       livemode, account,
       sum(pause_mrr)::bigint AS pause_mrr, sum(resume_mrr)::bigint AS resume_mrr
FROM ledger.metrics_daily GROUP BY 1, 2, livemode, account;

DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT DISTINCT grantee FROM information_schema.routine_privileges
             WHERE routine_schema = 'ledger' AND routine_name = 'metrics_daily_scoped_rows' AND privilege_type = 'EXECUTE'
               AND grantee NOT IN ('PUBLIC', current_user) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION ledger.metrics_daily_v3_rows() TO %I', g.grantee);
    END LOOP;
END $$;

DROP FUNCTION ledger.metrics_daily_scoped_rows();

COMMENT ON COLUMN ledger.metrics_daily.pause_mrr IS 'MRR set aside by paused collection during the day (LEDGER_MRR_PAUSED=zero), minor units, negative; never churn.';
COMMENT ON COLUMN ledger.metrics_daily.resume_mrr IS 'MRR back from paused collection during the day, minor units.';
COMMENT ON COLUMN ledger.metrics_monthly.pause_mrr IS 'MRR set aside by paused collection during the month, minor units, negative.';
COMMENT ON COLUMN ledger.metrics_monthly.resume_mrr IS 'MRR back from paused collection during the month, minor units.';

-- Rates by month, as exact numerics rounded to six places (the API's strings): gross and net MRR
-- churn against the previous month's MRR, and the quick ratio. NULL where the divisor is 0.
CREATE VIEW ledger.mrr_rates_monthly AS
SELECT month, currency, livemode, account, mrr,
       coalesce(lag(mrr) OVER w, 0) AS mrr_start,
       round(-(churned_mrr + contraction_mrr)::numeric / nullif(lag(mrr) OVER w, 0), 6) AS gross_mrr_churn_rate,
       round(-(churned_mrr + contraction_mrr + expansion_mrr + reactivation_mrr)::numeric / nullif(lag(mrr) OVER w, 0), 6) AS net_mrr_churn_rate,
       round((new_mrr + expansion_mrr + reactivation_mrr)::numeric / nullif(-(contraction_mrr + churned_mrr), 0), 6) AS quick_ratio
FROM ledger.metrics_monthly
WINDOW w AS (PARTITION BY currency, livemode, account ORDER BY month);

COMMENT ON VIEW ledger.mrr_rates_monthly IS 'MRR churn rates and quick ratio by month, currency, mode and account (README, Revenue metrics). Exact numerics rounded to six places; NULL when the divisor is 0.';
COMMENT ON COLUMN ledger.mrr_rates_monthly.gross_mrr_churn_rate IS '-(churned + contraction MRR) / MRR at the end of the previous month; 0.0125 is 1.25 %.';
COMMENT ON COLUMN ledger.mrr_rates_monthly.net_mrr_churn_rate IS '-(churned + contraction + expansion + reactivation MRR) / MRR at the end of the previous month; negative when expansion outgrows losses.';
COMMENT ON COLUMN ledger.mrr_rates_monthly.quick_ratio IS '(new + expansion + reactivation MRR) / -(contraction + churned MRR); NULL when nothing was lost.';

-- Subscribers are customers with MRR above 0 (their subscriptions' sum, per currency). A
-- customer's movements at one instant are summed first, so a plan switch is not a churn.
-- Views over the read-model tables go through functions: the tables gain livemode and account
-- when the runner rebuilds them, after this migration (see 013).
CREATE FUNCTION ledger.subscribers_daily_rows() RETURNS TABLE (
    day date, currency text, livemode boolean, account text, mrr bigint, subscribers bigint, new_subscribers bigint,
    churned_subscribers bigint, subscriber_churn_rate numeric, arpa bigint, ltv bigint
) LANGUAGE sql STABLE AS $fn$
WITH c AS (
    SELECT customer, currency, livemode, coalesce(account, '') AS acct, at, sum(amount) AS amount
    FROM ledger.subscription_movements GROUP BY 1, 2, 3, 4, 5
), r AS (
    SELECT currency, livemode, acct, at, amount,
           sum(amount) OVER (PARTITION BY customer, currency, livemode, acct ORDER BY at) AS after
    FROM c
), t AS (
    SELECT (at AT TIME ZONE 'UTC')::date AS day, currency, livemode, acct,
           count(*) FILTER (WHERE after > 0 AND after - amount <= 0) AS up,
           count(*) FILTER (WHERE after <= 0 AND after - amount > 0) AS down
    FROM r GROUP BY 1, 2, 3, 4
), d AS (
    SELECT m.day, m.currency, m.livemode, coalesce(m.account, '') AS acct, m.mrr, coalesce(t.up, 0) AS up, coalesce(t.down, 0) AS down
    FROM ledger.metrics_daily m
    LEFT JOIN t ON t.day = m.day AND t.currency = m.currency AND t.livemode = m.livemode AND t.acct = coalesce(m.account, '')
), w AS (
    SELECT day, currency, livemode, acct, mrr,
           sum(up - down) OVER (PARTITION BY currency, livemode, acct ORDER BY day) AS subscribers,
           sum(up) OVER (PARTITION BY currency, livemode, acct ORDER BY day RANGE BETWEEN interval '29 days' PRECEDING AND CURRENT ROW) AS new_subscribers,
           sum(down) OVER (PARTITION BY currency, livemode, acct ORDER BY day RANGE BETWEEN interval '29 days' PRECEDING AND CURRENT ROW) AS churned_subscribers
    FROM d
), x AS (
    SELECT *, churned_subscribers::numeric / nullif(subscribers - new_subscribers + churned_subscribers + new_subscribers, 0) AS churn
    FROM w
)
SELECT day, currency, livemode, nullif(acct, '') AS account, mrr, subscribers::bigint, new_subscribers::bigint, churned_subscribers::bigint,
       round(churn, 6) AS subscriber_churn_rate,
       round(mrr::numeric / nullif(subscribers, 0))::bigint AS arpa,
       round(mrr::numeric / nullif(subscribers, 0) / CASE WHEN churn = 0 THEN 0.0167 ELSE churn END)::bigint AS ltv
FROM x
$fn$;

CREATE VIEW ledger.subscribers_daily AS SELECT * FROM ledger.subscribers_daily_rows();

COMMENT ON VIEW ledger.subscribers_daily IS 'Subscribers (customers with MRR above 0), subscriber churn over the 30 days ending each day, ARPA and LTV, by day (UTC), currency, mode and account (README, Revenue metrics).';
COMMENT ON COLUMN ledger.subscribers_daily.subscribers IS 'Customers with MRR above 0 at the end of the day.';
COMMENT ON COLUMN ledger.subscribers_daily.new_subscribers IS 'Customers whose MRR went from 0 to above 0 in the 30 days ending on day.';
COMMENT ON COLUMN ledger.subscribers_daily.churned_subscribers IS 'Customers whose MRR went to 0 in the 30 days ending on day.';
COMMENT ON COLUMN ledger.subscribers_daily.subscriber_churn_rate IS 'churned_subscribers / (subscribers 30 days before + new_subscribers), six places; NULL when nobody subscribed.';
COMMENT ON COLUMN ledger.subscribers_daily.arpa IS 'MRR / subscribers, minor units, halves away from zero.';
COMMENT ON COLUMN ledger.subscribers_daily.ltv IS 'ARPA / subscriber_churn_rate (0.0167 when that is 0), minor units, halves away from zero.';

-- Cohorts: customers by the month of their first new movement; for each month since, the
-- cohort's MRR against its MRR at the end of its first month.
CREATE FUNCTION ledger.mrr_cohorts_rows() RETURNS TABLE (
    cohort date, month integer, currency text, livemode boolean, account text, customers bigint, base_mrr bigint, mrr bigint,
    retained_mrr bigint, nrr numeric, grr numeric
) LANGUAGE sql STABLE AS $fn$
WITH cm AS (
    SELECT customer, currency, livemode, coalesce(account, '') AS acct, date_trunc('month', at AT TIME ZONE 'UTC')::date AS month,
           sum(amount) AS amount, bool_or(kind = 'new') AS has_new
    FROM ledger.subscription_movements GROUP BY 1, 2, 3, 4, 5
), firsts AS (
    SELECT customer, currency, livemode, acct, min(month) FILTER (WHERE has_new) AS cohort FROM cm GROUP BY 1, 2, 3, 4
), cells AS (
    SELECT f.customer, f.currency, f.livemode, f.acct, f.cohort, g::date AS month,
           ((extract(year FROM g) - extract(year FROM f.cohort)) * 12 + extract(month FROM g) - extract(month FROM f.cohort))::int AS k,
           (SELECT coalesce(sum(amount), 0) FROM cm WHERE cm.customer = f.customer AND cm.currency = f.currency
               AND cm.livemode = f.livemode AND cm.acct = f.acct AND cm.month <= g) AS mrr
    FROM firsts f, generate_series(f.cohort, greatest(date_trunc('month', now() AT TIME ZONE 'UTC'), f.cohort), interval '1 month') g
    WHERE f.cohort IS NOT NULL
)
SELECT p.cohort, p.k AS month, p.currency, p.livemode, nullif(p.acct, '') AS account, count(*) AS customers,
       sum(b.mrr)::bigint AS base_mrr, sum(p.mrr)::bigint AS mrr, sum(least(p.mrr, b.mrr))::bigint AS retained_mrr,
       round(sum(p.mrr) / nullif(sum(b.mrr), 0), 6) AS nrr,
       round(sum(least(p.mrr, b.mrr)) / nullif(sum(b.mrr), 0), 6) AS grr
FROM cells p JOIN cells b ON b.customer = p.customer AND b.currency = p.currency AND b.livemode = p.livemode AND b.acct = p.acct AND b.k = 0
GROUP BY p.cohort, p.k, p.currency, p.livemode, p.acct
$fn$;

CREATE VIEW ledger.mrr_cohorts AS SELECT * FROM ledger.mrr_cohorts_rows();

COMMENT ON VIEW ledger.mrr_cohorts IS 'NRR and GRR by monthly cohort (customers by the month of their first new movement), currency, mode and account (README, Revenue metrics).';
COMMENT ON COLUMN ledger.mrr_cohorts.month IS 'Months since the cohort''s month (0: that month).';
COMMENT ON COLUMN ledger.mrr_cohorts.base_mrr IS 'The cohort''s MRR at the end of its first month, minor units.';
COMMENT ON COLUMN ledger.mrr_cohorts.retained_mrr IS 'Sum over the cohort''s customers of least(MRR at the end of this month, base MRR).';
COMMENT ON COLUMN ledger.mrr_cohorts.nrr IS 'mrr / base_mrr, six places; NULL when base_mrr is 0.';
COMMENT ON COLUMN ledger.mrr_cohorts.grr IS 'retained_mrr / base_mrr (at most 1), six places; NULL when base_mrr is 0.';

-- Every MRR answer says how many subscriptions it leaves out.
CREATE FUNCTION ledger.mrr_unvalued_rows() RETURNS TABLE (currency text, livemode boolean, account text, unvalued bigint)
LANGUAGE sql STABLE AS $fn$
SELECT currency, livemode, account, count(*) FROM ledger.subscriptions WHERE mrr IS NULL GROUP BY currency, livemode, account
$fn$;

CREATE VIEW ledger.mrr_unvalued AS SELECT * FROM ledger.mrr_unvalued_rows();

COMMENT ON VIEW ledger.mrr_unvalued IS 'Subscriptions whose MRR the ledger could not value (mrr NULL; attention says why), by currency, mode and account: left out of every MRR figure.';

-- A BI role that could read the old metric views can read the new ones.
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT DISTINCT grantee FROM information_schema.table_privileges
             WHERE table_schema = 'ledger' AND table_name = 'metrics_daily' AND privilege_type = 'SELECT'
               AND grantee NOT IN ('PUBLIC', current_user) LOOP
        EXECUTE format('GRANT SELECT ON ledger.mrr_rates_monthly, ledger.subscribers_daily, ledger.mrr_cohorts, ledger.mrr_unvalued, ledger.fx_rates, ledger.fx_imports, ledger.fx_rate_replacements TO %I', g.grantee);
        EXECUTE format('GRANT EXECUTE ON FUNCTION ledger.fx_rate(text, text, date), ledger.subscribers_daily_rows(), ledger.mrr_cohorts_rows(), ledger.mrr_unvalued_rows() TO %I', g.grantee);
    END LOOP;
END $$;

COMMENT ON COLUMN ledger.fx_imports.id IS 'The import''s number (ledger.fx_rates.import_id).';
COMMENT ON COLUMN ledger.fx_imports.reporting_currency IS 'The currency the file''s rates convert into.';
COMMENT ON COLUMN ledger.fx_imports.file IS 'The file as named to ledger fx import.';
COMMENT ON COLUMN ledger.fx_imports.sha256 IS 'SHA-256 of the file''s bytes, hex.';
COMMENT ON COLUMN ledger.fx_imports.rows IS 'Rates in the file.';
COMMENT ON COLUMN ledger.fx_imports.added IS 'Rates for a date and currency not held before.';
COMMENT ON COLUMN ledger.fx_imports.replaced IS 'Rates that replaced one held before (each in ledger.fx_rate_replacements).';
COMMENT ON COLUMN ledger.fx_imports.imported_at IS 'When the import committed.';
COMMENT ON COLUMN ledger.fx_rate_replacements.import_id IS 'The import that replaced the rate.';
COMMENT ON COLUMN ledger.fx_rate_replacements.reporting_currency IS 'The currency the rate converts into.';
COMMENT ON COLUMN ledger.fx_rate_replacements.date IS 'The UTC day of the rate.';
COMMENT ON COLUMN ledger.fx_rate_replacements.currency IS 'The currency converted from.';
COMMENT ON COLUMN ledger.fx_rate_replacements.old_rate IS 'The rate before, exact.';
COMMENT ON COLUMN ledger.fx_rate_replacements.old_import_id IS 'The import that had set the old rate.';
COMMENT ON COLUMN ledger.fx_rate_replacements.new_rate IS 'The rate after, exact.';
COMMENT ON COLUMN ledger.mrr_rates_monthly.month IS 'The calendar month (UTC), its first day.';
COMMENT ON COLUMN ledger.mrr_rates_monthly.currency IS 'Currency of the figures (minor units).';
COMMENT ON COLUMN ledger.mrr_rates_monthly.livemode IS 'True: live-mode figures; false: test mode. Never add the two.';
COMMENT ON COLUMN ledger.mrr_rates_monthly.account IS 'The Connect account the figures are of (acct_...); NULL: the platform''s own.';
COMMENT ON COLUMN ledger.mrr_rates_monthly.mrr IS 'MRR at the end of the month, minor units.';
COMMENT ON COLUMN ledger.mrr_rates_monthly.mrr_start IS 'MRR at the end of the previous month: what the rates are measured against.';
COMMENT ON COLUMN ledger.subscribers_daily.day IS 'The UTC day.';
COMMENT ON COLUMN ledger.subscribers_daily.currency IS 'Currency of the figures (minor units).';
COMMENT ON COLUMN ledger.subscribers_daily.livemode IS 'True: live-mode figures; false: test mode. Never add the two.';
COMMENT ON COLUMN ledger.subscribers_daily.account IS 'The Connect account the figures are of (acct_...); NULL: the platform''s own.';
COMMENT ON COLUMN ledger.subscribers_daily.mrr IS 'MRR at the end of the day, minor units.';
COMMENT ON COLUMN ledger.mrr_cohorts.cohort IS 'The cohort: the month (its first day, UTC) of its customers'' first new movement.';
COMMENT ON COLUMN ledger.mrr_cohorts.currency IS 'Currency of the figures (minor units).';
COMMENT ON COLUMN ledger.mrr_cohorts.livemode IS 'True: live-mode figures; false: test mode. Never add the two.';
COMMENT ON COLUMN ledger.mrr_cohorts.account IS 'The Connect account the figures are of (acct_...); NULL: the platform''s own.';
COMMENT ON COLUMN ledger.mrr_cohorts.customers IS 'Customers in the cohort.';
COMMENT ON COLUMN ledger.mrr_cohorts.mrr IS 'The cohort''s MRR at the end of this month, minor units.';
COMMENT ON COLUMN ledger.mrr_unvalued.currency IS 'The subscriptions'' currency.';
COMMENT ON COLUMN ledger.mrr_unvalued.livemode IS 'True: live mode; false: test mode.';
COMMENT ON COLUMN ledger.mrr_unvalued.account IS 'The Connect account (acct_...); NULL: the platform''s own.';
COMMENT ON COLUMN ledger.mrr_unvalued.unvalued IS 'Subscriptions whose MRR could not be valued (mrr NULL).';
