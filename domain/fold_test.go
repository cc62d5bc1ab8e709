package domain_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/stripesim"
)

// account plays a simulated account and groups its events' facts by object.
type account struct {
	sim      *stripesim.Sim
	byObject map[string][]domain.Fact
	disputes map[string][]domain.DisputeRow // charge ID -> its disputes
	truth    map[string]map[string]json.RawMessage
}

func play(t *testing.T, seed uint64, customers int) *account {
	t.Helper()
	sim := stripesim.New(stripesim.Config{Seed: seed, Customers: customers, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	a := &account{sim: sim, byObject: map[string][]domain.Fact{}, disputes: map[string][]domain.DisputeRow{}, truth: map[string]map[string]json.RawMessage{}}
	disputeIDs := map[string]bool{}
	for _, ev := range sim.Events() {
		f, err := domain.DecodeFact(ev.Webhook)
		if err != nil {
			t.Fatal(err)
		}
		var id string
		_ = json.Unmarshal(f.Field("id"), &id)
		a.byObject[id] = append(a.byObject[id], f)
		if string(f.Field("object")) == `"dispute"` {
			disputeIDs[id] = true
		}
	}
	for id := range disputeIDs {
		d, err := domain.FoldDispute(a.byObject[id])
		if err != nil {
			t.Fatal(err)
		}
		a.disputes[d.Charge] = append(a.disputes[d.Charge], d)
	}
	for kind, raw := range sim.Truth().Objects {
		var objs []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &objs); err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			var id string
			_ = json.Unmarshal(o["id"], &id)
			if a.truth[kind] == nil {
				a.truth[kind] = map[string]json.RawMessage{}
			}
			b, _ := json.Marshal(o)
			a.truth[kind][id] = b
		}
	}
	return a
}

