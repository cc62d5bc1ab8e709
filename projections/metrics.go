package projections

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the live runner's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	appliedN    prometheus.Counter
	quarantineN prometheus.Counter
	position    prometheus.Gauge
	active      prometheus.Gauge
	lag         prometheus.Histogram
}

// NewMetrics registers the runner's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		appliedN: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_projection_events_applied_total",
			Help: "Events folded into the read models by this process's live runner."}),
		quarantineN: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_projection_events_quarantined_total",
			Help: "Events the live runner could not fold and quarantined."}),
		position: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_position",
			Help: "Log position of the last event this process's runner folded."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledger_projection_runner_active",
			Help: "1 while this process runs the projection, 0 while it stands by."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ledger_projection_lag_seconds",
			Help:    "Time from an event's append to its fold by the live runner.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
	}
	reg.MustRegister(m.appliedN, m.quarantineN, m.position, m.active, m.lag)
	return m
}

func (m *Metrics) applied(pos int64, received time.Time) {
	if m == nil {
		return
	}
	m.appliedN.Inc()
	m.position.Set(float64(pos))
	if !received.IsZero() {
		m.lag.Observe(time.Since(received).Seconds())
	}
}

func (m *Metrics) quarantined() {
	if m != nil {
		m.quarantineN.Inc()
	}
}

func (m *Metrics) setActive(on bool) {
	if m == nil {
		return
	}
	if on {
		m.active.Set(1)
	} else {
		m.active.Set(0)
	}
}
