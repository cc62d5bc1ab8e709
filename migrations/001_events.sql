-- The event log. Everything the ledger knows is a row here; read models are derived from it.
--
-- Rules the database itself enforces:
--   * one row per Stripe event ID (idempotent delivery);
--   * rows are never updated, deleted or truncated (triggers below);
--   * positions are dense, start at 1 and follow commit order: every append transaction first
--     locks the single row of ledger.log_head, so transactions assign positions one after the
--     other and a reader tailing "position > N" can never miss a row that commits later with a
--     smaller number.
--
-- Production roles (recommended; the migration does not create roles because their names and
-- passwords belong to the deployment):
--   ledger_owner   owns the schema and runs migrations (`ledger migrate`); never used by the service.
--   ledger_app     the service (`ledger serve`): SELECT, INSERT on ledger.events; SELECT, UPDATE on
--                  ledger.log_head; no UPDATE/DELETE/TRUNCATE on ledger.events, so even a bug cannot
--                  edit history, and the triggers stop the owner too.
--   ledger_read    finance/BI: SELECT on the read models and ledger.events only.
-- e.g.
--   GRANT USAGE ON SCHEMA ledger TO ledger_app, ledger_read;
--   GRANT SELECT, INSERT ON ledger.events TO ledger_app;
--   GRANT SELECT, UPDATE ON ledger.log_head TO ledger_app;
--   GRANT SELECT ON ALL TABLES IN SCHEMA ledger TO ledger_read;
-- A superuser can still disable the triggers; the SHA-256 hash chain (`ledger verify`) is what
-- detects such an edit afterwards.

CREATE TABLE ledger.log_head (
    -- exactly one row: the lock every append takes, and the chain's tip.
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position  bigint  NOT NULL,
    hash      bytea   NOT NULL CHECK (length(hash) = 32)
);
-- The genesis hash is 32 zero bytes: the first event's prev_hash.
INSERT INTO ledger.log_head (position, hash) VALUES (0, decode(repeat('00', 32), 'hex'));

CREATE TABLE ledger.events (
    position     bigint      PRIMARY KEY CHECK (position > 0),
    event_id     text        NOT NULL UNIQUE,      -- Stripe's evt_…, or the ledger's own for snapshots
    type         text        NOT NULL,             -- e.g. customer.subscription.updated
    api_version  text        NOT NULL DEFAULT '',  -- as rendered; '' when Stripe sent none
    created      timestamptz NOT NULL,             -- Stripe's `created` (one-second resolution)
    livemode     boolean     NOT NULL,
    account      text        NOT NULL DEFAULT '',  -- Connect account (acct_…), '' for the platform
    object_type  text        NOT NULL DEFAULT '',  -- data.object.object, e.g. subscription
    object_id    text        NOT NULL DEFAULT '',  -- data.object.id, e.g. sub_…
    source       text        NOT NULL CHECK (source IN ('webhook', 'reconcile', 'snapshot', 'import')),
    received_at  timestamptz NOT NULL,             -- when the ledger accepted it (microseconds)
    payload      bytea       NOT NULL,             -- the exact bytes received: request body or API page item
    signature    text,                             -- Stripe-Signature header, webhook-sourced events only
    prev_hash    bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash         bytea       NOT NULL CHECK (length(hash) = 32),
    CHECK ((source = 'webhook') = (signature IS NOT NULL))
);

-- Payloads are 2-6 KB of JSON, above the 2 KB TOAST threshold, so every one is compressed on
-- insert. lz4 compresses JSON about as well as the default pglz at a fraction of the CPU, which is
-- the append path's bottleneck; servers built without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE ledger.events ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 not available: ledger.events.payload stays on pglz';
END;
$$;

-- Per-object history (status views, projections rebuilding one object, reconciliation lookups).
CREATE INDEX events_object_idx ON ledger.events (object_id, position);
CREATE INDEX events_created_idx ON ledger.events (created);

CREATE FUNCTION ledger.reject_event_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'repair by appending an event (reconciliation or snapshot), never by editing the log';
END;
$$;

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger.events
    FOR EACH ROW EXECUTE FUNCTION ledger.reject_event_mutation();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON ledger.events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.reject_event_mutation();

-- The head row can move forward only; deleting it would let positions restart.
CREATE FUNCTION ledger.guard_log_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.position < OLD.position THEN
        RAISE EXCEPTION 'ledger.log_head only moves forward: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER log_head_forward_only
    BEFORE UPDATE OR DELETE ON ledger.log_head
    FOR EACH ROW EXECUTE FUNCTION ledger.guard_log_head();

CREATE TRIGGER log_head_no_truncate
    BEFORE TRUNCATE ON ledger.log_head
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.guard_log_head();

-- The payload as JSON for SQL users; the bytes in ledger.events stay the record.
CREATE VIEW ledger.events_json AS
SELECT position, event_id, type, api_version, created, livemode, account, object_type, object_id,
       source, received_at, convert_from(payload, 'UTF8')::jsonb AS payload
FROM ledger.events;