// shuffled returns the facts in a random order with some delivered twice, as webhooks arrive.
func shuffled(rng *rand.Rand, facts []domain.Fact) []domain.Fact {
	out := append([]domain.Fact(nil), facts...)
	for i := range facts {
		if rng.IntN(4) == 0 {
			out = append(out, facts[i])
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Every subscription's row, folded from its events in many random orders with duplicates, is the
// same row, and it matches what the simulated Stripe account says the subscription is — checked
// at every simulated day, so the state right after a same-second burst is checked too, not only
// the final one.
func TestSubscriptionsAreOrderIndependentAndTrue(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sim := stripesim.New(stripesim.Config{Seed: 17, Customers: 150, End: end})
	rng := rand.New(rand.NewPCG(1, 2))
	byObject := map[string][]domain.Fact{}
	seen := 0
	checked := 0
	for at := sim.Config().Start; !at.After(end); at = at.Add(24 * time.Hour) {
		sim.Run(at)
		events := sim.Events()
		for _, ev := range events[seen:] {
			f, err := domain.DecodeFact(ev.Webhook)
			if err != nil {
				t.Fatal(err)
			}
			byObject[ev.ObjectID] = append(byObject[ev.ObjectID], f)
		}
		seen = len(events)
		var truth []json.RawMessage
		if err := json.Unmarshal(sim.Truth().Objects["subscriptions"], &truth); err != nil {
			t.Fatal(err)
		}
		for _, raw := range truth {
			var want struct {
				ID                string                     `json:"id"`
				Status            string                     `json:"status"`
				CurrentPeriodEnd  int64                      `json:"current_period_end"`
				CancelAtPeriodEnd bool                       `json:"cancel_at_period_end"`
				EndedAt           *int64                     `json:"ended_at"`
				PauseCollection   *struct{ Behavior string } `json:"pause_collection"`
				Items             struct {
					Data []struct {
						Quantity int64
						Price    struct{ ID string }
					}
				}
			}
			_ = json.Unmarshal(raw, &want)
			row, err := domain.FoldSubscription(byObject[want.ID])
			if err != nil {
				t.Fatal(err)
			}
			if row.Status != want.Status || *row.CurrentPeriodEnd != want.CurrentPeriodEnd || row.CancelAtPeriodEnd != want.CancelAtPeriodEnd ||
				(want.EndedAt == nil) != (row.EndedAt == nil) || (want.PauseCollection == nil) != (row.PauseBehavior == nil) ||
				row.Items[0].Price != want.Items.Data[0].Price.ID || row.Items[0].Quantity != want.Items.Data[0].Quantity {
				t.Fatalf("%s on %s: row %+v, Stripe says %s", want.ID, at.Format(time.DateOnly), row, raw)
			}
			checked++
		}
	}
	if checked < 5000 {
		t.Fatalf("only %d subscription-days checked", checked)
	}
	for id, facts := range byObject {
		if len(facts) == 0 || string(facts[0].Field("object")) != `"subscription"` {
			continue
		}
		want, err := domain.FoldSubscription(facts)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			got, err := domain.FoldSubscription(shuffled(rng, facts))
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: folding another order gave another row:\n%+v\n%+v", id, got, want)
			}
		}
	}
}

// Charges fold their refunds and disputes and match the account.
func TestChargesFoldRefundsAndDisputes(t *testing.T) {
	t.Parallel()
	a := play(t, 23, 200)
	rng := rand.New(rand.NewPCG(3, 4))
	refunded, disputed := 0, 0
	disputeStatus := map[string]string{}
	for _, raw := range a.truth["disputes"] {
		var d struct{ Charge, Status string }
		_ = json.Unmarshal(raw, &d)
		disputeStatus[d.Charge] = d.Status
	}
	for id, truthRaw := range a.truth["charges"] {
		want, err := domain.FoldCharge(a.byObject[id], a.disputes[id])
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			disputes := slices.Clone(a.disputes[id])
			rng.Shuffle(len(disputes), func(i, j int) { disputes[i], disputes[j] = disputes[j], disputes[i] })
			got, _ := domain.FoldCharge(shuffled(rng, a.byObject[id]), disputes)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: order changed the row", id)
			}
		}
		var truth struct {
			AmountRefunded int64 `json:"amount_refunded"`
			Refunded       bool
			Status         string
		}
		_ = json.Unmarshal(truthRaw, &truth)
		if want.AmountRefunded != truth.AmountRefunded || want.Refunded != truth.Refunded || want.Status != truth.Status ||
			domain.Deref(want.DisputeStatus) != disputeStatus[id] {
			t.Fatalf("%s: row %+v, Stripe says %s, dispute %q", id, want, truthRaw, disputeStatus[id])
		}
		if want.AmountRefunded > 0 {
			refunded++
		}
		if want.DisputeStatus != nil {
			disputed++
		}
	}
	if refunded == 0 || disputed == 0 {
		t.Fatalf("%d refunded and %d disputed charges: the account should have both", refunded, disputed)
	}
}

func fact(id, typ string, created int64, object string, prev string) domain.Fact {
	raw := fmt.Sprintf(`{"id":%q,"type":%q,"created":%d,"api_version":"2023-10-16","data":{"object":%s`, id, typ, created, object)
	if prev != "" {
		raw += `,"previous_attributes":` + prev
	}
	f, err := domain.DecodeFact([]byte(raw + "}}"))
	if err != nil {
		panic(err)
	}
	return f
}

const subTmpl = `{"id":"sub_1","object":"subscription","customer":"cus_1","status":%q,"currency":"usd","current_period_start":%d,"current_period_end":%d,"cancel_at_period_end":false,"items":{"data":[{"id":"si_1","quantity":1,"price":{"id":"price_1","product":"prod_1","unit_amount":1200,"recurring":{"interval":"year","interval_count":1}}}]}}`

