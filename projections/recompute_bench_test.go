package projections_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
)

// BenchmarkMRRRecompute measures what a change of the MRR settings costs: Recompute of every
// subscription's movement log, figure and history from the kept inputs, at 100,000
// subscriptions and at 20,000 (the second size), beside a full replay of the same log under the
// new settings (the baseline: what a settings change would cost without the inputs). The
// subscriptions carry per-unit, decimal, package, volume and graduated prices, several items
// of mixed intervals, and percent, decimal-percent and amount-off coupons that are once,
// repeating and forever, over four events each (created, a quantity change, a past_due spell,
// and for a fifth a cancellation).
//
// subscriptions=N changes all four settings at once, back and forth, which every subscription
// is sensitive to (each has a past_due spell): the worst case, where every subscription is
// valued again and every log written whole. one-setting=S/subscriptions=100k changes S alone,
// which acts on the share of subscriptions the name says: the recompute values and writes only
// those (domain.Sensitivity), and "revalued" reports the share.
func BenchmarkMRRRecompute(b *testing.B) {
	every := [2]domain.MRRSettings{{Discounts: domain.DiscountsBoth, ChurnAt: domain.ChurnAtPeriodEnd, PastDueDays: 7, Paused: domain.PausedZero}, {}}
	for _, n := range []int{100_000, 20_000} {
		b.Run(fmt.Sprintf("subscriptions=%dk", n/1000), func(b *testing.B) {
			pool := priceListDB(b, n)
			benchRecompute(b, pool, every)
			// The baseline: a replay under other settings, once per run.
			ctx := context.Background()
			st, err := projections.Rebuild(ctx, pool, projections.Config{MRR: every[0]})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Rows["subscriptions"])/st.Took.Seconds(), "replay-subs/s")
			if _, err := projections.Recompute(ctx, pool, projections.RecomputeConfig{}); err != nil {
				b.Fatal(err)
			}
		})
	}
	for _, c := range []struct {
		name string
		set  domain.MRRSettings
	}{
		{"churn_at(canceled=20%)", domain.MRRSettings{ChurnAt: domain.ChurnAtPeriodEnd}},
		{"discounts(once-coupon=17%)", domain.MRRSettings{Discounts: domain.DiscountsBoth}},
		{"paused(paused=0%)", domain.MRRSettings{Paused: domain.PausedZero}},
	} {
		b.Run("one-setting="+c.name+"/subscriptions=100k", func(b *testing.B) {
			benchRecompute(b, priceListDB(b, 100_000), [2]domain.MRRSettings{c.set, {}})
		})
	}
}

// priceListDB is the cached database of n subscriptions over appendPriceList, under the
// default settings.
func priceListDB(b *testing.B, n int) *pgxpool.Pool {
	// The cache is per declarations: a database built from others has other tables.
	return testkit.Cached(b, fmt.Sprintf("mrr_recompute_%d_%s", n, projections.Fingerprint()[3:11]), func(ctx context.Context, pool *pgxpool.Pool) error {
		if err := appendPriceList(ctx, pool, n); err != nil {
			return err
		}
		_, err := projections.Rebuild(ctx, pool, projections.Config{})
		return err
	})
}

// benchRecompute recomputes b.N times, alternating between the two settings (so every run
// recomputes; an odd b.N is brought back to the second), and reports subscriptions/s, the
// movements written and the share of subscriptions valued again.
func benchRecompute(b *testing.B, pool *pgxpool.Pool, settings [2]domain.MRRSettings) {
	ctx := context.Background()
	var subs, revalued, moves int
	var took float64
	b.ResetTimer()
	for i := range b.N {
		st, err := projections.Recompute(ctx, pool, projections.RecomputeConfig{MRR: settings[i%2]})
		if err != nil {
			b.Fatal(err)
		}
		subs, revalued, moves, took = subs+st.Subscriptions, revalued+st.Revalued, moves+st.Movements, took+st.Took.Seconds()
		b.Logf("%d subscriptions (%d revalued), %d versions in %s: %s", st.Subscriptions, st.Revalued, st.Versions, st.Took, projections.PhaseList(st.Phases))
	}
	b.StopTimer()
	b.ReportMetric(float64(subs)/took, "subs/s")
	b.ReportMetric(float64(moves)/float64(b.N), "movements")
	b.ReportMetric(100*float64(revalued)/float64(subs), "revalued-%")
	if b.N%2 == 1 {
		if _, err := projections.Recompute(ctx, pool, projections.RecomputeConfig{MRR: settings[1]}); err != nil {
			b.Fatal(err)
		}
	}
}

