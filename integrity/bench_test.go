package integrity_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/stripesim"
)

// BenchmarkVerifySignatures re-checks every signature of a log of ~200,000 realistic simulated
// webhook events (one account of 18,000 customers, each event signed as Stripe signs it), in
// two ways in the same run: `ledger verify --signatures`'s checker, and the same stream checked
// with stripe-go's webhook.ValidatePayloadIgnoringTolerance per event and secret, the obvious
// implementation. Two secrets are configured, the signing one second, so each event costs two
// HMACs in both. b.N is ignored: one pass over the log a run.
func BenchmarkVerifySignatures(b *testing.B) {
	pool := testkit.Cached(b, "signatures_2", func(ctx context.Context, pool *pgxpool.Pool) error {
		return appendSignedAccount(ctx, pool)
	})
	store := eventstore.New(pool)
	secrets := []string{"whsec_retired_but_tried_first", secretNow}
	b.Run("checker=ledger", func(b *testing.B) {
		start := time.Now()
		rep, err := integrity.VerifySignatures(context.Background(), store, integrity.Secrets{Current: secrets}, integrity.SignatureOptions{})
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Failed != 0 || rep.Verified != rep.Events {
			b.Fatalf("%+v", rep)
		}
		b.ReportMetric(float64(rep.Events)/took.Seconds(), "events/s")
		b.ReportMetric(float64(rep.Events), "events")
	})
	b.Run("checker=stripe-go", func(b *testing.B) {
		start := time.Now()
		var n, ok int64
		err := store.Scan(context.Background(), eventstore.Filter{Payload: true, Borrow: true}, func(r *eventstore.Record) error {
			n++
			for _, s := range secrets {
				if stripewebhook.ValidatePayloadIgnoringTolerance(r.Payload, r.Signature, s) == nil {
					ok++
					break
				}
			}
			return nil
		})
		took := time.Since(start)
		if err != nil || ok != n {
			b.Fatalf("%d of %d verified: %v", ok, n, err)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
		b.ReportMetric(float64(n), "events")
	})
}

// appendSignedAccount appends a simulated account's events as webhooks, each signed with
// secretNow at its creation time.
func appendSignedAccount(ctx context.Context, pool *pgxpool.Pool) error {
	store := eventstore.New(pool)
	sim := stripesim.New(stripesim.Config{Seed: 64, Customers: 18_000, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	batch := make([]domain.Event, 0, 1000)
	for _, ev := range sim.Events() {
		at := time.Unix(ev.Created, 0)
		p := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: ev.Webhook, Secret: secretNow, Timestamp: at})
		e, err := domain.NewEvent(ev.Webhook, domain.SourceWebhook, p.Header)
		if err != nil {
			return err
		}
		e.ReceivedAt = at
		if batch = append(batch, e); len(batch) == cap(batch) {
			if _, err := store.Append(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	_, err := store.Append(ctx, batch)
	return err
}
