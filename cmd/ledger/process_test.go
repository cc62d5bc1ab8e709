package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stripeledger/ledger/internal/testsignal"
)

// process is a ledger command running in the background, its stdout and stderr read line by
// line as it prints them. A test waits for the line that says what it needs — the server
// listens, the simulator has played, a reconcile run finished — instead of polling an endpoint
// or the database: the process's own output is the signal.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *output
	exited         chan struct{} // closed once the process has exited and all its output is read
	err            error         // how it exited; set before exited is closed
}

// startLedger starts the ledger binary with env added to a clean environment. The process is
// killed when the test ends if it still runs.
func startLedger(tb testing.TB, env []string, args ...string) *process {
	tb.Helper()
	cmd := exec.Command(ledgerBin, args...)
	cmd.Env = append(baseEnv(), env...)
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "LEDGER_METRICS_ADDR=") }) {
		// Tests run many servers at once: each gets its own metrics port (listening names it).
		cmd.Env = append(cmd.Env, "LEDGER_METRICS_ADDR=127.0.0.1:0")
	}
	p := &process{cmd: cmd, stdout: newOutput(tb), stderr: newOutput(tb), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait() // returns once the output has been copied to stdout and stderr
		p.stdout.end()
		p.stderr.end()
		close(p.exited)
	}()
	tb.Cleanup(p.kill)
	return p
}

// listening waits for serve's "listening" log line and returns the address it names. The
// listener is open when the line is printed (connections made before the server serves wait in
// its queue), and the schema is migrated: the server is ready.
func (p *process) listening(tb testing.TB) string {
	tb.Helper()
	line := p.stderr.waitFor(tb, "its listening line", func(l string) bool { return strings.Contains(l, `"msg":"listening"`) })
	var v struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil || v.Addr == "" {
		tb.Fatalf("no address in the listening line %q (%v)", line, err)
	}
	return v.Addr
}

// metricsAddr is the metrics listener's address serve's listening line names ("" when off).
func (p *process) metricsAddr(tb testing.TB) string {
	tb.Helper()
	line := p.stderr.printedOrWait(tb, "its listening line", func(l string) bool { return strings.Contains(l, `"msg":"listening"`) })
	var v struct {
		MetricsAddr string `json:"metrics_addr"`
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		tb.Fatalf("the listening line %q: %v", line, err)
	}
	return v.MetricsAddr
}

// stop asks the process to stop (SIGTERM), waits for it to exit and says how it did.
func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	return p.err
}

// kill ends the process with SIGKILL and waits for it.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// foldedThrough waits for the live projection's debug line saying a batch reaching position
// was folded (the process must run with --log-level debug), or finds it among the lines already
// printed (another wait may have read past it).
func (p *process) foldedThrough(tb testing.TB, position int) {
	tb.Helper()
	p.stderr.printedOrWait(tb, fmt.Sprintf("the projection to fold position %d", position), func(l string) bool {
		var v struct {
			Msg      string `json:"msg"`
			Position int    `json:"position"`
		}
		return strings.Contains(l, `"msg":"projection batch folded"`) && json.Unmarshal([]byte(l), &v) == nil && v.Position >= position
	})
}

// reconcileRun is the part of serve's "reconcile run finished" log line the tests read.
type reconcileRun struct {
	Msg      string        `json:"msg"`
	Time     time.Time     `json:"time"`
	Job      string        `json:"job"`
	Status   string        `json:"status"`
	Missing  int           `json:"missing"`
	Repaired int           `json:"repaired"`
	Took     time.Duration `json:"took"` // nanoseconds, as slog's JSON handler writes a Duration
}

// reconciledSince waits for a scheduled run of job that began after since and succeeded: what
// Stripe had given up on by then is in the log when it has finished. The log line's time is
// when the run finished, to the millisecond, and took is rounded to one, so a run counts when it
// began more than a millisecond after since.
func (p *process) reconciledSince(tb testing.TB, job string, since time.Time) reconcileRun {
	tb.Helper()
	var run reconcileRun
	p.stderr.waitFor(tb, "a "+job+" run that began after "+since.Format(time.RFC3339Nano), func(l string) bool {
		run = reconcileRun{}
		if !strings.Contains(l, `"msg":"reconcile run finished"`) || json.Unmarshal([]byte(l), &run) != nil {
			return false
		}
		return run.Job == job && run.Status == "succeeded" && run.Time.Add(-run.Took).After(since.Add(time.Millisecond))
	})
	return run
}

// output is one of a process's streams: kept whole for the test to read, and signalled line by
// line.
type output struct {
	mu      sync.Mutex
	all     bytes.Buffer
	part    []byte // the line being written
	lines   testsignal.Signal[outputLine]
	dropped bool
}

type outputLine struct {
	text string
	eof  bool // the stream ended: nothing follows
}

func newOutput(tb testing.TB) *output {
	o := &output{}
	o.lines.Init(tb)
	return o
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped {
		return len(b), nil
	}
	o.all.Write(b)
	o.part = append(o.part, b...)
	for {
		i := bytes.IndexByte(o.part, '\n')
		if i < 0 {
			break
		}
		o.lines.Signal(outputLine{text: string(o.part[:i])})
		o.part = o.part[i+1:]
	}
	return len(b), nil
}

func (o *output) end() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.part) > 0 {
		o.lines.Signal(outputLine{text: string(o.part)})
		o.part = nil
	}
	o.lines.Signal(outputLine{eof: true})
}

// drop stops keeping and signalling what the stream carries: a benchmark's server logs a line
// per request that nobody reads.
func (o *output) drop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropped = true
	o.part = nil
}

// String is everything the stream has carried so far.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.all.String()
}

// printedOrWait is a line the stream has already carried that matches, or else the next one
// (waitFor).
func (o *output) printedOrWait(tb testing.TB, what string, match func(line string) bool) string {
	tb.Helper()
	for l := range strings.SplitSeq(o.String(), "\n") {
		if match(l) {
			return l
		}
	}
	return o.waitFor(tb, what, match)
}

// waitFor reads the stream's lines, from the first not read yet, until one matches, and returns
// it; it fails the test if the stream ends first (the process exited). what names the line for
// that message.
func (o *output) waitFor(tb testing.TB, what string, match func(line string) bool) string {
	tb.Helper()
	l := o.lines.WaitUntil(func(l outputLine) bool { return l.eof || match(l.text) })
	if l.eof {
		tb.Fatalf("the process exited before printing %s; it printed:\n%s", what, o.String())
	}
	return l.text
}
