-- The projection engine creates the read models' tables from their declarations
-- (projections/models.go) whenever it rebuilds them, and records which declarations the tables
-- were built from: a runner whose declarations differ rebuilds the read models from the log
-- before it folds another batch, while queries keep answering from the old tables.
ALTER TABLE ledger.projection_state ADD COLUMN schema text;
COMMENT ON COLUMN ledger.projection_state.schema IS 'Fingerprint of the declarations the read models'' tables were built from; NULL: built before there were declarations (the runner rebuilds them).';
