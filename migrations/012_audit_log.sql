-- The audit log of the finance API, the dashboard and /metrics: one row per request that
-- presented a token, allowed or refused. Written by package audit (its only owner), read by
-- `ledger audit`. The token itself is never stored: a configured token is recorded by its name,
-- an unknown one by nothing (token_name and role NULL).
CREATE TABLE ledger.audit_log (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    token_name  text,
    role        text        CHECK (role IN ('read', 'operate', 'admin')),
    method      text        NOT NULL,
    route       text        NOT NULL,
    path        text        NOT NULL,
    status      integer     NOT NULL,
    client_addr inet,
    duration_us bigint      NOT NULL,
    CHECK ((token_name IS NULL) = (role IS NULL))
);
COMMENT ON TABLE ledger.audit_log IS 'Every API, dashboard and /metrics request that presented a token: who, what, the answer, from where.';
COMMENT ON COLUMN ledger.audit_log.id IS 'The record''s number, in the order records were written.';
COMMENT ON COLUMN ledger.audit_log.method IS 'The request''s HTTP method.';
COMMENT ON COLUMN ledger.audit_log.at IS 'When the request arrived.';
COMMENT ON COLUMN ledger.audit_log.token_name IS 'The token''s configured name; NULL when the token presented is not configured (answered 401).';
COMMENT ON COLUMN ledger.audit_log.role IS 'The token''s role (read, operate, admin); NULL with token_name.';
COMMENT ON COLUMN ledger.audit_log.route IS 'The route''s pattern as registered, e.g. GET /api/v1/charges/{id}.';
COMMENT ON COLUMN ledger.audit_log.path IS 'The request path, without its query string.';
COMMENT ON COLUMN ledger.audit_log.status IS 'The HTTP status answered.';
COMMENT ON COLUMN ledger.audit_log.client_addr IS 'The client''s address: the connection''s peer, or X-Forwarded-For behind a trusted proxy (LEDGER_TRUSTED_PROXIES).';
COMMENT ON COLUMN ledger.audit_log.duration_us IS 'How long the answer took, microseconds.';

-- `ledger audit` lists the newest first, optionally for one token.
CREATE INDEX audit_log_at_idx ON ledger.audit_log (at DESC, id DESC);
CREATE INDEX audit_log_token_idx ON ledger.audit_log (token_name, at DESC);
