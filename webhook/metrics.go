package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingress counters and histograms exported at /metrics. They never carry a secret
// or a payload; labels are bounded sets (reasons, event types the read models know, API versions).
type Metrics struct {
	Received      prometheus.Counter
	Appended      prometheus.Counter
	Duplicates    prometheus.Counter
	Rejected      *prometheus.CounterVec // by reason
	Quarantined   *prometheus.CounterVec // by reason
	UnknownTypes  prometheus.Counter
	OtherVersions *prometheus.CounterVec // by api_version
	// EndpointMismatch counts deliveries that disagree with the endpoint they came to, by
	// endpoint and reason (eventstore's hold reasons): both bounded sets.
	EndpointMismatch *prometheus.CounterVec
	Latency          *prometheus.HistogramVec
	BatchSize        prometheus.Histogram
	BatchDuration    prometheus.Histogram
	BatchFailures    prometheus.Counter
}

// NewMetrics registers the ingress metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_webhooks_received_total", Help: "Webhook requests received at POST /webhooks/stripe."}),
		Appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_webhooks_appended_total", Help: "Webhook events appended to the log (new event IDs)."}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_webhooks_duplicates_total", Help: "Webhook deliveries of an event ID the log already had."}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_webhooks_rejected_total", Help: "Webhook requests answered non-2xx, by reason."}, []string{"reason"}),
		Quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_webhooks_quarantined_total", Help: "Signed bodies that are not events, kept in ledger.webhook_quarantine, by reason."}, []string{"reason"}),
		UnknownTypes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_webhooks_unknown_type_total", Help: "Signed events of a type no read model folds (stored all the same)."}),
		OtherVersions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_webhooks_other_api_version_total", Help: "Signed events rendered in an API version other than the pinned one (stored all the same)."}, []string{"api_version"}),
		EndpointMismatch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_webhooks_endpoint_mismatch_total", Help: "Signed webhooks whose livemode or account disagrees with the endpoint whose secret verified them (stored, held out of the read models), by endpoint and reason."},
			[]string{"endpoint", "reason"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ledger_webhook_duration_seconds", Help: "Time to answer a webhook request, by status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"code"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ledger_append_batch_events", Help: "Events per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		BatchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ledger_append_batch_duration_seconds", Help: "Duration of one group-commit transaction.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}}),
		BatchFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_append_batch_failures_total", Help: "Group-commit transactions that failed (their callers were answered 503)."}),
	}
	reg.MustRegister(m.Received, m.Appended, m.Duplicates, m.Rejected, m.Quarantined, m.UnknownTypes,
		m.OtherVersions, m.EndpointMismatch, m.Latency, m.BatchSize, m.BatchDuration, m.BatchFailures)
	return m
}

// ObserveBatch is an eventstore.AppenderConfig.OnBatch.
func (m *Metrics) ObserveBatch(events int, took time.Duration, err error) {
	if err != nil {
		m.BatchFailures.Inc()
		return
	}
	m.BatchSize.Observe(float64(events))
	m.BatchDuration.Observe(took.Seconds())
}
