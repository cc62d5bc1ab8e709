-- Read models: what finance queries. Each row is a Stripe object as of the latest of its events
-- by the ordering rule (domain/fold.go), and names that event (event_id, event_created). Money is
-- bigint in the currency's minor unit with the currency beside it; times are timestamptz (UTC).
-- Column names are a contract (README, "Read models"). These tables are rebuilt from the log by
-- `ledger replay`; nothing else writes them.

CREATE TABLE ledger.customers (
    id            text PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL,
    currency      text NOT NULL,
    metadata      jsonb NOT NULL,
    deleted       boolean NOT NULL,
    created       timestamptz NOT NULL,
    event_id      text NOT NULL,
    event_created timestamptz NOT NULL
);

CREATE TABLE ledger.subscriptions (
    id                   text PRIMARY KEY,
    customer             text NOT NULL,
    app_user_id          text NOT NULL,
    status               text NOT NULL,
    currency             text NOT NULL,
    items                jsonb NOT NULL,  -- [{id, price, product, quantity, interval, interval_count, unit_amount}]
    trial_start          timestamptz,
    trial_end            timestamptz,
    current_period_start timestamptz,
    current_period_end   timestamptz,
    cancel_at_period_end boolean NOT NULL,
    cancel_at            timestamptz,
    canceled_at          timestamptz,
    ended_at             timestamptz,
    pause_behavior       text NOT NULL,   -- '' when not paused
    coupon_duration      text NOT NULL,   -- forever, once, repeating, ''
    coupon_percent_off   bigint NOT NULL,
    metadata             jsonb NOT NULL,
    mrr                  bigint NOT NULL, -- monthly recurring revenue, minor units (see README)
    attention            text NOT NULL,   -- why a person should look, '' when nothing
    event_id             text NOT NULL,
    event_created        timestamptz NOT NULL
);
CREATE INDEX subscriptions_customer_idx ON ledger.subscriptions (customer);

CREATE TABLE ledger.subscription_movements (
    subscription text NOT NULL,
    customer     text NOT NULL,
    currency     text NOT NULL,
    kind         text NOT NULL,   -- new, expansion, contraction, churn, reactivation
    amount       bigint NOT NULL, -- mrr_after - mrr_before
    mrr_before   bigint NOT NULL,
    mrr_after    bigint NOT NULL,
    event_id     text NOT NULL,
    at           timestamptz NOT NULL,
    PRIMARY KEY (subscription, event_id)
);

CREATE TABLE ledger.invoices (
    id               text PRIMARY KEY,
    customer         text NOT NULL,
    subscription     text NOT NULL,   -- '' for one-off invoices
    status           text NOT NULL,
    billing_reason   text NOT NULL,
    currency         text NOT NULL,
    amount_due       bigint NOT NULL,
    amount_paid      bigint NOT NULL,
    amount_remaining bigint NOT NULL,
    total            bigint NOT NULL,
    attempt_count    bigint NOT NULL,
    charge           text NOT NULL,
    payment_intent   text NOT NULL,
    period_start     timestamptz NOT NULL,
    period_end       timestamptz NOT NULL,
    created          timestamptz NOT NULL,
    event_id         text NOT NULL,
    event_created    timestamptz NOT NULL
);

CREATE TABLE ledger.charges (
    id              text PRIMARY KEY,
    amount          bigint NOT NULL,
    amount_captured bigint NOT NULL,
    amount_refunded bigint NOT NULL,
    refunded        boolean NOT NULL,
    currency        text NOT NULL,
    status          text NOT NULL,
    paid            boolean NOT NULL,
    failure_code    text NOT NULL,
    failure_message text NOT NULL,
    payment_intent  text NOT NULL,
    invoice         text NOT NULL,
    customer        text NOT NULL,  -- '' for guest payments
    dispute_id      text NOT NULL,
    dispute_status  text NOT NULL,
    created         timestamptz NOT NULL,
    event_id        text NOT NULL,
    event_created   timestamptz NOT NULL
);

CREATE TABLE ledger.refunds (
    id            text PRIMARY KEY,
    charge        text NOT NULL,
    amount        bigint NOT NULL,
    currency      text NOT NULL,
    status        text NOT NULL,
    reason        text NOT NULL,
    created       timestamptz NOT NULL,
    event_id      text NOT NULL,
    event_created timestamptz NOT NULL
);

CREATE TABLE ledger.disputes (
    id            text PRIMARY KEY,
    charge        text NOT NULL,
    amount        bigint NOT NULL,
    currency      text NOT NULL,
    status        text NOT NULL,
    reason        text NOT NULL,
    created       timestamptz NOT NULL,
    event_id      text NOT NULL,
    event_created timestamptz NOT NULL
);

CREATE TABLE ledger.checkout_sessions (
    id                  text PRIMARY KEY,
    customer            text NOT NULL,
    client_reference_id text NOT NULL,
    subscription        text NOT NULL,
    mode                text NOT NULL,
    status              text NOT NULL,
    payment_status      text NOT NULL,
    currency            text NOT NULL,
    amount_total        bigint NOT NULL,
    metadata            jsonb NOT NULL,
    app_user_id         text NOT NULL,
    created             timestamptz NOT NULL,
    event_id            text NOT NULL,
    event_created       timestamptz NOT NULL
);

-- How far the read models have folded the log.
CREATE TABLE ledger.projection_state (
    name       text PRIMARY KEY,
    position   bigint NOT NULL,  -- the last log position folded in
    rebuilt_at timestamptz NOT NULL
);
