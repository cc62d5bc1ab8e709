-- Month-end close and payout reconciliation.
--
-- A close freezes a calendar month (UTC) as the read models knew it at one log position: its
-- figures per mode, account and currency (ledger.close_figures) and every object that made them
-- up (ledger.close_lines). Like ledger.events, the three tables only ever grow: the triggers
-- below refuse UPDATE, DELETE and TRUNCATE, so a closed period's figures never change. What the
-- log learns later about a closed month is shown as that month's adjustments, computed by
-- comparing today's lines with the frozen ones (query/close.go), never by editing the close.
--
-- The payout reconciliation is a view over functions, as the metric views are: the read-model
-- tables it reads are created (and swapped on replay) by the projection runner after migrations
-- run, so the function bodies are resolved when they run, and a replay's swap is never blocked
-- by a view depending on the tables it drops.
SET LOCAL check_function_bodies = off;

CREATE TABLE ledger.closes (
    period      date        PRIMARY KEY CHECK (extract(day FROM period) = 1),
    period_end  date        NOT NULL CHECK (period_end = (period + interval '1 month')::date),
    position    bigint      NOT NULL CHECK (position >= 0),
    head        bigint      NOT NULL CHECK (head >= position),
    closed_at   timestamptz NOT NULL DEFAULT now(),
    closed_by   text
);
COMMENT ON TABLE ledger.closes IS 'Closed months (UTC): one row per period, written once by ledger close or POST /api/v1/closes, never changed.';
COMMENT ON COLUMN ledger.closes.period IS 'The first day of the month closed (the period is [period, period_end) in UTC).';
COMMENT ON COLUMN ledger.closes.period_end IS 'The first day of the next month: the period''s exclusive end.';
COMMENT ON COLUMN ledger.closes.position IS 'The log position the figures are of: every event up to it was folded into the read models the close read; events after it that touch the period are its adjustments.';
COMMENT ON COLUMN ledger.closes.head IS 'The highest committed log position when the period was closed (equal to position unless the live projection was behind).';
COMMENT ON COLUMN ledger.closes.closed_at IS 'When the period was closed.';
COMMENT ON COLUMN ledger.closes.closed_by IS 'Who closed it (ledger close --by, or the API token''s name); NULL when not said.';

CREATE TABLE ledger.close_figures (
    period           date    NOT NULL REFERENCES ledger.closes,
    livemode         boolean NOT NULL,
    account          text,
    currency         text    NOT NULL,
    gross_revenue    bigint  NOT NULL,
    refunds          bigint  NOT NULL,
    dispute_losses   bigint  NOT NULL,
    fees             bigint  NOT NULL,
    net              bigint  NOT NULL CHECK (net = gross_revenue - refunds - dispute_losses - fees),
    payouts          bigint  NOT NULL,
    open_receivables bigint  NOT NULL,
    mrr              bigint  NOT NULL
);
CREATE UNIQUE INDEX close_figures_key ON ledger.close_figures (period, livemode, coalesce(account, ''), currency);
COMMENT ON TABLE ledger.close_figures IS 'A closed period''s figures, one row per mode, account and currency, as known at the close''s position. Money in the currency''s minor unit. Never changed.';
COMMENT ON COLUMN ledger.close_figures.livemode IS 'True: live-mode figures; false: test mode. Never add the two.';
COMMENT ON COLUMN ledger.close_figures.account IS 'The Connect account the figures are of (acct_...); NULL: the platform''s own.';
COMMENT ON COLUMN ledger.close_figures.currency IS 'ISO 4217 currency, lowercase: the minor unit of every amount in the row.';
COMMENT ON COLUMN ledger.close_figures.gross_revenue IS 'Succeeded charges created in the period (presentment currency).';
COMMENT ON COLUMN ledger.close_figures.refunds IS 'Succeeded refunds created in the period.';
COMMENT ON COLUMN ledger.close_figures.dispute_losses IS 'Disputes opened in the period and lost (as known at the close).';
COMMENT ON COLUMN ledger.close_figures.fees IS 'Stripe''s fees on balance transactions created in the period, in the currency Stripe charged them in (the settlement currency): each transaction''s fee, plus the amount of fee-category transactions.';
COMMENT ON COLUMN ledger.close_figures.net IS 'gross_revenue - refunds - dispute_losses - fees, in this currency.';
COMMENT ON COLUMN ledger.close_figures.payouts IS 'Paid payouts whose arrival_date is in the period.';
COMMENT ON COLUMN ledger.close_figures.open_receivables IS 'Invoices created before the period end and open at it: amount_remaining of those still open, amount_due of those paid by a charge created after the end.';
COMMENT ON COLUMN ledger.close_figures.mrr IS 'MRR at the period end: the sum of subscription_movements before it.';

