package redaction_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/redaction"
	"github.com/stripeledger/ledger/stripesim"
)

// testBundle is a simulated account in the log and its read models, with one customer, the
// subject, given every kind of personal field the redaction must erase.
type testBundle struct {
	db       *testkit.DB
	store    *eventstore.Store
	customer string
	// personal are values only the subject's events hold: none may be left anywhere after.
	personal []string
	decoy    string // another customer's event that mentions the subject's ID: out of scope
	// objectTypes are the kinds of object given personal data, which the redaction must reach.
	objectTypes []string
	// again are other renderings of some of the subject's events (kept beside them), and
	// againWithEvents each of those events followed by its other rendering, in one call.
	again, againWithEvents []domain.Event
}

const end = 1780272000 // 2026-06-01

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	sim := stripesim.New(stripesim.Config{Seed: 2, Customers: 30, End: time.Unix(end, 0).UTC()})
	sim.Run(time.Time{})
	events := sim.Events()

	// The subject: the customer whose charge was disputed, so a dispute is in scope through it.
	objects := map[string]map[string]any{} // object ID -> its latest data.object
	decode := func(b []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	var disputedCharge string
	for _, e := range events {
		obj := decode(e.Webhook)["data"].(map[string]any)["object"].(map[string]any)
		objects[obj["id"].(string)] = obj
		if e.Type == "charge.dispute.created" {
			disputedCharge = obj["charge"].(string)
		}
	}
	if disputedCharge == "" {
		t.Fatal("the simulated account has no dispute")
	}
	b := &testBundle{customer: objects[disputedCharge]["customer"].(string)}
	subject := objects[b.customer]
	email, name := subject["email"].(string), subject["name"].(string)
	crm := subject["metadata"].(map[string]any)["crm_id"].(string)
	b.personal = []string{email, name, crm, "+47 555 01 99", "Storgata 1", "9871", "fpRedactMe", "0150 Oslo"}
	address := map[string]any{"line1": "Storgata 1", "line2": nil, "city": "0150 Oslo", "country": "NO", "postal_code": "0150", "state": nil}
	billing := map[string]any{"address": address, "email": email, "name": name, "phone": "+47 555 01 99"}
	card := map[string]any{"brand": "visa", "last4": "9871", "fingerprint": "fpRedactMe", "exp_month": 4, "exp_year": 2031, "country": "NO"}

	// Give the subject's events every personal field Stripe sends.
	var appended []domain.Event
	add := func(raw []byte, src domain.Source) {
		sig := ""
		if src == domain.SourceWebhook {
			sig = "t=1,v1=" + strings.Repeat("0", 64)
		}
		e, err := domain.NewEvent(raw, src, sig)
		if err != nil {
			t.Fatal(err)
		}
		appended = append(appended, e)
	}
	for i, e := range events {
		m := decode(e.Webhook)
		data := m["data"].(map[string]any)
		obj := data["object"].(map[string]any)
		mine := obj["customer"] == b.customer || obj["id"] == b.customer || obj["charge"] == disputedCharge
		if mine {
			if typ := obj["object"].(string); typ != "subscription" && !slices.Contains(b.objectTypes, typ) { // subscriptions carry nothing personal
				b.objectTypes = append(b.objectTypes, typ)
			}
			switch obj["object"] {
			case "customer":
				obj["phone"], obj["address"] = "+47 555 01 99", address
				obj["shipping"] = map[string]any{"address": address, "name": name, "phone": "+47 555 01 99"}
			case "charge":
				obj["billing_details"], obj["receipt_email"] = billing, email
				obj["payment_method_details"] = map[string]any{"type": "card", "card": card}
			case "payment_intent":
				obj["receipt_email"] = email
				obj["shipping"] = map[string]any{"address": address, "name": name, "phone": nil}
			case "invoice":
				obj["customer_email"], obj["customer_name"], obj["customer_address"] = email, name, address
			case "checkout.session":
				obj["customer_details"] = map[string]any{"email": email, "name": name, "address": address, "phone": nil, "tax_exempt": "none"}
			case "dispute":
				obj["evidence"] = map[string]any{"customer_email_address": email, "customer_name": name, "billing_address": "Storgata 1, 0150 Oslo", "uncategorized_text": nil}
			}
		}
		raw, _ := json.Marshal(m)
		src := domain.SourceImport
		if i%2 == 0 {
			src = domain.SourceWebhook
		}
		add(raw, src)
	}
	// A payment method attached to the subject and one detached from it (its customer is then
	// null, only previous_attributes names the subject).
	pm := func(id, typ string, customer any, prev map[string]any) []byte {
		ev := map[string]any{"id": "evt_" + id + typ[len(typ)-4:], "object": "event", "api_version": "2023-10-16", "created": end - 100,
			"livemode": false, "type": typ, "data": map[string]any{"object": map[string]any{"id": id, "object": "payment_method",
				"customer": customer, "type": "card", "billing_details": billing, "card": card, "metadata": map[string]any{}}}}
		if prev != nil {
			ev["data"].(map[string]any)["previous_attributes"] = prev
		}
		raw, _ := json.Marshal(ev)
		return raw
	}
	b.objectTypes = append(b.objectTypes, "payment_method")
	slices.Sort(b.objectTypes)
	if len(b.objectTypes) < 5 {
		t.Fatalf("the subject has too few kinds of object to test the scope: %v", b.objectTypes)
	}
	add(pm("pm_redact_1", "payment_method.attached", b.customer, nil), domain.SourceWebhook)
	add(pm("pm_redact_2", "payment_method.detached", nil, map[string]any{"customer": b.customer}), domain.SourceReconcile)
	// A thin event's snapshot of the subject (an event destination's): the object as fetched,
	// and the v2 Event's changes.before, with earlier personal values, as previous_attributes.
	fetched := maps.Clone(subject)
	fetched["phone"], fetched["address"] = "+47 555 01 99", address
	object, _ := json.Marshal(fetched)
	before, _ := json.Marshal(map[string]any{"email": email, "name": name, "phone": "+47 555 01 99"})
	thin := domain.Envelope{ID: "evt_test_65redactme", Type: "v1.customer.updated", Created: end - 40, ObjectType: "customer", ObjectID: b.customer}
	snap, err := domain.NewThinSnapshot(thin, object, before, end-30, "2023-10-16")
	if err != nil {
		t.Fatal(err)
	}
	appended = append(appended, snap)
	// Another customer's event whose metadata names the subject: it is not about the subject.
	b.decoy = "evt_decoy_1"
	add([]byte(fmt.Sprintf(`{"id":%q,"object":"event","api_version":"2023-10-16","created":%d,"livemode":false,"type":"customer.updated",`+
		`"data":{"object":{"id":"cus_decoy","object":"customer","email":"decoy@example.com","name":"Decoy","created":%d,"metadata":{"referred_by":%q}}}}`,
		b.decoy, end-50, end-50, b.customer)), domain.SourceImport)

	b.db = testkit.New(t)
	b.store = eventstore.New(b.db.Pool)
	if _, err := b.store.Append(ctx, appended); err != nil {
		t.Fatal(err)
	}
	// Some of the subject's events arrive again at another API version (an upgraded endpoint):
	// those renderings are kept beside the events, personal data and all.
	var again []domain.Event
	for _, e := range appended {
		if strings.Contains(string(e.Payload), "Storgata 1") && strings.Contains(string(e.Payload), `"api_version":"2023-10-16"`) && len(again) < 3 {
			raw := strings.Replace(string(e.Payload), `"api_version":"2023-10-16"`, `"api_version":"2026-08-26.dahlia"`, 1)
			r, err := domain.NewEvent([]byte(raw), domain.SourceImport, "")
			if err != nil {
				t.Fatal(err)
			}
			again = append(again, r)
			b.againWithEvents = append(b.againWithEvents, e, r)
		}
	}
	b.again = again
	if _, err := b.store.Append(ctx, again); err != nil {
		t.Fatal(err)
	}
	var renderings int
	if err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.event_renderings`).Scan(&renderings); err != nil || renderings == 0 || renderings != len(again) {
		t.Fatalf("%d renderings kept of %d (%v)", renderings, len(again), err)
	}
	if _, err := projections.Rebuild(ctx, b.db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *testBundle) request() redaction.Request {
	return redaction.Request{Customer: b.customer, Reason: "erasure request #4711", By: "dpo@company",
		MetadataKeys: []string{"crm_id"}, Key: testKey}
}

// testKey stands for the checkpoint key, which signs every redaction's record.
var _, testKey, _ = ed25519.GenerateKey(nil)

// figures is everything finance reads that a redaction must not change: the metric views, the
// API's series and every money, status and ID column of the read models.
func (b *testBundle) figures(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for name, sql := range map[string]string{
		"metrics_daily":   `SELECT json_agg(m ORDER BY m::text) FROM ledger.metrics_daily m`,
		"metrics_monthly": `SELECT json_agg(m ORDER BY m::text) FROM ledger.metrics_monthly m`,
		"subscriptions":   `SELECT json_agg(json_build_array(id, customer, status, currency, items, mrr, app_user_id, event_id) ORDER BY id) FROM ledger.subscriptions`,
		"movements":       `SELECT json_agg(m ORDER BY m::text) FROM ledger.subscription_movements m`,
		"invoices":        `SELECT json_agg(json_build_array(id, customer, status, currency, amount_due, amount_paid, amount_remaining, total, charge) ORDER BY id) FROM ledger.invoices`,
		"charges":         `SELECT json_agg(json_build_array(id, customer, status, currency, amount, amount_captured, amount_refunded, refunded, paid, dispute_id, dispute_status) ORDER BY id) FROM ledger.charges`,
		"refunds":         `SELECT json_agg(r ORDER BY r::text) FROM ledger.refunds r`,
		"disputes":        `SELECT json_agg(d ORDER BY d::text) FROM ledger.disputes d`,
		"sessions":        `SELECT json_agg(json_build_array(id, customer, subscription, status, currency, amount_total, app_user_id) ORDER BY id) FROM ledger.checkout_sessions`,
		"customers":       `SELECT json_agg(json_build_array(id, currency, deleted, created) ORDER BY id) FROM ledger.customers`,
	} {
		var s *string
		if err := b.db.Pool.QueryRow(ctx, sql).Scan(&s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s == nil {
			t.Fatalf("%s: no rows: the figures would prove nothing", name)
		}
		out[name] = *s
	}
	q := query.New(b.db.Pool, query.Config{})
	for _, name := range []string{"mrr", "revenue"} {
		m, err := query.ParseMetric(name, url.Values{"interval": {"day"}, "from": {"2026-02-01"}, "to": {"2026-06-01"}}, time.Unix(end, 0))
		if err != nil {
			t.Fatal(err)
		}
		series, err := q.Series(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(series)
		out["api "+name] = string(raw)
	}
	return out
}

// chain is every row's place in the chain.
func (b *testBundle) chain(t *testing.T) map[int64]string {
	t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT position, encode(prev_hash || hash || payload_digest, 'hex') FROM ledger.events`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	var pos int64
	var s string
	if _, err := pgx.ForEachRow(rows, []any{&pos, &s}, func() error { out[pos] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// leftovers are the places any personal value of the subject is still found: every payload of
// the log, and every row of every other table of the schema (read models, quarantine, …).
func (b *testBundle) leftovers(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	for _, v := range b.personal {
		var ids []string
		rows, err := b.db.Pool.Query(ctx, `SELECT event_id FROM ledger.events WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0
			UNION ALL SELECT event_id || ' (' || api_version || ')' FROM ledger.event_renderings WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0`, v)
		if err == nil {
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			found = append(found, fmt.Sprintf("%q in the payload of %s", v, id))
		}
	}
	rows, err := b.db.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'ledger' AND table_type = 'BASE TABLE' AND table_name NOT IN ('events', 'event_renderings')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 10 {
		t.Fatalf("tables %v %v", tables, err)
	}
	for _, table := range tables {
		for _, v := range b.personal {
			var n int
			if err := b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.`+table+` r WHERE strpos(r::text, $1) > 0`, v).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				found = append(found, fmt.Sprintf("%q in %d row(s) of ledger.%s", v, n, table))
			}
		}
	}
	return found
}

// Redacting a customer erases every personal value of theirs from every payload in scope and
// every read model, and changes no figure, no link of the chain and no event out of scope; verify
// still holds, and the redaction's own event says who, when, why and where, but not what.
func TestRedactionErasesPersonalDataAndKeepsFiguresAndChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	if len(b.leftovers(t)) < len(b.personal) {
		t.Fatalf("the subject's values are not all in the ledger to begin with: %v", b.leftovers(t))
	}
	figures, chain := b.figures(t), b.chain(t)
	head, _ := b.store.Head(ctx)
	decoy, _ := b.store.Get(ctx, b.decoy)

	sum, err := redaction.Run(ctx, b.db.Pool, b.request())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Redacted == 0 || sum.Redacted != len(sum.Positions) || sum.Position != head.Position+1 || !strings.HasPrefix(sum.EventID, "evt_ledger_red_") {
		t.Fatalf("summary %+v", sum)
	}
	if left := b.leftovers(t); len(left) > 0 {
		t.Fatalf("personal data left after the redaction:\n%s", strings.Join(left, "\n"))
	}
	// The erased events' other renderings arrive again (a retry, the Events API within its 30
	// days), alone and batched with their events: nothing of them is kept.
	if _, err := b.store.Append(ctx, b.again); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Append(ctx, b.againWithEvents); err != nil {
		t.Fatal(err)
	}
	if left := b.leftovers(t); len(left) > 0 {
		t.Fatalf("personal data back after a redelivery:\n%s", strings.Join(left, "\n"))
	}

	// The figures, the chain and the decoy are as they were.
	after := b.figures(t)
	for name, want := range figures {
		if after[name] != want {
			t.Errorf("%s changed:\nbefore %s\nafter  %s", name, want, after[name])
		}
	}
	afterChain := b.chain(t)
	for pos, want := range chain {
		if afterChain[pos] != want {
			t.Errorf("the chain changed at position %d", pos)
		}
	}
	if d, _ := b.store.Get(ctx, b.decoy); string(d.Payload) != string(decoy.Payload) || d.Redacted() {
		t.Error("an event out of scope was redacted")
	}
	v, err := b.store.Verify(ctx)
	if err != nil || v.Broken != nil || v.Redacted != int64(sum.Redacted) || v.Count != head.Position+1 {
		t.Fatalf("verify after the redaction: %+v %v", v, err)
	}

	// Every redacted row points at the redaction, which names it; the scope is exactly the
	// subject's objects.
	redacted, err := b.store.List(ctx, eventstore.Filter{RedactedBy: []int64{sum.Position}, Payload: true})
	if err != nil {
		t.Fatal(err)
	}
	var objects []string
	for _, r := range redacted {
		if !slices.Contains(sum.Positions, r.Position) {
			t.Errorf("position %d is redacted but not in the summary", r.Position)
		}
		if !slices.Contains(objects, r.ObjectType) {
			objects = append(objects, r.ObjectType)
		}
	}
	slices.Sort(objects)
	if want := b.objectTypes; !slices.Equal(objects, want) {
		t.Errorf("redacted objects %v, want %v", objects, want)
	}
	rec, err := b.store.Get(ctx, sum.EventID)
	if err != nil || rec.Type != domain.RedactionType || rec.Source != domain.SourceLedger || rec.Position != sum.Position {
		t.Fatalf("the redaction's event: %+v %v", rec, err)
	}
	red, err := domain.ParseRedaction(rec.Payload)
	if err != nil || red.Customer != b.customer || red.By != "dpo@company" || red.Reason != "erasure request #4711" || len(red.Events) != sum.Redacted {
		t.Fatalf("the redaction's record: %+v %v", red, err)
	}
	for _, v := range b.personal {
		if strings.Contains(string(rec.Payload), v) {
			t.Errorf("the redaction's record holds the erased value %q", v)
		}
	}

	// A replay from the redacted log gives the same redacted read models and the same figures.
	if _, err := projections.Rebuild(ctx, b.db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	if left := b.leftovers(t); len(left) > 0 {
		t.Fatalf("personal data back after a replay:\n%s", strings.Join(left, "\n"))
	}
	replayed := b.figures(t)
	for name, want := range figures {
		if replayed[name] != want {
			t.Errorf("%s changed after a replay", name)
		}
	}

	// Nothing is left to redact: a second run changes nothing and appends nothing.
	again, err := redaction.Run(ctx, b.db.Pool, b.request())
	if err != nil || again.Redacted != 0 || again.EventID != "" || again.InScope != sum.InScope {
		t.Fatalf("second run: %+v %v", again, err)
	}
	if h, _ := b.store.Head(ctx); h.Position != sum.Position {
		t.Fatalf("the second run appended: %+v", h)
	}
}

// snapshot is the whole state a failed redaction must leave as it was.
func (b *testBundle) snapshot(t *testing.T) string {
	t.Helper()
	var s string
	err := b.db.Pool.QueryRow(context.Background(), `SELECT
		(SELECT md5(string_agg(position || ':' || encode(payload, 'hex') || ':' || coalesce(redacted_by_position, 0) || ':' || encode(hash, 'hex'), ',' ORDER BY position)) FROM ledger.events)
		|| (SELECT md5(json_agg(c ORDER BY c.id)::text) FROM ledger.customers c)
		|| (SELECT md5(json_agg(c ORDER BY c.id)::text) FROM ledger.charges c)
		|| (SELECT md5(json_agg(c ORDER BY c.id)::text) FROM ledger.checkout_sessions c)
		|| (SELECT position::text FROM ledger.log_head)`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Bad input and interruptions change nothing: an unknown customer, a failure in the middle of the
// payload updates, a cancellation before the re-fold.
func TestRedactionChangesNothingWhenItCannotFinish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	before := b.snapshot(t)

	t.Run("unknown customer", func(t *testing.T) {
		req := b.request()
		req.Customer = "cus_NotInTheLog"
		if _, err := redaction.Run(ctx, b.db.Pool, req); !errors.Is(err, redaction.ErrUnknownCustomer) {
			t.Fatalf("want ErrUnknownCustomer, got %v", err)
		}
		if b.snapshot(t) != before {
			t.Fatal("an unknown customer's redaction changed the ledger")
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, mutate := range []func(*redaction.Request){
			func(r *redaction.Request) { r.Customer = "" },
			func(r *redaction.Request) { r.Customer = `cus_x"; DROP TABLE ledger.events` },
			func(r *redaction.Request) { r.Reason = " " },
			func(r *redaction.Request) { r.By = "" },
			func(r *redaction.Request) { r.Reason = strings.Repeat("x", 1001) },
			// Erasing the identity key would merge every redacted customer into one app user.
			func(r *redaction.Request) { r.MetadataKeys = append(r.MetadataKeys, r.Identity.Key()) },
		} {
			req := b.request()
			mutate(&req)
			var ir *redaction.InvalidRequest
			if _, err := redaction.Run(ctx, b.db.Pool, req); !errors.As(err, &ir) {
				t.Fatalf("%+v: want an InvalidRequest, got %v", req, err)
			}
		}
	})
	t.Run("failure halfway through the updates", func(t *testing.T) {
		// The third row the redaction updates fails, as a full disk or a killed backend would.
		var third int64
		if err := b.db.Pool.QueryRow(ctx, `SELECT position FROM ledger.events WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0
			AND event_id <> $2 ORDER BY position OFFSET 2 LIMIT 1`, b.customer, b.decoy).Scan(&third); err != nil {
			t.Fatal(err)
		}
		for _, sql := range []string{
			fmt.Sprintf(`CREATE FUNCTION fail_redaction() RETURNS trigger LANGUAGE plpgsql AS $$
			 BEGIN IF NEW.position = %d THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`, third),
			`CREATE TRIGGER zz_fail_redaction BEFORE UPDATE ON ledger.events FOR EACH ROW EXECUTE FUNCTION fail_redaction()`,
		} {
			if _, err := b.db.Pool.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		_, err := redaction.Run(ctx, b.db.Pool, b.request())
		if _, dropErr := b.db.Pool.Exec(ctx, `DROP TRIGGER zz_fail_redaction ON ledger.events`); dropErr != nil {
			t.Fatal(dropErr)
		}
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("want the injected failure, got %v", err)
		}
		if b.snapshot(t) != before {
			t.Fatal("a redaction that failed halfway left changes behind")
		}
	})
	t.Run("cancelled before the re-fold", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req := redaction.WithHookBeforeRefold(b.request(), func(context.Context) error {
			cancel()
			return nil
		})
		if _, err := redaction.Run(cctx, b.db.Pool, req); !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		if b.snapshot(t) != before {
			t.Fatal("a cancelled redaction left changes behind")
		}
	})
	// And after all that, the redaction runs.
	if _, err := redaction.Run(ctx, b.db.Pool, b.request()); err != nil {
		t.Fatal(err)
	}
	if v, err := b.store.Verify(ctx); err != nil || v.Broken != nil || v.Redacted == 0 {
		t.Fatalf("%+v %v", v, err)
	}
}

// The database allows one change to a stored row, the redaction's: the payload with a marker
// pointing at a redaction event later in the log. Anything else is refused, a redacted row's too.
func TestTriggerAllowsOnlyRedaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	sum, err := redaction.Run(ctx, b.db.Pool, b.request())
	if err != nil {
		t.Fatal(err)
	}
	var plain int64
	if err := b.db.Pool.QueryRow(ctx, `SELECT position FROM ledger.events WHERE redacted_by_position IS NULL AND type = 'charge.succeeded' LIMIT 1`).Scan(&plain); err != nil {
		t.Fatal(err)
	}
	var red int64
	if err := b.db.Pool.QueryRow(ctx, `SELECT position FROM ledger.events WHERE redacted_by_position = $1 AND object_type = 'charge' LIMIT 1`, sum.Position).Scan(&red); err != nil {
		t.Fatal(err)
	}
	amount := `convert_to(replace(convert_from(payload, 'UTF8'), '"amount":', '"amount":1'), 'UTF8')`
	for name, sql := range map[string]string{
		"a money field":                 fmt.Sprintf(`UPDATE ledger.events SET payload = %s WHERE position = %d`, amount, plain),
		"a money field, marked":         fmt.Sprintf(`UPDATE ledger.events SET payload = %s, redacted_by_position = %d WHERE position = %d`, amount, sum.Position, plain),
		"a redacted row's payload":      fmt.Sprintf(`UPDATE ledger.events SET payload = %s WHERE position = %d`, amount, red),
		"the digest":                    fmt.Sprintf(`UPDATE ledger.events SET payload_digest = sha256('x'), redacted_by_position = %d WHERE position = %d`, sum.Position, plain),
		"the type":                      fmt.Sprintf(`UPDATE ledger.events SET type = 'charge.refunded', redacted_by_position = %d WHERE position = %d`, sum.Position, plain),
		"marked by a non-redaction":     fmt.Sprintf(`UPDATE ledger.events SET payload = %s, redacted_by_position = %d WHERE position = %d`, amount, plain+1, plain),
		"marked by an earlier position": fmt.Sprintf(`UPDATE ledger.events SET redacted_by_position = 1 WHERE position = %d`, sum.Position),
		"the marker removed":            fmt.Sprintf(`UPDATE ledger.events SET redacted_by_position = NULL WHERE position = %d`, red),
		"a delete":                      fmt.Sprintf(`DELETE FROM ledger.events WHERE position = %d`, red),
		"the chain record":              `UPDATE ledger.chain_migrations SET up_to_position = 0`,
	} {
		_, err := b.db.Pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: want insufficient_privilege, got %v", name, err)
		}
	}
	if v, err := b.store.Verify(ctx); err != nil || v.Broken != nil {
		t.Fatalf("%+v %v", v, err)
	}

	// Behind the triggers' back (a superuser), an edit of a redacted payload is still found: it
	// is not the payload its redaction recorded.
	testkit.Tamper(t, b.db, fmt.Sprintf(`UPDATE ledger.events SET payload = %s WHERE position = %d`, amount, red))
	v, err := b.store.Verify(ctx)
	if err != nil || v.Broken == nil || v.Broken.Position != sum.Position || !strings.Contains(v.Broken.Reason, fmt.Sprintf("position %d", red)) {
		t.Fatalf("want the edit of redacted row %d found at its redaction %d, got %+v %v", red, sum.Position, v.Broken, err)
	}
}

