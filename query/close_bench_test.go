package query_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
	"github.com/stripeledger/ledger/stripesim"
)

// BenchmarkCloseShow is what `ledger close show` costs: May's lines computed again from the read
// models and compared, object by object, with the frozen ones, at two account sizes.
func BenchmarkCloseShow(b *testing.B) {
	for _, customers := range []int{200, 800} {
		b.Run(fmt.Sprintf("customers=%d", customers), func(b *testing.B) {
			sim := stripesim.New(stripesim.Config{Seed: 41, Customers: customers, Duration: 60 * 24 * time.Hour, End: closeEnd})
			sim.Run(time.Time{})
			db := testkit.New(b)
			ctx := context.Background()
			var evs []domain.Event
			for _, ev := range sim.Events() {
				e, _ := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
				evs = append(evs, e)
			}
			if _, err := eventstore.New(db.Pool).Append(ctx, evs); err != nil {
				b.Fatal(err)
			}
			if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
				b.Fatal(err)
			}
			q := query.New(db.Pool, query.Config{})
			if _, err := q.ClosePeriod(ctx, may, time.Now(), ""); err != nil {
				b.Fatal(err)
			}
			var lines int
			_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.close_lines`).Scan(&lines)
			for b.Loop() {
				if _, err := q.ReadClose(ctx, may, query.Scope{Account: query.AllAccounts}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(lines), "lines")
		})
	}
}
