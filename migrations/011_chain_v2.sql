-- The hash chain, version 2: erasure that keeps the proof.
--
-- Version 1 hashed each payload's bytes into its row's link, so removing a customer's personal
-- data from a payload (GDPR, CCPA) broke `ledger verify` from that row on. Version 2 hashes
-- SHA-256(payload) instead, and stores that digest beside the payload (payload_digest): a payload
-- can then be redacted while its digest, and so every link and every checkpoint, stays as it was.
-- The encoding is in eventstore/hash.go, which is the reference; this file mirrors it.
--
-- This migration re-chains an existing log in place, in its own transaction:
--   * payload_digest := SHA-256(payload) for every row;
--   * hash_v1 keeps each row's version-1 hash, so a checkpoint taken over the old chain can still
--     be checked at its position, and `verify` still checks the old links of every row that was
--     not redacted;
--   * prev_hash and hash become the version-2 chain over every row (the v2 content digest also
--     covers hash_v1, so the old chain cannot be edited without breaking the new one);
--   * ledger.chain_migrations records where it happened: the position reached and the old and new
--     head hashes.
-- It reads every payload once (its time grows with the log) and holds the log locked meanwhile:
-- appends wait, and answer 503 if they wait longer than their timeout.
--
-- It also makes redaction the one change the log allows to a stored row (see
-- ledger.guard_event_update below), adds the source 'ledger' for events the ledger itself writes
-- about the log (the redaction record), and replaces ledger.append_events with the version-2 one.

-- Appends wait here until the re-chain commits (the ALTER below would wait for them anyway).
LOCK TABLE ledger.log_head IN EXCLUSIVE MODE;

ALTER TABLE ledger.events
    ADD COLUMN payload_digest       bytea,
    ADD COLUMN hash_v1              bytea CHECK (length(hash_v1) = 32),
    ADD COLUMN redacted_by_position bigint;
COMMENT ON COLUMN ledger.events.payload_digest IS 'SHA-256 of the payload as received: what the hash chain (v2) covers in place of the payload, so a redacted payload keeps its proof.';
COMMENT ON COLUMN ledger.events.hash_v1 IS 'The row''s hash in the version-1 chain, for rows appended before it was re-chained (ledger.chain_migrations); NULL after.';
COMMENT ON COLUMN ledger.events.redacted_by_position IS 'Position of the ledger.redaction event that replaced personal data in this payload; NULL while the payload is as received.';

ALTER TABLE ledger.events DROP CONSTRAINT events_source_check;
ALTER TABLE ledger.events ADD CONSTRAINT events_source_check
    CHECK (source IN ('webhook', 'reconcile', 'snapshot', 'import', 'ledger'));

