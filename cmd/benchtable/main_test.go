package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkMRRRecompute/subscriptions=100k-2 3 1 ns/op 333849 movements 1065 replay-subs/s 3825 subs/s
BenchmarkMRRRecompute/subscriptions=20k-2 3 1 ns/op 66769 movements 984.8 replay-subs/s 9273 subs/s
BenchmarkMRRRecompute/one-setting=churn_at(canceled=20%)/subscriptions=100k-2 2 1 ns/op 53331 movements 20.00 revalued-% 12512 subs/s
BenchmarkMRRRecompute/one-setting=paused(paused=0%)/subscriptions=100k-2 2 1 ns/op 0 movements 0 revalued-% 106752 subs/s
BenchmarkAppend/group-commit-2         	   20000	     42000 ns/op	        32.0 events/batch	  21000 events/s	         4.4 p50-ms	        10.1 p99-ms
BenchmarkAppend/group-commit-2         	   20000	     42000 ns/op	        32.0 events/batch	  23000 events/s	         4.4 p50-ms	        12.1 p99-ms
BenchmarkAppend/group-commit-2         	   20000	     42000 ns/op	        32.0 events/batch	  25000 events/s	         4.4 p50-ms	        11.1 p99-ms
BenchmarkAppend/per-event-2            	   20000	     42000 ns/op	   5000 events/s
BenchmarkReplay/events=200k-2   	   1	      10 ns/op	     200000 events	 144950 events/s	 170 peak-heap-MB
BenchmarkReplay/events=200k-2   	   1	      10 ns/op	     200000 events	 146000 events/s	 172 peak-heap-MB
BenchmarkReplay/events=2M-2   	   1	      10 ns/op	     2000000 events	 95000 events/s	 230 peak-heap-MB
BenchmarkReconcileScan-2 1 1 ns/op 2486 events/s 99.4 pct-of-bound
BenchmarkLiveLag/runner=ledger-2 1 1 ns/op 12 p50-lag-ms 31 p99-lag-ms
BenchmarkAPIList/charges-2 1 1 ns/op 3.0 p99-ms
BenchmarkAPIList/subscriptions-2 1 1 ns/op 24.5 p99-ms
BenchmarkVerifySignatures/checker=ledger-2 1 1 ns/op 201248 events 90000 events/s
BenchmarkVerifySignatures/checker=stripe-go-2 1 1 ns/op 201248 events 60000 events/s
BenchmarkReplay-2 is also how a log line may start
`

func TestTable(t *testing.T) {
	s, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.median("BenchmarkAppend/group-commit", "events/s"); v != 23000 {
		t.Fatalf("median of three: %v", v)
	}
	if v, _ := s.median("BenchmarkReplay/events=200k", "events/s"); v != 145475 {
		t.Fatalf("median of two: %v", v)
	}
	got := map[string]row{}
	for _, r := range table(s) {
		got[strings.SplitN(r.what, ",", 2)[0]] = r
	}
	for what, want := range map[string]struct{ figure, met string }{
		"group-commit append":    {"23,000 events/s, p99 11.1 ms", "yes"},
		"replay (ledger replay)": {"145,475 events/s over 200,000 events; 95,000 events/s over 2,000,000 events", "no"},
		"replay peak heap":       {"230 MB at 2,000,000 events (1.35×)", "no"},
		"reconcile events scan":  {"2,486 events/s = 99.4% of the bound", "yes"},
		"projection lag at 1":    {"p99 31.0 ms, p50 12.0 ms", "yes"},
		"API list":               {"p99 24.5 ms (worst case: subscriptions)", "no"},
		"webhook ingest":         {missing, "—"},
		"simulator":              {missing, "—"},
		"MRR recompute after a settings change (tiered": {"3,825 subscriptions/s over 100,000", "no"},
		"signature re-check (verify --signatures)":      {"90,000 events/s over 201,248 webhook events", "yes"},
		"MRR recompute": {"12,512 subscriptions/s over 100,000", "no"},
	} {
		r, ok := got[what]
		if !ok || r.figure != want.figure || r.met != want.met {
			t.Errorf("%s: %+v, want %+v", what, r, want)
		}
	}
}

// The ingest target's 4× is against the plain naive handler: against the naive handler on the
// log only, the table says so.
func TestIngestAgainstWhichNaive(t *testing.T) {
	for _, c := range []struct{ naive, met string }{
		{"2000", "yes"},
		{"5000", "partly: 4× only the naive handler on the log (2.0× the plain one)"},
		{"9000", "partly: 4× only the naive handler on the log (1.1× the plain one)"},
	} {
		s, err := parse(strings.NewReader(`BenchmarkIngest/ledger-2 1 1 ns/op 10000 acked/s 10.0 p99-ms
BenchmarkIngest/naive-2 1 1 ns/op ` + c.naive + ` acked/s 5.0 p99-ms
BenchmarkIngest/naive-log-2 1 1 ns/op 1000 acked/s 50.0 p99-ms
`))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range table(s) {
			if strings.HasPrefix(r.what, "webhook ingest") && r.met != c.met {
				t.Errorf("naive at %s/s: met %q, want %q", c.naive, r.met, c.met)
			}
		}
	}
}
