-- Thin events. A thin event (object v2.core.event, type v1.*) names an object and carries none of
-- it; the log keeps it as it came. The thin fetcher (package reconcile) then fetches the object
-- and the v2 Event's changes from Stripe and appends them as a thin snapshot, which the read
-- models fold. This table is its work list: one row per thin event, filled from the log by a
-- tail (checkpoint 'thin_fetches' in ledger.projection_state), worked through by due time.
--
-- A fetch fetches the object as it is now, which is its state at the thin event or later. So one
-- fetch answers every thin event of the object up to the one it was made for: those are
-- 'covered' by it and never fetched, and a thin event that arrives after a later one of its
-- object was fetched is covered on arrival. A failed fetch (404, 429, timeout) is retried with
-- exponential back-off; after max attempts the row is 'failed', for an operator (`ledger
-- projections status` lists every row not done). Nothing here holds up any other event.
--
-- Production roles (001): GRANT SELECT, INSERT, UPDATE ON ledger.thin_fetches TO ledger_app;
CREATE TABLE ledger.thin_fetches (
    event_id        text        PRIMARY KEY,  -- no foreign key, as ledger.event_releases
    position        bigint      NOT NULL,
    type            text        NOT NULL,
    created         timestamptz NOT NULL,
    livemode        boolean     NOT NULL,
    account         text        NOT NULL DEFAULT '',
    object_type     text        NOT NULL,
    object_id       text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'fetched', 'covered', 'failed', 'unsupported')),
    held            boolean     NOT NULL DEFAULT false,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    snapshot_id     text,
    covered_by      text,
    done_at         timestamptz
);
CREATE INDEX thin_fetches_due_idx ON ledger.thin_fetches (next_attempt_at) WHERE status = 'pending' AND NOT held;
CREATE INDEX thin_fetches_held_idx ON ledger.thin_fetches (event_id) WHERE status = 'pending' AND held;
CREATE INDEX thin_fetches_object_idx ON ledger.thin_fetches (object_id, livemode, account);

COMMENT ON TABLE ledger.thin_fetches IS 'Thin events (v2.core.event notifications) and the fetch of the object each names: the fetched object is appended to the log as a thin snapshot.';
COMMENT ON COLUMN ledger.thin_fetches.event_id IS 'The thin event (ledger.events.event_id).';
COMMENT ON COLUMN ledger.thin_fetches.position IS 'Its position in the log.';
COMMENT ON COLUMN ledger.thin_fetches.type IS 'Its type, e.g. v1.invoice.paid.';
COMMENT ON COLUMN ledger.thin_fetches.created IS 'Its created time (to the second).';
COMMENT ON COLUMN ledger.thin_fetches.livemode IS 'Its mode.';
COMMENT ON COLUMN ledger.thin_fetches.account IS 'Its context: the connected account, '''' for the platform.';
COMMENT ON COLUMN ledger.thin_fetches.object_type IS 'related_object.type, e.g. invoice.';
COMMENT ON COLUMN ledger.thin_fetches.object_id IS 'related_object.id.';
COMMENT ON COLUMN ledger.thin_fetches.status IS 'pending (to fetch, at next_attempt_at), fetched (snapshot_id appended), covered (a fetch for a later thin event of the object answers it: covered_by), failed (max attempts spent; last_error says why) or unsupported (no read model holds the object: nothing to fetch).';
COMMENT ON COLUMN ledger.thin_fetches.held IS 'The thin event disagrees with its endpoint (ledger.events.hold_reason) and no operator has released it yet: it is not fetched (that would bring its object in by the back door).';
COMMENT ON COLUMN ledger.thin_fetches.attempts IS 'Fetches tried and failed so far.';
COMMENT ON COLUMN ledger.thin_fetches.next_attempt_at IS 'When a pending row is next tried; NULL once done.';
COMMENT ON COLUMN ledger.thin_fetches.last_error IS 'Why the last attempt failed (Stripe''s status and message, never a key); NULL when none failed.';
COMMENT ON COLUMN ledger.thin_fetches.snapshot_id IS 'The thin snapshot appended for it (ledger.events.event_id), when fetched.';
COMMENT ON COLUMN ledger.thin_fetches.covered_by IS 'The thin event whose fetch answers this one, when covered.';
COMMENT ON COLUMN ledger.thin_fetches.done_at IS 'When it was fetched, covered, failed or found unsupported.';
