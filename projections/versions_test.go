package projections_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// rendered is events with each body the one at API version: the Events API copy (the account's
// default version) where pick says so, the webhook copy (2023-10-16) elsewhere.
func rendered(events []*stripesim.Event, pick func(i int) bool) []*stripesim.Event {
	out := make([]*stripesim.Event, len(events))
	for i, ev := range events {
		c := *ev
		if pick(i) {
			c.Webhook = ev.API
		}
		out[i] = &c
	}
	return out
}

// An account on dahlia, folded live from its dahlia renderings (in a random order, some twice)
// and from those mixed event by event with its 2023-10-16 ones, ends with the rows a replay of
// the same log gives: the links basil moved off the objects (an invoice's payment intent, a
// payment intent's and a charge's invoice) are derived from the invoice payments
// through the relations, and a change of an invoice payment reaches the invoice, the payment
// intent and the charge live as in a replay. In the dahlia log the invoices, payment intents
// and charges are linked wherever an invoice payment says so.
func TestLiveEqualsReplayAtDahlia(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 73, Customers: 60, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
		AccountAPIVersion: "2026-08-26.dahlia", PartialPayments: 0.3})
	sim.Run(time.Time{})
	events := sim.Events()
	for name, pick := range map[string]func(int) bool{"dahlia": func(int) bool { return true }, "mixed": func(i int) bool { return i%2 == 1 }} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			evs := rendered(events, pick)
			reference := load(t, evs)
			if _, err := projections.Rebuild(context.Background(), reference.Pool, projections.Config{}); err != nil {
				t.Fatal(err)
			}
			want := dump(t, reference)

			rng := rand.New(rand.NewPCG(7, 73))
			order := append([]*stripesim.Event(nil), evs...)
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			for range 40 {
				order = append(order, order[rng.IntN(len(order))])
			}
			db := testkit.New(t)
			r := startRunner(t, db.Pool, projections.RunnerConfig{BatchSize: 1 + rng.IntN(32)})
			appendInBatches(t, db.Pool, order, rng)
			caughtUp(t, r, db.Pool)
			diffDumps(t, "live vs replay in emission order", dump(t, db), want)

			if name != "dahlia" {
				return
			}
			var payments, invoices, intents, charges int
			if err := reference.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM ledger.invoice_payments),
				(SELECT count(*) FROM ledger.invoices i WHERE i.payment_intent IS NOT NULL),
				(SELECT count(*) FROM ledger.payment_intents p WHERE p.invoice IS NOT NULL),
				(SELECT count(*) FROM ledger.charges c WHERE c.invoice IS NOT NULL)`).Scan(&payments, &invoices, &intents, &charges); err != nil {
				t.Fatal(err)
			}
			var unlinked, disagree int
			if err := reference.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.invoice_payments p
				JOIN ledger.invoices i ON i.id = p.invoice WHERE i.payment_intent IS DISTINCT FROM p.payment_intent AND p.payment_type = 'payment_intent'
				AND p.is_default`).Scan(&unlinked); err != nil {
				t.Fatal(err)
			}
			// What an invoice's paid payments add up to is its amount_paid, for those paid in two
			// parts too; and each part's payment intent and charge name the invoice.
			var partial, partsUnlinked int
			if err := reference.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE p.paid IS DISTINCT FROM i.amount_paid),
				count(*) FILTER (WHERE p.n > 1) FROM ledger.invoices i
				JOIN (SELECT invoice, sum(amount_paid) AS paid, count(*) AS n FROM ledger.invoice_payments WHERE status = 'paid' GROUP BY invoice) p ON p.invoice = i.id`).Scan(&disagree, &partial); err != nil {
				t.Fatal(err)
			}
			// A part's payment intent received what it asked for, the invoice's own the rest.
			if err := reference.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.invoice_payments p
				LEFT JOIN ledger.payment_intents pi ON pi.id = p.payment_intent LEFT JOIN ledger.charges c ON c.payment_intent = p.payment_intent
				WHERE p.payment_type = 'payment_intent' AND p.status = 'paid' AND (pi.invoice IS DISTINCT FROM p.invoice OR c.invoice IS DISTINCT FROM p.invoice
				OR pi.amount IS DISTINCT FROM p.amount_paid OR pi.amount_received IS DISTINCT FROM p.amount_paid)`).Scan(&partsUnlinked); err != nil {
				t.Fatal(err)
			}
			if payments == 0 || invoices == 0 || intents == 0 || charges == 0 || unlinked != 0 || disagree != 0 || partial == 0 || partsUnlinked != 0 {
				t.Fatalf("%d invoice payments; linked: %d invoices, %d payment intents, %d charges; %d invoices not linked to their default payment's intent, "+
					"%d whose payments do not add up to amount_paid, %d paid in parts, %d payments whose intent or charge does not name the invoice",
					payments, invoices, intents, charges, unlinked, disagree, partial, partsUnlinked)
			}
			t.Logf("%d invoice payments, %d invoices paid in two parts", payments, partial)
		})
	}
}

