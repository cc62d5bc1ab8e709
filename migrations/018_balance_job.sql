-- The balance reconcile job: balance transactions have no Stripe events, so the job fetches them
-- (each payout's listing, GET /v1/balance_transactions?payout=, and the transactions of charges,
-- refunds and disputes the ledger has none for) and appends them to the log as snapshot events.
ALTER TABLE ledger.reconcile_runs DROP CONSTRAINT reconcile_runs_job_check;
ALTER TABLE ledger.reconcile_runs ADD CONSTRAINT reconcile_runs_job_check
    CHECK (job IN ('events', 'events-fast', 'objects', 'endpoints', 'balance'));

-- A payout whose listing the job has read in full, every page appended to the log, with the
-- payout's status then. A payout that was paid, failed or canceled when listed, and added up,
-- does not change its listing again, so later runs skip it; one still pending or in transit, or
-- one that did not add up (a finding each run until Stripe's listing explains it), is listed
-- again.
-- The job's own bookkeeping: the log holds what was fetched, and replay never reads this.
CREATE TABLE ledger.balance_listings (
    livemode     boolean     NOT NULL,
    account      text,
    payout       text        NOT NULL,
    status       text        NOT NULL,
    transactions integer     NOT NULL,
    parts        bigint      NOT NULL,
    amount       bigint      NOT NULL,
    currency     text        NOT NULL,
    adds_up      boolean     NOT NULL,
    listed_at    timestamptz NOT NULL DEFAULT now(),
    run_id       bigint      NOT NULL
);
CREATE UNIQUE INDEX balance_listings_payout_idx ON ledger.balance_listings (livemode, (coalesce(account, '')), payout);

COMMENT ON TABLE ledger.balance_listings IS 'Payouts whose balance transactions the balance reconcile job listed in full (GET /v1/balance_transactions?payout=), the latest listing of each. A payout listed when paid, failed or canceled that added up is not listed again.';
COMMENT ON COLUMN ledger.balance_listings.livemode IS 'The payout''s mode.';
COMMENT ON COLUMN ledger.balance_listings.account IS 'The payout''s Connect account (acct_...); NULL for the platform''s own.';
COMMENT ON COLUMN ledger.balance_listings.payout IS 'The payout (po_...).';
COMMENT ON COLUMN ledger.balance_listings.status IS 'The payout''s status when listed (Stripe''s, or the ledger''s when Stripe did not list the payout in the window).';
COMMENT ON COLUMN ledger.balance_listings.transactions IS 'How many balance transactions the listing held, the payout''s own included.';
COMMENT ON COLUMN ledger.balance_listings.parts IS 'The sum of the nets of the listed transactions but the payout''s own, minor units: equal to amount when the payout adds up.';
COMMENT ON COLUMN ledger.balance_listings.amount IS 'The payout''s amount, minor units.';
COMMENT ON COLUMN ledger.balance_listings.currency IS 'The payout''s currency.';
COMMENT ON COLUMN ledger.balance_listings.adds_up IS 'True when parts equals amount, or the payout is manual (Stripe lists only its own transaction).';
COMMENT ON COLUMN ledger.balance_listings.listed_at IS 'When the listing was read.';
COMMENT ON COLUMN ledger.balance_listings.run_id IS 'The reconcile run that read it (ledger.reconcile_runs.id).';
