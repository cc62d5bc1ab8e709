package domain

import "fmt"

// MovementKind classifies a change of a subscription's MRR.
type MovementKind string

const (
	MovementNew          MovementKind = "new"          // first MRR of the subscription
	MovementExpansion    MovementKind = "expansion"    // MRR went up
	MovementContraction  MovementKind = "contraction"  // MRR went down, not to zero
	MovementChurn        MovementKind = "churn"        // MRR went to zero (canceled, unpaid, paused…)
	MovementReactivation MovementKind = "reactivation" // MRR came back after churn
)

// Movement is one change of a subscription's MRR and the event that caused it, so finance can
// recompute any metric definition from the log of movements.
type Movement struct {
	Subscription string
	Customer     string
	Currency     string
	Kind         MovementKind
	Amount       int64 // MRRAfter - MRRBefore, minor units
	MRRBefore    int64
	MRRAfter     int64
	EventID      string
	At           int64 // the event's created
}

// Movements is a subscription's movement log from the set of its events, in the ordering rule's
// order. Each event's snapshot is the subscription's state after it; a movement is recorded
// whenever the MRR changes. The amounts sum to the current MRR.
func Movements(facts []Fact) ([]Movement, error) {
	var out []Movement
	var mrr int64
	churned, deleted := false, false
	for _, f := range Order(facts) {
		if deleted {
			break // a deletion is terminal; anything after it is a late echo
		}
		row, err := FoldSubscription([]Fact{f})
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", f.EventID, err)
		}
		deleted = terminal(f.Type)
		if deleted {
			row.MRR = 0
		}
		if row.MRR == mrr {
			continue
		}
		m := Movement{Subscription: row.ID, Customer: row.Customer, Currency: row.Currency, Amount: row.MRR - mrr,
			MRRBefore: mrr, MRRAfter: row.MRR, EventID: f.EventID, At: f.Created}
		switch {
		case mrr == 0 && churned:
			m.Kind = MovementReactivation
		case mrr == 0:
			m.Kind = MovementNew
		case row.MRR == 0:
			m.Kind, churned = MovementChurn, true
		case row.MRR > mrr:
			m.Kind = MovementExpansion
		default:
			m.Kind = MovementContraction
		}
		out = append(out, m)
		mrr = row.MRR
	}
	return out, nil
}
