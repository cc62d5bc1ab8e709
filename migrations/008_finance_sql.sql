-- What finance needs from SQL: every table and column described in the catalog (a BI tool shows
-- these), and metric views following Stripe's definitions (README, "Metrics").

COMMENT ON TABLE ledger.customers IS 'Stripe customers as of their latest event. Deleted customers stay, with deleted = true.';
COMMENT ON COLUMN ledger.customers.id IS 'Stripe customer ID (cus_...).';
COMMENT ON COLUMN ledger.customers.email IS 'Email address; '''' when none.';
COMMENT ON COLUMN ledger.customers.name IS 'Name; '''' when none.';
COMMENT ON COLUMN ledger.customers.currency IS 'The customer''s default currency (ISO 4217, lowercase); '''' when not set yet.';
COMMENT ON COLUMN ledger.customers.metadata IS 'The customer''s Stripe metadata (JSON object of strings).';
COMMENT ON COLUMN ledger.customers.deleted IS 'True once the customer was deleted in Stripe.';
COMMENT ON COLUMN ledger.customers.created IS 'When the customer was created in Stripe.';
COMMENT ON COLUMN ledger.customers.event_id IS 'The log event this row''s state comes from (the latest of the object''s events by the ordering rule).';
COMMENT ON COLUMN ledger.customers.event_created IS 'That event''s Stripe created time (one-second resolution).';

COMMENT ON TABLE ledger.subscriptions IS 'Stripe subscriptions as of their latest event, with monthly recurring revenue (mrr) by Stripe''s definition. Money in the currency''s minor unit.';
COMMENT ON COLUMN ledger.subscriptions.id IS 'Stripe subscription ID (sub_...).';
COMMENT ON COLUMN ledger.subscriptions.customer IS 'Stripe customer ID.';
COMMENT ON COLUMN ledger.subscriptions.app_user_id IS 'The subscriber''s user ID in the app: per the identity setting, from metadata, the Checkout session''s client_reference_id, the customer ID, or a stable $anon:... ID.';
COMMENT ON COLUMN ledger.subscriptions.status IS 'Stripe status: trialing, active, past_due, unpaid, canceled, incomplete, incomplete_expired, paused.';
COMMENT ON COLUMN ledger.subscriptions.currency IS 'ISO 4217 currency, lowercase.';
COMMENT ON COLUMN ledger.subscriptions.items IS 'Prices subscribed to: JSON array of {id, price, product, quantity, interval, interval_count, unit_amount (minor units)}.';
COMMENT ON COLUMN ledger.subscriptions.trial_start IS 'Trial start; NULL when no trial.';
COMMENT ON COLUMN ledger.subscriptions.trial_end IS 'Trial end; NULL when no trial.';
COMMENT ON COLUMN ledger.subscriptions.current_period_start IS 'Start of the current billing period.';
COMMENT ON COLUMN ledger.subscriptions.current_period_end IS 'End of the current billing period.';
COMMENT ON COLUMN ledger.subscriptions.cancel_at_period_end IS 'True when the subscription is set to cancel at the end of the period.';
COMMENT ON COLUMN ledger.subscriptions.cancel_at IS 'When it is scheduled to cancel; NULL when not.';
COMMENT ON COLUMN ledger.subscriptions.canceled_at IS 'When it was canceled; NULL when not.';
COMMENT ON COLUMN ledger.subscriptions.ended_at IS 'When it ended; NULL while not ended.';
COMMENT ON COLUMN ledger.subscriptions.pause_behavior IS 'pause_collection.behavior while collection is paused; '''' otherwise.';
COMMENT ON COLUMN ledger.subscriptions.coupon_duration IS 'The discount''s coupon duration: forever, once, repeating; '''' without a discount.';
COMMENT ON COLUMN ledger.subscriptions.coupon_percent_off IS 'The coupon''s percent off; 0 without one.';
COMMENT ON COLUMN ledger.subscriptions.metadata IS 'The subscription''s Stripe metadata.';
COMMENT ON COLUMN ledger.subscriptions.mrr IS 'Monthly recurring revenue in minor units: active and past_due only (not trials), yearly / 12, weekly * 52 / 12, daily * 365 / 12, over interval_count; reduced by forever coupons only; rounded down.';
COMMENT ON COLUMN ledger.subscriptions.attention IS 'Why a person should look at this row (e.g. an event of another API version without a billing period); '''' when nothing.';
COMMENT ON COLUMN ledger.subscriptions.event_id IS 'The log event this row''s state comes from (the latest of the object''s events by the ordering rule).';
COMMENT ON COLUMN ledger.subscriptions.event_created IS 'That event''s Stripe created time (one-second resolution).';

