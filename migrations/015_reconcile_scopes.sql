-- Reconciliation runs per scope: a mode (live or test, one API key each) and an account (the
-- platform's own, or a connected account read with the Stripe-Account header). A run of a job
-- covers every scope it was asked for and records each one's window, cursor, counters and outcome
-- in `scopes` (a JSON array, one object per scope: see reconcile.ScopeRun); the run's own columns
-- stay the totals. Proven event windows are per scope as well.
ALTER TABLE ledger.reconcile_runs ADD COLUMN scopes jsonb NOT NULL DEFAULT '[]';

-- Windows proven before scopes existed name no mode or account: they keep NULL and no scope's
-- next run starts from them (the first run after the upgrade checks its 30 days in full).
ALTER TABLE ledger.reconcile_coverage ADD COLUMN livemode boolean, ADD COLUMN account text;
ALTER TABLE ledger.reconcile_coverage DROP CONSTRAINT reconcile_coverage_pkey;
CREATE UNIQUE INDEX reconcile_coverage_scope_idx
    ON ledger.reconcile_coverage (livemode, (coalesce(account, '')), window_to, window_from);

COMMENT ON COLUMN ledger.reconcile_runs.scopes IS 'One JSON object per mode and account the run covered: livemode, account (null: the platform''s own), status (succeeded, failed with error, cancelled, skipped), window_from, window_to, cursor, kinds_done (objects job) and that scope''s counters. The run''s own counters are their totals.';
COMMENT ON COLUMN ledger.reconcile_coverage.livemode IS 'The mode whose events the window proved complete; NULL for windows proven before runs were per mode and account (no run starts from those).';
COMMENT ON COLUMN ledger.reconcile_coverage.account IS 'The connected account (acct_...) whose events the window proved complete; NULL for the platform''s own.';
