package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/stripesim"
)

// Finance-scale read models: a simulated account's rows replicated (new IDs, dates moved back
// in steps of 90 days) to 1,000,000 charges and 100,000 subscriptions with their movements. The
// database is built once and kept on the test server under a name that carries the schema's
// version (testkit.Cached), so later `make bench` runs reuse it.
const (
	wantCharges = 1_000_000
	wantSubs    = 100_000
)

func bigLedger(b *testing.B) *pgxpool.Pool {
	return testkit.Cached(b, "finance", func(ctx context.Context, pool *pgxpool.Pool) error { return buildBig(ctx, pool, wantCharges, wantSubs) })
}

// smallLedger is the same account at a tenth of the size: the second size the MRR figures are
// reported beside.
func smallLedger(b *testing.B) *pgxpool.Pool {
	return testkit.Cached(b, "finance10k", func(ctx context.Context, pool *pgxpool.Pool) error {
		return buildBig(ctx, pool, wantCharges/10, wantSubs/10)
	})
}

func buildBig(ctx context.Context, pool *pgxpool.Pool, wantCharges, wantSubs int) error {
	// Live mode: the series are the platform's live figures by default.
	sim := stripesim.New(stripesim.Config{Seed: 95, Customers: 3000, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), Livemode: true})
	sim.Run(time.Time{})
	var evs []domain.Event
	for _, ev := range sim.Events() {
		e, _ := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
		evs = append(evs, e)
	}
	store := eventstore.New(pool)
	for i := 0; i < len(evs); i += 1000 {
		if _, err := store.Append(ctx, evs[i:min(i+1000, len(evs))]); err != nil {
			return err
		}
	}
	if _, err := projections.Rebuild(ctx, pool, projections.Config{}); err != nil {
		return err
	}
	var charges, subs int
	_ = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger.charges), (SELECT count(*) FROM ledger.subscriptions)`).Scan(&charges, &subs)
	kc, ks := max(1, (wantCharges+charges-1)/charges), max(1, (wantSubs+subs-1)/subs)
	for _, q := range []string{
		// Copies of every column but those changed, whatever the table's columns are.
		fmt.Sprintf(`INSERT INTO ledger.charges SELECT (jsonb_populate_record(c, jsonb_build_object('id', c.id || '_' || n,
			'customer', c.customer || '_' || n, 'created', c.created - n * interval '90 days',
			'event_created', c.event_created - n * interval '90 days'))).*
			FROM ledger.charges c, generate_series(1, %d) n LIMIT %d`, kc, wantCharges-charges),
		fmt.Sprintf(`INSERT INTO ledger.subscriptions (id, customer, app_user_id, status, currency, items, trial_start, trial_end,
			current_period_start, current_period_end, cancel_at_period_end, cancel_at, canceled_at, ended_at, pause_behavior,
			paused, discounts, metadata, mrr, attention, created, livemode, account, event_id, event_created) SELECT s.id || '_' || n, customer || '_' || n, app_user_id || '_' || n, status, currency,
			items, trial_start, trial_end, current_period_start, current_period_end, cancel_at_period_end, cancel_at, canceled_at, ended_at,
			pause_behavior, paused, discounts, metadata, mrr, attention, created - n * interval '90 days', livemode, account, event_id, event_created
			FROM ledger.subscriptions s, generate_series(1, %d) n LIMIT %d`, ks, wantSubs-subs),
		`INSERT INTO ledger.subscription_movements SELECT s.id, m.seq, m.customer || substr(s.id, length(m.subscription) + 1), m.currency, m.kind, m.amount,
			m.mrr_before, m.mrr_after, m.source_events, m.at - (substr(s.id, length(m.subscription) + 2))::int * interval '90 days',
			m.period_start - (substr(s.id, length(m.subscription) + 2))::int * interval '90 days', m.livemode, m.account
			FROM ledger.subscriptions s JOIN ledger.subscription_movements m ON s.id LIKE m.subscription || '\_%'`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("building the finance-scale database: %w", err)
		}
	}
	var first time.Time
	if err := pool.QueryRow(ctx, `SELECT min(at) FROM ledger.subscription_movements`).Scan(&first); err != nil {
		return err
	}
	rates := stripesim.FXRatesCSV("usd", first.Truncate(24*time.Hour), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if _, err := query.New(pool, query.Config{}).ImportRates(ctx, "usd", "stripesim", rates); err != nil {
		return fmt.Errorf("loading the rates: %w", err)
	}
	return nil
}

func serveBig(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(api.New(bigLedger(b), api.Config{Tokens: auth.MustParseEnv(token)}))
	b.Cleanup(srv.Close)
	return srv
}

func fetch(b *testing.B, client *http.Client, url string) (int64, time.Duration) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d", url, resp.StatusCode)
	}
	return n, time.Since(t0)
}

// BenchmarkAPIList is a page of 100 from 1,000,000 charges or 100,000 subscriptions: the first
// page, a filtered page and pages deep in the cursor chain; min(b.N, 500) requests a run.
// Target: p99 ≤ 20 ms.
func BenchmarkAPIList(b *testing.B) {
	srv := serveBig(b)
	client := &http.Client{}
	for _, c := range []struct{ name, path string }{
		{"charges", "/api/v1/charges?limit=100"},
		{"charges-filtered", "/api/v1/charges?limit=100&currency=eur&status=succeeded"},
		{"subscriptions", "/api/v1/subscriptions?limit=100&status=active"},
	} {
		b.Run(c.name, func(b *testing.B) {
			// Cursors for pages deep in the list, collected first.
			var cursors []string
			next := c.path
			for range 20 {
				_, _ = fetch(b, client, srv.URL+next)
				resp := fetchJSON(b, client, srv.URL+next)
				if resp.NextCursor == "" {
					break
				}
				cursors = append(cursors, resp.NextCursor)
				next = c.path + "&cursor=" + resp.NextCursor
			}
			rng := rand.New(rand.NewPCG(1, 2))
			n := min(b.N, 500)
			lat := make([]time.Duration, 0, n)
			b.ResetTimer()
			for i := range n {
				url := srv.URL + c.path
				if i%2 == 1 && len(cursors) > 0 {
					url += "&cursor=" + cursors[rng.IntN(len(cursors))]
				}
				_, d := fetch(b, client, url)
				lat = append(lat, d)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func fetchJSON(b *testing.B, client *http.Client, url string) (p struct {
	NextCursor string `json:"next_cursor"`
}) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &p); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkMRRSeries is a 12-month MRR series over 100,000 subscriptions' movements and
// 1,000,000 charges; min(b.N, 20) requests a run. Target ≤ 200 ms.
func BenchmarkMRRSeries(b *testing.B) {
	srv := serveBig(b)
	client := &http.Client{}
	n := min(b.N, 20)
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for range n {
		_, d := fetch(b, client, srv.URL+"/api/v1/metrics/mrr?interval=month&from=2025-06-01&to=2026-05-31")
		lat = append(lat, d)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkRevenueMetrics is each revenue-metric answer over 12 months, at 100,000 and 10,000
// subscriptions: the MRR series, the movement breakdown, subscribers with churn, ARPA and LTV,
// and MRR in the reporting currency (usd, each movement at its period start's rate, then each
// month at its last day's); min(b.N, 20) requests a run. Target ≤ 200 ms for the MRR series and
// the breakdown at 100k.
func BenchmarkRevenueMetrics(b *testing.B) {
	for _, size := range []struct {
		name string
		pool func(*testing.B) *pgxpool.Pool
	}{{"subs=100k", bigLedger}, {"subs=10k", smallLedger}} {
		for _, c := range []struct {
			name, path string
			fx         query.FX
		}{
			{"mrr", "/api/v1/metrics/mrr?interval=month&from=2025-06-01&to=2026-05-31", query.FX{}},
			{"movements", "/api/v1/metrics/movements?interval=month&from=2025-06-01&to=2026-05-31", query.FX{}},
			{"subscribers", "/api/v1/metrics/subscribers?interval=month&from=2025-06-01&to=2026-05-31", query.FX{}},
			{"reporting-period-start", "/api/v1/metrics/mrr?interval=month&from=2025-06-01&to=2026-05-31&reporting=true", query.FX{Reporting: "usd", RateDate: query.FXPeriodStart}},
			{"reporting-report-date", "/api/v1/metrics/movements?interval=month&from=2025-06-01&to=2026-05-31&reporting=true", query.FX{Reporting: "usd", RateDate: query.FXReportDate}},
		} {
			b.Run(size.name+"/"+c.name, func(b *testing.B) {
				srv := httptest.NewServer(api.New(size.pool(b), api.Config{Tokens: auth.MustParseEnv(token), FX: c.fx}))
				defer srv.Close()
				client := &http.Client{}
				n := min(b.N, 20)
				lat := make([]time.Duration, 0, n)
				b.ResetTimer()
				for range n {
					_, d := fetch(b, client, srv.URL+c.path)
					lat = append(lat, d)
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
			})
		}
	}
}

// previousMRRSQL is the MRR series as the ledger computed it before the revenue metrics (the
// grid and running totals in SQL, the account as IS NOT DISTINCT FROM), run directly on the
// pool: the baseline in the same run as BenchmarkRevenueMetrics' rows.
const previousMRRSQL = `WITH m AS (
	SELECT date_trunc($4, at AT TIME ZONE 'UTC')::date AS period, currency, coalesce(account, '') AS acct,
	       sum(amount) FILTER (WHERE kind = 'new') AS new_mrr, sum(amount) FILTER (WHERE kind = 'expansion') AS expansion_mrr,
	       sum(amount) FILTER (WHERE kind = 'contraction') AS contraction_mrr, sum(amount) FILTER (WHERE kind = 'churn') AS churned_mrr,
	       sum(amount) FILTER (WHERE kind = 'reactivation') AS reactivation_mrr, sum(amount) AS mrr_change,
	       count(*) FILTER (WHERE kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE kind = 'churn') AS subscriber_change
	FROM ledger.subscription_movements WHERE ($3 = '' OR currency = $3) AND livemode = $5 AND ($6 = 'all' OR account IS NOT DISTINCT FROM nullif($6, ''))
	GROUP BY 1, 2, 3
), grid AS (
	SELECT c.currency, c.acct, g::date AS period
	FROM (SELECT currency, acct, min(period) AS first FROM m GROUP BY currency, acct) c,
	     generate_series(c.first, greatest($2::date, c.first), ('1 ' || $4)::interval) g
), p AS (
	SELECT g.period, g.currency, g.acct, (sum(coalesce(m.mrr_change, 0)) OVER w)::bigint AS mrr, (12 * sum(coalesce(m.mrr_change, 0)) OVER w)::bigint AS arr,
	       (sum(coalesce(m.subscriber_change, 0)) OVER w)::bigint AS active_subscribers
	FROM grid g LEFT JOIN m ON m.period = g.period AND m.currency = g.currency AND m.acct = g.acct
	WINDOW w AS (PARTITION BY g.currency, g.acct ORDER BY g.period)
)
SELECT json_build_object('period', period, 'currency', currency, 'livemode', $5::boolean, 'account', nullif(acct, ''),
	'mrr', mrr, 'arr', arr, 'active_subscribers', active_subscribers)::text
