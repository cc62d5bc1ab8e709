-- Notifications (Slack, email, signed webhooks) act on the outside world, so they are driven by an
-- outbox keyed by (rule, event), never by re-folding the log: a replay of the read models touches
-- none of these tables, and a duplicate or re-appended event finds its row already there.
--
-- The notify runner tails the log from its own checkpoint (ledger.notify_state), matches each
-- event against the rules and inserts one row per matching rule; ledger-side notifications
-- (reconciliation runs, quarantined events, projection lag, endpoint health) are keyed by a
-- ledger ID instead of a Stripe event ID. The delivery side sends pending rows whose not_before
-- has come and marks them delivered in the same transaction that records the answer.
CREATE TABLE ledger.notify_outbox (
    id              bigserial   PRIMARY KEY,
    rule            text        NOT NULL,
    event_id        text        NOT NULL,
    position        bigint,
    channel         text        NOT NULL,
    idempotency_key text        NOT NULL,
    message         jsonb       NOT NULL,
    late            boolean     NOT NULL DEFAULT false,
    digest          boolean     NOT NULL DEFAULT false,
    digest_of       text,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'digested')),
    attempts        integer     NOT NULL DEFAULT 0,
    not_before      timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    event_created   timestamptz,
    enqueued_at     timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (rule, event_id)
);
CREATE INDEX notify_outbox_due_idx ON ledger.notify_outbox (not_before, id) WHERE status = 'pending' AND NOT digest;
CREATE INDEX notify_outbox_digest_idx ON ledger.notify_outbox (rule, channel, not_before) WHERE status = 'pending' AND digest;
CREATE INDEX notify_outbox_enqueued_idx ON ledger.notify_outbox (enqueued_at DESC);

-- The runner's checkpoint in the log (one row per runner name).
CREATE TABLE ledger.notify_state (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- When each rule was first seen by the runner, and at which log position: a new rule fires for
-- what arrives from then on, not for history (`ledger notify backfill RULE --since T` asks for it).
CREATE TABLE ledger.notify_rules_seen (
    rule           text        PRIMARY KEY,
    first_position bigint      NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE ledger.notify_outbox IS 'One notification per (rule, event): filled from the log by the notify runner, sent by the delivery side. A replay never adds to it; a duplicate event finds its row there.';
COMMENT ON COLUMN ledger.notify_outbox.id IS 'Row ID, in the order rows were added.';
COMMENT ON COLUMN ledger.notify_outbox.rule IS 'The rule (config name) that matched.';
COMMENT ON COLUMN ledger.notify_outbox.event_id IS 'The Stripe event (evt_...), or a ledger-side key such as ledger:reconcile_run:42, or digest:RULE:CHANNEL:PERIOD for a digest.';
COMMENT ON COLUMN ledger.notify_outbox.position IS 'The event''s log position; NULL for ledger-side notifications and digests.';
COMMENT ON COLUMN ledger.notify_outbox.channel IS 'The channel (config name) it goes to.';
COMMENT ON COLUMN ledger.notify_outbox.idempotency_key IS 'The same on every attempt: a receiver that sees it twice drops the repeat.';
COMMENT ON COLUMN ledger.notify_outbox.message IS 'The rendered message: {"subject", "text", "blocks", "fields"} (see notify.Message).';
COMMENT ON COLUMN ledger.notify_outbox.late IS 'The event was appended by reconciliation long after Stripe created it (marked "late (repaired)").';
COMMENT ON COLUMN ledger.notify_outbox.digest IS 'Goes into a digest rather than alone (the rule batches, or the event is later than the late horizon).';
COMMENT ON COLUMN ledger.notify_outbox.digest_of IS 'For a row with status digested: the event_id of the digest row that carried it.';
COMMENT ON COLUMN ledger.notify_outbox.status IS 'pending, delivered, failed (for good: see last_error; ledger notify retry), digested.';
COMMENT ON COLUMN ledger.notify_outbox.attempts IS 'Delivery attempts so far.';
COMMENT ON COLUMN ledger.notify_outbox.not_before IS 'Not sent before this: quiet hours, a digest''s period end, or the next retry.';
COMMENT ON COLUMN ledger.notify_outbox.last_error IS 'The last attempt''s error; NULL when none.';
COMMENT ON COLUMN ledger.notify_outbox.event_created IS 'When Stripe created the event (or the ledger the ledger-side fact).';
COMMENT ON COLUMN ledger.notify_outbox.enqueued_at IS 'When the runner added the row.';
COMMENT ON COLUMN ledger.notify_outbox.delivered_at IS 'When a 2xx (or the SMTP server''s acceptance) was recorded; NULL until then.';
COMMENT ON TABLE ledger.notify_state IS 'The notify runner''s checkpoint in the log.';
COMMENT ON COLUMN ledger.notify_state.name IS 'Runner name.';
COMMENT ON COLUMN ledger.notify_state.position IS 'The last log position matched against the rules.';
COMMENT ON COLUMN ledger.notify_state.updated_at IS 'When it last moved.';
COMMENT ON TABLE ledger.notify_rules_seen IS 'When each rule was first seen: it fires for events from first_position on, not for history.';
COMMENT ON COLUMN ledger.notify_rules_seen.rule IS 'The rule.';
COMMENT ON COLUMN ledger.notify_rules_seen.first_position IS 'The log head when the rule was first loaded.';
COMMENT ON COLUMN ledger.notify_rules_seen.first_seen_at IS 'When.';
