package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// BenchmarkReplay rebuilds every read model from a log of realistic simulated events (b.N is
// roughly the number of events: ~11 per customer over 90 days) and reports events/s.
func BenchmarkReplay(b *testing.B) {
	sim := stripesim.New(stripesim.Config{Seed: 64, Customers: max(1, b.N/11), End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := loadB(b, sim.Events())
	b.ResetTimer()
	st, err := projections.Rebuild(context.Background(), db.Pool, projections.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Events)/st.Took.Seconds(), "events/s")
	b.ReportMetric(float64(st.Events), "events")
}
