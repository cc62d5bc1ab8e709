-- Reconciliation: scheduled jobs that compare the ledger with Stripe and repair it by appending.
-- Every run, scheduled or from the CLI, is a row here; finance and operators read it to know what
-- was checked and what was repaired.
CREATE TABLE ledger.reconcile_runs (
    id              bigserial   PRIMARY KEY,
    job             text        NOT NULL CHECK (job IN ('events', 'events-fast', 'objects', 'endpoints')),
    status          text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'partial', 'cancelled')),
    dry_run         boolean     NOT NULL DEFAULT false,
    trigger         text        NOT NULL DEFAULT 'cli',  -- cli, schedule, catch-up
    window_from     timestamptz,                         -- events jobs: the created range checked
    window_to       timestamptz,
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),  -- a running run's liveness
    finished_at     timestamptz,
    requests        integer     NOT NULL DEFAULT 0,      -- Stripe API requests made
    rate_limited    integer     NOT NULL DEFAULT 0,      -- of which answered 429 (then retried)
    events_seen     integer     NOT NULL DEFAULT 0,      -- events listed by Stripe in the window
    missing_found   integer     NOT NULL DEFAULT 0,      -- of which not in the log
    repaired        integer     NOT NULL DEFAULT 0,      -- events or snapshots appended
    objects_checked integer     NOT NULL DEFAULT 0,      -- objects job: Stripe objects compared
    drift           jsonb       NOT NULL DEFAULT '{}',   -- objects job: differences by kind ("subscriptions.status": 3)
    findings        jsonb       NOT NULL DEFAULT '[]',   -- details: drifted objects, unhealthy endpoints (first 1,000)
    cursor          text        NOT NULL DEFAULT '',     -- where to resume: the last event or object handled
    resumed_from    bigint      REFERENCES ledger.reconcile_runs (id),
    runner          text        NOT NULL DEFAULT '',     -- host and pid of the process that ran it
    error           text        NOT NULL DEFAULT ''
);
CREATE INDEX reconcile_runs_job_idx ON ledger.reconcile_runs (job, started_at DESC);

-- Time windows whose events a full events run has proven to be all in the log: the next run starts
-- from the end of the last one (less an overlap), so each run checks only what is new.
CREATE TABLE ledger.reconcile_coverage (
    window_from timestamptz NOT NULL,
    window_to   timestamptz NOT NULL,
    run_id      bigint      NOT NULL REFERENCES ledger.reconcile_runs (id),
    proven_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_to, window_from)
);
