package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// AsOf folds a read model's objects as they stood at the cut, from every event Stripe created at
// or before cut.AsOf among those at log positions up to cut.KnownAt (less the quarantined
// ones), with the same declarations as the read models. The rows a model reads (a charge's
// disputes, a subscription's customer and Checkout session) are folded at the cut too. id ""
// folds every object of the model. Rows are in the model's column order, ordered by ID.
//
// It re-folds every event of the kind: the API answers from the history tables instead
// (ReadAt), and the tests hold those answers to this fold of the log cut at the same place.
func AsOf(ctx context.Context, pool *pgxpool.Pool, m *Model, cut Cut, id string, identity domain.Identity) ([][]any, error) {
	t := cut.AsOf
	if cut.Known && cut.KnownAt <= 0 {
		return nil, nil // the ledger knew nothing yet
	}
	mrr, err := storedSettings(ctx, pool)
	if err != nil {
		return nil, err
	}
	a := &asOf{pool: pool, store: eventstore.New(pool), t: t, upTo: cut.KnownAt, env: env{identity: identity, mrr: mrr}}
	var ids []string
	if id != "" {
		ids = []string{id}
	}
	rows, err := a.fold(ctx, m, ids)
	if err != nil {
		return nil, fmt.Errorf("could not fold %s as of %s: %w", m.Table, t.Format(time.RFC3339), err)
	}
	out := make([][]any, 0, len(rows))
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		out = append(out, m.impl.values(rows[k]))
	}
	return out, nil
}

// asOf is one as-of fold.
type asOf struct {
	pool  *pgxpool.Pool
	store *eventstore.Store
	t     time.Time
	upTo  int64
	env   env
}

// fold folds the objects ids of m (nil: every object with an event by t) and returns their rows
// that exist at t, derived from their related rows at t.
func (a *asOf) fold(ctx context.Context, m *Model, ids []string) (map[string]any, error) {
	f := eventstore.Filter{ObjectType: m.ObjectType, ObjectIDs: ids, CreatedTo: a.t, UpToPosition: a.upTo, Payload: true}
	byObject := map[string][]domain.Fact{}
	err := a.store.Scan(ctx, f, func(r *eventstore.Record) error {
		if modelFor(r.Type, r.ObjectType) != m || r.Held() {
			return nil // held events stay out of the read models until released
		}
		fact, err := domain.DecodeStoredFact(r.Payload)
		if err != nil {
			return nil // quarantined by the projection too
		}
		byObject[r.ObjectID] = append(byObject[r.ObjectID], fact)
		return nil
	})
	if err != nil {
		return nil, err
	}
	objects := slices.Sorted(maps.Keys(byObject))
	if len(objects) > 0 {
		quarantined, err := OpenQuarantine(ctx, a.pool, objects)
		if err != nil {
			return nil, err
		}
		for id, facts := range byObject {
			byObject[id] = slices.DeleteFunc(facts, func(f domain.Fact) bool { return quarantined[f.EventID] })
		}
	}
	rows := map[string]any{}
	for _, id := range objects {
		if f, _ := foldObject(m, id, byObject[id]); f.row != nil {
			rows[id] = f.row
		}
	}
	in := inputs{}
	for _, rel := range m.Reads {
		in[rel.Model] = map[string][]any{}
		var keys []string
		if rel.Column != "" {
			if ids != nil {
				// Which objects relate is read from today's rows: the key that links them (a
				// dispute's charge) does not change over an object's life.
				if keys, err = a.relatedIDs(ctx, rel, ids); err != nil {
					return nil, err
				}
			}
		} else {
			set := idSet{}
			for _, r := range rows {
				set.add(viaKeys(m, r, rel.Via)...)
			}
			keys = set.sorted()
			if len(keys) == 0 {
				continue
			}
		}
		related, err := a.fold(ctx, rel.Model, keys)
		if err != nil {
			return nil, err
		}
		keyCol := "id"
		if rel.Column != "" {
			keyCol = rel.Column
		}
		ki := columnIndex(rel.Model, keyCol)
		for _, r := range related {
			k := textValue(rel.Model.impl.values(r)[ki])
			in[rel.Model][k] = append(in[rel.Model][k], r)
		}
	}
	for _, r := range rows {
		m.impl.derive(r, in, a.env)
	}
	return rows, nil
}

// relatedIDs are the IDs of rel's rows that link to ids, read from the live table.
func (a *asOf) relatedIDs(ctx context.Context, rel Relation, ids []string) ([]string, error) {
	rows, err := a.pool.Query(ctx, fmt.Sprintf(`SELECT id FROM ledger.%s WHERE %s = ANY($1)`, rel.Model.Table, rel.Column), ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