// appendPriceList appends n subscriptions' events over a price list of every shape.
func appendPriceList(ctx context.Context, pool *pgxpool.Pool, n int) error {
	store := eventstore.New(pool)
	prices := []string{
		`{"id":"price_unit","product":"prod_a","currency":"usd","billing_scheme":"per_unit","unit_amount":2900,"unit_amount_decimal":"2900","recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}`,
		`{"id":"price_dec","product":"prod_b","currency":"usd","billing_scheme":"per_unit","unit_amount":null,"unit_amount_decimal":"12.345","recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}`,
		`{"id":"price_pkg","product":"prod_c","currency":"usd","billing_scheme":"per_unit","unit_amount":5000,"transform_quantity":{"divide_by":10,"round":"up"},"recurring":{"interval":"year","interval_count":1,"usage_type":"licensed"}}`,
		`{"id":"price_vol","product":"prod_d","currency":"usd","billing_scheme":"tiered","tiers_mode":"volume","unit_amount":null,"tiers":[{"up_to":10,"unit_amount":1000,"flat_amount":null},{"up_to":50,"unit_amount":800,"flat_amount":500},{"up_to":null,"unit_amount_decimal":"650.5","flat_amount":null}],"recurring":{"interval":"month","interval_count":3,"usage_type":"licensed"}}`,
		`{"id":"price_grad","product":"prod_e","currency":"usd","billing_scheme":"tiered","tiers_mode":"graduated","unit_amount":null,"tiers":[{"up_to":5,"unit_amount":0,"flat_amount":1000},{"up_to":20,"unit_amount":300,"flat_amount":null},{"up_to":null,"unit_amount":200,"flat_amount":null}],"recurring":{"interval":"week","interval_count":1,"usage_type":"licensed"}}`,
		`{"id":"price_meter","product":"prod_f","currency":"usd","billing_scheme":"per_unit","unit_amount":5,"recurring":{"interval":"month","interval_count":1,"usage_type":"metered"}}`,
	}
	coupons := []string{
		`{"id":"co_forever","duration":"forever","percent_off":12.5,"amount_off":null,"currency":null}`,
		`{"id":"co_rep","duration":"repeating","duration_in_months":3,"percent_off":25,"amount_off":null,"currency":null}`,
		`{"id":"co_once","duration":"once","percent_off":null,"amount_off":1500,"currency":"usd"}`,
		`{"id":"co_amt","duration":"forever","percent_off":null,"amount_off":700,"currency":"usd"}`,
	}
	const t0, day = int64(1_735_689_600), int64(86400)
	batch := make([]domain.Event, 0, 2000)
	flush := func() error {
		if _, err := store.Append(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	for i := range n {
		start := t0 + int64(i%300)*day
		sub := fmt.Sprintf("sub_b%07d", i)
		items := func(q int) string {
			a, c := prices[i%len(prices)], prices[(i/7+2)%len(prices)]
			return fmt.Sprintf(`{"object":"list","data":[{"id":"si_%d_a","quantity":%d,"price":%s},{"id":"si_%d_b","quantity":%d,"price":%s}]}`, i, q, a, i, 1+i%3, c)
		}
		discount := "null"
		if i%3 != 0 {
			discount = fmt.Sprintf(`{"id":"di_%d","object":"discount","start":%d,"end":%d,"coupon":%s,"promotion_code":null}`, i, start, start+90*day, coupons[i%len(coupons)])
		}
		obj := func(status string, q int, periodStart int64, disc string) string {
			return fmt.Sprintf(`{"id":%q,"object":"subscription","customer":"cus_b%07d","status":%q,"currency":"usd","created":%d,"current_period_start":%d,"current_period_end":%d,"items":%s,"discount":%s,"pause_collection":null}`,
				sub, i, status, start, periodStart, periodStart+30*day, items(q), disc)
		}
		evs := []struct {
			typ    string
			at     int64
			object string
		}{
			{"customer.subscription.created", start, obj("active", 3+i%40, start, discount)},
			{"customer.subscription.updated", start + 35*day, obj("active", 8+i%60, start+30*day, discount)},
			{"customer.subscription.updated", start + 61*day, obj("past_due", 8+i%60, start+60*day, discount)},
			{"customer.subscription.updated", start + 70*day, obj(map[bool]string{true: "canceled", false: "active"}[i%5 == 0], 8+i%60, start+60*day, discount)},
		}
		for k, ev := range evs {
			raw := fmt.Sprintf(`{"id":"evt_b%07d_%d","object":"event","type":%q,"created":%d,"api_version":"2023-10-16","livemode":false,"data":{"object":%s}}`, i, k, ev.typ, ev.at, ev.object)
			e, err := domain.NewEvent([]byte(raw), domain.SourceImport, "")
			if err != nil {
				return err
			}
			batch = append(batch, e)
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}