// versionMasks are the columns (table → columns; "*" the whole table) that one account's read
// models may hold otherwise when its events are rendered at version instead of 2023-10-16:
// what that version does not carry and no event of the account gives, which is NULL there and
// said so in attention (README, API versions; TestSameHistoryAtEveryVersion checks each such
// value is NULL with attention), and the items' own periods from basil. Every other column is
// the same.
func versionMasks(version string) map[string][]string {
	m := map[string][]string{}
	if version >= "2025-03-31" { // basil: payment links off the objects; items keep their own periods
		m["invoices"] = []string{"charge", "payment_intent", "attention"}
		m["charges"] = []string{"invoice", "attention"}
		m["payment_intents"] = []string{"invoice", "attention"}
		m["subscriptions"] = []string{"items"}
	}
	return m
}

// One account's history, rendered at each API version the ledger reads (its events as the
// Events API of an account on that version renders them) and folded, gives the read models the
// 2023-10-16 rendering gives, table by table and column by column, but for versionMasks' columns.
// From clover on the subscription events no longer embed their coupons: their discounts, and
// MRR, are valued from the coupon.* events (ledger.coupons), to the same figures.
func TestSameHistoryAtEveryVersion(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"2020-08-27", "2024-09-30.acacia", "2025-03-31.basil", "2025-05-28.basil", "2025-09-30.clover", "2026-08-26.dahlia"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			sim := stripesim.New(stripesim.Config{Seed: 75, Customers: 50, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), AccountAPIVersion: version})
			sim.Run(time.Time{})
			events := sim.Events()
			dbs := map[string]*testkit.DB{"2023-10-16": load(t, events), version: load(t, rendered(events, func(int) bool { return true }))}
			dumps := map[string]map[string]string{}
			masks := versionMasks(version)
			for v, db := range dbs {
				if _, err := projections.Rebuild(context.Background(), db.Pool, projections.Config{}); err != nil {
					t.Fatal(err)
				}
				dumps[v] = map[string]string{}
				for _, name := range tables {
					if slices.Contains(masks[name], "*") {
						continue
					}
					var s *string
					if err := db.Pool.QueryRow(context.Background(), `SELECT json_agg(j ORDER BY j::text)::text FROM (SELECT to_jsonb(r) - $1::text[] AS j FROM ledger.`+name+` r) x`,
						append(masks[name], "")).Scan(&s); err != nil {
						t.Fatal(err)
					}
					if s != nil {
						dumps[v][name] = *s
					}
				}
			}
			compared := 0
			for _, name := range tables {
				if a, b := dumps["2023-10-16"][name], dumps[version][name]; a != b {
					t.Errorf("ledger.%s differs at %s from 2023-10-16", name, version)
				} else if a != "" {
					compared++
				}
			}
			if compared < 10 {
				t.Fatalf("only %d tables had rows to compare", compared)
			}
			// A masked link is never a silent difference: it is the 2023-10-16 rendering's, or
			// NULL on a row whose attention says why.
			unexplained := 0
			for name, cols := range masks {
				for _, col := range cols {
					if col == "attention" || col == "*" || name == "subscriptions" {
						continue // items: each keeps its own period from basil (a richer value, not a missing one)
					}
					var n, nulls int
					q := `SELECT id, ` + col + `::text, attention FROM ledger.` + name
					want := map[string]*string{}
					rows, err := dbs["2023-10-16"].Pool.Query(context.Background(), `SELECT id, `+col+`::text FROM ledger.`+name)
					if err != nil {
						t.Fatal(err)
					}
					for rows.Next() {
						var id string
						var v *string
						if err := rows.Scan(&id, &v); err != nil {
							t.Fatal(err)
						}
						want[id] = v
					}
					rows, err = dbs[version].Pool.Query(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					for rows.Next() {
						var id string
						var v, why *string
						if err := rows.Scan(&id, &v, &why); err != nil {
							t.Fatal(err)
						}
						n++
						w := want[id]
						switch {
						case (v == nil) == (w == nil) && (v == nil || *v == *w):
						case v == nil && why != nil:
							nulls++
						default:
							if unexplained++; unexplained <= 3 {
								t.Errorf("ledger.%s %s: %s is %v at %s, %v at 2023-10-16, attention %v", name, id, col, deref(v), version, deref(w), deref(why))
							}
						}
					}
					if rows.Err() != nil {
						t.Fatal(rows.Err())
					}
					t.Logf("ledger.%s.%s: %d rows, %d NULL with attention", name, col, n, nulls)
				}
			}
		})
	}
}

func deref(p *string) string {
	if p == nil {
		return "NULL"
	}
	return *p
}
