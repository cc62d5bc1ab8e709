-- One event ID, several shapes. Stripe renders an event at the API version of whoever asks: a
-- webhook at its endpoint's version, the Events API at the account's default when the event was
-- created. During an endpoint upgrade the old and the new endpoint both deliver the same evt_, in
-- two shapes. The first one stored stays the event (ledger.events, in the chain, folded); a later
-- one at another API version is kept here, for audit, and shown by `ledger events show`. It is
-- not in the chain and never folded: the read models read the canonical rendering, whatever its
-- version. One row per (event, version): the first of each.
--
-- Erasure deletes an erased event's renderings (eventstore.Redact): they carry the same
-- personal data, and are copies outside the chain that nothing has to prove. A rendering of a
-- redacted event that arrives later (a retry, the Events API within its 30 days) is not kept.
--
-- Production roles (001): GRANT SELECT, INSERT, DELETE ON ledger.event_renderings TO ledger_app;
CREATE TABLE ledger.event_renderings (
    event_id    text        NOT NULL,  -- no foreign key, as ledger.event_releases
    api_version text        NOT NULL,
    payload     bytea       NOT NULL,
    source      text        NOT NULL,
    received_at timestamptz NOT NULL,
    endpoint    text,
    PRIMARY KEY (event_id, api_version)
);
COMMENT ON TABLE ledger.event_renderings IS 'Later renderings of stored events at other API versions (the same evt_ from an upgraded endpoint or the Events API), kept for audit: the first rendering stored (ledger.events) stays the event. Not in the chain, never folded.';
COMMENT ON COLUMN ledger.event_renderings.event_id IS 'The stored event (ledger.events.event_id).';
COMMENT ON COLUMN ledger.event_renderings.api_version IS 'The API version of this rendering (never the stored event''s).';
COMMENT ON COLUMN ledger.event_renderings.payload IS 'The rendering''s exact bytes.';
COMMENT ON COLUMN ledger.event_renderings.source IS 'How it arrived: webhook, reconcile, ...';
COMMENT ON COLUMN ledger.event_renderings.received_at IS 'When it arrived.';
COMMENT ON COLUMN ledger.event_renderings.endpoint IS 'The endpoint a webhook rendering came to (as ledger.events.endpoint); NULL otherwise.';

-- Appending, as 014's, plus the renderings of duplicates at another version.
CREATE OR REPLACE FUNCTION ledger.append_events(
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

    -- A duplicate at another API version is another rendering of the stored event: kept beside
    -- it, the first of each version only.
    INSERT INTO ledger.event_renderings (event_id, api_version, payload, source, received_at, endpoint)
    SELECT p_event_id[u.i], p_api_version[u.i], p_payload[u.i], p_source[u.i], p_received_at[u.i], p_endpoint[u.i]
    FROM generate_series(1, n) AS u(i)
    JOIN ledger.events e ON e.event_id = p_event_id[u.i]
    WHERE dups[u.i] AND e.api_version <> p_api_version[u.i]
      AND e.redacted_by_position IS NULL  -- an erased event's personal data must not come back
    ON CONFLICT (event_id, api_version) DO NOTHING;

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