CREATE TABLE ledger.close_lines (
    period      date    NOT NULL REFERENCES ledger.closes,
    figure      text    NOT NULL CHECK (figure IN ('gross_revenue', 'refunds', 'dispute_losses', 'fees', 'payouts', 'open_receivables', 'mrr')),
    livemode    boolean NOT NULL,
    account     text,
    currency    text    NOT NULL,
    object_type text    NOT NULL,
    object      text    NOT NULL,
    related     text,
    amount      bigint  NOT NULL
);
CREATE INDEX close_lines_period ON ledger.close_lines (period, figure);
COMMENT ON TABLE ledger.close_lines IS 'Every object that made up a closed period''s figures, with what it added: the figures are their sums. Adjustments compare today''s objects with these. Never changed.';
COMMENT ON COLUMN ledger.close_lines.figure IS 'The figure the object adds to (a close_figures column).';
COMMENT ON COLUMN ledger.close_lines.object_type IS 'charge, refund, dispute, balance_transaction, payout, invoice or subscription.';
COMMENT ON COLUMN ledger.close_lines.object IS 'The object''s Stripe ID.';
COMMENT ON COLUMN ledger.close_lines.related IS 'The object whose events can change this one''s line too (a refund''s or dispute''s charge, a balance transaction''s source, the charge that paid an invoice); NULL when none.';
COMMENT ON COLUMN ledger.close_lines.amount IS 'What the object adds to the figure, minor units of currency.';

CREATE FUNCTION ledger.closes_are_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a closed period never changes: % on ledger.% refused (later events show as adjustments)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER closes_final BEFORE UPDATE OR DELETE ON ledger.closes FOR EACH ROW EXECUTE FUNCTION ledger.closes_are_final();
CREATE TRIGGER closes_final_truncate BEFORE TRUNCATE ON ledger.closes FOR EACH STATEMENT EXECUTE FUNCTION ledger.closes_are_final();
CREATE TRIGGER close_figures_final BEFORE UPDATE OR DELETE ON ledger.close_figures FOR EACH ROW EXECUTE FUNCTION ledger.closes_are_final();
CREATE TRIGGER close_figures_final_truncate BEFORE TRUNCATE ON ledger.close_figures FOR EACH STATEMENT EXECUTE FUNCTION ledger.closes_are_final();
CREATE TRIGGER close_lines_final BEFORE UPDATE OR DELETE ON ledger.close_lines FOR EACH ROW EXECUTE FUNCTION ledger.closes_are_final();
CREATE TRIGGER close_lines_final_truncate BEFORE TRUNCATE ON ledger.close_lines FOR EACH STATEMENT EXECUTE FUNCTION ledger.closes_are_final();

-- One row per payout: its balance transactions (those GET /v1/balance_transactions?payout= listed,
-- less the payout's own, whose source is the payout) grouped by reporting category, their sum,
-- and whether it equals the payout's amount. Fees are split out of every transaction (amount -
-- fee = net), so the groups add up to the sum of the transactions' net.
CREATE FUNCTION ledger.payout_reconciliation_rows() RETURNS TABLE (
    payout text, livemode boolean, account text, currency text, amount bigint, status text, arrival_date timestamptz,
    automatic boolean, method text, charges bigint, refunds bigint, disputes bigint, fees bigint, adjustments bigint,
    transfers bigint, other bigint, transactions bigint, total bigint, difference bigint, match boolean, created timestamptz
) LANGUAGE sql STABLE AS $fn$
SELECT p.id, p.livemode, p.account, p.currency, p.amount, p.status, p.arrival_date, p.automatic, p.method,
       coalesce(sum(b.amount) FILTER (WHERE b.reporting_category = 'charge'), 0)::bigint,
       coalesce(sum(b.amount) FILTER (WHERE b.reporting_category IN ('refund', 'refund_failure')), 0)::bigint,
       coalesce(sum(b.amount) FILTER (WHERE b.reporting_category IN ('dispute', 'dispute_reversal')), 0)::bigint,
       (coalesce(sum(b.amount) FILTER (WHERE b.reporting_category = 'fee'), 0) - coalesce(sum(b.fee), 0))::bigint,
       coalesce(sum(b.amount) FILTER (WHERE b.reporting_category = 'adjustment'), 0)::bigint,
       coalesce(sum(b.amount) FILTER (WHERE b.reporting_category IN ('transfer', 'transfer_reversal', 'connect_collection_transfer')), 0)::bigint,
       coalesce(sum(b.amount) FILTER (WHERE b.reporting_category NOT IN ('charge', 'refund', 'refund_failure', 'dispute', 'dispute_reversal',
           'fee', 'adjustment', 'transfer', 'transfer_reversal', 'connect_collection_transfer')), 0)::bigint,
       count(b.id),
       coalesce(sum(b.net), 0)::bigint,
       (coalesce(sum(b.net), 0) - p.amount)::bigint,
       coalesce(sum(b.net), 0) = p.amount,
       p.created
