package projections

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// Lock takes the projection's transaction lock in tx, the one the live runner holds for each
// batch and a replay for its swap. A caller that changes events the read models were folded from
// (a redaction) takes it before it reads them and re-folds with Refold in the same tx: a runner's
// batch then either committed before (and is re-folded) or waits, and reads the changed events.
func Lock(ctx context.Context, tx pgx.Tx) error { return lockProjection(ctx, tx, StateName) }

// Refold folds again, in tx, the objects the events are about from their whole histories as tx
// sees them, and every object that reads one of them, exactly as the live runner folds a batch.
// identity must be the runner's; the MRR settings are those the read models record. An error leaves tx to be rolled back: nothing is quarantined,
// the caller's change is what is at fault.
func Refold(ctx context.Context, tx pgx.Tx, identity domain.Identity, events []eventstore.Record) error {
	if err := identity.Validate(); err != nil {
		return err
	}
	mrr, err := storedSettings(ctx, tx)
	if err != nil {
		return err
	}
	e := &engine{projection: StateName, env: env{identity: identity, mrr: mrr}}
	changes := changesOf(events)
	for i := range changes {
		changes[i].rewrite = true // their payloads changed: so did every version folded from them
	}
	return e.foldChanges(ctx, tx, changes)
}

// changesOf are the objects events are about.
func changesOf(events []eventstore.Record) []change {
	out := make([]change, len(events))
	for i, ev := range events {
		out[i] = change{eventType: ev.Type, objectType: ev.ObjectType, objectID: ev.ObjectID}
	}
	return out
}

// withRedacted are the objects recs are about, and those whose events the redactions among recs
// changed: whoever folded them from the payloads before a redaction (a replay that read the log
// before it committed) folds them again from the redacted ones.
func withRedacted(ctx context.Context, tx pgx.Tx, recs []eventstore.Record) ([]change, error) {
	changes := changesOf(recs)
	var positions []int64
	for _, r := range recs {
		if r.Type == domain.RedactionType && r.Source == domain.SourceLedger {
			positions = append(positions, r.Position)
		}
	}
	if len(positions) == 0 {
		return changes, nil
	}
	redacted, err := eventstore.On(tx).List(ctx, eventstore.Filter{RedactedBy: positions})
	if err != nil {
		return nil, err
	}
	for _, c := range changesOf(redacted) {
		c.rewrite = true
		changes = append(changes, c)
	}
	return changes, nil
}