-- Length-prefixed bytes, as eventstore/hash.go writes every variable-length field.
CREATE FUNCTION ledger.hash_field(b bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT int8send(length(b)::bigint) || b $$;

-- The columns both chain versions hash the same way, up to received_at (eventstore/hash.go:
-- fieldWriter.envelope), and, in signature_fields, the two that follow the payload's field.
CREATE FUNCTION ledger.envelope_fields(
    event_id text, type text, api_version text, created timestamptz, livemode boolean,
    account text, object_type text, object_id text, source text, received_at timestamptz
) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ledger.hash_field(convert_to(event_id, 'UTF8'))
        || ledger.hash_field(convert_to(type, 'UTF8'))
        || ledger.hash_field(convert_to(api_version, 'UTF8'))
        || int8send(extract(epoch FROM created)::bigint)
        || CASE WHEN livemode THEN '\x01'::bytea ELSE '\x00'::bytea END
        || ledger.hash_field(convert_to(account, 'UTF8'))
        || ledger.hash_field(convert_to(object_type, 'UTF8'))
        || ledger.hash_field(convert_to(object_id, 'UTF8'))
        || ledger.hash_field(convert_to(source, 'UTF8'))
        -- extract(epoch) is numeric with the microseconds exact (Postgres 14+).
        || int8send((extract(epoch FROM received_at) * 1000000)::bigint)
$$;

CREATE FUNCTION ledger.signature_fields(signature text) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN coalesce(signature, '') <> '' THEN '\x01'::bytea ELSE '\x00'::bytea END
        || ledger.hash_field(convert_to(coalesce(signature, ''), 'UTF8'))
$$;

-- The version-2 content digest of a row (eventstore.contentDigest). Used here to re-chain, and
-- by the test that holds it to the Go code.
CREATE FUNCTION ledger.content_digest_v2(
    event_id text, type text, api_version text, created timestamptz, livemode boolean,
    account text, object_type text, object_id text, source text, received_at timestamptz,
    payload_digest bytea, signature text, hash_v1 bytea
) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT sha256(
        ledger.envelope_fields(event_id, type, api_version, created, livemode, account, object_type, object_id, source, received_at)
        || ledger.hash_field(payload_digest)
        || ledger.signature_fields(signature)
        || ledger.hash_field(coalesce(hash_v1, ''::bytea)))
$$;

-- One link of the version-2 chain (eventstore.linkHash), and the chain as a running aggregate:
-- as a window function ordered by position it yields every row's hash in one pass.
CREATE FUNCTION ledger.chain_v2_link(prev bytea, pos bigint, digest bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT sha256('ledger.events/v2'::bytea || prev || int8send(pos) || digest) $$;

CREATE AGGREGATE ledger.chain_v2(bigint, bytea) (
    SFUNC = ledger.chain_v2_link,
    STYPE = bytea,
    INITCOND = '\x0000000000000000000000000000000000000000000000000000000000000000'
);

-- Where the log changed chain version. Verify reads it: rows up to up_to_position carry their v1
-- hash, and the v1 chain must end there at v1_head_hash.
CREATE TABLE ledger.chain_migrations (
    version        integer     PRIMARY KEY,   -- the chain version the log moved to
    up_to_position bigint      NOT NULL,      -- the last row re-chained (0: the log was empty)
    v1_head_hash   bytea       NOT NULL CHECK (length(v1_head_hash) = 32),  -- the old chain's head
    head_hash      bytea       NOT NULL CHECK (length(head_hash) = 32),     -- the new chain's at that position
    migrated_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ledger.chain_migrations IS 'Where the event log moved to another hash-chain version (ledger verify reads it).';
COMMENT ON COLUMN ledger.chain_migrations.version IS 'The chain version the log moved to.';
COMMENT ON COLUMN ledger.chain_migrations.up_to_position IS 'The last position re-chained; rows up to it keep their old hash in ledger.events.hash_v1 (0: the log was empty).';
COMMENT ON COLUMN ledger.chain_migrations.v1_head_hash IS 'The version-1 chain''s head hash at up_to_position (the genesis hash for an empty log).';
COMMENT ON COLUMN ledger.chain_migrations.head_hash IS 'The new chain''s hash at up_to_position.';
COMMENT ON COLUMN ledger.chain_migrations.migrated_at IS 'When the migration ran.';
CREATE TRIGGER chain_migrations_immutable
    BEFORE UPDATE OR DELETE ON ledger.chain_migrations
    FOR EACH ROW EXECUTE FUNCTION ledger.reject_event_mutation();

-- The version-1 content digest (eventstore.contentDigestV1: the payload's bytes in place of their
-- digest, no hash_v1) and link (migrations/003), to check the old chain before re-chaining it.
CREATE FUNCTION ledger.content_digest_v1(
    event_id text, type text, api_version text, created timestamptz, livemode boolean,
    account text, object_type text, object_id text, source text, received_at timestamptz,
    payload bytea, signature text
) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT sha256(
        ledger.envelope_fields(event_id, type, api_version, created, livemode, account, object_type, object_id, source, received_at)
        || ledger.hash_field(payload)
        || ledger.signature_fields(signature))
$$;

CREATE FUNCTION ledger.chain_v1_link(prev bytea, pos bigint, digest bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT sha256('ledger.events/v1'::bytea || prev || int8send(pos) || digest) $$;

CREATE AGGREGATE ledger.chain_v1(bigint, bytea) (
    SFUNC = ledger.chain_v1_link,
    STYPE = bytea,
    INITCOND = '\x0000000000000000000000000000000000000000000000000000000000000000'
);

-- The old chain must hold before it is re-chained: the re-chain hashes whatever bytes are there
-- into payload_digest, so a payload edited behind the trigger's back (a superuser can disable it)
-- would otherwise come out of this migration with a digest, a chain and a `ledger verify` that all
-- agree with the forgery. This is `ledger verify`'s version-1 walk, in SQL: every position in
-- order from 1, every prev_hash the previous row's hash, every hash recomputed from the row, and
-- the head row at the last one. The first row that fails stops the migration, which changes
-- nothing (tern runs it in one transaction).
DO $$
DECLARE
    bad        record;
    n          bigint;
    last_hash  bytea;
    head_pos   bigint;
    head_hash  bytea;
BEGIN
    WITH c AS (
        SELECT e.position, e.event_id, e.hash, e.prev_hash,
               row_number() OVER w AS n,
               coalesce(lag(e.hash) OVER w, decode(repeat('00', 32), 'hex')) AS prev,
               ledger.chain_v1(e.position, ledger.content_digest_v1(e.event_id, e.type, e.api_version,
                   e.created, e.livemode, e.account, e.object_type, e.object_id, e.source, e.received_at,
                   e.payload, e.signature)) OVER w AS h
        FROM ledger.events e
        WINDOW w AS (ORDER BY e.position)
    )
    SELECT c.position, c.event_id,
           CASE WHEN c.position <> c.n THEN format('expected position %s: a row is missing or was renumbered', c.n)
                WHEN c.prev_hash <> c.prev THEN 'prev_hash does not match the previous row''s hash'
                ELSE 'content does not match its hash: the row was edited' END AS reason
    INTO bad
    FROM c
    WHERE c.position <> c.n OR c.prev_hash <> c.prev OR c.h <> c.hash
    ORDER BY c.position
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the version-1 hash chain is broken at position % (%): %; the log is not re-chained over a broken chain',
            bad.position, bad.event_id, bad.reason
            USING ERRCODE = 'data_corrupted',
                  HINT = 'run `ledger verify` with the previous release, and restore the edited rows from a backup before migrating';
    END IF;
    SELECT count(*), (SELECT e.hash FROM ledger.events e ORDER BY e.position DESC LIMIT 1)
    INTO n, last_hash FROM ledger.events;
    SELECT h.position, h.hash INTO head_pos, head_hash FROM ledger.log_head h;
    IF head_pos <> n OR head_hash <> coalesce(last_hash, decode(repeat('00', 32), 'hex')) THEN
        RAISE EXCEPTION 'the version-1 hash chain is broken at the head: it says position %, the log ends at %; the log is not re-chained over a broken chain',
            head_pos, n
            USING ERRCODE = 'data_corrupted',
                  HINT = 'run `ledger verify` with the previous release before migrating';
    END IF;
END;
$$;

DROP AGGREGATE ledger.chain_v1(bigint, bytea);
DROP FUNCTION ledger.chain_v1_link(bytea, bigint, bytea);
DROP FUNCTION ledger.content_digest_v1(text, text, text, timestamptz, boolean, text, text, text, text,
                                       timestamptz, bytea, text);

-- The re-chain. The old trigger forbids every UPDATE; it goes for good (the new rule is below),
-- and nothing else can write to the log while this transaction holds it.
DROP TRIGGER events_no_update_delete ON ledger.events;

WITH digests AS (
    SELECT e.position, e.hash AS v1, sha256(e.payload) AS pd,
           e.event_id, e.type, e.api_version, e.created, e.livemode, e.account, e.object_type,
           e.object_id, e.source, e.received_at, e.signature
    FROM ledger.events e
), chained AS (
    SELECT d.position, d.v1, d.pd,
           ledger.chain_v2(d.position, ledger.content_digest_v2(d.event_id, d.type, d.api_version,
               d.created, d.livemode, d.account, d.object_type, d.object_id, d.source, d.received_at,
               d.pd, d.signature, d.v1)) OVER (ORDER BY d.position) AS h
    FROM digests d
), linked AS (
    SELECT c.position, c.v1, c.pd, c.h,
           coalesce(lag(c.h) OVER (ORDER BY c.position), decode(repeat('00', 32), 'hex')) AS prev
    FROM chained c
)
UPDATE ledger.events e
SET payload_digest = l.pd, hash_v1 = l.v1, hash = l.h, prev_hash = l.prev
FROM linked l
WHERE e.position = l.position;

ALTER TABLE ledger.events ALTER COLUMN payload_digest SET NOT NULL;
ALTER TABLE ledger.events ADD CONSTRAINT events_payload_digest_check CHECK (length(payload_digest) = 32);

INSERT INTO ledger.chain_migrations (version, up_to_position, v1_head_hash, head_hash)
SELECT 2, h.position, h.hash,
       coalesce((SELECT e.hash FROM ledger.events e WHERE e.position = h.position), h.hash)
FROM ledger.log_head h;

UPDATE ledger.log_head h SET hash = m.head_hash FROM ledger.chain_migrations m WHERE m.version = 2;

-- Redaction is the one change allowed to a stored row: the payload may be replaced, together with
-- redacted_by_position naming a ledger.redaction event later in the log whose record lists this
-- position with the SHA-256 of the new payload (what `verify` checks too); every other column —
-- payload_digest and the chain included — must stay exactly as it was, and a redacted row can
-- only be redacted again by a later redaction. Anything else, and every DELETE, is refused as
-- before. (A redaction's record is appended first, in the transaction that redacts.)
--
-- The row must also be intact before the change: its payload the one payload_digest covers, or,
-- redacted before, the one its last redaction recorded. A redaction replaces the bytes `verify`
-- would have caught edited; without this, redacting a payload that was edited behind the
-- trigger's back would launder the edit (the new payload is checked against the new record only).
--
-- What the database cannot check is who wrote the redaction record: anyone who can append can
-- append one. Records are signed with the checkpoint key, which the database never holds, and
-- `ledger verify --checkpoints … --public-key …` authenticates every one (integrity package).
CREATE FUNCTION ledger.guard_event_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    intact boolean;
BEGIN
    IF NOT (TG_OP = 'UPDATE'
       AND to_jsonb(NEW) - 'payload' - 'redacted_by_position' = to_jsonb(OLD) - 'payload' - 'redacted_by_position'
       AND coalesce(NEW.redacted_by_position > NEW.position, false)
       AND coalesce(NEW.redacted_by_position > coalesce(OLD.redacted_by_position, 0), false)
       AND EXISTS (SELECT 1
                   FROM ledger.events r,
                        jsonb_array_elements(convert_from(r.payload, 'UTF8')::jsonb -> 'data' -> 'object' -> 'events') AS x
                   WHERE r.position = NEW.redacted_by_position AND r.type = 'ledger.redaction' AND r.source = 'ledger'
                     AND x ->> 'position' = NEW.position::text
                     AND x ->> 'payload_sha256' = encode(sha256(NEW.payload), 'hex')))
    THEN
        RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'repair by appending an event (reconciliation or snapshot), never by editing the log; personal data is removed with `ledger redact`';
    END IF;
    IF OLD.redacted_by_position IS NULL THEN
        intact := sha256(OLD.payload) = OLD.payload_digest;
    ELSE
        intact := EXISTS (SELECT 1
                          FROM ledger.events r,
                               jsonb_array_elements(convert_from(r.payload, 'UTF8')::jsonb -> 'data' -> 'object' -> 'events') AS x
                          WHERE r.position = OLD.redacted_by_position AND r.type = 'ledger.redaction' AND r.source = 'ledger'
                            AND x ->> 'position' = OLD.position::text
                            AND x ->> 'payload_sha256' = encode(sha256(OLD.payload), 'hex'));
    END IF;
    IF NOT coalesce(intact, false) THEN
        RAISE EXCEPTION 'the payload at position % (%) was edited: it is not the one its digest or its last redaction recorded, so it cannot be redacted',
            OLD.position, OLD.event_id
            USING ERRCODE = 'data_corrupted',
                  HINT = 'run `ledger verify`, and restore the row from a backup';
    END IF;
    RETURN NEW;
END;
$$;

-- The rows a redaction changed, for the readers that look them up by the redaction's position
-- (eventstore.Filter.RedactedBy: the runner and a replay's catch-up re-fold them). Few rows are
-- ever redacted, so the index holds only those.
CREATE INDEX events_redacted_by_position ON ledger.events (redacted_by_position)
    WHERE redacted_by_position IS NOT NULL;

CREATE TRIGGER events_only_redaction
    BEFORE UPDATE OR DELETE ON ledger.events
    FOR EACH ROW EXECUTE FUNCTION ledger.guard_event_update();

-- Appending, version 2. As 003's, plus each payload's SHA-256, computed by the client with the
-- content digest before the lock; the link is
--   hash = sha256('ledger.events/v2' || prev_hash || int8 big-endian position || content digest v2)
-- The version-1 function goes: a binary from before this migration would extend the new chain
-- with old links, so it must fail loudly instead.
DROP FUNCTION ledger.append_events(text[], text[], text[], timestamptz[], boolean[], text[], text[],
                                   text[], text[], timestamptz[], bytea[], text[], bytea[]);

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
    p_digest         bytea[]
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
                                   payload_digest, prev_hash, hash)
        SELECT positions[x.i], p_event_id[x.i], p_type[x.i], p_api_version[x.i], p_created[x.i],
               p_livemode[x.i], p_account[x.i], p_object_type[x.i], p_object_id[x.i], p_source[x.i],
               p_received_at[x.i], p_payload[x.i], p_signature[x.i], p_payload_digest[x.i],
               prevs[x.k], hashes[x.k]
        FROM unnest(new_idx) WITH ORDINALITY AS x(i, k);

        UPDATE ledger.log_head SET position = head_pos, hash = head_hash;
    END IF;

    RETURN QUERY SELECT g, positions[g], dups[g] FROM generate_series(1, n) AS g;
END;
$$;
