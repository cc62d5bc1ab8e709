package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
)

// AsOfKinds are the read models AsOf can fold.
var AsOfKinds = map[domain.Kind]bool{domain.KindSubscriptions: true, domain.KindCharges: true}

// AsOf folds subscriptions or charges as they stood at t: from every event created at or before t
// (less quarantined ones), with the same reducers and row builders as the read models — the
// question a table of current state cannot answer. id "" folds every object of the kind. A
// subscription's app user ID is today's (identity does not change with time). Rows are in the
// read model's column order.
func AsOf(ctx context.Context, pool *pgxpool.Pool, kind domain.Kind, t time.Time, id string) (columns []string, rows [][]any, err error) {
	if !AsOfKinds[kind] {
		return nil, nil, fmt.Errorf("as-of folds subscriptions and charges, not %s", kind)
	}
	var types []string
	for _, typ := range append(domain.ReadModelEventTypes, domain.SnapshotTypes[kind]) {
		if k := domain.Route(typ); k == kind || (kind == domain.KindCharges && k == domain.KindDisputes) {
			types = append(types, typ)
		}
	}
	q := `SELECT e.type, e.object_id, e.payload FROM ledger.events e
		WHERE e.created <= $1 AND e.type = ANY($2) AND NOT EXISTS (SELECT 1 FROM ledger.projection_quarantine q
			WHERE q.projection = $3 AND q.event_id = e.event_id AND q.resolved_at IS NULL)`
	args := []any{t, types, StateName}
	if id != "" {
		q += ` AND (e.object_id = $4 OR e.object_id IN (SELECT d.id FROM ledger.disputes d WHERE d.charge = $4))`
		args = append(args, id)
	}
	res, err := pool.Query(ctx, q+` ORDER BY e.position`, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("could not read the log as of %s: %w", t.Format(time.RFC3339), err)
	}
	byObject := map[string][]domain.Fact{}
	disputes := map[string][]domain.Fact{}
	var order []string
	for res.Next() {
		var typ, objectID string
		var payload []byte
		if err := res.Scan(&typ, &objectID, &payload); err != nil {
			res.Close()
			return nil, nil, err
		}
		f, err := domain.DecodeStoredFact(payload)
		if err != nil {
			continue // quarantined by the projection too
		}
		if domain.Route(typ) == domain.KindDisputes {
			disputes[objectID] = append(disputes[objectID], f)
			continue
		}
		if _, ok := byObject[objectID]; !ok {
			order = append(order, objectID)
		}
		byObject[objectID] = append(byObject[objectID], f)
	}
	res.Close()
	if err := res.Err(); err != nil {
		return nil, nil, err
	}
	switch kind {
	case domain.KindSubscriptions:
		users := map[string]string{}
		urows, err := pool.Query(ctx, `SELECT id, app_user_id FROM ledger.subscriptions WHERE id = ANY($1)`, order)
		if err != nil {
			return nil, nil, err
		}
		for urows.Next() {
			var sid, user string
			if err := urows.Scan(&sid, &user); err != nil {
				urows.Close()
				return nil, nil, err
			}
			users[sid] = user
		}
		urows.Close()
		if err := urows.Err(); err != nil {
			return nil, nil, err
		}
		for _, oid := range order {
			f, ok, _ := foldClean(byObject[oid], foldSubscription)
			if ok {
				rows = append(rows, subscriptionRow(f.row, users[oid]))
			}
		}
		return subscriptionsTable.columns, rows, nil
	default:
		byCharge := map[string][]domain.Fact{}
		for _, facts := range disputes {
			if r, ok, _ := foldClean(facts, domain.FoldDispute); ok {
				byCharge[r.Charge] = append(byCharge[r.Charge], facts...)
			}
		}
		for _, oid := range order {
			r, ok, _ := foldClean(byObject[oid], func(fs []domain.Fact) (domain.ChargeRow, error) { return domain.FoldCharge(fs, byCharge[oid]) })
			if ok {
				rows = append(rows, chargeRow(r))
			}
		}
		return chargesTable.columns, rows, nil
	}
}
