-- A read-only role for BI tools (Metabase, Looker, psql …): SELECT on everything in schema
-- ledger, nothing else. Run it once as the role that runs the ledger (the owner of its tables):
--
--   psql "$DATABASE_URL" -v bi_password="'a long random password'" -f docs/bi-readonly.sql
--
-- `ledger replay` replaces the read-model tables with rebuilt ones; the DEFAULT PRIVILEGES line
-- grants SELECT on those new tables too, so the role keeps working across replays.

CREATE ROLE ledger_bi LOGIN PASSWORD :bi_password;
GRANT USAGE ON SCHEMA ledger TO ledger_bi;
GRANT SELECT ON ALL TABLES IN SCHEMA ledger TO ledger_bi;
GRANT EXECUTE ON FUNCTION ledger.metrics_daily_v3_rows() TO ledger_bi;
GRANT EXECUTE ON FUNCTION ledger.payout_reconciliation_rows(), ledger.unreconciled_rows(timestamptz) TO ledger_bi;
GRANT EXECUTE ON FUNCTION ledger.fx_rate(text, text, date), ledger.subscribers_daily_rows(), ledger.mrr_cohorts_rows(), ledger.mrr_unvalued_rows() TO ledger_bi;
ALTER DEFAULT PRIVILEGES IN SCHEMA ledger GRANT SELECT ON TABLES TO ledger_bi;
-- The BI role must never write, even by mistake:
ALTER ROLE ledger_bi SET default_transaction_read_only = on;