COMMENT ON TABLE ledger.subscription_movements IS 'Every change of a subscription''s MRR, with the event that caused it: the sum of a subscription''s amounts is its current mrr. Finance can recompute any metric from it.';
COMMENT ON COLUMN ledger.subscription_movements.subscription IS 'Stripe subscription ID.';
COMMENT ON COLUMN ledger.subscription_movements.customer IS 'Stripe customer ID.';
COMMENT ON COLUMN ledger.subscription_movements.currency IS 'Currency of the amounts.';
COMMENT ON COLUMN ledger.subscription_movements.kind IS 'new (0 to >0, first time), reactivation (0 to >0 again), expansion (up), contraction (down, still >0), churn (to 0).';
COMMENT ON COLUMN ledger.subscription_movements.amount IS 'mrr_after - mrr_before, minor units.';
COMMENT ON COLUMN ledger.subscription_movements.mrr_before IS 'The subscription''s MRR before, minor units.';
COMMENT ON COLUMN ledger.subscription_movements.mrr_after IS 'The subscription''s MRR after, minor units.';
COMMENT ON COLUMN ledger.subscription_movements.event_id IS 'The event that caused the movement.';
COMMENT ON COLUMN ledger.subscription_movements.at IS 'When (the event''s created time).';

COMMENT ON TABLE ledger.invoices IS 'Stripe invoices as of their latest event. Money in the currency''s minor unit.';
COMMENT ON COLUMN ledger.invoices.id IS 'Stripe invoice ID (in_...).';
COMMENT ON COLUMN ledger.invoices.customer IS 'Stripe customer ID.';
COMMENT ON COLUMN ledger.invoices.subscription IS 'Stripe subscription ID; '''' for one-off invoices.';
COMMENT ON COLUMN ledger.invoices.status IS 'draft, open, paid, uncollectible, void.';
COMMENT ON COLUMN ledger.invoices.billing_reason IS 'subscription_create, subscription_cycle, subscription_update, manual, ...';
COMMENT ON COLUMN ledger.invoices.currency IS 'ISO 4217 currency, lowercase.';
COMMENT ON COLUMN ledger.invoices.amount_due IS 'Amount due, minor units.';
COMMENT ON COLUMN ledger.invoices.amount_paid IS 'Amount paid, minor units.';
COMMENT ON COLUMN ledger.invoices.amount_remaining IS 'Amount remaining, minor units.';
COMMENT ON COLUMN ledger.invoices.total IS 'Total after discounts and taxes, minor units.';
COMMENT ON COLUMN ledger.invoices.attempt_count IS 'Payment attempts so far.';
COMMENT ON COLUMN ledger.invoices.charge IS 'The charge that paid it; '''' when none.';
COMMENT ON COLUMN ledger.invoices.payment_intent IS 'PaymentIntent ID; '''' when none.';
COMMENT ON COLUMN ledger.invoices.period_start IS 'Start of the period invoiced.';
COMMENT ON COLUMN ledger.invoices.period_end IS 'End of the period invoiced.';
COMMENT ON COLUMN ledger.invoices.created IS 'When the invoice was created in Stripe.';
COMMENT ON COLUMN ledger.invoices.event_id IS 'The log event this row''s state comes from (the latest of the object''s events by the ordering rule).';
COMMENT ON COLUMN ledger.invoices.event_created IS 'That event''s Stripe created time (one-second resolution).';

COMMENT ON TABLE ledger.charges IS 'Stripe charges as of their latest event, with refunds (amount_refunded) and the latest dispute folded in. Money in the currency''s minor unit.';
COMMENT ON COLUMN ledger.charges.id IS 'Stripe charge ID (ch_...).';
COMMENT ON COLUMN ledger.charges.amount IS 'Amount charged, minor units.';
COMMENT ON COLUMN ledger.charges.amount_captured IS 'Amount captured, minor units.';
COMMENT ON COLUMN ledger.charges.amount_refunded IS 'Amount refunded so far, minor units.';
COMMENT ON COLUMN ledger.charges.refunded IS 'True when fully refunded.';
COMMENT ON COLUMN ledger.charges.currency IS 'ISO 4217 currency, lowercase.';
COMMENT ON COLUMN ledger.charges.status IS 'succeeded, pending, failed.';
COMMENT ON COLUMN ledger.charges.paid IS 'True when the charge succeeded or was authorised.';
COMMENT ON COLUMN ledger.charges.failure_code IS 'Stripe''s failure code; '''' when none.';
COMMENT ON COLUMN ledger.charges.failure_message IS 'Stripe''s failure message; '''' when none.';
COMMENT ON COLUMN ledger.charges.payment_intent IS 'PaymentIntent ID; '''' when none.';
COMMENT ON COLUMN ledger.charges.invoice IS 'The invoice it paid; '''' when none.';
COMMENT ON COLUMN ledger.charges.customer IS 'Stripe customer ID; '''' for guest payments.';
COMMENT ON COLUMN ledger.charges.dispute_id IS 'The latest dispute on the charge; '''' when none.';
COMMENT ON COLUMN ledger.charges.dispute_status IS 'That dispute''s status (needs_response, under_review, won, lost, ...); '''' when none.';
COMMENT ON COLUMN ledger.charges.created IS 'When the charge was created in Stripe.';
COMMENT ON COLUMN ledger.charges.event_id IS 'The log event this row''s state comes from (the latest of the object''s events by the ordering rule).';
COMMENT ON COLUMN ledger.charges.event_created IS 'That event''s Stripe created time (one-second resolution).';

