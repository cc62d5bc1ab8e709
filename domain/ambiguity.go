package domain

import "slices"

// Ambiguities are OrderReport's undecided groups of facts, found without ordering them when
// there can be none: a group needs two events of one second and one lifecycle rank, which most
// objects never have. Replay asks this of every object it folds.
func Ambiguities(facts []Fact) []Ambiguity {
	if len(facts) < 2 {
		return nil
	}
	type key struct {
		created int64
		rank    int
		id      string
	}
	keys := make([]key, len(facts))
	for i := range facts {
		keys[i] = key{facts[i].Created, facts[i].rank(), facts[i].EventID}
	}
	slices.SortFunc(keys, func(a, b key) int {
		switch {
		case a.created != b.created:
			return compare(a.created, b.created)
		case a.rank != b.rank:
			return compare(a.rank, b.rank)
		}
		return compare(a.id, b.id)
	})
	for i := 1; i < len(keys); i++ {
		if keys[i].created == keys[i-1].created && keys[i].rank == keys[i-1].rank && keys[i].id != keys[i-1].id {
			_, amb := OrderReport(facts)
			return amb
		}
	}
	return nil
}

func compare[T int | int64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
