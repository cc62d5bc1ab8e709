package stripesim_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripeledger/ledger/stripesim"
)

// benchCustomers gives ~11 events per customer over 90 days.
func benchConfig(b *testing.B) stripesim.Config {
	return stripesim.Config{Seed: uint64(b.N), Customers: max(1, b.N/11), End: end, ArrivalWindow: 30 * 24 * time.Hour}
}

// BenchmarkSimulator measures the simulator alone, so a benchmark that uses it knows it is not
// the bottleneck: generate is the account (events rendered to bytes); generate+deliver also signs
// and POSTs every event over loopback HTTP to an endpoint that answers 200 at once, 64 at a time.
// b.N is roughly the number of events; events/s is exact.
func BenchmarkSimulator(b *testing.B) {
	b.Run("generate", func(b *testing.B) {
		sim := stripesim.New(benchConfig(b))
		b.ResetTimer()
		start := time.Now()
		n := sim.Run(time.Time{})
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("generate+deliver", func(b *testing.B) {
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		}))
		defer sink.Close()
		sim := stripesim.New(benchConfig(b))
		d := stripesim.NewDeliverer(sim, stripesim.DeliveryConfig{URL: sink.URL, Secrets: []string{"whsec_bench"}, Concurrency: 64})
		b.ResetTimer()
		start := time.Now()
		if err := (&stripesim.Runner{Sim: sim, Deliverer: d, Step: time.Hour}).Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		st := d.Stats()
		if st.Delivered != st.Events {
			b.Fatalf("%+v", st)
		}
		b.ReportMetric(float64(st.Delivered)/el.Seconds(), "events/s")
	})
}
