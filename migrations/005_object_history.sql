-- Each Stripe object's full history through the log, for people asking "how did this
-- subscription get here?": every event about it, in log order, with where it came from.
-- The position index on (object_id, position) serves `WHERE object_id = …` directly.
CREATE VIEW ledger.object_history AS
SELECT e.object_type,
       e.object_id,
       e.position,
       e.event_id,
       e.type,
       e.created,
       e.api_version,
       e.source,
       e.received_at,
       convert_from(e.payload, 'UTF8')::jsonb -> 'data' -> 'previous_attributes' AS previous_attributes
FROM ledger.events e
WHERE e.object_id <> '';
