-- A notification `ledger notify backfill RULE --since T` enqueued for an event older than the
-- rule: receivers and the delivery history can tell it from one the runner sent live.
ALTER TABLE ledger.notify_outbox ADD COLUMN backfill boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN ledger.notify_outbox.backfill IS 'Enqueued by ledger notify backfill for an event from before the rule was first seen, not by the runner as it happened.';
