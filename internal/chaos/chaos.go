// Package chaos is the fault harness behind `make chaos`: it runs two `ledger serve` processes on a
// private Postgres cluster behind a round-robin proxy, feeds them a simulated Stripe account
// (steady load, Stripe's retries, duplicates), and while the account plays it kills the ledger with
// SIGKILL, kills the process holding the projection lock and watches the other take over, and
// restarts Postgres. At the end it proves that nothing acknowledged was lost: every event the
// simulator saw acknowledged is in the log once, every event it gave up on was recovered by
// reconciliation, the hash chain verifies, and the live read models equal a fresh replay and the
// simulator's own state. Nothing the processes printed or served as metrics holds a secret.
package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// Config sizes a run. Zero values take the documented defaults.
type Config struct {
	// LedgerBin is the ledger binary to run (required).
	LedgerBin string
	// DataDir holds the private Postgres cluster and the processes' logs; it is emptied first. It
	// must be reachable by the postgres user when the harness runs as root. Required.
	DataDir string
	// Customers in the simulated account; default 250.
	Customers int
	// SimDays is how much simulated time the account spans; default 25 (inside Stripe's 30 days of
	// Events API, so reconciliation can recover every event the webhooks lost).
	SimDays int
	// Duration is how long, in real time, the account takes to play; default 60 s.
	Duration time.Duration
	// Kills is how many times a ledger process is killed with SIGKILL; default 6. Every other kill
	// hits the process holding the projection lock, and the harness waits for the other to take
	// over before restarting it.
	Kills int
	// PostgresRestarts is how many times Postgres is stopped and started mid-load; default 1; < 0 none.
	PostgresRestarts int
	// Seed makes the account and the fault times repeatable; default 1.
	Seed uint64
	// Out receives progress lines and the final counts; default os.Stdout.
	Out io.Writer
	// Keep leaves the cluster running and DataDir in place at the end (for inspection).
	Keep bool
}

func (c *Config) setDefaults() {
	if c.Customers <= 0 {
		c.Customers = 250
	}
	if c.SimDays <= 0 {
		c.SimDays = 25
	}
	if c.Duration <= 0 {
		c.Duration = time.Minute
	}
	if c.Kills <= 0 {
		c.Kills = 6
	}
	if c.PostgresRestarts == 0 {
		c.PostgresRestarts = 1
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
}

// Report is what a run proved. Lost is zero and Failures empty when the ledger kept its promises.
type Report struct {
	Events       int // events the simulated account emitted
	Attempts     int // webhook deliveries attempted (retries and duplicates included)
	Acknowledged int // events the simulator saw answered 2xx at least once
	Retried      int // delivery attempts after a failed one
	Duplicates   int // extra deliveries of delivered events
	GaveUp       int // events whose every attempt failed
	Recovered    int // events appended by reconciliation (given-up ones and any not yet retried)
	Lost         int // events the simulator emitted that are not in the log at the end

	Kills            int           // SIGKILLs sent
	Takeovers        int           // lock holders killed and replaced by the other process
	LongestTakeover  time.Duration // from the kill to the other process holding the lock
	PostgresRestarts int
	UnplannedExits   int // ledger processes that exited without being killed

	Checkpoints        int    // checkpoints the serve processes wrote during the run
	CheckpointsProved  int    // of them, those the final log still extends (ledger verify --checkpoints)
	SignaturesVerified string // ledger verify --signatures's summary line

	Failures []string // each check that did not hold
}

// OK says whether every check held.
func (r Report) OK() bool { return r.Lost == 0 && len(r.Failures) == 0 }

// harness is one run's moving parts.
type harness struct {
	cfg     Config
	out     *lockedBuffer // everything printed, for the secret check
	pgOpts  pgboot.Options
	dbURL   string
	pool    *pgxpool.Pool
	env     []string
	secrets []string
	procs   []*proc
	rng     *mrand.Rand
	report  Report
	// checkpointKey and checkpoints are the run's checkpoint key file and checkpoint sink.
	checkpointKey, checkpoints string
	// unplanned counts exits the harness did not cause; supervisors add to it concurrently.
	unplanned atomic.Int64
}

// Run plays the account under faults and checks the outcome. The error is for a harness that could
// not run at all; a ledger that broke a promise is a Report with failures.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.setDefaults()
	if cfg.LedgerBin == "" || cfg.DataDir == "" {
		return Report{}, errors.New("chaos: LedgerBin and DataDir are required")
	}
	h := &harness{cfg: cfg, out: &lockedBuffer{w: cfg.Out}, rng: mrand.New(mrand.NewPCG(cfg.Seed, 0xc4a05))}
	err := h.startPostgres(ctx)
	if err == nil {
		err = h.run(ctx)
	}
	h.stopAll()
	if h.pool != nil {
		h.pool.Close()
	}
	if !cfg.Keep && h.pgOpts.DataDir != "" {
		_ = pgboot.StopCluster(context.WithoutCancel(ctx), h.pgOpts.DataDir)
		_ = os.RemoveAll(h.cfg.DataDir)
	}
	return h.report, err
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.out, "chaos: "+format+"\n", args...)
}