// A redaction does not launder an edit made behind the triggers' back: Run refuses a customer
// one of whose events is not intact (its payload is not the one its digest covers, or, redacted
// before, not the one its redaction recorded), names the event and changes nothing; the
// database refuses the same UPDATE when it is tried directly, under a record that names the new
// payload. The edit is still there for `ledger verify` to find.
func TestRedactionRefusesATamperedEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	customer := func(id, obj, email, balance string) domain.Event {
		e, err := domain.NewEvent([]byte(`{"id":"`+id+`","object":"event","api_version":"2023-10-16","created":1770000000,"livemode":false,`+
			`"type":"customer.updated","data":{"object":{"id":"`+obj+`","object":"customer","email":"`+email+`","name":"Bob","balance":`+balance+`,"created":1770000000,"metadata":{}}}}`),
			domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	req := func(cus string) redaction.Request {
		return redaction.Request{Customer: cus, Reason: "ticket 5", By: "dpo", Key: testKey}
	}
	balance := func(pos int64) string {
		return fmt.Sprintf(`UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '-500', '-99999'), 'UTF8') WHERE position = %d`, pos)
	}
	refused := func(t *testing.T, db *testkit.DB, cus string, pos int64) {
		t.Helper()
		store := eventstore.New(db.Pool)
		before, _ := store.Head(ctx)
		_, err := redaction.Run(ctx, db.Pool, req(cus))
		var te *redaction.TamperedError
		if !errors.As(err, &te) || te.Position != pos || !strings.Contains(err.Error(), "ledger verify") {
			t.Fatalf("want a TamperedError at position %d, got %v", pos, err)
		}
		if after, _ := store.Head(ctx); after != before {
			t.Fatalf("a refused redaction appended: %+v -> %+v", before, after)
		}
		if v, err := store.Verify(ctx); err != nil || v.Broken == nil {
			t.Fatalf("the edit is gone: %+v %v", v, err)
		}
	}

	t.Run("an edited payload", func(t *testing.T) {
		t.Parallel()
		db := testkit.New(t)
		store := eventstore.New(db.Pool)
		if _, err := store.Append(ctx, []domain.Event{customer("evt_c0", "cus_B2", "bob@example.com", "-500"), customer("evt_c1", "cus_B2", "bob@example.com", "-500")}); err != nil {
			t.Fatal(err)
		}
		testkit.Tamper(t, db, balance(2))
		refused(t, db, "cus_B2", 2)
	})

	t.Run("an edited redacted payload", func(t *testing.T) {
		t.Parallel()
		db := testkit.New(t)
		store := eventstore.New(db.Pool)
		if _, err := store.Append(ctx, []domain.Event{customer("evt_c1", "cus_B2", "bob@example.com", "-500")}); err != nil {
			t.Fatal(err)
		}
		if _, err := redaction.Run(ctx, db.Pool, req("cus_B2")); err != nil {
			t.Fatal(err)
		}
		// A new event with personal data gives the second redaction something to do.
		if _, err := store.Append(ctx, []domain.Event{customer("evt_c2", "cus_B2", "bob@new.example", "-500")}); err != nil {
			t.Fatal(err)
		}
		testkit.Tamper(t, db, balance(1))
		refused(t, db, "cus_B2", 1)
	})

	t.Run("the database refuses it too", func(t *testing.T) {
		t.Parallel()
		db := testkit.New(t)
		store := eventstore.New(db.Pool)
		if _, err := store.Append(ctx, []domain.Event{customer("evt_c1", "cus_B2", "bob@example.com", "-500")}); err != nil {
			t.Fatal(err)
		}
		testkit.Tamper(t, db, balance(1))
		var edited []byte
		if err := db.Pool.QueryRow(ctx, `SELECT payload FROM ledger.events WHERE position = 1`).Scan(&edited); err != nil {
			t.Fatal(err)
		}
		out, _, err := domain.RedactPayload(edited, domain.RedactRules{})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(out)
		rec, err := domain.NewRedactionEvent(domain.Redaction{ID: "red_1", Customer: "cus_B2", Reason: "r", By: "dpo", At: 1770000000,
			Events: []domain.RedactedEvent{{Position: 1, EventID: "evt_c1", PayloadSHA256: hex.EncodeToString(sum[:])}}}, false, "")
		if err != nil {
			t.Fatal(err)
		}
		res, err := store.Append(ctx, []domain.Event{rec})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		_, err = db.Pool.Exec(ctx, `UPDATE ledger.events SET payload = $1, redacted_by_position = $2 WHERE position = 1`, out, res[0].Position)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "XX001" || !strings.Contains(pgErr.Message, "position 1 (evt_c1) was edited") {
			t.Fatalf("want the UPDATE refused as data_corrupted, got %v", err)
		}
	})
}
