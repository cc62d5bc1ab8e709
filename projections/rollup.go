package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// attachRollup sums the movement log now in place into ledger.mrr_rollup and puts on it the
// triggers that keep the rollup equal to it (migrations/021): a log swapped in by a replay or a
// recompute is a new table, without them.
func attachRollup(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT ledger.mrr_rollup_attach()`); err != nil {
		return fmt.Errorf("could not sum the movement log into its rollup: %w", err)
	}
	return nil
}
