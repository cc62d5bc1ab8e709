package domain

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stripeledger/ledger/stripesim"
)

// foldAll is every reducer's answer for facts of one object, as comparable text: the row (or
// the error) of each reducer that reads that kind of object.
func foldAll(facts []Fact) string {
	var out []any
	add := func(row any, err error) {
		if err != nil {
			out = append(out, "error: "+err.Error())
			return
		}
		out = append(out, row)
	}
	add(FoldCustomer(facts))
	add(FoldCheckoutSession(facts))
	add(FoldSubscription(facts))
	add(Movements(facts))
	add(FoldInvoice(facts))
	add(FoldCharge(facts, nil))
	add(FoldRefund(facts))
	add(FoldDispute(facts))
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Sprint(out)
	}
	return string(b)
}

// withDecoders folds facts with decodeInto and then with encoding/json alone.
func withDecoders(facts []Fact) (fast, reference string) {
	fresh := func() []Fact { // Field caches a decode: each run starts from the event as read
		cp := make([]Fact, len(facts))
		for i, f := range facts {
			f.fields = nil
			cp[i] = f
		}
		return cp
	}
	fast = foldAll(fresh())
	fastDecode = false
	defer func() { fastDecode = true }()
	return fast, foldAll(fresh())
}

// Every object of a simulated account folds to the same rows, and every one of its events too,
// whichever decoder reads data.object.
func TestDecodersAgreeOnTheSimulator(t *testing.T) {
	sim := stripesim.New(stripesim.Config{Seed: 5, Customers: 150, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	byObject := map[string][]Fact{}
	for _, ev := range sim.Events() {
		f, err := DecodeFact(ev.Webhook)
		if err != nil {
			t.Fatal(err)
		}
		byObject[ev.ObjectID] = append(byObject[ev.ObjectID], f)
		if fast, ref := withDecoders([]Fact{f}); fast != ref {
			t.Fatalf("event %s:\ndecodeInto    %s\nencoding/json %s", f.EventID, fast, ref)
		}
	}
	subscriptions := 0
	for id, facts := range byObject {
		if fast, ref := withDecoders(facts); fast != ref {
			t.Fatalf("object %s:\ndecodeInto    %s\nencoding/json %s", id, fast, ref)
		}
		// FoldSubscriptionHistory, valued under the default settings, is FoldSubscription and
		// Movements in one pass.
		row, h, err := FoldSubscriptionHistory(facts)
		var moves []Movement
		if err == nil {
			moves = h.Value(&row, nil, MRRSettings{})
		}
		wantRow, wantErr := FoldSubscription(facts)
		wantMoves, _ := Movements(facts)
		if wantErr != nil {
			wantRow, wantMoves = SubscriptionRow{}, nil
		}
		if err != nil {
			err = wantErr // the messages differ (the history names the event); that both fail is the point
		}
		got, _ := json.Marshal([]any{row, moves, fmt.Sprint(err)})
		want, _ := json.Marshal([]any{wantRow, wantMoves, fmt.Sprint(wantErr)})
		if string(got) != string(want) {
			t.Fatalf("object %s: FoldSubscriptionHistory %s, apart %s", id, got, want)
		}
		if err == nil && len(moves) > 1 {
			subscriptions++
		}
	}
	if subscriptions < 20 {
		t.Fatalf("only %d subscriptions with more than one movement", subscriptions)
	}
	if len(byObject) < 500 {
		t.Fatalf("only %d objects", len(byObject))
	}
}

// FuzzDecodeObject: on any data.object, the reducers give the same rows and the same errors
// whichever decoder reads it.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"id":"sub_1","object":"subscription","status":"active","currency":"usd","items":{"data":[{"id":"si_1","quantity":2,"price":{"id":"price_1","product":"prod_1","unit_amount":1500,"recurring":{"interval":"month","interval_count":1}}}]},"metadata":{"app_user_id":"u1"},"current_period_end":1780000000,"discount":{"coupon":{"duration":"forever","percent_off":25}}}`,
		`{"id":"sub_2","object":"subscription","status":"active","currency":"eur","discount":{"id":"di_1","start":5,"end":null,"coupon":{"id":"c","duration":"repeating","percent_off":12.5}},"discounts":["di_1",{"id":"di_2","source":{"coupon":{"id":"c2","duration":"once","amount_off":300,"currency":"eur","currency_options":{"usd":{"amount_off":350}}}},"promotion_code":"promo_1"}],"items":{"data":[{"id":"si_1","quantity":7,"discounts":["di_9"],"price":{"id":"p","billing_scheme":"tiered","tiers_mode":"graduated","tiers":[{"up_to":5,"unit_amount_decimal":"12.5","flat_amount":100},{"up_to":null,"unit_amount":10}],"transform_quantity":null,"recurring":{"interval":"year","interval_count":1,"usage_type":"licensed"}}}]}}`,
		`{"id":"sub_3","discount":{"coupon":{"percent_off":"12.5"}},"items":{"data":[{"price":{"unit_amount_decimal":12.5,"transform_quantity":{"divide_by":0,"round":"up"}}}]}}`,
		`{"id":"sub_4","discount":{"coupon":{"percent_off":"1/3"}},"discounts":[1,null,{}],"items":{"data":[{"price":{"unit_amount_decimal":"1e400","tiers":[{"up_to":"5"}]}}]}}`,
		`{"id":"ch_1","amount":"500","currency":"usd"}`, `{"id":"ch_1","amount":1.5}`, `{"id":"ch_1","amount":1e2}`,
		`{"ID":"in_1","Amount_Due":100,"amount_due":200}`, `{"id":null,"metadata":{"a":null}}`, `{"metadata":[]}`,
		`{"id":"dp_1","charge":"ch_1","status":"won","amount":99999999999999999999}`, `{"id":"\u00e9\ud800x"}`,
		`{"id":"cs_1","object":"checkout.session","client_reference_id":"u","customer":null,"subscription":"sub_1"}`,
		`{"id":"re_1","amount":-1,"charge":{"id":"ch_1"}}`, `{"items":{"data":null}}`, `{"items":{"data":[null]}}`, `{"items":{"data":[ null , {"id":"x"} ,{"quantity": 2 } ]}}`,
		`{"STATUS":"past_due","status":"active","Status":"canceled"}`, "{\"\u017ftatus\":\"active\",\"\u212aey\":1}",
		`{"amount":-0,"created":-9223372036854775808,"paid":true,"refunded":false,"metadata":{"a":"1"},"metadata":{"b":"2"}}`,
		`{"failure_code":"\u0000","failure_message":"tab\there","currency":"\u00e9ur","Items":{"DATA":[{"Price":{"UNIT_AMOUNT":5}}]}}`,
	} {
		f.Add([]byte(s), "customer.subscription.updated")
		f.Add([]byte(s), "charge.refunded")
	}
	f.Fuzz(func(t *testing.T, object []byte, eventType string) {
		var probe map[string]json.RawMessage
		if !json.Valid(object) || json.Unmarshal(object, &probe) != nil || probe == nil {
			return // data.object is always a valid JSON object by the time a reducer sees it
		}
		fact := Fact{EventID: "evt_fuzz", Type: eventType, Created: 1780000000, ObjectRaw: object}
		if fast, ref := withDecoders([]Fact{fact}); fast != ref {
			t.Fatalf("data.object %q:\ndecodeInto    %s\nencoding/json %s", object, fast, ref)
		}
	})
}
