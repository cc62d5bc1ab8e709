package projections

import "github.com/prometheus/client_golang/prometheus"

// SetHistory turns the writing of history on or off, for the benchmarks of what it costs.
func SetHistory(on bool) { historyOff.Store(!on) }

// SetRevalueChunk sets how many subscriptions a recompute values at a time and returns what
// restores it: only for a test that runs alone (not in parallel).
func SetRevalueChunk(n int) (restore func()) {
	old := revalueChunk
	revalueChunk = n
	return func() { revalueChunk = old }
}

// ByVersion is the runner's events-by-API-version counter.
func (m *Metrics) ByVersion() *prometheus.CounterVec { return m.byVersion }
