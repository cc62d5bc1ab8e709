-- What the finance API's lists need: subscriptions' creation time (a filter finance asks for),
-- and indexes for newest-first cursor pagination and the common filters. Rows folded before this
-- migration get an estimate (trial start, else period start) until the next replay or event.
ALTER TABLE ledger.subscriptions ADD COLUMN created timestamptz;
-- Rows folded before: the best estimate until the next replay or event of the subscription.
UPDATE ledger.subscriptions SET created = coalesce(trial_start, current_period_start, event_created);
ALTER TABLE ledger.subscriptions ALTER COLUMN created SET NOT NULL;
COMMENT ON COLUMN ledger.subscriptions.created IS 'When the subscription was created in Stripe.';

CREATE INDEX subscriptions_created_idx ON ledger.subscriptions (created DESC, id DESC);
CREATE INDEX subscriptions_app_user_idx ON ledger.subscriptions (app_user_id);
CREATE INDEX charges_created_idx ON ledger.charges (created DESC, id DESC);
CREATE INDEX charges_customer_idx ON ledger.charges (customer);
CREATE INDEX invoices_created_idx ON ledger.invoices (created DESC, id DESC);
CREATE INDEX invoices_customer_idx ON ledger.invoices (customer);
CREATE INDEX refunds_created_idx ON ledger.refunds (created DESC, id DESC);
CREATE INDEX disputes_created_idx ON ledger.disputes (created DESC, id DESC);
CREATE INDEX customers_created_idx ON ledger.customers (created DESC, id DESC);