COMMENT ON TABLE ledger.refunds IS 'Stripe refunds as of their latest event (charge.refund.updated and refund.*). Money in the currency''s minor unit.';
COMMENT ON COLUMN ledger.refunds.id IS 'Stripe refund ID (re_...).';
COMMENT ON COLUMN ledger.refunds.charge IS 'The refunded charge.';
COMMENT ON COLUMN ledger.refunds.amount IS 'Amount refunded, minor units.';
COMMENT ON COLUMN ledger.refunds.currency IS 'ISO 4217 currency, lowercase.';
COMMENT ON COLUMN ledger.refunds.status IS 'pending, succeeded, failed, canceled, requires_action.';
COMMENT ON COLUMN ledger.refunds.reason IS 'duplicate, fraudulent, requested_by_customer, ...; '''' when none.';
COMMENT ON COLUMN ledger.refunds.created IS 'When the refund was created (revenue reports date refunds on this).';
COMMENT ON COLUMN ledger.refunds.event_id IS 'The log event this row''s state comes from (the latest of the object''s events by the ordering rule).';
COMMENT ON COLUMN ledger.refunds.event_created IS 'That event''s Stripe created time (one-second resolution).';

COMMENT ON TABLE ledger.disputes IS 'Stripe disputes as of their latest event (charge.dispute.*). Money in the currency''s minor unit.';
COMMENT ON COLUMN ledger.disputes.id IS 'Stripe dispute ID (dp_...).';
COMMENT ON COLUMN ledger.disputes.charge IS 'The disputed charge.';
COMMENT ON COLUMN ledger.disputes.amount IS 'Amount disputed, minor units.';
COMMENT ON COLUMN ledger.disputes.currency IS 'ISO 4217 currency, lowercase.';
COMMENT ON COLUMN ledger.disputes.status IS 'warning_needs_response, needs_response, under_review, won, lost, ...';
COMMENT ON COLUMN ledger.disputes.reason IS 'fraudulent, product_not_received, ...';
COMMENT ON COLUMN ledger.disputes.created IS 'When the dispute was opened.';
COMMENT ON COLUMN ledger.disputes.event_id IS 'The log event this row''s state comes from (the latest of the object''s events by the ordering rule).';
COMMENT ON COLUMN ledger.disputes.event_created IS 'That event''s Stripe created time (one-second resolution).';

COMMENT ON TABLE ledger.checkout_sessions IS 'Stripe Checkout sessions as of their latest event: where app user IDs of Checkout purchases come from.';
COMMENT ON COLUMN ledger.checkout_sessions.id IS 'Checkout session ID (cs_...).';
COMMENT ON COLUMN ledger.checkout_sessions.customer IS 'Stripe customer ID; '''' for guest checkouts.';
COMMENT ON COLUMN ledger.checkout_sessions.client_reference_id IS 'The app''s reference passed to Checkout; '''' when none.';
COMMENT ON COLUMN ledger.checkout_sessions.subscription IS 'The subscription it created; '''' when none.';
COMMENT ON COLUMN ledger.checkout_sessions.mode IS 'payment, subscription or setup.';
COMMENT ON COLUMN ledger.checkout_sessions.status IS 'open, complete, expired.';
COMMENT ON COLUMN ledger.checkout_sessions.payment_status IS 'paid, unpaid, no_payment_required.';
COMMENT ON COLUMN ledger.checkout_sessions.currency IS 'ISO 4217 currency, lowercase.';
COMMENT ON COLUMN ledger.checkout_sessions.amount_total IS 'Total, minor units.';
COMMENT ON COLUMN ledger.checkout_sessions.metadata IS 'The session''s Stripe metadata.';
COMMENT ON COLUMN ledger.checkout_sessions.app_user_id IS 'The purchaser''s user ID in the app (see subscriptions.app_user_id).';
COMMENT ON COLUMN ledger.checkout_sessions.created IS 'When the session was created.';
COMMENT ON COLUMN ledger.checkout_sessions.event_id IS 'The log event this row''s state comes from (the latest of the object''s events by the ordering rule).';
COMMENT ON COLUMN ledger.checkout_sessions.event_created IS 'That event''s Stripe created time (one-second resolution).';

