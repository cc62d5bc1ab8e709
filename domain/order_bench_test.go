package domain_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/stripesim"
)

// BenchmarkOrder orders every object's events of a simulated account, as replay does, with the
// ordering rule (new) and with the rule it replaced (pairwise, a copy kept below for this
// comparison only), in one run so the two are measured on the same machine at the same time. One
// op is one object; the events arrive shuffled, as in the log. Most objects have a few events and
// most same-second groups one to three.
//
//	go test -run '^$' -bench BenchmarkOrder -count 6 ./domain/ > order.txt
//	benchstat -col /rule order.txt
func BenchmarkOrder(b *testing.B) {
	sim := stripesim.New(stripesim.Config{Seed: 41, Customers: 1000, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	byObject := map[string][]domain.Fact{}
	var ids []string
	for _, ev := range sim.Events() {
		f, err := domain.DecodeFact(ev.Webhook)
		if err != nil {
			b.Fatal(err)
		}
		if byObject[ev.ObjectID] == nil {
			ids = append(ids, ev.ObjectID)
		}
		byObject[ev.ObjectID] = append(byObject[ev.ObjectID], f)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var all, grouped [][]domain.Fact
	for _, id := range ids {
		fs := byObject[id]
		rng.Shuffle(len(fs), func(i, j int) { fs[i], fs[j] = fs[j], fs[i] })
		all = append(all, fs)
		type second struct {
			created int64
			rank    int
		}
		seen := map[second]bool{}
		for _, f := range fs {
			k := second{f.Created, domain.Rank(f.Type)}
			if seen[k] {
				grouped = append(grouped, fs)
				break
			}
			seen[k] = true
		}
	}
	// objects=all is replay's mix; objects=grouped only the objects with a same-second group of
	// two or more events of one rank, where the chain is searched at all.
	for _, set := range []struct {
		name    string
		objects [][]domain.Fact
	}{{"objects=all", all}, {"objects=grouped", grouped}} {
		for _, impl := range []struct {
			name  string
			order func([]domain.Fact) []domain.Fact
		}{{"rule=anchored", domain.Order}, {"rule=pairwise", pairwiseOrder}} {
			b.Run(set.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for i := 0; b.Loop(); i++ {
					fs := set.objects[i%len(set.objects)]
					impl.order(fs)
					n += len(fs)
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
	b.Logf("%d objects, %d with a same-second group", len(all), len(grouped))
}

// pairwiseOrder is the ordering rule as it was before same-second groups were chained from the
// state before them: created, rank, then pair by pair along previous_attributes, then event ID.
// It is kept, word for word but for the exported names, only as BenchmarkOrder's baseline and to
// show what the anchored chain changes on a realistic stream.
func pairwiseOrder(facts []domain.Fact) []domain.Fact {
	byID := make(map[string]domain.Fact, len(facts))
	for _, f := range facts {
		byID[f.EventID] = f
	}
	out := make([]domain.Fact, 0, len(byID))
	for _, f := range byID {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Created != b.Created {
			return a.Created < b.Created
		}
		if ra, rb := domain.Rank(a.Type), domain.Rank(b.Type); ra != rb {
			return ra < rb
		}
		return a.EventID < b.EventID
	})
	for start := 0; start < len(out); {
		end := start + 1
		for end < len(out) && out[end].Created == out[start].Created && domain.Rank(out[end].Type) == domain.Rank(out[start].Type) {
			end++
		}
		if end-start > 1 {
			pairwiseChainOrder(out[start:end])
		}
		start = end
	}
	return out
}

func pairwiseChainOrder(group []domain.Fact) {
	rest := append([]domain.Fact(nil), group...)
	for i := range group {
		pick := 0
		for c := range rest {
			preceded := false
			for o := range rest {
				if o != c && pairwiseFollows(&rest[c], &rest[o]) && !pairwiseFollows(&rest[o], &rest[c]) {
					preceded = true
					break
				}
			}
			if !preceded {
				pick = c
				break
			}
		}
		group[i] = rest[pick]
		rest = append(rest[:pick], rest[pick+1:]...)
	}
}

func pairwiseFollows(b, a *domain.Fact) bool {
	if len(b.Prev) == 0 {
		return false
	}
	for k, prev := range b.Prev {
		if !pairwiseJSONEqual(prev, a.Field(k)) {
			return false
		}
	}
	return true
}

func pairwiseJSONEqual(a, b json.RawMessage) bool {
	if a == nil {
		a = json.RawMessage("null")
	}
	if b == nil {
		b = json.RawMessage("null")
	}
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