FROM p WHERE period >= $1::date AND period <= $2::date ORDER BY currency, acct, period`

// BenchmarkMRRPreviousSQL is previousMRRSQL's 12-month series at both sizes, in the same shape as
// BenchmarkRevenueMetrics' rows.
func BenchmarkMRRPreviousSQL(b *testing.B) {
	for _, size := range []struct {
		name string
		pool func(*testing.B) *pgxpool.Pool
	}{{"subs=100k", bigLedger}, {"subs=10k", smallLedger}} {
		b.Run(size.name, func(b *testing.B) {
			pool := size.pool(b)
			ctx := context.Background()
			from, to := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC)
			n := min(b.N, 20)
			lat := make([]time.Duration, 0, n)
			b.ResetTimer()
			for range n {
				t0 := time.Now()
				rows, err := pool.Query(ctx, previousMRRSQL, from, to, "", "month", true, "")
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
					var s string
					_ = rows.Scan(&s)
				}
				if rows.Err() != nil {
					b.Fatal(rows.Err())
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// BenchmarkCSVExport streams all 1,000,000 charges as CSV over HTTP once a run (whatever b.N),
// sampling the heap while it runs. Target ≥ 100,000 rows/s with flat memory.
func BenchmarkCSVExport(b *testing.B) {
	srv := serveBig(b)
	client := &http.Client{}
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	b.ResetTimer()
	bytes, took := fetch(b, client, srv.URL+"/api/v1/charges?format=csv")
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(wantCharges)/took.Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/float64(1<<20), "csv-MB")
	b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/float64(1<<20), "heap-growth-MB")
}