FROM ledger.payouts p
LEFT JOIN ledger.balance_transactions b ON b.payout = p.id AND b.livemode = p.livemode
     AND b.account IS NOT DISTINCT FROM p.account AND b.source IS DISTINCT FROM p.id
GROUP BY p.id, p.livemode, p.account, p.currency, p.amount, p.status, p.arrival_date, p.automatic, p.method, p.created
$fn$;

CREATE VIEW ledger.payout_reconciliation AS SELECT * FROM ledger.payout_reconciliation_rows();
COMMENT ON VIEW ledger.payout_reconciliation IS 'Each payout against the balance transactions it paid out, by reporting category: match says whether their sum equals the payout''s amount. README, Payout reconciliation, defines each column.';
COMMENT ON COLUMN ledger.payout_reconciliation.charges IS 'Sum of amount of its charge-category transactions (gross, before fees).';
COMMENT ON COLUMN ledger.payout_reconciliation.refunds IS 'Sum of amount of its refund and refund_failure transactions (negative).';
COMMENT ON COLUMN ledger.payout_reconciliation.disputes IS 'Sum of amount of its dispute and dispute_reversal transactions.';
COMMENT ON COLUMN ledger.payout_reconciliation.fees IS 'Minus the fees of all its transactions, plus the amount of fee-category ones (negative).';
COMMENT ON COLUMN ledger.payout_reconciliation.adjustments IS 'Sum of amount of its adjustment-category transactions.';
COMMENT ON COLUMN ledger.payout_reconciliation.transfers IS 'Sum of amount of its transfer, transfer_reversal and connect_collection_transfer transactions.';
COMMENT ON COLUMN ledger.payout_reconciliation.other IS 'Sum of amount of its transactions of any other category (e.g. payout_reversal: a failed payout''s funds returned).';
COMMENT ON COLUMN ledger.payout_reconciliation.transactions IS 'How many balance transactions the ledger holds for it (its own excluded).';
COMMENT ON COLUMN ledger.payout_reconciliation.total IS 'Sum of their net: what they should have paid out; the groups above add up to it.';
COMMENT ON COLUMN ledger.payout_reconciliation.difference IS 'total - amount: 0 when it reconciles.';
COMMENT ON COLUMN ledger.payout_reconciliation.match IS 'True when total equals the payout''s amount, to the cent.';

-- What does not reconcile at time $1: succeeded charges with no balance transaction two days
-- after they were created (Stripe makes card funds available then), paid payouts whose parts do
-- not add up, and balance transactions whose source the ledger does not hold.
CREATE FUNCTION ledger.unreconciled_rows(at timestamptz) RETURNS TABLE (
    kind text, object text, livemode boolean, account text, currency text, amount bigint, expected bigint,
    difference bigint, since timestamptz, detail text
) LANGUAGE sql STABLE AS $fn$
SELECT 'charge_without_balance_transaction', c.id, c.livemode, c.account, c.currency, c.amount, NULL::bigint, NULL::bigint,
       c.created + interval '2 days', 'succeeded charge with no balance transaction two days after it was created'
FROM ledger.charges c
WHERE c.status = 'succeeded' AND c.created + interval '2 days' < $1
  AND NOT EXISTS (SELECT 1 FROM ledger.balance_transactions b WHERE b.livemode = c.livemode AND b.account IS NOT DISTINCT FROM c.account
                  AND (b.source = c.id OR b.id = c.balance_transaction))
UNION ALL
SELECT 'payout_mismatch', r.payout, r.livemode, r.account, r.currency, r.total, r.amount, r.difference, r.arrival_date,
       format('paid payout of %s %s; its %s transactions add up to %s', r.amount, r.currency, r.transactions, r.total)
FROM ledger.payout_reconciliation_rows() r
WHERE r.status = 'paid' AND NOT r.match
UNION ALL
SELECT 'unmatched_balance_transaction', b.id, b.livemode, b.account, b.currency, b.amount, NULL, NULL, b.created,
       format('%s transaction of source %s, which the ledger does not hold', b.type, b.source)
FROM ledger.balance_transactions b
WHERE b.source IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ledger.charges x WHERE x.id = b.source AND x.livemode = b.livemode AND x.account IS NOT DISTINCT FROM b.account)
  AND NOT EXISTS (SELECT 1 FROM ledger.refunds x WHERE x.id = b.source AND x.livemode = b.livemode AND x.account IS NOT DISTINCT FROM b.account)
  AND NOT EXISTS (SELECT 1 FROM ledger.disputes x WHERE x.id = b.source AND x.livemode = b.livemode AND x.account IS NOT DISTINCT FROM b.account)
  AND NOT EXISTS (SELECT 1 FROM ledger.payouts x WHERE x.id = b.source AND x.livemode = b.livemode AND x.account IS NOT DISTINCT FROM b.account)
