package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/loadgen"
	"github.com/stripeledger/ledger/internal/testkit"
)

const benchSecret = "whsec_bench_secret"

// BenchmarkIngest sends realistic signed webhooks (2–6 KB, 15 types, 10% duplicates) over
// loopback HTTP at concurrency 64 and reports acknowledged webhooks/s with p50/p99 latency:
//   - ledger: a real `ledger serve` process (verification on the raw bytes, envelope-only
//     decoding, group commit), its live projection off: the ingest path alone, as the naive
//     handlers below have no projection either;
//   - ledger+projection: the same with the live projection folding every event into the read
//     models on the same two cores while the load runs;
//   - naive:  the textbook handler in this process: stripe-go's ConstructEvent (full decode)
//     and one INSERT transaction per request into a plain table (bigserial, no ordering or
//     chain guarantees: Postgres overlaps the concurrent commits freely);
//   - naive-log: the same handler appending each event in its own transaction to the real log
//     (eventstore.Store.Append: commit-ordered positions, hash chain), i.e. the ledger's
//     guarantees without group commit.
//
// The load generator, the server and Postgres share this machine's cores. b.N is the number of
// deliveries.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct{ name, runner string }{{"ledger", "off"}, {"ledger+projection", "on"}} {
		b.Run(c.name, func(b *testing.B) {
			db := testkit.New(b)
			server := startLedger(b, []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=" + benchSecret, "LEDGER_PROJECTION_RUNNER=" + c.runner},
				"serve", "--addr", "127.0.0.1:0")
			addr := server.listening(b)
			server.stderr.drop() // its line per webhook is not kept: the copy would compete for the cores
			runIngest(b, "http://"+addr+"/webhooks/stripe")
		})
	}
	b.Run("naive", func(b *testing.B) {
		db := testkit.New(b)
		pool := db.OpenPool(b, 68)
		if _, err := pool.Exec(context.Background(),
			`CREATE TABLE naive_events (id bigserial PRIMARY KEY, event_id text UNIQUE NOT NULL, type text NOT NULL, payload jsonb NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(naiveHandler(func(ctx context.Context, ev stripe.Event, body []byte) (bool, error) {
			tag, err := pool.Exec(ctx, `INSERT INTO naive_events (event_id, type, payload) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING`,
				ev.ID, string(ev.Type), body)
			return err == nil && tag.RowsAffected() == 0, err
		}))
		defer srv.Close()
		runIngest(b, srv.URL)
	})
	b.Run("naive-log", func(b *testing.B) {
		db := testkit.New(b)
		store := eventstore.New(db.OpenPool(b, 68))
		srv := httptest.NewServer(naiveHandler(func(ctx context.Context, ev stripe.Event, body []byte) (bool, error) {
			e, err := domain.NewEvent(body, domain.SourceWebhook, "t=0,v1=verified")
			if err != nil {
				return false, err
			}
			res, err := store.Append(ctx, []domain.Event{e})
			if err != nil {
				return false, err
			}
			return res[0].Duplicate, res[0].Err
		}))
		defer srv.Close()
		runIngest(b, srv.URL)
	})
}

func runIngest(b *testing.B, url string) {
	// Warm up first (connections, prepared statements, the heap), as a server in service is.
	if b.N > 1 {
		if _, err := loadgen.Run(context.Background(), loadgen.Config{URL: url, Secret: benchSecret, Requests: 3000,
			IDPrefix: fmt.Sprintf("evt_warm%d", time.Now().UnixNano())}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	st, err := loadgen.Run(context.Background(), loadgen.Config{
		URL: url, Secret: benchSecret, Requests: b.N, Concurrency: 64, Seed: uint64(b.N),
		IDPrefix: fmt.Sprintf("evt_bench%d", time.Now().UnixNano()), Timeout: 5 * time.Minute,
	})
	b.StopTimer()
	if err != nil || st.Failed > 0 {
		b.Fatalf("%v: %s (first error %s)", err, st, st.FirstError)
	}
	b.ReportMetric(st.PerSecond(), "acked/s")
	b.ReportMetric(float64(st.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(st.P99.Microseconds())/1000, "p99-ms")
}

// naiveHandler is the baseline: what a first webhook handler usually looks like — verify and
// decode the whole event with stripe-go, then store it in its own transaction.
func naiveHandler(store func(context.Context, stripe.Event, []byte) (dup bool, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ev, err := stripewebhook.ConstructEvent(body, r.Header.Get("Stripe-Signature"), benchSecret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		dup, err := store(r.Context(), ev, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"received":true,"duplicate":%t}`, dup)
	})
}
