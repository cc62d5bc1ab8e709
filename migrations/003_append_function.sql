-- Appending in one statement.
--
-- eventstore.Append used to hold the head lock across two client round trips (lock + duplicate
-- lookup, then insert + commit), so the lock was held while the client computed and encoded the
-- batch. This function does the locked part on the server: the client hashes the payloads and
-- encodes the batch *before* sending, and the next batch can already be on its way while this one
-- runs. The lock is still the one row of ledger.log_head, taken first and held to commit, so
-- positions remain dense and in commit order.
--
-- The caller passes each event at most once (it folds duplicates within a batch itself) together
-- with its content digest (see eventstore/hash.go); the function links each new row to the chain:
--   hash = sha256('ledger.events/v1' || prev_hash || int8 big-endian position || digest)
-- and returns, for every input, its position and whether it was already in the log.
--
-- Grant EXECUTE on it to the service role (ledger_app in 001_events.sql).
CREATE FUNCTION ledger.append_events(
    p_event_id    text[],
    p_type        text[],
    p_api_version text[],
    p_created     timestamptz[],
    p_livemode    boolean[],
    p_account     text[],
    p_object_type text[],
    p_object_id   text[],
    p_source      text[],
    p_received_at timestamptz[],
    p_payload     bytea[],
    p_signature   text[],
    p_digest      bytea[]
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
        head_hash := sha256('ledger.events/v1'::bytea || head_hash || int8send(head_pos) || p_digest[i]);
        hashes := hashes || head_hash;
    END LOOP;

    IF cardinality(new_idx) > 0 THEN
        INSERT INTO ledger.events (position, event_id, type, api_version, created, livemode, account,
                                   object_type, object_id, source, received_at, payload, signature,
                                   prev_hash, hash)
        SELECT positions[x.i], p_event_id[x.i], p_type[x.i], p_api_version[x.i], p_created[x.i],
               p_livemode[x.i], p_account[x.i], p_object_type[x.i], p_object_id[x.i], p_source[x.i],
               p_received_at[x.i], p_payload[x.i], p_signature[x.i], prevs[x.k], hashes[x.k]
        FROM unnest(new_idx) WITH ORDINALITY AS x(i, k);

        UPDATE ledger.log_head SET position = head_pos, hash = head_hash;
    END IF;

    RETURN QUERY SELECT g, positions[g], dups[g] FROM generate_series(1, n) AS g;
END;
$$;
