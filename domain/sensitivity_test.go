package domain_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stripeledger/ledger/domain"
)

// settingsGrid is every combination of the four settings that decide the movement log, with
// three past-due spans.
func settingsGrid() []domain.MRRSettings {
	var out []domain.MRRSettings
	for _, d := range []string{domain.DiscountsRecurring, domain.DiscountsOneTime, domain.DiscountsBoth} {
		for _, c := range []string{domain.ChurnAtCancellation, domain.ChurnAtPeriodEnd} {
			for _, p := range []int{0, 3, 7} {
				for _, z := range []string{domain.PausedCount, domain.PausedZero} {
					out = append(out, domain.MRRSettings{Discounts: d, ChurnAt: c, PastDueDays: p, Paused: z})
				}
			}
		}
	}
	return out
}

// valuation is everything Value gives but the settings' name on each movement.
func valuation(h *domain.SubscriptionHistory, customer []domain.CustomerDiscount, set domain.MRRSettings) string {
	row := domain.SubscriptionRow{}
	var out []string
	for _, m := range h.Value(&row, customer, set) {
		m.Settings = ""
		out = append(out, fmt.Sprintf("%+v %v", m, pointee(m.PeriodStart)))
	}
	return fmt.Sprintf("%v %v %v", pointee(row.MRR), pointee(row.Attention), out)
}

func pointee[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestSensitivityLeavesOutOnlyWhatValuesAlike: over the simulator's catalogue (every price
// shape, coupon duration, pause, past_due spell and cancellation it makes), for every pair of
// settings, a subscription whose sensitivity (with its customer's) does not meet what the pair
// differs in values the same under both: what lets a recompute skip it. For each bit but
// discount_other (no Stripe coupon has another duration), some subscription must value
// differently under a pair where that bit alone is met, or the check proves nothing.
func TestSensitivityLeavesOutOnlyWhatValuesAlike(t *testing.T) {
	t.Parallel()
	_, byObject, subs := catalogue(t)
	grid := settingsGrid()
	skipped, differ := 0, map[domain.Sensitivity]int{}
	for _, id := range subs {
		_, h, cust := foldWithCustomer(t, byObject, id)
		sens := h.Sensitivity() | domain.CustomerSensitivity(cust)
		vals := make([]string, len(grid))
		for i, set := range grid {
			vals[i] = valuation(&h, cust, set)
		}
		for i := range grid {
			for j := range i {
				d := grid[i].Differs(grid[j])
				if sens&d == 0 {
					skipped++
					if vals[i] != vals[j] {
						t.Errorf("%s (sensitive to %v) values differently under %s and %s, which differ in %v", id, sens.Names(), grid[i], grid[j], d.Names())
					}
				} else if vals[i] != vals[j] {
					differ[sens&d]++ // what made them differ, when it is one bit
				}
			}
		}
	}
	t.Logf("%d subscriptions, %d pairs left out", len(subs), skipped)
	for _, n := range domain.SensitivityNames[:5] {
		if differ[n.Bit] == 0 {
			t.Errorf("no subscription values differently under two settings where only %s is at play: the catalogue does not exercise it", n.Name)
		}
	}
	if skipped == 0 {
		t.Error("no pair was left out")
	}
}

func TestDiffers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b domain.MRRSettings
		want []string
	}{
		{domain.MRRSettings{}, domain.MRRSettings{Discounts: domain.DiscountsRecurring, ChurnAt: domain.ChurnAtCancellation}, []string{}},
		{domain.MRRSettings{}, domain.MRRSettings{FXRateDate: domain.FXReportDate, ReportingCurrency: "eur"}, []string{}},
		{domain.MRRSettings{}, domain.MRRSettings{PastDueDays: 3}, []string{"past_due"}},
		{domain.MRRSettings{PastDueDays: 3}, domain.MRRSettings{PastDueDays: 7}, []string{"past_due"}},
		{domain.MRRSettings{}, domain.MRRSettings{ChurnAt: domain.ChurnAtPeriodEnd}, []string{"canceled"}},
		{domain.MRRSettings{}, domain.MRRSettings{Paused: domain.PausedZero}, []string{"paused"}},
		{domain.MRRSettings{}, domain.MRRSettings{Discounts: domain.DiscountsBoth}, []string{"discount_once", "discount_other"}},
		{domain.MRRSettings{}, domain.MRRSettings{Discounts: domain.DiscountsOneTime}, []string{"discount_once", "discount_recurring"}},
		{domain.MRRSettings{Discounts: domain.DiscountsOneTime}, domain.MRRSettings{Discounts: domain.DiscountsBoth}, []string{"discount_recurring", "discount_other"}},
	} {
		if got := c.a.Differs(c.b).Names(); !slices.Equal(got, c.want) {
			t.Errorf("%s vs %s: %v, want %v", c.a, c.b, got, c.want)
		}
		if got := c.b.Differs(c.a).Names(); !slices.Equal(got, c.want) {
			t.Errorf("%s vs %s: %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

// An event ordered after a deletion (a late echo) is left out of the current inputs, but a
// version known before the deletion arrived folded it: what the settings can act on in it
// counts in the subscription's sensitivity.
func TestSensitivityCountsLateEchoes(t *testing.T) {
	t.Parallel()
	monthly := items(item(1, perUnit(10000, "month", 1)))
	ev := func(id, typ string, at int64, fields map[string]any) domain.Fact {
		return fact(id, typ, at, subObject(with(map[string]any{"items": monthly}, flatten(fields)...)), "")
	}
	facts := []domain.Fact{
		ev("evt_1", "customer.subscription.created", 1000, map[string]any{"status": "active"}),
		ev("evt_2", "customer.subscription.deleted", 2000, map[string]any{"status": "canceled"}),
		ev("evt_3", "customer.subscription.updated", 3000, map[string]any{"status": "past_due", "pause_collection": map[string]any{"behavior": "void"}}),
	}
	_, h, err := domain.FoldSubscriptionHistory(facts)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Sensitivity().Names(); !slices.Equal(got, []string{"past_due", "canceled", "paused"}) {
		t.Fatalf("sensitive to %v, want the echo's past_due and pause too", got)
	}
	_, before, err := domain.FoldSubscriptionHistory([]domain.Fact{facts[0], facts[2]})
	if err != nil {
		t.Fatal(err)
	}
	if s := before.Sensitivity(); s&^h.Sensitivity() != 0 {
		t.Fatalf("the version before the deletion is sensitive to %v, the history only to %v", s.Names(), h.Sensitivity().Names())
	}
}
