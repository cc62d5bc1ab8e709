package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// Bitemporal history at finance scale. A simulated account's log (90 days) is folded by replay,
// which writes its history tables; their rows are then replicated in SQL (INSERT … SELECT, new
// IDs; copy n's Stripe times moved back n × 2 years / copies, and its log positions back as
// many positions as the log holds for that much time, so that the copies fill two years as one
// busier account would, known in the order they happened) to the benchmark's size: charges_history (with the disputes it derives from) to the
// number of charges, subscription_movements_history to a tenth as many subscriptions. Built once
// per size and kept on the test server (testkit.Cached).

// historyLedger is the database of n charges' and n/10 subscriptions' history, and the log
// position its last copy is known from.
func historyLedger(b *testing.B, charges int) (*pgxpool.Pool, int64) {
	pool := testkit.Cached(b, fmt.Sprintf("asof_%d", charges), func(ctx context.Context, pool *pgxpool.Pool) error {
		return buildHistory(ctx, pool, charges)
	})
	var top int64
	if err := pool.QueryRow(context.Background(), `SELECT max(known_from) FROM ledger.charges_history`).Scan(&top); err != nil {
		b.Fatal(err)
	}
	return pool, top
}

func buildHistory(ctx context.Context, pool *pgxpool.Pool, charges int) error {
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
	head := int64(len(evs))
	var have, subs int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(DISTINCT id) FROM ledger.charges_history),
		(SELECT count(DISTINCT subscription) FROM ledger.subscription_movements_history)`).Scan(&have, &subs); err != nil {
		return err
	}
	k := (charges + have - 1) / have // copies, the originals being the newest
	ks := (charges/10 + subs - 1) / subs
	for _, c := range []struct {
		table, id string
		suffix    []string // ID columns the copies rename
		copies    int
		limit     int // copies' objects
	}{
		{"charges_history", "id", []string{"id", "customer"}, k, charges - have},
		{"disputes_history", "id", []string{"id", "charge"}, k, -1},
		{"subscription_movements_history", "subscription", []string{"subscription", "customer"}, ks, charges/10 - subs},
	} {
		if err := replicate(ctx, pool, c.table, c.id, c.suffix, c.copies, c.limit, head); err != nil {
			return fmt.Errorf("building the history database: %s: %w", c.table, err)
		}
	}
	_, err := pool.Exec(ctx, `ANALYZE`)
	return err
}

// replicate adds copies 1..copies of table's rows (the objects of at most limit copies' worth,
// -1 for all): the suffix columns get "_<copy>", the Stripe times (created, valid_from,
// event_created, at) and known_from move back a step a copy, and the originals are moved to be
// known last.
func replicate(ctx context.Context, pool *pgxpool.Pool, table, id string, suffix []string, copies, limit int, head int64) error {
	rows, err := pool.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = 'ledger' AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		return err
	}
	var cols []string
	for rows.Next() {
		var c string
		_ = rows.Scan(&c)
		cols = append(cols, c)
	}
	rows.Close()
	// Copy n moves back n steps of Stripe time and of log positions (the log's rate: head
	// positions over the account's 90 days).
	step := int64(730*24*3600) / int64(copies)
	shift := head * step / (90 * 24 * 3600)
	exprs := make([]string, len(cols))
	for i, c := range cols {
		switch {
		case slices.Contains(suffix, c):
			exprs[i] = fmt.Sprintf("t.%s || '_' || n", c)
		case slices.Contains([]string{"created", "valid_from", "event_created", "at"}, c):
			exprs[i] = fmt.Sprintf("t.%s - n * interval '%d seconds'", c, step)
		case c == "known_from":
			exprs[i] = fmt.Sprintf("t.known_from + (%d - n) * %d", copies, shift)
		default:
			exprs[i] = "t." + c
		}
	}
	cond := ""
	if limit >= 0 {
		// The first limit objects of the copies: copy by copy, objects by ID.
		cond = fmt.Sprintf(`WHERE (n - 1) * (SELECT count(DISTINCT %s) FROM ledger.%s) + t.rk <= %d`, id, table, limit)
	}
	q := fmt.Sprintf(`INSERT INTO ledger.%s (%s) SELECT %s FROM (SELECT h.*, dense_rank() OVER (ORDER BY h.%s) AS rk FROM ledger.%s h) t,
		generate_series(1, %d) n %s`, table, strings.Join(cols, ", "), strings.Join(exprs, ", "), id, table, copies, cond)
	if _, err := pool.Exec(ctx, q); err != nil {
		return err
	}
	_, err = pool.Exec(ctx, fmt.Sprintf(`UPDATE ledger.%s SET known_from = known_from + %d WHERE %s NOT LIKE '%%\_%%'`, table, int64(copies)*shift, id))
	return err
}

// BenchmarkAsOfPage is a page of 100 charges at a cut, over 100,000 and 1,000,000 charges'
// history in the same run: as_of alone (spread over the two years), known_at alone (within the
// last month) and both (a period's end as known up to a month later), the first page and pages
// deep in the cursor chain; min(b.N, 300) requests a case and run.
// Target at 1M: p99 ≤ 50 ms.
func BenchmarkAsOfPage(b *testing.B) {
	for _, size := range []int{100_000, 1_000_000} {
		pool, top := historyLedger(b, size)
		srv := httptest.NewServer(api.New(pool, api.Config{Tokens: auth.MustParseEnv(token)}))
		client := &http.Client{}
		end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		for _, c := range []string{"as_of", "known_at", "both"} {
			b.Run(fmt.Sprintf("charges=%s/%s", count(size), c), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(3, uint64(size)))
				// Positions follow time at about top positions over two years: a month is
				// top/24 of them. known_at is within the last month (what a month-end close
				// knew); with as_of, it is up to a month after as_of (a period's end, as known
				// at its close).
				month := top / 24
				cut := func() string {
					back := time.Duration(rng.Int64N(int64(700 * 24 * time.Hour)))
					asOf := end.Add(-back).Format(time.RFC3339)
					switch c {
					case "as_of":
						return "as_of=" + asOf
					case "known_at":
						return fmt.Sprintf("known_at=position:%d", top-rng.Int64N(month))
					}
					at := top - int64(float64(top)*back.Hours()/(730*24))
					return fmt.Sprintf("as_of=%s&known_at=position:%d", asOf, min(top, at+rng.Int64N(month)))
				}
				// Cursors deep in a few cuts' lists, collected first.
				var deep []string
				for range 5 {
					path := "/api/v1/charges?limit=100&" + cut()
					next := path
					for range 10 {
						p := fetchJSON(b, client, srv.URL+next)
						if p.NextCursor == "" {
							break
						}
						deep = append(deep, path+"&cursor="+p.NextCursor)
						next = path + "&cursor=" + p.NextCursor
					}
				}
				n := min(b.N, 300)
				lat := make([]time.Duration, 0, n)
				b.ResetTimer()
				for i := range n {
					url := "/api/v1/charges?limit=100&" + cut()
					if i%2 == 1 && len(deep) > 0 {
						url = deep[rng.IntN(len(deep))]
					}
					_, d := fetch(b, client, srv.URL+url)
					lat = append(lat, d)
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
		b.Run(fmt.Sprintf("mrr/subscriptions=%s", count(size/10)), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(4, uint64(size)))
			n := min(b.N, 20)
			lat := make([]time.Duration, 0, n)
			b.ResetTimer()
			for i := range n {
				url := fmt.Sprintf("/api/v1/metrics/mrr?interval=month&from=2025-06-01&to=2026-05-31&known_at=position:%d", top/2+rng.Int64N(top/2))
				if i%2 == 1 {
					url += "&as_of=" + end.Add(-time.Duration(rng.Int64N(int64(90*24*time.Hour)))).Format(time.RFC3339)
				}
				_, d := fetch(b, client, srv.URL+url)
				lat = append(lat, d)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
		srv.Close()
	}
}

func count(n int) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dk", n/1000)
}
