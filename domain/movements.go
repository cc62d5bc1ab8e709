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
	ordered := Order(facts)
	return movementsOf(ordered, func(i int) (SubscriptionRow, error) { return FoldSubscription(ordered[i : i+1]) })
}

// movementsOf is the movement log of ordered facts, rowAt(i) being the state after the i-th.
func movementsOf(ordered []Fact, rowAt func(i int) (SubscriptionRow, error)) ([]Movement, error) {
	var out []Movement
	var mrr int64
	churned, deleted := false, false
	for i, f := range ordered {
		if deleted {
			break // a deletion is terminal; anything after it is a late echo
		}
		row, err := rowAt(i)
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

// FoldSubscriptionHistory is FoldSubscription and Movements of the same facts, with the same
// answers, ordering them once and decoding each event's snapshot once: replay folds every
// subscription this way. When an event cannot be decoded, the two are run apart so that the
// error is theirs, word for word.
func FoldSubscriptionHistory(facts []Fact) (SubscriptionRow, []Movement, error) {
	ordered := Order(facts)
	if len(ordered) == 0 {
		return SubscriptionRow{}, nil, fmt.Errorf("no events")
	}
	latest := len(ordered) - 1 // Latest's rule: the last, or the last deletion once there is one
	for i := len(ordered) - 1; i >= 0; i-- {
		if terminal(ordered[i].Type) {
			latest = i
			break
		}
	}
	rows := make([]*SubscriptionRow, len(ordered))
	rowAt := func(i int) (SubscriptionRow, error) {
		if rows[i] != nil {
			return *rows[i], nil
		}
		r, err := FoldSubscription(ordered[i : i+1])
		if err == nil {
			rows[i] = &r
		}
		return r, err
	}
	moves, err := movementsOf(ordered, rowAt)
	if err != nil {
		return separately(facts)
	}
	row, err := rowAt(latest)
	if err != nil {
		return separately(facts)
	}
	return row, moves, nil
}

func separately(facts []Fact) (SubscriptionRow, []Movement, error) {
	row, err := FoldSubscription(facts)
	if err != nil {
		return SubscriptionRow{}, nil, err
	}
	moves, err := Movements(facts)
	return row, moves, err
}
