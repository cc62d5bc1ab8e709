package projections

// SetHistory turns the writing of history on or off, for the benchmarks of what it costs.
func SetHistory(on bool) { historyOff.Store(!on) }
