package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// What the balance reconcile job reads of the money read models. The queries live here, with the
// tables' declarations, so the tables keep one owner.

// PayoutRef is what the balance job needs of a payout the ledger holds.
type PayoutRef struct {
	ID        string
	Amount    int64
	Currency  string
	Status    string
	Automatic bool
	Created   time.Time
}

// ScopePayouts are the payouts of one mode and account (account nil for the platform's own),
// oldest first; none before the read models were first built.
func ScopePayouts(ctx context.Context, pool *pgxpool.Pool, livemode bool, account *string) ([]PayoutRef, error) {
	if ok, err := built(ctx, pool, Payouts); !ok || err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, `SELECT id, amount, currency, status, automatic, created FROM ledger.payouts
		WHERE livemode = $1 AND account IS NOT DISTINCT FROM $2 ORDER BY created, id`, livemode, account)
	if err != nil {
		return nil, fmt.Errorf("could not read the ledger's payouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PayoutRef, error) {
		var p PayoutRef
		err := r.Scan(&p.ID, &p.Amount, &p.Currency, &p.Status, &p.Automatic, &p.Created)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("could not read the ledger's payouts: %w", err)
	}
	return out, nil
}

// MissingBalance is what of a scope's money the ledger holds no balance transaction for.
type MissingBalance struct {
	// Charges are the charges whose balance_transaction the ledger does not hold (their fee is
	// NULL), charge ID → txn_… ID, in charge order.
	Charges [][2]string
	// Sources are the refunds and disputes no balance transaction names as its source: Stripe's
	// refund and dispute objects are asked for theirs by ?source=. Canceled refunds and dispute
	// inquiries (warning_…), which move no money, are left out.
	Sources []string
}

// MissingBalanceTransactions reads a scope's charges, refunds and disputes without a balance
// transaction in the read models.
func MissingBalanceTransactions(ctx context.Context, pool *pgxpool.Pool, livemode bool, account *string) (MissingBalance, error) {
	var out MissingBalance
	for _, m := range []*Model{Charges, Refunds, Disputes, BalanceTransactions} {
		if ok, err := built(ctx, pool, m); !ok || err != nil {
			return out, err
		}
	}
	rows, err := pool.Query(ctx, `SELECT id, balance_transaction FROM ledger.charges
		WHERE livemode = $1 AND account IS NOT DISTINCT FROM $2 AND balance_transaction IS NOT NULL AND fee IS NULL
		ORDER BY created, id`, livemode, account)
	if err != nil {
		return out, fmt.Errorf("could not read the ledger's charges: %w", err)
	}
	if out.Charges, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var p [2]string
		err := r.Scan(&p[0], &p[1])
		return p, err
	}); err != nil {
		return out, fmt.Errorf("could not read the ledger's charges: %w", err)
	}
	// The NOT EXISTS probes balance_transactions' source index.
	rows, err = pool.Query(ctx, `
		SELECT id FROM (
			SELECT id, created, livemode, account FROM ledger.refunds
			WHERE livemode = $1 AND account IS NOT DISTINCT FROM $2 AND status IS DISTINCT FROM 'canceled'
			UNION ALL
			SELECT id, created, livemode, account FROM ledger.disputes
			WHERE livemode = $1 AND account IS NOT DISTINCT FROM $2 AND status NOT LIKE 'warning\_%'
		) o
		WHERE NOT EXISTS (SELECT 1 FROM ledger.balance_transactions b
			WHERE b.source = o.id AND b.livemode = o.livemode AND b.account IS NOT DISTINCT FROM o.account)
		ORDER BY created, id`, livemode, account)
	if err != nil {
		return out, fmt.Errorf("could not read the ledger's refunds and disputes: %w", err)
	}
	if out.Sources, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return out, fmt.Errorf("could not read the ledger's refunds and disputes: %w", err)
	}
	return out, nil
}

// built reports whether the model's table exists: the runner or a replay creates the read
// models from their declarations, so a database only migrated has none yet.
func built(ctx context.Context, pool *pgxpool.Pool, m *Model) (bool, error) {
	var ok bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('ledger.' || $1) IS NOT NULL`, m.Table).Scan(&ok); err != nil {
		return false, fmt.Errorf("could not look for ledger.%s: %w", m.Table, err)
	}
	return ok, nil
}
