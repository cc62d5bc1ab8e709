-- Which Stripe endpoint each webhook came to, and the events held out of the read models
-- because what they say disagrees with it.
--
-- Stripe signs each endpoint's deliveries with that endpoint's own secret, and has one endpoint
-- per mode (live, test) and per kind (the platform's own events; Connect events of connected
-- accounts). The ledger learns which endpoint a delivery came to from the secret that verified
-- it (webhook/secrets.go), and stores it with the event at append, in the same statement:
--   endpoint     live, test, connect-live, connect-test, or unstated (STRIPE_WEBHOOK_SECRET,
--                the platform endpoint of a mode not stated); NULL for events not delivered by
--                webhook, and for webhooks appended before this migration;
--   hold_reason  mode_mismatch (livemode is not the endpoint's mode), account_on_platform_endpoint,
--                no_account_on_connect_endpoint; NULL when the event agrees with its endpoint.
-- Both are written once, at insert: the immutability trigger (ledger.guard_event_update, 011)
-- compares every column but payload and redacted_by_position, so they can never change. A
-- duplicate delivery adds nothing, so an event keeps its first attribution.
--
-- They are not in the hash chain: the chain covers what Stripe sent (the payload's digest and the
-- Stripe-Signature header), and the endpoint is a function of that header and the secrets, which
-- the database never holds; `ledger verify --signatures` re-checks each signature against the
-- configured secrets, but does not re-derive the attribution (secrets moved between variables
-- would make genuine history look wrong). Putting them in the chain would change its encoding
-- for every row (a version-3 chain).
--
-- The columns are added without a default, so the table is not rewritten; their checks are
-- NOT VALID because every existing row holds NULL, which passes them: no full scan of the log
-- under the ALTER's lock. New rows are checked as always.
ALTER TABLE ledger.events
    ADD COLUMN endpoint    text,
    ADD COLUMN hold_reason text;
ALTER TABLE ledger.events ADD CONSTRAINT events_endpoint_check
    CHECK (endpoint IS NULL OR (endpoint IN ('live', 'test', 'connect-live', 'connect-test', 'unstated') AND source = 'webhook')) NOT VALID;
ALTER TABLE ledger.events ADD CONSTRAINT events_hold_reason_check
    CHECK (hold_reason IS NULL OR (hold_reason IN ('mode_mismatch', 'account_on_platform_endpoint', 'no_account_on_connect_endpoint')
           AND endpoint IS NOT NULL)) NOT VALID;
COMMENT ON COLUMN ledger.events.endpoint IS 'The Stripe endpoint the webhook came to, from the secret that verified it: live, test, connect-live, connect-test or unstated (STRIPE_WEBHOOK_SECRET); NULL when not delivered by webhook or appended before endpoints were told apart.';
COMMENT ON COLUMN ledger.events.hold_reason IS 'Why the event disagrees with its endpoint and is held out of the read models until released (ledger.event_releases): mode_mismatch, account_on_platform_endpoint or no_account_on_connect_endpoint; NULL when it agrees.';

-- Held events are rare: a partial index finds them without reading the log.
CREATE INDEX events_hold_idx ON ledger.events (position) WHERE hold_reason IS NOT NULL;

-- An operator's decision to let a held event into the read models (`ledger projections retry
-- EVENT_ID`, POST /api/v1/projections/retry). One row per event, never changed: the read models
-- fold a held event exactly when it has one, live and on replay.
CREATE TABLE ledger.event_releases (
    event_id    text        PRIMARY KEY,  -- no foreign key: it would make TRUNCATE of the log fail on the key, not on its immutability trigger
    released_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ledger.event_releases IS 'Held events (ledger.events.hold_reason) an operator let into the read models.';
COMMENT ON COLUMN ledger.event_releases.event_id IS 'The released event.';
COMMENT ON COLUMN ledger.event_releases.released_at IS 'When it was released.';
CREATE TRIGGER event_releases_immutable
    BEFORE UPDATE OR DELETE ON ledger.event_releases
    FOR EACH ROW EXECUTE FUNCTION ledger.reject_event_mutation();

-- Held events are listed in the projection quarantine, where operators already look, with the
-- hold's reason here (NULL for an event the projection could not fold). A replay re-opens
-- held rows instead of resolving them with the fold failures.
ALTER TABLE ledger.projection_quarantine ADD COLUMN hold_reason text;
COMMENT ON COLUMN ledger.projection_quarantine.hold_reason IS 'Set when the event is held because it disagrees with its endpoint (ledger.events.hold_reason); NULL when it could not be folded.';

-- The JSON view shows them too (new columns go last: CREATE OR REPLACE VIEW keeps the others).
CREATE OR REPLACE VIEW ledger.events_json AS
SELECT position, event_id, type, api_version, created, livemode, account, object_type, object_id,
       source, received_at, convert_from(payload, 'UTF8')::jsonb AS payload, endpoint, hold_reason
FROM ledger.events;
COMMENT ON COLUMN ledger.events_json.endpoint IS 'See ledger.events.';
COMMENT ON COLUMN ledger.events_json.hold_reason IS 'See ledger.events.';
COMMENT ON TABLE ledger.projection_quarantine IS 'Events kept out of a projection''s read models: those it could not fold, until ledger projections retry (or a replay) folds them, and those held because they disagree with their endpoint (hold_reason), until ledger projections retry names them.';

-- Appending, with attribution. As 011's, plus each event's endpoint and hold reason (NULL for
-- events not delivered by webhook). The old function goes: a binary from before this migration
-- would append webhooks without their endpoint, and so fold mismatched events into the read
-- models; it must fail loudly instead.
DROP FUNCTION ledger.append_events(text[], text[], text[], timestamptz[], boolean[], text[], text[],
                                   text[], text[], timestamptz[], bytea[], text[], bytea[], bytea[]);

CREATE FUNCTION ledger.append_events(
    p_event_id       text[],
    p_type           text[],
    p_api_version    text[],
    p_created        timestamptz[],
    p_livemode       boolean[],
    p_account        text[],
    p_object_type    text[],
    p_object_id      text[],
    p_source         text[],
    p_received_at    timestamptz[],
    p_payload        bytea[],
    p_signature      text[],
    p_payload_digest bytea[],
    p_digest         bytea[],
    p_endpoint       text[],
    p_hold_reason    text[]
) RETURNS TABLE (idx integer, event_position bigint, duplicate boolean)
LANGUAGE plpgsql
-- Plans cached while the log was small scan it sequentially; plan each call for the real size.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    n          integer := coalesce(cardinality(p_event_id), 0);
    head_pos   bigint;
    head_hash  bytea;
    positions  bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    dups       boolean[] := array_fill(false, ARRAY[n]);
    new_idx    integer[] := '{}';
    prevs      bytea[] := '{}';
    hashes     bytea[] := '{}';
    r          record;
BEGIN
    SELECT h.position, h.hash INTO head_pos, head_hash FROM ledger.log_head h FOR UPDATE;

    FOR r IN
        SELECT u.i, e.position
        FROM unnest(p_event_id) WITH ORDINALITY AS u(id, i)
        JOIN ledger.events e ON e.event_id = u.id
    LOOP
        positions[r.i] := r.position;
        dups[r.i] := true;
    END LOOP;

    FOR i IN 1..n LOOP
        CONTINUE WHEN dups[i];
        head_pos := head_pos + 1;
        positions[i] := head_pos;
        new_idx := new_idx || i;
        prevs := prevs || head_hash;
        head_hash := sha256('ledger.events/v2'::bytea || head_hash || int8send(head_pos) || p_digest[i]);
        hashes := hashes || head_hash;
    END LOOP;

    IF cardinality(new_idx) > 0 THEN
        INSERT INTO ledger.events (position, event_id, type, api_version, created, livemode, account,
                                   object_type, object_id, source, received_at, payload, signature,
                                   payload_digest, prev_hash, hash, endpoint, hold_reason)
        SELECT positions[x.i], p_event_id[x.i], p_type[x.i], p_api_version[x.i], p_created[x.i],
               p_livemode[x.i], p_account[x.i], p_object_type[x.i], p_object_id[x.i], p_source[x.i],
               p_received_at[x.i], p_payload[x.i], p_signature[x.i], p_payload_digest[x.i],
               prevs[x.k], hashes[x.k], p_endpoint[x.i], p_hold_reason[x.i]
        FROM unnest(new_idx) WITH ORDINALITY AS x(i, k);

        UPDATE ledger.log_head SET position = head_pos, hash = head_hash;
    END IF;

    RETURN QUERY SELECT g, positions[g], dups[g] FROM generate_series(1, n) AS g;
END;
$$;