COMMENT ON TABLE ledger.events IS 'The event log: every Stripe event the ledger accepted, byte for byte, in commit order, hash-chained. Append-only: updates and deletes are refused.';
COMMENT ON COLUMN ledger.events.position IS 'Dense position from 1, in commit order.';
COMMENT ON COLUMN ledger.events.event_id IS 'Stripe''s event ID (or the ledger''s for snapshot events); unique.';
COMMENT ON COLUMN ledger.events.type IS 'Event type, e.g. invoice.paid.';
COMMENT ON COLUMN ledger.events.api_version IS 'API version the event is rendered in; '''' when none.';
COMMENT ON COLUMN ledger.events.created IS 'Stripe''s created time (one-second resolution).';
COMMENT ON COLUMN ledger.events.livemode IS 'Live or test mode.';
COMMENT ON COLUMN ledger.events.account IS 'Connect account; '''' for the platform.';
COMMENT ON COLUMN ledger.events.object_type IS 'data.object.object.';
COMMENT ON COLUMN ledger.events.object_id IS 'data.object.id.';
COMMENT ON COLUMN ledger.events.source IS 'webhook, reconcile, snapshot or import.';
COMMENT ON COLUMN ledger.events.received_at IS 'When the ledger accepted it.';
COMMENT ON COLUMN ledger.events.payload IS 'The exact bytes received (request body or API page item).';
COMMENT ON COLUMN ledger.events.signature IS 'The Stripe-Signature header for webhook events; NULL otherwise.';
COMMENT ON COLUMN ledger.events.prev_hash IS 'The previous event''s hash (32 zero bytes for the first).';
COMMENT ON COLUMN ledger.events.hash IS 'SHA-256 over prev_hash, position and this event''s content: ledger verify checks the chain.';

COMMENT ON VIEW ledger.events_json IS 'ledger.events with the payload as jsonb, for ad-hoc queries.';
COMMENT ON COLUMN ledger.events_json.position IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.event_id IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.type IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.api_version IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.created IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.livemode IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.account IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.object_type IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.object_id IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.source IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.received_at IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.payload IS 'The event as jsonb.';

