-- Bodies that carried a valid Stripe signature but are not Stripe events (not JSON, no evt_ id,
-- no type…). Stripe signed them, so they are kept rather than dropped; they are answered 400 and
-- are never part of the log or the read models. Rows are kept for people to look at; like the
-- log, they are not edited.
CREATE TABLE ledger.webhook_quarantine (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    reason      text        NOT NULL,  -- not_json, no_id, no_type, no_created, bad_field, not_an_event
    detail      text        NOT NULL,  -- the parser's message; never contains the body
    signature   text        NOT NULL,  -- the Stripe-Signature header that verified
    payload     bytea       NOT NULL,  -- the exact body
    sha256      bytea       NOT NULL UNIQUE  -- Stripe retries a rejected body; keep one row per body
);

CREATE TRIGGER webhook_quarantine_no_update_delete
    BEFORE UPDATE OR DELETE ON ledger.webhook_quarantine
    FOR EACH ROW EXECUTE FUNCTION ledger.reject_event_mutation();