func (h *harness) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.report.Failures = append(h.report.Failures, msg)
	h.logf("FAIL %s", msg)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startPostgres starts a private cluster in a fresh DataDir: the harness must be able to stop and
// start it, which it cannot do to a shared server.
func (h *harness) startPostgres(ctx context.Context) error {
	abs, err := filepath.Abs(h.cfg.DataDir)
	if err != nil {
		return err
	}
	h.cfg.DataDir = abs
	pgDir := filepath.Join(abs, "pg")
	_ = pgboot.StopCluster(ctx, pgDir)
	if err := os.RemoveAll(abs); err != nil {
		return fmt.Errorf("chaos: could not empty %s: %w", abs, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	// No environment variable and no probe: always the private cluster, whatever this machine has.
	h.pgOpts = pgboot.Options{EnvVars: []string{"LEDGER_CHAOS_NO_DATABASE_URL"}, Probe: "-", DataDir: pgDir,
		Database: "ledger_chaos", Install: true, Log: h.out}
	port, err := pgboot.FreePort()
	if err != nil {
		return err
	}
	h.pgOpts.Port = port
	db, err := pgboot.Ensure(ctx, h.pgOpts)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	h.pgOpts.Port = db.Port
	h.dbURL = db.URL
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 4
	h.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	return err
}

func (h *harness) restartPostgres(ctx context.Context) error {
	h.logf("restarting Postgres")
	if err := pgboot.StopCluster(ctx, h.pgOpts.DataDir); err != nil {
		return err
	}
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	if _, err := pgboot.Ensure(ctx, h.pgOpts); err != nil {
		return err
	}
	h.report.PostgresRestarts++
	return nil
}

func (h *harness) run(ctx context.Context) error {
	cfg := h.cfg
	webhookSecret := "whsec_chaos_" + randomHex(12)
	apiKey := "sk_test_chaos_" + randomHex(12)
	token := "tok_chaos_" + randomHex(12)
	h.secrets = []string{webhookSecret, apiKey, token}

	if out, err := h.ledger(ctx, "migrate"); err != nil {
		return fmt.Errorf("chaos: migrate: %w: %s", err, out)
	}

	// The simulated account: test mode (Stripe retries after 1, 2 and 3 hours of simulated time,
	// a fraction of a second here, so faults make it give up on some events), duplicates, and
	// everything within the Events API's 30 days.
	end := time.Now().UTC().Truncate(time.Second)
	simCfg := stripesim.Config{Seed: cfg.Seed, Customers: cfg.Customers, End: end, Duration: time.Duration(cfg.SimDays) * 24 * time.Hour}
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sim := stripesim.New(simCfg)
	deliverer := stripesim.NewDeliverer(sim, stripesim.DeliveryConfig{
		URL: "http://" + proxyLn.Addr().String() + "/webhooks/stripe", Secrets: []string{webhookSecret},
		DupRate: 0.03, Timeout: 5 * time.Second, Concurrency: 16,
	})
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	apiSrv := &http.Server{Handler: stripesim.NewServer(sim, deliverer, stripesim.ServerConfig{APIKey: apiKey}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = apiSrv.Serve(apiLn) }()
	defer apiSrv.Close()

	h.env = append(cleanEnv(), "DATABASE_URL="+h.dbURL, "STRIPE_WEBHOOK_SECRET="+webhookSecret, "STRIPE_SECRET_KEY="+apiKey,
		"STRIPE_API_BASE=http://"+apiLn.Addr().String(), "LEDGER_API_TOKEN="+token,
		"LEDGER_RECONCILE_SCHEDULE=events-fast=@every 3s; events=@every 7s")
	// Checkpoints every 2 s from whichever process holds their lease, through the kills; the
	// final check proves the log extends every one of them.
	h.checkpointKey = filepath.Join(h.cfg.DataDir, "checkpoint.key")
	h.checkpoints = filepath.Join(h.cfg.DataDir, "checkpoints.jsonl")
	if out, err := h.ledger(ctx, "checkpoint", "keygen", "--out", h.checkpointKey); err != nil {
		return fmt.Errorf("chaos: checkpoint keygen: %w: %s", err, out)
	}
	h.env = append(h.env, "LEDGER_CHECKPOINT_KEY="+h.checkpointKey, "LEDGER_CHECKPOINT_SINK=file:"+h.checkpoints,
		"LEDGER_CHECKPOINT_INTERVAL=2s")

	for i := range 2 {
		port, err := pgboot.FreePort()
		if err != nil {
			return err
		}
		mport, err := pgboot.FreePort()
		if err != nil {
			return err
		}
		p := &proc{h: h, name: fmt.Sprintf("serve-%c", 'a'+i), addr: "127.0.0.1:" + strconv.Itoa(port), metrics: "127.0.0.1:" + strconv.Itoa(mport)}
		h.procs = append(h.procs, p)
		p.start()
	}
	for _, p := range h.procs {
		if err := p.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	px := newProxy(h.procs)
	proxySrv := &http.Server{Handler: px, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = proxySrv.Serve(proxyLn) }()
	defer proxySrv.Close()
	h.logf("two ledger serve processes (%s, %s) behind a round-robin proxy on %s; Postgres on 127.0.0.1:%d; %d customers over %d simulated days in %s",
		h.procs[0].addr, h.procs[1].addr, proxyLn.Addr(), h.pgOpts.Port, cfg.Customers, cfg.SimDays, cfg.Duration)

	// Play the account and inject the faults on a schedule spread over the same time.
	runner := &stripesim.Runner{Sim: sim, Deliverer: deliverer, Speed: simCfg.Duration.Seconds() / cfg.Duration.Seconds()}
	played := make(chan error, 1)
	go func() { played <- runner.Run(ctx) }()
	faultErr := h.faults(ctx)
	if err := <-played; err != nil {
		return fmt.Errorf("chaos: the simulator stopped: %w", err)
	}
	if faultErr != nil {
		return faultErr
	}
	st := deliverer.Stats()
	h.logf("the account has played: %d events, %d attempts, %d delivered, %d retried, %d duplicates, %d given up; proxy answered %d 502s",
		st.Events, st.Attempts, st.Delivered, st.Retried, st.Duplicates, st.GaveUp, px.failed.Load())
	return h.check(ctx, sim, deliverer)
}

// faults kills and restarts on a schedule spread evenly over the run, with some jitter.
func (h *harness) faults(ctx context.Context) error {
	n := h.cfg.Kills + max(0, h.cfg.PostgresRestarts)
	slot := h.cfg.Duration / time.Duration(n+1)
	start := time.Now()
	pgAt := map[int]bool{}
	for i := range max(0, h.cfg.PostgresRestarts) {
		pgAt[(i+1)*n/(h.cfg.PostgresRestarts+1)] = true
	}
	kills := 0
	for i := range n {
		at := start.Add(time.Duration(i+1)*slot + time.Duration(h.rng.Int64N(int64(slot/2))) - slot/4)
		select {
		case <-time.After(time.Until(at)):
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, p := range h.procs {
			if err := p.waitReady(ctx, 90*time.Second); err != nil {
				return err
			}
		}
		if pgAt[i] {
			if err := h.restartPostgres(ctx); err != nil {
				return fmt.Errorf("chaos: %w", err)
			}
			continue
		}
		if kills%2 == 0 {
			if err := h.killHolder(ctx); err != nil {
				return err
			}
		} else {
			p := h.procs[h.rng.IntN(len(h.procs))]
			h.logf("SIGKILL %s", p.name)
			p.kill(nil)
		}
		kills++
		h.report.Kills++
	}
	return nil
}

var holderPID = regexp.MustCompile(`pid (\d+)\)`)

// lockHolder is the process holding the projection runner's lock, from the application name the
// runner gives its lock connection.
func (h *harness) lockHolder(ctx context.Context) (*proc, error) {
	var apps []string
	rows, err := h.pool.Query(ctx, `SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'ledger projection %'`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, a := range apps {
		m := holderPID.FindStringSubmatch(a)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		for _, p := range h.procs {
			if p.pid() == pid {
				return p, nil
			}
		}
	}
	return nil, nil
}

// killHolder kills the process holding the projection lock and keeps it down until the other one
// holds the lock: the takeover the issue asks to see.
func (h *harness) killHolder(ctx context.Context) error {
	var holder *proc
	deadline := time.Now().Add(30 * time.Second)
	for holder == nil {
		var err error
		if holder, err = h.lockHolder(ctx); err != nil {
			return fmt.Errorf("chaos: could not find the lock holder: %w", err)
		}
		if holder == nil {
			if time.Now().After(deadline) {
				h.fail("no process held the projection lock for 30 s")
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	release := make(chan struct{})
	defer close(release)
	killed := time.Now()
	h.logf("SIGKILL %s (holds the projection lock)", holder.name)
	holder.kill(release)
	deadline = killed.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		now, err := h.lockHolder(ctx)
		if err == nil && now != nil && now != holder {
			took := time.Since(killed)
			h.report.Takeovers++
			h.report.LongestTakeover = max(h.report.LongestTakeover, took)
			h.logf("%s took over the projection lock after %s", now.name, took.Round(time.Millisecond))
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.fail("no process took over the projection lock within 30 s of killing %s", holder.name)
	return nil
}

// check runs the end-of-run proofs.
func (h *harness) check(ctx context.Context, sim *stripesim.Sim, d *stripesim.Deliverer) error {
	for _, p := range h.procs {
		if err := p.waitReady(ctx, 90*time.Second); err != nil {
			return err
		}
	}
	// One reconciliation run over the account's whole span, from the CLI, as an operator would after
	// an incident. A run of the same job in progress (or one a kill left behind, until its heartbeat
	// is stale) makes it wait its turn.
	window := fmt.Sprintf("%dh", h.cfg.SimDays*24+24)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := h.ledger(ctx, "reconcile", "run", "--job", "events", "--since", window)
		if err == nil {
			h.logf("reconcile: %s", strings.TrimSpace(lastLine(out)))
			break
		}
		if !strings.Contains(out, "already in progress") || time.Now().After(deadline) {
			return fmt.Errorf("chaos: reconcile run: %w: %s", err, out)
		}
		time.Sleep(2 * time.Second)
	}

	// The live projection catches up with everything, reconciled events included.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		head, folded, quarantined, err := h.projected(ctx)
		if err == nil && folded >= head {
			if quarantined > 0 {
				h.fail("%d events quarantined by the live projection", quarantined)
			}
			break
		}
		if time.Now().After(deadline) {
			h.fail("the live projection did not catch up: folded %d of %d (%v)", folded, head, err)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Metrics are part of what the processes expose: scrape them for the secret check.
	var exposed bytes.Buffer
	for _, p := range h.procs {
		if resp, err := http.Get("http://" + p.metrics + "/metrics"); err == nil {
			_, _ = io.Copy(&exposed, resp.Body)
			resp.Body.Close()
		}
	}
	h.stopAll()

	h.checkLog(ctx, sim, d)

	if out, err := h.ledger(ctx, "verify"); err != nil {
		h.fail("ledger verify: %v: %s", err, out)
	} else {
		h.logf("verify: %s", strings.TrimSpace(out))
	}
	h.checkIntegrity(ctx)

	live, err := h.dump(ctx)
	if err != nil {
		return err
	}
	if out, err := h.ledger(ctx, "replay"); err != nil {
		h.fail("ledger replay: %v: %s", err, out)
	}
	replayed, err := h.dump(ctx)
	if err != nil {
		return err
	}
	for _, table := range readModels {
		if live[table] != replayed[table] {
			h.fail("ledger.%s: the live read model differs from a fresh replay", table)
		}
	}
	h.checkTruth(ctx, sim)

	all := h.out.String() + exposed.String()
	for _, p := range h.procs {
		all += p.logs.String()
	}
	for _, s := range h.secrets {
		if strings.Contains(all, s) {
			h.fail("a secret (%s…) appeared in what the run printed or exposed", s[:8])
		}
	}
	h.logf("secrets: none of the %d appeared in %d bytes of logs, CLI output and metrics", len(h.secrets), len(all))
	h.summary()
	return nil
}

// checkIntegrity proves the log against the checkpoints written during the run and re-checks
// every webhook's signature: each event came through the proxy signed by the simulator, so every
// one must verify (none unverifiable).
func (h *harness) checkIntegrity(ctx context.Context) {
	if b, err := os.ReadFile(h.checkpoints); err != nil {
		h.fail("reading the checkpoints: %v", err)
	} else {
		h.report.Checkpoints = bytes.Count(b, []byte("\n"))
	}
	if h.report.Checkpoints == 0 {
		h.fail("no checkpoint was written during the run")
		return
	}
	out, err := h.ledger(ctx, "verify", "--signatures", "--checkpoints", h.checkpoints, "--public-key", h.checkpointKey+".pub")
	for _, line := range strings.Split(out, "\n") {
		var proved, of int
		if _, serr := fmt.Sscanf(line, "checkpoints: %d of %d verified", &proved, &of); serr == nil {
			h.report.CheckpointsProved = proved
		}
		if strings.HasPrefix(line, "signatures: ") {
			h.report.SignaturesVerified = strings.TrimPrefix(line, "signatures: ")
		}
	}
	if err != nil {
		h.fail("ledger verify --signatures --checkpoints: %v: %s", err, lastLine(out))
	}
	if h.report.CheckpointsProved != h.report.Checkpoints {
		h.fail("the log extends %d of the %d checkpoints written", h.report.CheckpointsProved, h.report.Checkpoints)
	}
	h.logf("integrity: %d of %d checkpoints proved; signatures %s", h.report.CheckpointsProved, h.report.Checkpoints, h.report.SignaturesVerified)
}

// projected is the log's head, the live projection's checkpoint and how many events it has
// quarantined.
func (h *harness) projected(ctx context.Context) (head, folded int64, quarantined int, err error) {
	store := eventstore.New(h.pool)
	tip, err := store.Head(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	if folded, err = store.Checkpoint(ctx, "read_models"); err != nil {
		return 0, 0, 0, err
	}
	if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM ledger.projection_quarantine`).Scan(&quarantined); err != nil {
		return 0, 0, 0, fmt.Errorf("could not count the quarantine: %w", err)
	}
	return tip.Position, folded, quarantined, nil
}

// checkLog compares the log with what the simulator saw.
func (h *harness) checkLog(ctx context.Context, sim *stripesim.Sim, d *stripesim.Deliverer) {
	source := map[string]string{}
	// Every event once, in whatever order the table gives them: one sequential pass.
	err := eventstore.New(h.pool).Scan(ctx, eventstore.Filter{Unordered: true}, func(ev *eventstore.Record) error {
		if _, dup := source[ev.ID]; dup {
			h.fail("event %s is in the log twice", ev.ID)
		}
		source[ev.ID] = string(ev.Source)
		return nil
	})
	if err != nil {
		h.fail("reading the log: %v", err)
	}

	acked := map[string]bool{}
	st := d.Stats()
	for _, a := range d.Log() {
		if a.Status >= 200 && a.Status < 300 {
			acked[a.EventID] = true
		}
	}
	r := &h.report
	r.Attempts, r.Retried, r.Duplicates, r.GaveUp = st.Attempts, st.Retried, st.Duplicates, st.GaveUp
	r.Acknowledged = len(acked)
	emitted := map[string]bool{}
	for _, ev := range sim.Events() {
		emitted[ev.ID] = true
		r.Events++
		src, ok := source[ev.ID]
		switch {
		case !ok:
			r.Lost++
			if acked[ev.ID] {
				h.fail("event %s was acknowledged but is not in the log", ev.ID)
			} else if ev.GaveUp {
				h.fail("event %s was given up on and not recovered", ev.ID)
			} else {
				h.fail("event %s is not in the log", ev.ID)
			}
		case ev.GaveUp && src != "reconcile" && !acked[ev.ID]:
			// Stripe gave up, yet the webhook path has it: a delivery committed before its process
			// died, whose 200 never reached Stripe. That is the log doing its job.
		}
		if ok && src == "reconcile" {
			r.Recovered++
		}
	}
	for id := range source {
		if !emitted[id] {
			h.fail("event %s is in the log but the account never emitted it", id)
		}
	}
}

// readModels are the tables compared between the live projection and a replay: every table
// the read models' declarations make.
var readModels = projections.Tables()

func (h *harness) dump(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, t := range readModels {
		var s *string
		if err := h.pool.QueryRow(ctx, `SELECT json_agg(r ORDER BY r::text)::text FROM ledger.`+t+` r`).Scan(&s); err != nil {
			return nil, fmt.Errorf("chaos: dumping ledger.%s: %w", t, err)
		}
		if s != nil {
			out[t] = *s
		}
	}
	return out, nil
}

// truthChecks compare the fields finance relies on with the simulator's objects; each query counts
// the objects whose row is missing or differs.
var truthChecks = map[string]string{
	"subscriptions": `o->>'status' IS DISTINCT FROM r.status
		OR (o->>'current_period_end')::bigint IS DISTINCT FROM extract(epoch FROM r.current_period_end)::bigint
		OR (o->>'cancel_at_period_end')::boolean IS DISTINCT FROM r.cancel_at_period_end`,
	"charges": `o->>'status' IS DISTINCT FROM r.status OR (o->>'amount')::bigint IS DISTINCT FROM r.amount
		OR (o->>'amount_refunded')::bigint IS DISTINCT FROM r.amount_refunded OR (o->>'refunded')::boolean IS DISTINCT FROM r.refunded`,
	"invoices":          `o->>'status' IS DISTINCT FROM r.status OR (o->>'amount_paid')::bigint IS DISTINCT FROM r.amount_paid`,
	"refunds":           `o->>'status' IS DISTINCT FROM r.status OR (o->>'amount')::bigint IS DISTINCT FROM r.amount`,
	"disputes":          `o->>'status' IS DISTINCT FROM r.status OR (o->>'amount')::bigint IS DISTINCT FROM r.amount`,
	"customers":         `r.id IS NULL`,
	"checkout_sessions": `o->>'status' IS DISTINCT FROM r.status`,
}

func (h *harness) checkTruth(ctx context.Context, sim *stripesim.Sim) {
	truth := sim.Truth()
	compared := 0
	for kind, cond := range truthChecks {
		raw, ok := truth.Objects[kind]
		if !ok {
			h.fail("the simulator has no %s", kind)
			continue
		}
		var objects, differ, rowsN int
		err := h.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE r.id IS NULL OR `+cond+`),
			(SELECT count(*) FROM ledger.`+kind+`)
			FROM jsonb_array_elements($1::jsonb) o LEFT JOIN ledger.`+kind+` r ON r.id = o->>'id'`, string(raw)).Scan(&objects, &differ, &rowsN)
		if err != nil {
			h.fail("comparing ledger.%s with the account: %v", kind, err)
			continue
		}
		if differ != 0 || rowsN != objects {
			h.fail("ledger.%s: %d of the account's %d objects missing or different; %d rows", kind, differ, objects, rowsN)
		}
		compared += objects
	}
	h.logf("truth: the read models match the account's %d objects", compared)
}

func (h *harness) summary() {
	h.report.UnplannedExits = int(h.unplanned.Load())
	r := h.report
	h.logf("kills %d (lock holder %d, longest takeover %s), Postgres restarts %d, unplanned exits %d",
		r.Kills, r.Takeovers, r.LongestTakeover.Round(time.Millisecond), r.PostgresRestarts, r.UnplannedExits)
	if r.OK() {
		h.logf("PASS")
	} else {
		h.logf("FAIL: %d checks did not hold", len(r.Failures))
	}
	fmt.Fprintf(h.out, "sent          %d events (%d attempts, %d duplicates)\n", r.Events, r.Attempts, r.Duplicates)
	fmt.Fprintf(h.out, "acknowledged  %d\n", r.Acknowledged)
	fmt.Fprintf(h.out, "retried       %d attempts (%d events given up by the sender)\n", r.Retried, r.GaveUp)
	fmt.Fprintf(h.out, "recovered     %d (appended by reconciliation)\n", r.Recovered)
	fmt.Fprintf(h.out, "lost          %d\n", r.Lost)
	fmt.Fprintf(h.out, "checkpoints   %d of %d verified\n", r.CheckpointsProved, r.Checkpoints)
	fmt.Fprintf(h.out, "signatures    %s\n", r.SignaturesVerified)
}

// ledger runs one CLI command against the run's database; its output joins the secret check.
func (h *harness) ledger(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, h.cfg.LedgerBin, args...)
	cmd.Env = h.env
	if cmd.Env == nil {
		cmd.Env = append(cleanEnv(), "DATABASE_URL="+h.dbURL)
	}
	out, err := cmd.CombinedOutput()
	_, _ = h.out.buf.Write(out) // kept for the secret check, not shown
	return string(out), err
}

func (h *harness) stopAll() {
	for _, p := range h.procs {
		p.stop()
	}
}

// cleanEnv is this process's environment without anything that would point the ledger elsewhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "LEDGER_") || strings.HasPrefix(kv, "STRIPE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// lockedBuffer keeps everything written and passes it on to w.
type lockedBuffer struct {
	mu  sync.Mutex
	w   io.Writer
	buf syncBuf
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _ = b.buf.Write(p)
	return b.w.Write(p)
}

func (b *lockedBuffer) String() string { return b.buf.String() }

// syncBuf is a bytes.Buffer safe for concurrent writers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one supervised `ledger serve`: restarted whenever it exits, like a service manager would.
type proc struct {
	h       *harness
	name    string
	addr    string
	metrics string // its metrics listener (LEDGER_METRICS_ADDR)
	logs    syncBuf

	mu       sync.Mutex
	cmd      *exec.Cmd
	planned  bool          // the next exit is a kill the harness sent
	hold     chan struct{} // when set, the restart waits for it to close
	stopping bool
	done     chan struct{}
}

func (p *proc) start() {
	p.done = make(chan struct{})
	go p.supervise()
}

func (p *proc) supervise() {
	defer close(p.done)
	for {
		cmd := exec.Command(p.h.cfg.LedgerBin, "serve", "--addr", p.addr, "--metrics-addr", p.metrics, "--log-level", "info")
		cmd.Env = p.h.env
		cmd.Stdout, cmd.Stderr = &p.logs, &p.logs
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		err := cmd.Start()
		p.cmd = cmd
		p.mu.Unlock()
		if err != nil {
			p.h.logf("%s did not start: %v", p.name, err)
			return
		}
		err = cmd.Wait()
		p.mu.Lock()
		planned, hold, stopping := p.planned, p.hold, p.stopping
		p.planned, p.hold = false, nil
		p.mu.Unlock()
		if stopping {
			return
		}
		if !planned {
			p.h.unplanned.Add(1)
			p.h.logf("%s exited on its own (%v); restarting it", p.name, err)
		}
		if hold != nil {
			<-hold
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// kill sends SIGKILL; the supervisor restarts the process once hold (if any) is closed.
func (p *proc) kill(hold chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.planned, p.hold = true, hold
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
}

// stop ends the process with SIGTERM (its graceful stop) and the supervision with it.
func (p *proc) stop() {
	p.mu.Lock()
	if p.stopping || p.done == nil {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.mu.Lock()
		_ = p.cmd.Process.Kill()
		p.mu.Unlock()
		<-p.done
	}
}

// waitReady waits for /readyz to answer 200.
func (p *proc) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %s not ready after %s: %v\n%s", p.name, within, err, tailString(p.logs.String(), 3000))
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// proxy sends each request to the next backend in turn, as a load balancer without health checks
// would: a request to a dead backend gets 502 and Stripe retries it later.
type proxy struct {
	procs  []*proc
	next   atomic.Uint64
	failed atomic.Int64
	client *http.Client
}

func newProxy(procs []*proc) *proxy {
	return &proxy{procs: procs, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
	}}}
}

func (px *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := px.procs[px.next.Add(1)%uint64(len(px.procs))]
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "proxy: could not read the request", http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := px.client.Do(req)
	if err != nil {
		px.failed.Add(1)
		http.Error(w, "proxy: "+p.name+" unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