COMMENT ON VIEW ledger.object_history IS 'Every event of each Stripe object through the log, in order, with what it changed.';
COMMENT ON COLUMN ledger.object_history.object_type IS 'data.object.object.';
COMMENT ON COLUMN ledger.object_history.object_id IS 'data.object.id.';
COMMENT ON COLUMN ledger.object_history.position IS 'Log position.';
COMMENT ON COLUMN ledger.object_history.event_id IS 'Event ID.';
COMMENT ON COLUMN ledger.object_history.type IS 'Event type.';
COMMENT ON COLUMN ledger.object_history.created IS 'Stripe''s created time.';
COMMENT ON COLUMN ledger.object_history.api_version IS 'API version.';
COMMENT ON COLUMN ledger.object_history.source IS 'webhook, reconcile, snapshot or import.';
COMMENT ON COLUMN ledger.object_history.received_at IS 'When the ledger accepted it.';
COMMENT ON COLUMN ledger.object_history.previous_attributes IS 'data.previous_attributes: the values the event changed from; NULL when none.';

COMMENT ON TABLE ledger.log_head IS 'The log''s tip: the one row every append locks, so positions are in commit order.';
COMMENT ON COLUMN ledger.log_head.singleton IS 'Always true: there is one row.';
COMMENT ON COLUMN ledger.log_head.position IS 'The last position appended.';
COMMENT ON COLUMN ledger.log_head.hash IS 'The last event''s hash.';

COMMENT ON TABLE ledger.webhook_quarantine IS 'Signed webhook bodies that are not Stripe events: kept for inspection, answered 400.';
COMMENT ON COLUMN ledger.webhook_quarantine.id IS 'Row ID.';
COMMENT ON COLUMN ledger.webhook_quarantine.received_at IS 'When it arrived.';
COMMENT ON COLUMN ledger.webhook_quarantine.reason IS 'Why it is not an event (a stable token).';
COMMENT ON COLUMN ledger.webhook_quarantine.detail IS 'The reason for people.';
COMMENT ON COLUMN ledger.webhook_quarantine.signature IS 'Its Stripe-Signature header.';
COMMENT ON COLUMN ledger.webhook_quarantine.payload IS 'The exact body.';
COMMENT ON COLUMN ledger.webhook_quarantine.sha256 IS 'SHA-256 of the body (one row per body).';

COMMENT ON COLUMN ledger.projection_state.name IS 'Projection name (read_models).';
COMMENT ON COLUMN ledger.projection_state.position IS 'The last log position folded into its read models.';
COMMENT ON COLUMN ledger.projection_state.rebuilt_at IS 'When ledger replay last swapped rebuilt tables in; NULL if never.';
COMMENT ON COLUMN ledger.projection_state.updated_at IS 'When the position last moved.';

COMMENT ON TABLE ledger.projection_quarantine IS 'Events a projection could not fold: kept out of the read models until ledger projections retry (or a replay) folds them.';
COMMENT ON COLUMN ledger.projection_quarantine.projection IS 'Projection name.';
COMMENT ON COLUMN ledger.projection_quarantine.event_id IS 'The event.';
COMMENT ON COLUMN ledger.projection_quarantine.position IS 'Its log position.';
COMMENT ON COLUMN ledger.projection_quarantine.event_type IS 'Its type.';
COMMENT ON COLUMN ledger.projection_quarantine.object_id IS 'Its object.';
COMMENT ON COLUMN ledger.projection_quarantine.error IS 'Why the last attempt failed.';
COMMENT ON COLUMN ledger.projection_quarantine.attempts IS 'Attempts so far.';
COMMENT ON COLUMN ledger.projection_quarantine.quarantined_at IS 'When first quarantined.';
COMMENT ON COLUMN ledger.projection_quarantine.last_attempt_at IS 'When last tried.';
COMMENT ON COLUMN ledger.projection_quarantine.resolved_at IS 'When it was folded after all; NULL while kept out.';

