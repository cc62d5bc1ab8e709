-- Every read-model row now carries livemode and account (the engine's declarations add the
-- columns; the runner rebuilds the tables when their shape changes), and no metric may add live
-- money to test money, or a connected account's to the platform's, unless asked to. The metric
-- views gain livemode and account and are computed per mode and account: a query that wants the
-- platform's live figures says WHERE livemode AND account IS NULL.
--
-- The views are replaced in place (CREATE OR REPLACE VIEW may only add columns at the end), so
-- privileges granted on them, to a BI role for instance, survive the upgrade. The function body
-- names columns the read-model tables only gain once the runner has rebuilt them after this
-- migration: it is resolved when it runs, not now.
SET LOCAL check_function_bodies = off;

CREATE FUNCTION ledger.metrics_daily_scoped_rows() RETURNS TABLE (
    day date, currency text, livemode boolean, account text, mrr bigint, arr bigint, active_subscribers bigint,
    new_mrr bigint, expansion_mrr bigint, contraction_mrr bigint, churned_mrr bigint, reactivation_mrr bigint,
    gross_revenue bigint, refunds bigint, disputed bigint, dispute_losses bigint, net_revenue bigint,
    payments bigint, failed_payments bigint, failed_amount bigint
) LANGUAGE sql STABLE AS $fn$
WITH moves AS (
    SELECT (at AT TIME ZONE 'UTC')::date AS day, currency, livemode, coalesce(account, '') AS acct,
           sum(amount) FILTER (WHERE kind = 'new')          AS new_mrr,
           sum(amount) FILTER (WHERE kind = 'expansion')    AS expansion_mrr,
           sum(amount) FILTER (WHERE kind = 'contraction')  AS contraction_mrr,
           sum(amount) FILTER (WHERE kind = 'churn')        AS churned_mrr,
           sum(amount) FILTER (WHERE kind = 'reactivation') AS reactivation_mrr,
           sum(amount) AS mrr_change,
           count(*) FILTER (WHERE kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE kind = 'churn') AS subscriber_change
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
       coalesce(p.failed_amount, 0)::bigint    AS failed_amount
FROM grid g
LEFT JOIN moves m ON m.day = g.day AND m.currency = g.currency AND m.livemode = g.livemode AND m.acct = g.acct
LEFT JOIN pays  p ON p.day = g.day AND p.currency = g.currency AND p.livemode = g.livemode AND p.acct = g.acct
LEFT JOIN refs  r ON r.day = g.day AND r.currency = g.currency AND r.livemode = g.livemode AND r.acct = g.acct
LEFT JOIN disp  x ON x.day = g.day AND x.currency = g.currency AND x.livemode = g.livemode AND x.acct = g.acct
WINDOW w AS (PARTITION BY g.currency, g.livemode, g.acct ORDER BY g.day)
$fn$;

CREATE OR REPLACE VIEW ledger.metrics_daily AS
SELECT day, currency, mrr, arr, active_subscribers, new_mrr, expansion_mrr, contraction_mrr, churned_mrr, reactivation_mrr, gross_revenue, refunds, disputed, dispute_losses, net_revenue, payments, failed_payments, failed_amount, livemode, account FROM ledger.metrics_daily_scoped_rows();

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
       livemode, account
FROM ledger.metrics_daily GROUP BY 1, 2, livemode, account;

-- Whoever could run the old function (a BI role: docs/bi-readonly.sql) can run the new one.
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT DISTINCT grantee FROM information_schema.routine_privileges
             WHERE routine_schema = 'ledger' AND routine_name = 'metrics_daily_rows' AND privilege_type = 'EXECUTE'
               AND grantee NOT IN ('PUBLIC', current_user) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION ledger.metrics_daily_scoped_rows() TO %I', g.grantee);
    END LOOP;
END $$;

DROP FUNCTION ledger.metrics_daily_rows();

COMMENT ON VIEW ledger.metrics_daily IS 'Finance metrics by day (UTC), currency, mode and account, Stripe''s definitions (README, Metrics). Stocks at the end of the day, flows during it. Filter on livemode and account: live and test mode, and each account, are separate rows.';
COMMENT ON VIEW ledger.metrics_monthly IS 'ledger.metrics_daily by calendar month (UTC), currency, mode and account: flows summed, stocks as of the month''s last day.';
COMMENT ON COLUMN ledger.metrics_daily.livemode IS 'True: live-mode figures; false: test mode. Never add the two.';
COMMENT ON COLUMN ledger.metrics_daily.account IS 'The Connect account the figures are of (acct_...); NULL: the platform''s own.';
COMMENT ON COLUMN ledger.metrics_monthly.livemode IS 'True: live-mode figures; false: test mode. Never add the two.';
COMMENT ON COLUMN ledger.metrics_monthly.account IS 'The Connect account the figures are of (acct_...); NULL: the platform''s own.';