$fn$;

CREATE VIEW ledger.unreconciled AS SELECT * FROM ledger.unreconciled_rows(now());
COMMENT ON VIEW ledger.unreconciled IS 'What does not reconcile now: kind charge_without_balance_transaction, payout_mismatch or unmatched_balance_transaction. README, Payout reconciliation.';
COMMENT ON COLUMN ledger.unreconciled.amount IS 'The charge''s or transaction''s amount; for a payout, the sum of its transactions'' net.';
COMMENT ON COLUMN ledger.unreconciled.expected IS 'For a payout: its amount; NULL otherwise.';
COMMENT ON COLUMN ledger.unreconciled.since IS 'Since when it is unreconciled: the charge''s created + 2 days, the payout''s arrival_date, the transaction''s created.';

-- Whoever can read the metric views (a BI role: docs/bi-readonly.sql) can read these.
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT DISTINCT grantee FROM information_schema.routine_privileges
             WHERE routine_schema = 'ledger' AND routine_name = 'metrics_daily_scoped_rows' AND privilege_type = 'EXECUTE'
               AND grantee NOT IN ('PUBLIC', current_user) LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION ledger.payout_reconciliation_rows(), ledger.unreconciled_rows(timestamptz) TO %I', g.grantee);
        EXECUTE format('GRANT SELECT ON ledger.payout_reconciliation, ledger.unreconciled, ledger.closes, ledger.close_figures, ledger.close_lines TO %I', g.grantee);
    END LOOP;
END $$;

-- The columns finance filters on, described where BI tools read descriptions.
COMMENT ON COLUMN ledger.close_figures.period IS 'The closed month, YYYY-MM (UTC).';
COMMENT ON COLUMN ledger.close_lines.period IS 'The closed month, YYYY-MM (UTC).';
COMMENT ON COLUMN ledger.close_lines.livemode IS 'The object''s mode: true live, false test. Never add the two.';
COMMENT ON COLUMN ledger.close_lines.account IS 'The object''s Connect account (acct_...); NULL for the platform''s own.';
COMMENT ON COLUMN ledger.close_lines.currency IS 'ISO 4217 currency, lowercase: the minor unit of the line''s amounts.';
COMMENT ON COLUMN ledger.payout_reconciliation.payout IS 'Stripe payout ID (po_...).';
COMMENT ON COLUMN ledger.payout_reconciliation.livemode IS 'The payout''s mode: true live, false test.';
COMMENT ON COLUMN ledger.payout_reconciliation.account IS 'The payout''s Connect account (acct_...); NULL for the platform''s own.';
COMMENT ON COLUMN ledger.payout_reconciliation.currency IS 'The payout''s currency (ISO 4217, lowercase): the minor unit of every amount in the row.';
COMMENT ON COLUMN ledger.payout_reconciliation.amount IS 'The payout''s amount, minor units.';
COMMENT ON COLUMN ledger.payout_reconciliation.status IS 'The payout''s status: paid, pending, in_transit, canceled, failed.';
COMMENT ON COLUMN ledger.payout_reconciliation.arrival_date IS 'When the payout arrives (or arrived) in the bank.';
COMMENT ON COLUMN ledger.payout_reconciliation.automatic IS 'True for Stripe''s automatic payouts.';
COMMENT ON COLUMN ledger.payout_reconciliation.method IS 'standard or instant.';
COMMENT ON COLUMN ledger.payout_reconciliation.created IS 'When the payout was created in Stripe.';
COMMENT ON COLUMN ledger.unreconciled.kind IS 'payout_mismatch, charge_without_balance_transaction or unmatched_balance_transaction (README, Payout reconciliation).';
COMMENT ON COLUMN ledger.unreconciled.object IS 'The payout, charge or balance transaction the finding is about.';
COMMENT ON COLUMN ledger.unreconciled.livemode IS 'The object''s mode: true live, false test.';
COMMENT ON COLUMN ledger.unreconciled.account IS 'The object''s Connect account (acct_...); NULL for the platform''s own.';
COMMENT ON COLUMN ledger.unreconciled.currency IS 'ISO 4217 currency, lowercase: the minor unit of the amounts.';
COMMENT ON COLUMN ledger.unreconciled.difference IS 'For a payout_mismatch, its transactions'' total minus its amount, minor units; NULL otherwise.';
COMMENT ON COLUMN ledger.unreconciled.detail IS 'What is wrong, in words.';
