-- The notify runner's sweep reads the thin events the thin fetcher resolved since its last sweep
-- (notify/sources.go, thinResolved): by done_at, among the fetched and covered rows.
CREATE INDEX thin_fetches_done_idx ON ledger.thin_fetches (done_at) WHERE status IN ('fetched', 'covered');
