package query_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/balancetransaction"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/stripesim"
	"github.com/stripeledger/ledger/webhook"
)

const secret = "whsec_close_test"

// books is a simulated Stripe account played into a ledger over real HTTP (signed webhooks to
// the real handler), with its API served for the reconciler and for fetching balance
// transactions through stripe-go.
type books struct {
	db  *testkit.DB
	sim *stripesim.Sim
	api string
	q   *query.Queries
}

// playBooks plays scenario (customised) into a fresh ledger and folds the read models.
func playBooks(t *testing.T, scenario string, customize func(*stripesim.Config, *stripesim.DeliveryConfig)) *books {
	t.Helper()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{})
	t.Cleanup(appender.Close)
	h, err := webhook.New(webhook.Config{Secrets: []string{secret}, Logger: slog.New(slog.DiscardHandler)}, appender, store,
		webhook.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	t.Cleanup(hook.Close)
	cfg, dc, err := stripesim.Setup(scenario, stripesim.Config{Seed: 17, End: closeEnd}, stripesim.DeliveryConfig{URL: hook.URL, Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	if customize != nil {
		customize(&cfg, &dc)
	}
	sim := stripesim.New(cfg)
	d := stripesim.NewDeliverer(sim, dc)
	api := httptest.NewServer(stripesim.NewServer(sim, d, stripesim.ServerConfig{RateLimit: -1}))
	t.Cleanup(api.Close)
	if err := (&stripesim.Runner{Sim: sim, Deliverer: d}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := &books{db: db, sim: sim, api: api.URL, q: query.New(db.Pool, query.Config{})}
	b.rebuild(t)
	return b
}

// closeEnd is when the simulated accounts stop: 2026-06-01, so May is a whole month that ended.
var closeEnd = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func (b *books) key() string {
	if b.sim.Config().Livemode {
		return "sk_live_close"
	}
	return "sk_test_close"
}

func (b *books) rebuild(t *testing.T) {
	t.Helper()
	if _, err := projections.Rebuild(context.Background(), b.db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
}

// fetchPayoutListings appends, through stripe-go, every payout's `GET
// /v1/balance_transactions?payout=` listing (every page) as the balance job's snapshots do (raw
// JSON as the API returned it, the listing payout beside it) — and, unlike the job, nothing
// else: the ledger is left without the transactions no payout has listed, as when the job has
// not reached them. It returns the transactions' sources.
func (b *books) fetchPayoutListings(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	sc := client.New(b.key(), stripe.NewBackendsWithConfig(&stripe.BackendConfig{URL: stripe.String(b.api),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}))
	var evs []domain.Event
	sources := map[string]bool{}
	cfg := b.sim.Config()
	add := func(it *balancetransaction.Iter, payout string) {
		var last *stripe.APIResponse
		for it.Next() {
			lr := it.BalanceTransactionList().LastResponse
			if lr == nil || lr == last {
				continue // the rest of a page already read
			}
			last = lr
			var page struct {
				Data []json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(lr.RawJSON, &page); err != nil {
				t.Fatal(err)
			}
			for _, raw := range page.Data {
				var bt struct {
					ID      string  `json:"id"`
					Created int64   `json:"created"`
					Source  *string `json:"source"`
				}
				_ = json.Unmarshal(raw, &bt)
				if bt.Source != nil {
					sources[*bt.Source] = true
				}
				ev, err := domain.NewBalanceTransactionSnapshot(raw, bt.Created, cfg.Livemode, cfg.Account, stripesim.APIVersion, payout)
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, ev)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := b.db.Pool.Query(ctx, `SELECT id FROM ledger.payouts ORDER BY created`)
	if err != nil {
		t.Fatal(err)
	}
	payouts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, po := range payouts {
		p := &stripe.BalanceTransactionListParams{Payout: stripe.String(po)}
		p.Limit = stripe.Int64(100)
		add(sc.BalanceTransactions.List(p), po)
	}
	if _, err := eventstore.New(b.db.Pool).Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return sources
}

// balanceJob runs the balance reconcile job over the whole run: every payout's transactions,
// then those no payout listed.
func (b *books) balanceJob(t *testing.T) reconcile.Run {
	t.Helper()
	run, err := b.reconciler().Run(context.Background(), reconcile.Options{Job: reconcile.JobBalance, From: b.sim.Config().Start})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != "succeeded" {
		t.Fatalf("balance run: %+v", run)
	}
	return run
}

func (b *books) reconciler() *reconcile.Reconciler {
	return reconcile.New(b.db.Pool, reconcile.Config{Now: b.sim.Now,
		Stripe: reconcile.StripeConfig{APIKey: b.key(), APIBase: b.api, RateLimit: 1000, BaseBackoff: 20 * time.Millisecond}})
}

// repair runs the events reconcile job against the simulator, as after an outage.
func (b *books) repair(t *testing.T) reconcile.Run {
	t.Helper()
	run, err := b.reconciler().Run(context.Background(), reconcile.Options{Job: reconcile.JobEvents})
	if err != nil {
		t.Fatal(err)
	}
	return run
}
