-- The live projection: a runner tails ledger.events in position order and keeps the read models
-- current, recording how far it got in ledger.projection_state in the same transaction as the rows
-- it wrote. `ledger replay` writes the same row when it swaps rebuilt tables in.

ALTER TABLE ledger.projection_state ALTER COLUMN rebuilt_at DROP NOT NULL;  -- NULL: never rebuilt
ALTER TABLE ledger.projection_state ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
COMMENT ON TABLE ledger.projection_state IS
    'One row per projection: the last log position folded into its read models (position), when a replay last swapped rebuilt tables in (rebuilt_at) and when the position last moved (updated_at).';

-- Events a projection could not fold ("poison"): kept out of the read models so the rest of the
-- log proceeds, until `ledger projections retry` (or a replay) folds them successfully, which sets
-- resolved_at. The events themselves stay in the log untouched.
CREATE TABLE ledger.projection_quarantine (
    projection      text        NOT NULL,
    event_id        text        NOT NULL,
    position        bigint      NOT NULL,
    event_type      text        NOT NULL,
    object_id       text        NOT NULL,
    error           text        NOT NULL,           -- why the last attempt failed
    attempts        integer     NOT NULL DEFAULT 1,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,                    -- NULL while the event is kept out
    PRIMARY KEY (projection, event_id)
);
CREATE INDEX projection_quarantine_open_idx ON ledger.projection_quarantine (projection, position)
    WHERE resolved_at IS NULL;

-- Lookups the live projection makes when one object's event changes another's row: a dispute
-- changes its charge, a Checkout session its subscription's app user ID, a customer's metadata
-- the app user IDs of its subscriptions and sessions. Replay copies these with the tables.
CREATE INDEX disputes_charge_idx ON ledger.disputes (charge);
CREATE INDEX checkout_sessions_subscription_idx ON ledger.checkout_sessions (subscription);
CREATE INDEX checkout_sessions_customer_idx ON ledger.checkout_sessions (customer);