COMMENT ON TABLE ledger.reconcile_runs IS 'Every reconciliation run, scheduled or from the CLI: what was checked and what was repaired.';
COMMENT ON COLUMN ledger.reconcile_runs.id IS 'Run ID.';
COMMENT ON COLUMN ledger.reconcile_runs.job IS 'events, events-fast, objects or endpoints.';
COMMENT ON COLUMN ledger.reconcile_runs.status IS 'running, succeeded, failed, partial, cancelled.';
COMMENT ON COLUMN ledger.reconcile_runs.dry_run IS 'True when nothing was to be written.';
COMMENT ON COLUMN ledger.reconcile_runs.trigger IS 'cli, schedule or catch-up.';
COMMENT ON COLUMN ledger.reconcile_runs.window_from IS 'Events jobs: start of the created window checked.';
COMMENT ON COLUMN ledger.reconcile_runs.window_to IS 'Events jobs: end of the window.';
COMMENT ON COLUMN ledger.reconcile_runs.started_at IS 'When the run started.';
COMMENT ON COLUMN ledger.reconcile_runs.heartbeat_at IS 'Last sign of life of a running run.';
COMMENT ON COLUMN ledger.reconcile_runs.finished_at IS 'When it ended; NULL while running.';
COMMENT ON COLUMN ledger.reconcile_runs.requests IS 'Stripe API requests made.';
COMMENT ON COLUMN ledger.reconcile_runs.rate_limited IS 'Requests answered 429 (then retried).';
COMMENT ON COLUMN ledger.reconcile_runs.events_seen IS 'Events Stripe listed in the window.';
COMMENT ON COLUMN ledger.reconcile_runs.missing_found IS 'Of which not in the log.';
COMMENT ON COLUMN ledger.reconcile_runs.repaired IS 'Events or snapshot events appended.';
COMMENT ON COLUMN ledger.reconcile_runs.objects_checked IS 'Objects (or endpoints) compared.';
COMMENT ON COLUMN ledger.reconcile_runs.drift IS 'Differences by kind.field (JSON object of counts).';
COMMENT ON COLUMN ledger.reconcile_runs.findings IS 'Details (JSON array, first 1,000).';
COMMENT ON COLUMN ledger.reconcile_runs.cursor IS 'Where a resumed run continues.';
COMMENT ON COLUMN ledger.reconcile_runs.resumed_from IS 'The run this one resumed.';
COMMENT ON COLUMN ledger.reconcile_runs.runner IS 'Host and pid of the process.';
COMMENT ON COLUMN ledger.reconcile_runs.error IS 'Why it did not succeed; '''' when it did.';

COMMENT ON TABLE ledger.reconcile_coverage IS 'Created windows an events run proved complete: every event Stripe lists in them is in the log.';
COMMENT ON COLUMN ledger.reconcile_coverage.window_from IS 'Start of the window.';
COMMENT ON COLUMN ledger.reconcile_coverage.window_to IS 'End of the window.';
COMMENT ON COLUMN ledger.reconcile_coverage.run_id IS 'The run that proved it.';
COMMENT ON COLUMN ledger.reconcile_coverage.proven_at IS 'When.';

COMMENT ON TABLE ledger.schema_version IS 'The schema''s migration version (tern).';
COMMENT ON COLUMN ledger.schema_version.version IS 'The last migration applied.';

-- Metrics by day (UTC) and currency. Stocks (mrr, arr, active_subscribers) are as of the end of
-- the day; flows are what happened during it. Money in the currency's minor unit.
--   mrr                 sum of every subscription's MRR: the running total of the movement log
--   arr                 mrr * 12
--   active_subscribers  subscriptions whose MRR is above 0 (new and reactivated minus churned)
--   new_mrr, expansion_mrr, reactivation_mrr (>= 0), contraction_mrr, churned_mrr (<= 0)
--                       the movement log's amounts by kind; they add up to the change in mrr
--   gross_revenue       succeeded charges, dated on the charge
--   refunds             succeeded refunds, dated on the refund (not on the charge)
--   disputed            disputes opened, dated on the dispute; dispute_losses: those lost
--   net_revenue         gross_revenue - refunds - dispute_losses
--   payments, failed_payments, failed_amount   succeeded and failed charges
-- The daily metrics are computed by a function the view calls, not by the view itself: a view
-- is bound to the tables it reads, and `ledger replay` swaps those tables for rebuilt ones (a
-- function's body is resolved when it runs). The function is plain SQL, so Postgres inlines it
-- and filters on the view reach the tables.
CREATE FUNCTION ledger.metrics_daily_rows() RETURNS TABLE (
    day date, currency text, mrr bigint, arr bigint, active_subscribers bigint,
    new_mrr bigint, expansion_mrr bigint, contraction_mrr bigint, churned_mrr bigint, reactivation_mrr bigint,
    gross_revenue bigint, refunds bigint, disputed bigint, dispute_losses bigint, net_revenue bigint,
    payments bigint, failed_payments bigint, failed_amount bigint
) LANGUAGE sql STABLE AS $fn$
WITH moves AS (
    SELECT (at AT TIME ZONE 'UTC')::date AS day, currency,
           sum(amount) FILTER (WHERE kind = 'new')          AS new_mrr,
           sum(amount) FILTER (WHERE kind = 'expansion')    AS expansion_mrr,
           sum(amount) FILTER (WHERE kind = 'contraction')  AS contraction_mrr,
           sum(amount) FILTER (WHERE kind = 'churn')        AS churned_mrr,
           sum(amount) FILTER (WHERE kind = 'reactivation') AS reactivation_mrr,
           sum(amount) AS mrr_change,
           count(*) FILTER (WHERE kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE kind = 'churn') AS subscriber_change
    FROM ledger.subscription_movements GROUP BY 1, 2
), pays AS (
    SELECT (created AT TIME ZONE 'UTC')::date AS day, currency,
           sum(amount) FILTER (WHERE status = 'succeeded') AS gross_revenue,
           count(*) FILTER (WHERE status = 'succeeded')    AS payments,
           count(*) FILTER (WHERE status = 'failed')       AS failed_payments,
           sum(amount) FILTER (WHERE status = 'failed')    AS failed_amount
    FROM ledger.charges GROUP BY 1, 2
), refs AS (
    SELECT (created AT TIME ZONE 'UTC')::date AS day, currency, sum(amount) AS refunds
    FROM ledger.refunds WHERE status = 'succeeded' GROUP BY 1, 2
), disp AS (
    SELECT (created AT TIME ZONE 'UTC')::date AS day, currency,
           sum(amount) AS disputed, sum(amount) FILTER (WHERE status = 'lost') AS dispute_losses
    FROM ledger.disputes GROUP BY 1, 2
), keys AS (
    SELECT day, currency FROM moves UNION SELECT day, currency FROM pays
    UNION SELECT day, currency FROM refs UNION SELECT day, currency FROM disp
), span AS (
    SELECT currency, min(day) AS first FROM keys GROUP BY currency
), grid AS (
    SELECT s.currency, d::date AS day
    FROM span s, generate_series(s.first, greatest((now() AT TIME ZONE 'UTC')::date, (SELECT max(day) FROM keys)), interval '1 day') d
)
SELECT g.day, g.currency,
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
LEFT JOIN moves m ON m.day = g.day AND m.currency = g.currency
LEFT JOIN pays  p ON p.day = g.day AND p.currency = g.currency
LEFT JOIN refs  r ON r.day = g.day AND r.currency = g.currency
LEFT JOIN disp  x ON x.day = g.day AND x.currency = g.currency
WINDOW w AS (PARTITION BY g.currency ORDER BY g.day)
$fn$;

CREATE VIEW ledger.metrics_daily AS SELECT * FROM ledger.metrics_daily_rows();

-- The same by calendar month (UTC): flows summed, stocks as of the month's last day.
CREATE VIEW ledger.metrics_monthly AS
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
       sum(failed_payments)::bigint AS failed_payments, sum(failed_amount)::bigint AS failed_amount
FROM ledger.metrics_daily GROUP BY 1, 2;

COMMENT ON VIEW ledger.metrics_daily IS 'Finance metrics by day (UTC) and currency, Stripe''s definitions (README, Metrics). Stocks at the end of the day, flows during it.';
COMMENT ON COLUMN ledger.metrics_daily.day IS 'The day (UTC).';
COMMENT ON VIEW ledger.metrics_monthly IS 'ledger.metrics_daily by calendar month (UTC): flows summed, stocks as of the month''s last day.';
COMMENT ON COLUMN ledger.metrics_monthly.month IS 'The month''s first day (UTC).';
COMMENT ON COLUMN ledger.metrics_daily.mrr IS 'Monthly recurring revenue at the end of the period, minor units: the running total of the movement log.';
COMMENT ON COLUMN ledger.metrics_daily.arr IS 'mrr * 12.';
COMMENT ON COLUMN ledger.metrics_daily.active_subscribers IS 'Subscriptions with MRR above 0 at the end of the period.';
COMMENT ON COLUMN ledger.metrics_daily.new_mrr IS 'MRR from subscriptions going from 0 for the first time.';
COMMENT ON COLUMN ledger.metrics_daily.expansion_mrr IS 'MRR added by upgrades.';
COMMENT ON COLUMN ledger.metrics_daily.contraction_mrr IS 'MRR removed by downgrades (negative).';
COMMENT ON COLUMN ledger.metrics_daily.churned_mrr IS 'MRR lost to cancellations and non-payment (negative).';
COMMENT ON COLUMN ledger.metrics_daily.reactivation_mrr IS 'MRR from subscriptions coming back from 0.';
COMMENT ON COLUMN ledger.metrics_daily.gross_revenue IS 'Succeeded charges, dated on the charge.';
COMMENT ON COLUMN ledger.metrics_daily.refunds IS 'Succeeded refunds, dated on the refund.';
COMMENT ON COLUMN ledger.metrics_daily.disputed IS 'Disputes opened, dated on the dispute.';
COMMENT ON COLUMN ledger.metrics_daily.dispute_losses IS 'Of those, disputes lost.';
COMMENT ON COLUMN ledger.metrics_daily.net_revenue IS 'gross_revenue - refunds - dispute_losses.';
COMMENT ON COLUMN ledger.metrics_daily.payments IS 'Succeeded charges (count).';
COMMENT ON COLUMN ledger.metrics_daily.failed_payments IS 'Failed charges (count).';
COMMENT ON COLUMN ledger.metrics_daily.failed_amount IS 'Failed charges'' amount.';
COMMENT ON COLUMN ledger.metrics_daily.currency IS 'ISO 4217 currency, lowercase: every figure is in this currency''s minor unit.';
COMMENT ON COLUMN ledger.metrics_monthly.mrr IS 'Monthly recurring revenue at the end of the period, minor units: the running total of the movement log.';
COMMENT ON COLUMN ledger.metrics_monthly.arr IS 'mrr * 12.';
COMMENT ON COLUMN ledger.metrics_monthly.active_subscribers IS 'Subscriptions with MRR above 0 at the end of the period.';
COMMENT ON COLUMN ledger.metrics_monthly.new_mrr IS 'MRR from subscriptions going from 0 for the first time.';
COMMENT ON COLUMN ledger.metrics_monthly.expansion_mrr IS 'MRR added by upgrades.';
COMMENT ON COLUMN ledger.metrics_monthly.contraction_mrr IS 'MRR removed by downgrades (negative).';
COMMENT ON COLUMN ledger.metrics_monthly.churned_mrr IS 'MRR lost to cancellations and non-payment (negative).';
COMMENT ON COLUMN ledger.metrics_monthly.reactivation_mrr IS 'MRR from subscriptions coming back from 0.';
COMMENT ON COLUMN ledger.metrics_monthly.gross_revenue IS 'Succeeded charges, dated on the charge.';
COMMENT ON COLUMN ledger.metrics_monthly.refunds IS 'Succeeded refunds, dated on the refund.';
COMMENT ON COLUMN ledger.metrics_monthly.disputed IS 'Disputes opened, dated on the dispute.';
COMMENT ON COLUMN ledger.metrics_monthly.dispute_losses IS 'Of those, disputes lost.';
COMMENT ON COLUMN ledger.metrics_monthly.net_revenue IS 'gross_revenue - refunds - dispute_losses.';
COMMENT ON COLUMN ledger.metrics_monthly.payments IS 'Succeeded charges (count).';
COMMENT ON COLUMN ledger.metrics_monthly.failed_payments IS 'Failed charges (count).';
COMMENT ON COLUMN ledger.metrics_monthly.failed_amount IS 'Failed charges'' amount.';
COMMENT ON COLUMN ledger.metrics_monthly.currency IS 'ISO 4217 currency, lowercase: every figure is in this currency''s minor unit.';
