package domain_test

import (
	"testing"

	"github.com/stripeledger/ledger/domain"
)

// BenchmarkMRRValue is the valuation alone (no database): every movement log and figure of
// 1,000 subscriptions of tiered, volume, package, decimal and per-unit prices with stacked
// percent and amount-off coupons, four events each, under a non-default setting of every
// option. Recompute's CPU part: its figure beside BenchmarkMRRRecompute's says how much of a
// recompute is the database's.
func BenchmarkMRRValue(b *testing.B) {
	monthly := perUnit(2900, "month", 1)
	shapes := []map[string]any{monthly, perUnit("12.345", "month", 1), tiered("volume", tiers3), tiered("graduated", tiers3),
		with(perUnit(5000, "year", 1), "transform_quantity", map[string]any{"divide_by": 10, "round": "up"})}
	var hist []domain.SubscriptionHistory
	for i := range 1000 {
		at := func(d int64) int64 { return 1000 + int64(i)*days + d*days }
		disc := []any{discount("di_r", coupon("repeating", "percent_off", 12.5), "end", at(90)), discount("di_a", coupon("forever", "amount_off", 700, "currency", "usd"))}
		obj := func(status string, q int64) string {
			return subObject(map[string]any{"status": status, "discounts": disc,
				"items": items(item(q, shapes[i%len(shapes)]), item(1+int64(i%3), shapes[(i/5)%len(shapes)]))})
		}
		facts := []domain.Fact{
			fact("evt_1", "customer.subscription.created", at(0), obj("active", 3+int64(i%40)), ""),
			fact("evt_2", "customer.subscription.updated", at(35), obj("active", 8+int64(i%60)), ""),
			fact("evt_3", "customer.subscription.updated", at(61), obj("past_due", 8+int64(i%60)), ""),
			fact("evt_4", "customer.subscription.updated", at(70), obj(map[bool]string{true: "canceled", false: "active"}[i%5 == 0], 8+int64(i%60)), ""),
		}
		_, h, err := domain.FoldSubscriptionHistory(facts)
		if err != nil {
			b.Fatal(err)
		}
		hist = append(hist, h)
	}
	set := domain.MRRSettings{Discounts: domain.DiscountsBoth, ChurnAt: domain.ChurnAtPeriodEnd, PastDueDays: 7, Paused: domain.PausedZero}
	moves := 0
	b.ResetTimer()
	for range b.N {
		for k := range hist {
			var row domain.SubscriptionRow
			moves += len(hist[k].Value(&row, nil, set))
		}
	}
	b.ReportMetric(float64(b.N*len(hist))/b.Elapsed().Seconds(), "subs/s")
	b.ReportMetric(float64(moves)/float64(b.N*len(hist)), "movements/sub")
}
