-- The movement log's daily rollup: what the MRR, movement and churn answers sum, so that a
-- 12-month series reads a few thousand rows instead of every movement (three or so per
-- subscription). It is exact, not a cache: statement-level triggers on
-- ledger.subscription_movements add each statement's rows (transition tables) in the same
-- transaction, so the rollup always equals a GROUP BY of the log as that transaction sees it.
--
-- The movement log is a read-model table: the projection runner creates it, and swaps a new one
-- in on replay and recompute (the old one, with its triggers, is dropped). Each swap calls
-- ledger.mrr_rollup_attach(), which sums the new log by one GROUP BY and puts the triggers on
-- it. A reader uses the rollup only while the triggers are there (query/mrr.go); otherwise it
-- sums the log.
SET LOCAL check_function_bodies = off;

CREATE TABLE ledger.mrr_rollup (
    day       date    NOT NULL,
    fx_day    date    NOT NULL,
    currency  text    NOT NULL,
    livemode  boolean NOT NULL,
    account   text,
    kind      text    NOT NULL,
    amount    bigint  NOT NULL,
    movements bigint  NOT NULL,
    CONSTRAINT mrr_rollup_key UNIQUE NULLS NOT DISTINCT (livemode, account, currency, day, fx_day, kind)
);
-- The groups a statement empties, found without a join (they live only until the trigger that
-- emptied them deletes them, so the index is all but empty).
CREATE INDEX mrr_rollup_emptied ON ledger.mrr_rollup (day) WHERE movements = 0;

COMMENT ON TABLE ledger.mrr_rollup IS 'ledger.subscription_movements summed by UTC day, period_start day, currency, mode, account and kind; kept equal to that GROUP BY by triggers in the same transaction as the movements.';
COMMENT ON COLUMN ledger.mrr_rollup.day IS 'The UTC day of the movements'' at.';
COMMENT ON COLUMN ledger.mrr_rollup.fx_day IS 'The UTC day of the movements'' period_start (their at when NULL): the rate date with LEDGER_FX_RATE_DATE=period_start.';
COMMENT ON COLUMN ledger.mrr_rollup.currency IS 'Currency of the amounts (minor units).';
COMMENT ON COLUMN ledger.mrr_rollup.livemode IS 'True: live-mode movements; false: test mode.';
COMMENT ON COLUMN ledger.mrr_rollup.account IS 'The Connect account (acct_...); NULL: the platform''s own.';
COMMENT ON COLUMN ledger.mrr_rollup.kind IS 'The movements'' kind (new, expansion, contraction, churn, reactivation, pause, resume).';
COMMENT ON COLUMN ledger.mrr_rollup.amount IS 'Sum of the movements'' amount, minor units.';
COMMENT ON COLUMN ledger.mrr_rollup.movements IS 'How many movements: active subscribers change by those of kind new, reactivation and resume less those of churn and pause. A group that falls to none is deleted.';

-- The trigger functions add a statement's rows (its transition table: the inserted rows, or
-- minus the deleted ones), grouped first so that each key is written once per statement, in key
-- order so that two writers lock the keys they share in the same order. Transition tables are
-- visible only to the trigger's own function, hence one function per statement kind.
CREATE FUNCTION ledger.mrr_rollup_inserted() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO ledger.mrr_rollup AS r (day, fx_day, currency, livemode, account, kind, amount, movements)
    SELECT (at AT TIME ZONE 'UTC')::date, (coalesce(period_start, at) AT TIME ZONE 'UTC')::date, currency, livemode, account, kind, sum(amount), count(*)
    FROM mrr_rollup_new GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 4, 5, 3, 1, 2, 6
    ON CONFLICT ON CONSTRAINT mrr_rollup_key DO UPDATE SET amount = r.amount + EXCLUDED.amount, movements = r.movements + EXCLUDED.movements;
    RETURN NULL;
END
$fn$;