func TestOrderingRule(t *testing.T) {
	t.Parallel()
	sub := func(status string, start, end int64) string { return fmt.Sprintf(subTmpl, status, start, end) }
	cases := []struct {
		name   string
		facts  []domain.Fact
		status string
		period int64
	}{
		{
			// A renewal and a failed payment in one second: both are updates; the second says it
			// changed status from active, which is what the first left.
			name: "same-second updates follow the previous_attributes chain",
			facts: []domain.Fact{
				fact("evt_b", "customer.subscription.updated", 100, sub("active", 100, 200), `{"current_period_start":0,"current_period_end":100}`),
				fact("evt_a", "customer.subscription.updated", 100, sub("past_due", 100, 200), `{"status":"active"}`),
				fact("evt_c", "customer.subscription.created", 0, sub("active", 0, 100), ""),
			},
			status: "past_due", period: 200,
		},
		{
			name: "created ranks before updated in the same second",
			facts: []domain.Fact{
				fact("evt_1", "customer.subscription.updated", 50, sub("past_due", 0, 100), `{"status":"active"}`),
				fact("evt_2", "customer.subscription.created", 50, sub("active", 0, 100), ""),
			},
			status: "past_due", period: 100,
		},
		{
			name: "a late update does not undo a deletion",
			facts: []domain.Fact{
				fact("evt_del", "customer.subscription.deleted", 300, sub("canceled", 100, 200), ""),
				fact("evt_upd", "customer.subscription.updated", 301, sub("active", 100, 200), `{"cancel_at_period_end":true}`),
			},
			status: "canceled", period: 200,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range permutations(tc.facts) {
				row, err := domain.FoldSubscription(order)
				if err != nil || row.Status != tc.status || *row.CurrentPeriodEnd != tc.period {
					t.Fatalf("got %+v %v", row, err)
				}
			}
		})
	}
}

func permutations(fs []domain.Fact) [][]domain.Fact {
	if len(fs) <= 1 {
		return [][]domain.Fact{fs}
	}
	var out [][]domain.Fact
	for i := range fs {
		rest := append(append([]domain.Fact(nil), fs[:i]...), fs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]domain.Fact{fs[i]}, p...))
		}
	}
	return out
}

func TestAnotherAPIVersion(t *testing.T) {
	t.Parallel()
	// 2025-03-31 moved the billing period to the items: it is mapped back.
	moved := fact("evt_1", "customer.subscription.updated", 10, `{"id":"sub_1","object":"subscription","status":"active","currency":"usd",
		"items":{"data":[{"id":"si_1","quantity":2,"current_period_start":5,"current_period_end":500,"price":{"id":"p","unit_amount":1000,"recurring":{"interval":"month","interval_count":1}}}]}}`, "")
	moved.APIVersion = "2025-03-31.basil"
	row, err := domain.FoldSubscription([]domain.Fact{moved})
	if err != nil || row.CurrentPeriodEnd == nil || *row.CurrentPeriodEnd != 500 || row.Attention != nil || row.MRR == nil || *row.MRR != 2000 {
		t.Fatalf("%+v %v", row, err)
	}
	// A mixed-interval subscription's items keep their own periods; the subscription's is the
	// earliest start and the latest end of theirs.
	mixed := fact("evt_3", "customer.subscription.updated", 10, `{"id":"sub_1","object":"subscription","status":"active","currency":"usd",
		"items":{"data":[{"id":"si_1","quantity":1,"current_period_start":100,"current_period_end":400,"price":{"id":"p","unit_amount":1000,"recurring":{"interval":"month","interval_count":1}}},
		{"id":"si_2","quantity":1,"current_period_start":50,"current_period_end":9000,"price":{"id":"q","unit_amount":12000,"recurring":{"interval":"year","interval_count":1}}}]}}`, "")
	mixed.APIVersion = "2025-09-30.clover"
	row, err = domain.FoldSubscription([]domain.Fact{mixed})
	if err != nil || row.CurrentPeriodStart == nil || *row.CurrentPeriodStart != 50 || row.CurrentPeriodEnd == nil || *row.CurrentPeriodEnd != 9000 ||
		*row.Items[0].CurrentPeriodEnd != 400 || *row.Items[1].CurrentPeriodStart != 50 || row.MRR == nil || *row.MRR != 2000 {
		t.Fatalf("%+v %v", row, err)
	}
	// A shape the reducer does not know is flagged, never read as zero.
	unknown := fact("evt_2", "customer.subscription.updated", 10, `{"id":"sub_1","object":"subscription","status":"active","items":{"data":[]}}`, "")
	unknown.APIVersion = "2099-01-01.future"
	row, _ = domain.FoldSubscription([]domain.Fact{unknown})
	if row.CurrentPeriodEnd != nil || row.Attention == nil {
		t.Fatalf("%+v", row)
	}
}

func ptr[T any](v T) *T { return &v }
