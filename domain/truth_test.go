package domain_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/stripesim"
)

// The ledger's movement log of every subscription of a simulated account — the catalogue of
// every price and coupon shape, pauses, past_due spells, cancellations — is the simulator's
// truth, computed from its own objects, under every setting of every option.
func TestMovementsEqualTheSimulatorsTruth(t *testing.T) {
	t.Parallel()
	sim, byObject, subs := catalogue(t)
	for _, v := range []struct {
		set   domain.MRRSettings
		truth stripesim.TruthSettings
	}{
		{domain.MRRSettings{}, stripesim.TruthSettings{}},
		{domain.MRRSettings{Discounts: domain.DiscountsOneTime}, stripesim.TruthSettings{Discounts: "one_time"}},
		{domain.MRRSettings{Discounts: domain.DiscountsBoth}, stripesim.TruthSettings{Discounts: "both"}},
		{domain.MRRSettings{ChurnAt: domain.ChurnAtPeriodEnd}, stripesim.TruthSettings{ChurnAt: "period_end"}},
		{domain.MRRSettings{PastDueDays: 3}, stripesim.TruthSettings{PastDueDays: 3}},
		{domain.MRRSettings{Paused: domain.PausedZero}, stripesim.TruthSettings{Paused: "zero"}},
		{domain.MRRSettings{Discounts: domain.DiscountsBoth, ChurnAt: domain.ChurnAtPeriodEnd, PastDueDays: 5, Paused: domain.PausedZero},
			stripesim.TruthSettings{Discounts: "both", ChurnAt: "period_end", PastDueDays: 5, Paused: "zero"}},
	} {
		t.Run(v.set.String(), func(t *testing.T) {
			tr, err := sim.TruthMRR(v.truth)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{}
			for _, m := range tr.Movements {
				want[m.Subscription] = append(want[m.Subscription], fmt.Sprintf("%s %d→%d @%d %s %s %s", m.Kind, m.MRRBefore, m.MRRAfter, m.At.Unix(), m.Settings,
					m.SourceEvents, m.PeriodStart.UTC().Format(time.DateTime)))
			}
			bad, moves, unvalued := 0, 0, 0
			for _, id := range subs {
				row, h, cust := foldWithCustomer(t, byObject, id)
				var got []string
				for _, m := range h.Value(&row, cust, v.set) {
					ps := time.Time{}
					if m.PeriodStart != nil {
						ps = time.Unix(*m.PeriodStart, 0)
					}
					got = append(got, fmt.Sprintf("%s %d→%d @%d %s %s %s", m.Kind, m.MRRBefore, m.MRRAfter, m.At, m.Settings, m.SourceEvents, ps.UTC().Format(time.DateTime)))
				}
				moves += len(got)
				if row.MRR == nil {
					unvalued++
				}
				if !slices.Equal(got, want[id]) {
					if bad++; bad <= 3 {
						b, _ := json.Marshal(row.Discounts)
						t.Errorf("%s (attention %q, discounts %s):\nledger    %s\nsimulator %s", id, domain.Deref(row.Attention), b, strings.Join(got, "; "), strings.Join(want[id], "; "))
					}
				}
			}
			t.Logf("%d subscriptions (%d unvalued), %d movements", len(subs), unvalued, moves)
			if bad > 0 || moves < 200 {
				t.Fatalf("%d of %d subscriptions differ; %d movements", bad, len(subs), moves)
			}
		})
	}
}

// catalogue is the simulated account the movement tests read (seed 11, 300 customers): the
// simulator, every object's events decoded, and its subscriptions' IDs in order.
func catalogue(t *testing.T) (*stripesim.Sim, map[string][]domain.Fact, []string) {
	t.Helper()
	sim := stripesim.New(stripesim.Config{Seed: 11, Customers: 300, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	byObject := map[string][]domain.Fact{}
	var subs []string
	for _, ev := range sim.Events() {
		f, err := domain.DecodeFact(ev.Webhook)
		if err != nil {
			t.Fatal(err)
		}
		if len(byObject[ev.ObjectID]) == 0 && string(f.Field("object")) == `"subscription"` {
			subs = append(subs, ev.ObjectID)
		}
		byObject[ev.ObjectID] = append(byObject[ev.ObjectID], f)
	}
	slices.Sort(subs)
	return sim, byObject, subs
}

// foldWithCustomer folds subscription id of the catalogue with its customer's discount history.
func foldWithCustomer(t *testing.T, byObject map[string][]domain.Fact, id string) (domain.SubscriptionRow, domain.SubscriptionHistory, []domain.CustomerDiscount) {
	t.Helper()
	row, h, err := domain.FoldSubscriptionHistory(byObject[id])
	if err != nil {
		t.Fatal(err)
	}
	var cust []domain.CustomerDiscount
	if c, err := domain.FoldCustomer(byObject[row.Customer]); err == nil {
		cust = c.DiscountHistory
	}
	return row, h, cust
}
