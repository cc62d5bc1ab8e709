package projections_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
)

// couponEvent is a coupon.* event of coupon id in a mode and account ("" the platform).
func couponEvent(eventID, typ, id string, livemode bool, account, terms string, created int64) []byte {
	acct := ""
	if account != "" {
		acct = fmt.Sprintf(`"account":%q,`, account)
	}
	return fmt.Appendf(nil, `{"id":%q,"object":"event",%s"api_version":"2025-09-30.clover","created":%d,"livemode":%t,"type":%q,`+
		`"data":{"object":{"id":%q,"object":"coupon","created":%d,"livemode":%t,"name":null,"metadata":{},"valid":true,%s}}}`,
		eventID, acct, created, livemode, typ, id, created, livemode, terms)
}

// cloverSubscription is a customer.subscription.created at clover, 100.00 a month, whose one
// discount names coupon by ID (discount.source.coupon), as clover renders it.
func cloverSubscription(eventID, sub, customer, coupon string, livemode bool, account string, created int64) []byte {
	acct := ""
	if account != "" {
		acct = fmt.Sprintf(`"account":%q,`, account)
	}
	return fmt.Appendf(nil, `{"id":%q,"object":"event",%s"api_version":"2025-09-30.clover","created":%d,"livemode":%t,"type":"customer.subscription.created",`+
		`"data":{"object":{"id":%q,"object":"subscription","customer":%q,"status":"active","currency":"usd","created":%d,"livemode":%t,"metadata":{},`+
		`"cancel_at_period_end":false,"cancel_at":null,"canceled_at":null,"ended_at":null,"trial_start":null,"trial_end":null,"pause_collection":null,`+
		`"discounts":[{"id":"di_%s","object":"discount","source":{"type":"coupon","coupon":%q},"start":%d,"end":null,"promotion_code":null}],`+
		`"items":{"object":"list","data":[{"id":"si_%s","object":"subscription_item","quantity":1,"current_period_start":%d,"current_period_end":%d,"discounts":[],`+
		`"price":{"id":"price_m","object":"price","currency":"usd","unit_amount":10000,"unit_amount_decimal":"10000","billing_scheme":"per_unit",`+
		`"recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"},"tiers_mode":null,"transform_quantity":null}}]}}}}`,
		eventID, acct, created, livemode, sub, customer, created, livemode, sub, coupon, created, sub, created, created+30*86400)
}

// One coupon ID in three scopes (test mode, live mode, a connected account), each with its own
// terms, and a clover subscription in each naming it: each is valued with its own scope's coupon,
// though the coupons arrive after the subscriptions (live, the late coupon values them again), and
// replay gives the same rows. A subscription whose coupon never arrives stays unvalued, saying
// which coupon; its arrival values it.
func TestCouponsValueDiscountsNamedByIDInTheirOwnScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testkit.New(t)
	r := startRunner(t, db.Pool, projections.RunnerConfig{})
	const at = 1780000000
	appendRaw(t, db.Pool,
		cloverSubscription("evt_s1", "sub_test", "cus_1", "SAME", false, "", at),
		cloverSubscription("evt_s2", "sub_live", "cus_2", "SAME", true, "", at),
		cloverSubscription("evt_s3", "sub_conn", "cus_3", "SAME", false, "acct_1", at),
		cloverSubscription("evt_s4", "sub_late", "cus_4", "LATER", false, "", at))
	caughtUp(t, r, db.Pool)
	appendRaw(t, db.Pool,
		couponEvent("evt_c1", "coupon.created", "SAME", false, "", `"duration":"forever","duration_in_months":null,"percent_off":12.5,"amount_off":null,"currency":null`, at+10),
		couponEvent("evt_c2", "coupon.created", "SAME", true, "", `"duration":"forever","duration_in_months":null,"percent_off":null,"amount_off":1000,"currency":"usd"`, at+10),
		couponEvent("evt_c3", "coupon.created", "SAME", false, "acct_1", `"duration":"forever","duration_in_months":null,"percent_off":100,"amount_off":null,"currency":null`, at+10))
	caughtUp(t, r, db.Pool)

	mrr := func() map[string]string {
		t.Helper()
		rows, err := db.Pool.Query(ctx, `SELECT id, coalesce(mrr::text, 'NULL: ' || attention) FROM ledger.subscriptions ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for rows.Next() {
			var id, v string
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			out[id] = v
		}
		return out
	}
	want := map[string]string{"sub_test": "8750", "sub_live": "9000", "sub_conn": "0",
		"sub_late": `NULL: MRR not valued: discount di_sub_late: its coupon "LATER" is not expanded`}
	check := func(when string, want map[string]string) {
		t.Helper()
		got := mrr()
		for id, w := range want {
			if got[id] != w {
				t.Errorf("%s: %s mrr %q, want %q", when, id, got[id], w)
			}
		}
	}
	check("live", want)
	var scopes int
	if err := db.Pool.QueryRow(ctx, `SELECT jsonb_array_length(scopes) FROM ledger.coupons WHERE id = 'SAME'`).Scan(&scopes); err != nil || scopes != 3 {
		t.Fatalf("SAME has %d scopes (%v), want 3", scopes, err)
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	check("replayed", want)

	appendRaw(t, db.Pool, couponEvent("evt_c4", "coupon.created", "LATER", false, "", `"duration":"forever","duration_in_months":null,"percent_off":50,"amount_off":null,"currency":null`, at+20))
	caughtUp(t, r, db.Pool)
	want["sub_late"] = "5000"
	check("after LATER came", want)
	var moves string
	if err := db.Pool.QueryRow(ctx, `SELECT string_agg(kind || ' ' || amount, ', ' ORDER BY seq) FROM ledger.subscription_movements WHERE subscription = 'sub_late'`).Scan(&moves); err != nil || moves != "new 5000" {
		t.Fatalf("sub_late's movements %q (%v), want new 5000", moves, err)
	}

	// A settings change recomputes from the inputs the coupons valued: with one-time discounts
	// only, these forever coupons reduce nothing.
	if _, err := projections.Recompute(ctx, db.Pool, projections.RecomputeConfig{MRR: domain.MRRSettings{Discounts: domain.DiscountsOneTime}}); err != nil {
		t.Fatal(err)
	}
	check("recomputed with one-time discounts", map[string]string{"sub_test": "10000", "sub_live": "10000", "sub_conn": "10000", "sub_late": "10000"})
}