-- Deleted rows are subtracted, and the groups they emptied deleted: the rollup holds exactly the
-- groups the log has. A group that falls below none means the rollup and the log disagreed: the
-- statement fails rather than leave a wrong figure.
CREATE FUNCTION ledger.mrr_rollup_deleted() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE low bigint;
BEGIN
    WITH u AS (
        INSERT INTO ledger.mrr_rollup AS r (day, fx_day, currency, livemode, account, kind, amount, movements)
        SELECT (at AT TIME ZONE 'UTC')::date, (coalesce(period_start, at) AT TIME ZONE 'UTC')::date, currency, livemode, account, kind, -sum(amount), -count(*)
        FROM mrr_rollup_old GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 4, 5, 3, 1, 2, 6
        ON CONFLICT ON CONSTRAINT mrr_rollup_key DO UPDATE SET amount = r.amount + EXCLUDED.amount, movements = r.movements + EXCLUDED.movements
        RETURNING r.movements
    ) SELECT min(movements) INTO low FROM u;
    IF low < 0 THEN
        RAISE EXCEPTION 'ledger.mrr_rollup lacks movements deleted from ledger.subscription_movements (replay the log: ledger replay)';
    END IF;
    DELETE FROM ledger.mrr_rollup WHERE movements = 0;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION ledger.mrr_rollup_truncated() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM ledger.mrr_rollup;
    RETURN NULL;
END
$fn$;

-- mrr_rollup_attach sums the movement log now in place into the rollup and puts the triggers on
-- it: run after every swap of the log, in the swap's transaction.
CREATE FUNCTION ledger.mrr_rollup_attach() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM ledger.mrr_rollup;
    IF to_regclass('ledger.subscription_movements') IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO ledger.mrr_rollup (day, fx_day, currency, livemode, account, kind, amount, movements)
    SELECT (at AT TIME ZONE 'UTC')::date, (coalesce(period_start, at) AT TIME ZONE 'UTC')::date, currency, livemode, account, kind, sum(amount), count(*)
    FROM ledger.subscription_movements GROUP BY 1, 2, 3, 4, 5, 6;
    -- An UPDATE is a DELETE of the old rows and an INSERT of the new ones: two triggers.
    CREATE OR REPLACE TRIGGER mrr_rollup_insert AFTER INSERT ON ledger.subscription_movements
        REFERENCING NEW TABLE AS mrr_rollup_new FOR EACH STATEMENT EXECUTE FUNCTION ledger.mrr_rollup_inserted();
    CREATE OR REPLACE TRIGGER mrr_rollup_delete AFTER DELETE ON ledger.subscription_movements
        REFERENCING OLD TABLE AS mrr_rollup_old FOR EACH STATEMENT EXECUTE FUNCTION ledger.mrr_rollup_deleted();
    CREATE OR REPLACE TRIGGER mrr_rollup_update_old AFTER UPDATE ON ledger.subscription_movements
        REFERENCING OLD TABLE AS mrr_rollup_old FOR EACH STATEMENT EXECUTE FUNCTION ledger.mrr_rollup_deleted();
    CREATE OR REPLACE TRIGGER mrr_rollup_update_new AFTER UPDATE ON ledger.subscription_movements
        REFERENCING NEW TABLE AS mrr_rollup_new FOR EACH STATEMENT EXECUTE FUNCTION ledger.mrr_rollup_inserted();
    CREATE OR REPLACE TRIGGER mrr_rollup_truncate AFTER TRUNCATE ON ledger.subscription_movements
        FOR EACH STATEMENT EXECUTE FUNCTION ledger.mrr_rollup_truncated();
END
$fn$;

COMMENT ON FUNCTION ledger.mrr_rollup_attach() IS 'Sums ledger.subscription_movements into ledger.mrr_rollup and puts the triggers that keep it so on the table; the projection runner calls it whenever it swaps a new movement log in.';

-- A database whose movement log predates period_start gets the rollup at its next replay (the
-- runner replays when the read models'' declarations change).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = 'ledger' AND table_name = 'subscription_movements' AND column_name = 'period_start') THEN
        PERFORM ledger.mrr_rollup_attach();
    END IF;
END $$;

-- A BI role that could read the movement log can read its rollup.
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT DISTINCT grantee FROM information_schema.table_privileges
             WHERE table_schema = 'ledger' AND table_name = 'metrics_daily' AND privilege_type = 'SELECT'
               AND grantee NOT IN ('PUBLIC', current_user) LOOP
        EXECUTE format('GRANT SELECT ON ledger.mrr_rollup TO %I', g.grantee);
    END LOOP;
END $$;
