package projections

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/domain"
)

// Metrics are the live runner's Prometheus series. A nil *Metrics records nothing.
type Metrics struct {
	appliedN    prometheus.Counter
	quarantineN prometheus.Counter
	position    prometheus.Gauge
	active      prometheus.Gauge
	lag         prometheus.Histogram
	byVersion   *prometheus.CounterVec
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
		byVersion: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ledger_projection_events_by_api_version_total",
			Help: "Events the live runner folded, by the API version they are rendered at (none: unversioned, as thin events), " +
				"whatever brought them (webhooks, reconciliation, snapshots); known=false for a version the reducers were not " +
				"checked against, read as the nearest older one."}, []string{"api_version", "known"}),
	}
	reg.MustRegister(m.appliedN, m.quarantineN, m.position, m.active, m.lag, m.byVersion)
	return m
}

func (m *Metrics) version(v string) {
	if m != nil {
		m.byVersion.WithLabelValues(domain.VersionLabel(v), strconv.FormatBool(domain.KnownAPIVersion(v))).Inc()
	}
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
