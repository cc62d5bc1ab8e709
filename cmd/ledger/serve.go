package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // only reachable through --debug-addr
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/audit"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/dashboard"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/forward"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/migrations"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/reconcile"
	"github.com/stripeledger/ledger/webhook"
)

type serveOptions struct {
	db         dbOptions
	addr       string
	tlsCert    string
	tlsKey     string
	maxBody    int64
	tolerance  time.Duration
	appendWait time.Duration
	secrets    *webhook.EndpointSecrets // nil: from the STRIPE_WEBHOOK_SECRET* variables (never logged)
	debugAddr  string
	logLevel   string
	runner     bool                    // run the live projection (one process at a time takes it)
	poll       time.Duration           // the runner's poll interval when caught up
	idf        *identityFlags          // how app user IDs are found
	schedule   string                  // LEDGER_RECONCILE_SCHEDULE
	stripe     *reconcile.StripeConfig // nil: STRIPE_SECRET_KEY / STRIPE_API_BASE
	apiTokens  *auth.Tokens            // nil: LEDGER_API_TOKEN (LEDGER_TOKENS_FILE is added either way)
	metrics    string                  // the metrics listener's address, or off
	// Checkpoints of the log's head, signed with a key the database never holds: on when
	// checkpointKey (LEDGER_CHECKPOINT_KEY) names a key file.
	checkpointKey      string
	checkpointSink     string
	checkpointInterval time.Duration
	// ready is called once the listeners are bound, with the server's context, its addresses
	// (metrics "" when off) and pool (`ledger dev` prints its URLs and starts the Stripe
	// simulator then).
	ready func(ctx context.Context, addr, metricsAddr string, pool *pgxpool.Pool)
	// devSinks serves what ledger dev's local notification sinks received (the dashboard's
	// /notifications page); nil outside dev.
	devSinks http.Handler
}

func serveCmd() *cobra.Command {
	o := serveOptions{logLevel: "info"}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the ledger's HTTP server (migrates the schema first)",
		Long:  serveLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.addr, "addr", envOr("LEDGER_ADDR", ":8080"), "listen address (env LEDGER_ADDR)")
	addServeFlags(cmd, &o)
	return cmd
}

const serveLong = `serve migrates the schema, then answers POST /webhooks/stripe, the finance API, the dashboard
and /metrics, and keeps the read models current.

Webhook signing secrets: each Stripe endpoint has its own, and the secret that verifies a webhook
tells the ledger which endpoint it came to. Give each as a comma-separated whsec_ list (several
during a rotation):

  STRIPE_WEBHOOK_SECRET_LIVE          the platform's live-mode endpoint
  STRIPE_WEBHOOK_SECRET_TEST          the platform's test-mode endpoint
  STRIPE_WEBHOOK_SECRET_CONNECT_LIVE  the live Connect endpoint (connected accounts' events)
  STRIPE_WEBHOOK_SECRET_CONNECT_TEST  the test Connect endpoint
  STRIPE_WEBHOOK_SECRET               legacy: endpoints of no stated mode or kind

Secrets are tried in that order. An event whose livemode is not its endpoint's mode, a connected
account's event on a platform endpoint, or a platform event on a Connect endpoint is stored and
acknowledged but held out of the read models (ledger projections status lists it) until
` + "`ledger projections retry EVENT_ID`" + ` releases it. The legacy variable's secrets have no stated mode or
kind, so neither check applies to them. At least one secret is required; the same secret in two variables
is refused (exit 2).`

// addServeFlags are the flags `serve` and `dev` share.
func addServeFlags(cmd *cobra.Command, o *serveOptions) {
	f := cmd.Flags()
	f.StringVar(&o.tlsCert, "tls-cert", os.Getenv("LEDGER_TLS_CERT"), "serve HTTPS with this certificate file (env LEDGER_TLS_CERT; Stripe requires HTTPS in live mode)")
	f.StringVar(&o.tlsKey, "tls-key", os.Getenv("LEDGER_TLS_KEY"), "the certificate's private key file (env LEDGER_TLS_KEY)")
	f.Int64Var(&o.maxBody, "max-body-bytes", 1<<20, "largest webhook body accepted; larger answers 413")
	f.DurationVar(&o.tolerance, "signature-tolerance", 5*time.Minute, "how far a webhook's signed timestamp may be from now, past or future")
	f.DurationVar(&o.appendWait, "append-timeout", 5*time.Second, "how long a webhook waits for its commit before answering 503")
	f.StringVar(&o.metrics, "metrics-addr", envOr("LEDGER_METRICS_ADDR", defaultMetricsAddr),
		"serve Prometheus's /metrics on this address, no token needed (env LEDGER_METRICS_ADDR; off: only on the main port, with an operate token)")
	f.StringVar(&o.debugAddr, "debug-addr", "", "serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060); off by default")
	f.StringVar(&o.logLevel, "log-level", o.logLevel, "debug, info (a line per accepted webhook), warn or error")
	f.BoolVar(&o.runner, "projection-runner", envOr("LEDGER_PROJECTION_RUNNER", "on") != "off",
		"keep the read models current from the log; across processes one runs it, the others stand by (env LEDGER_PROJECTION_RUNNER=off to disable)")
	f.DurationVar(&o.poll, "projection-poll", 10*time.Millisecond, "how often the caught-up runner looks for new events")
	o.idf = addIdentityFlags(cmd)
	f.StringVar(&o.checkpointKey, "checkpoint-key", os.Getenv("LEDGER_CHECKPOINT_KEY"),
		"sign a checkpoint of the log's head with this Ed25519 key file every --checkpoint-interval (env LEDGER_CHECKPOINT_KEY; off when unset)")
	f.StringVar(&o.checkpointSink, "checkpoint-sink", os.Getenv("LEDGER_CHECKPOINT_SINK"),
		"where checkpoints go: comma-separated file:PATH, stdout, nats (env LEDGER_CHECKPOINT_SINK; default stdout)")
	interval, _ := checkpointIntervalEnv() // a bad value stops serve (see serve)
	f.DurationVar(&o.checkpointInterval, "checkpoint-interval", interval, "how often to write a checkpoint (env LEDGER_CHECKPOINT_INTERVAL)")
	f.StringVar(&o.schedule, "reconcile-schedule", envOr("LEDGER_RECONCILE_SCHEDULE", reconcile.DefaultSchedule),
		"when to run each reconciliation job: \"job=cron spec; …\" in UTC, or off (env LEDGER_RECONCILE_SCHEDULE); needs STRIPE_SECRET_KEY")
}

// configuredEndpoints names the endpoints that have a secret (never the secrets).
func configuredEndpoints(s webhook.EndpointSecrets) []string {
	var out []string
	for _, e := range eventstore.Endpoints {
		if len(*s.Of(e)) > 0 {
			out = append(out, string(e))
		}
	}
	return out
}

// checkpointIntervalEnv is LEDGER_CHECKPOINT_INTERVAL, 15 minutes when unset.
func checkpointIntervalEnv() (time.Duration, error) {
	v := os.Getenv("LEDGER_CHECKPOINT_INTERVAL")
	if v == "" {
		return 15 * time.Minute, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 15 * time.Minute, fmt.Errorf("LEDGER_CHECKPOINT_INTERVAL %q: want a positive duration such as 15m", v)
	}
	return d, nil
}

// defaultMetricsAddr is loopback only: a scraper on the same host (or a sidecar) reads it
// without a token; anything further away scrapes the main port with an operate token, or the
// operator binds this address elsewhere on purpose.
const defaultMetricsAddr = "127.0.0.1:9464"

// loadTokens are the tokens serve accepts: LEDGER_API_TOKEN (or those `dev` chose) and the
// tokens file LEDGER_TOKENS_FILE. A bad entry stops serve before it listens (exit 2), naming
// the variable's entry or the file's line.
func loadTokens(chosen *auth.Tokens) (*auth.Tokens, error) {
	env := chosen
	if env == nil {
		var err error
		if env, err = auth.ParseEnv(os.Getenv("LEDGER_API_TOKEN")); err != nil {
			return nil, err
		}
	}
	var file *auth.Tokens
	if path := os.Getenv("LEDGER_TOKENS_FILE"); path != "" {
		var err error
		if file, err = auth.LoadFile(path); err != nil {
			return nil, err
		}
	}
	return auth.Join(env, file)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// serve runs until SIGINT/SIGTERM, then stops taking connections, lets in-flight requests finish
// (their events are committed before they are answered) and exits 0.
func serve(ctx context.Context, o serveOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	fx, err := fxFromEnv()
	if err != nil {
		return err
	}
	log := newLogger(level)
	// The live heap is small (tens of MB) and every webhook allocates its body, so with Go's
	// default GOGC=100 the collector runs constantly; 400 trades a little memory for ~10% more
	// webhooks/s (measured with BenchmarkIngest). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.secrets == nil {
		s, err := webhook.LoadSecrets(os.Getenv)
		if err != nil {
			return err
		}
		o.secrets = &s
	}
	secrets := *o.secrets
	if len(secrets.Unstated) > 0 {
		// The legacy variable's secrets have no stated mode or kind: a live event signed by a
		// test secret given there, or a connected account's, is folded like any other.
		log.Warn("STRIPE_WEBHOOK_SECRET gives secrets of no stated mode or kind: the ledger cannot hold a live event signed with a test endpoint's secret (or the reverse), nor tell platform from Connect deliveries; " +
			"give each endpoint's secret in STRIPE_WEBHOOK_SECRET_LIVE, _TEST, _CONNECT_LIVE or _CONNECT_TEST instead")
	}
	identity, err := o.idf.identity()
	if err != nil {
		return err
	}
	mrr, err := domain.ParseMRRSettings(os.Getenv) // LEDGER_MRR_*, LEDGER_FX_RATE_DATE, LEDGER_REPORTING_CURRENCY
	if err != nil {
		return err
	}
	if _, _, err := reconcile.ParseSchedule(o.schedule); err != nil {
		return fmt.Errorf("--reconcile-schedule: %w", err)
	}
	if _, err := stripeConfig(); err != nil {
		return err // the Stripe keys and accounts, checked before anything starts
	}
	// The checkpoint key and sinks are checked before anything starts: a ledger configured to
	// checkpoint must not run without doing so.
	if _, err := checkpointIntervalEnv(); err != nil {
		return err
	}
	var checkpointKey ed25519.PrivateKey
	var checkpointSinks []integrity.Sink
	if o.checkpointKey != "" {
		if o.checkpointInterval <= 0 {
			return fmt.Errorf("--checkpoint-interval %s: want a positive duration", o.checkpointInterval)
		}
		if checkpointKey, err = integrity.LoadPrivateKey(o.checkpointKey); err != nil {
			return err
		}
		if checkpointSinks, err = integrity.OpenSinks(integrity.SinkConfig{Spec: o.checkpointSink,
			NATSURL: os.Getenv("LEDGER_NATS_URL"), NATSPrefix: os.Getenv("LEDGER_NATS_SUBJECT")}); err != nil {
			return err
		}
		defer closeSinks(checkpointSinks)
	}
	// Notifications: LEDGER_NOTIFY_CONFIG is checked before anything starts (exit 2, naming
	// the line); unset, notifications are off.
	notifyCfg, err := loadNotifyConfig(log)
	if err != nil {
		return err
	}
	tokens, err := loadTokens(o.apiTokens)
	if err != nil {
		return err
	}
	proxies, err := auth.ParseProxies(os.Getenv("LEDGER_TRUSTED_PROXIES"))
	if err != nil {
		return err
	}
	db, err := resolveDB(ctx, o.db)
	if err != nil {
		return err
	}
	from, to, err := migrateURL(ctx, db.URL)
	if err != nil {
		return err
	}
	log.Info("schema ready", "from_version", from, "version", to)

	pool, err := openPool(ctx, db.URL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := eventstore.New(pool)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := webhook.NewMetrics(reg)
	appender := eventstore.NewAppender(store, eventstore.AppenderConfig{OnBatch: metrics.ObserveBatch})
	// Closed after the HTTP server has drained: every answered request's event is committed.
	defer appender.Close()
	hooks, err := webhook.New(webhook.Config{
		Endpoints:     secrets,
		Tolerance:     o.tolerance,
		MaxBodyBytes:  o.maxBody,
		AppendTimeout: o.appendWait,
		Logger:        log,
	}, appender, store, metrics)
	if err != nil {
		return err
	}

	// The live projection runs until the HTTP server has drained, then stops between batches.
	runnerCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	runnerDone := make(chan struct{})
	defer func() {
		stopRunner()
		<-runnerDone
	}()
	// The live stream (GET /api/v1/stream): woken by the webhooks' appends and the runner's
	// folded batches; it ends every stream as the HTTP server shuts down (RegisterOnShutdown).
	hub, err := api.NewHub(api.HubConfig{Store: store, Logger: log})
	if err != nil {
		return err
	}
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		_ = hub.Run(runnerCtx)
	}()
	defer func() {
		stopRunner()
		<-hubDone
	}()
	if o.runner {
		// The runner shares the webhooks' store: an append wakes it at once.
		runner, err := projections.NewRunner(pool, projections.RunnerConfig{Store: store,
			Identity: identity, MRR: mrr, PollInterval: o.poll, Logger: log, Metrics: projections.NewMetrics(reg), Folded: hub.Folded})
		if err != nil {
			return err
		}
		go func() {
			defer close(runnerDone)
			_ = runner.Run(runnerCtx)
		}()
	} else {
		close(runnerDone)
	}

	// Every appended event forwarded to NATS JetStream, when LEDGER_NATS_URL is set.
	fwdDone := make(chan struct{})
	defer func() {
		stopRunner()
		<-fwdDone
	}()
	if url := os.Getenv("LEDGER_NATS_URL"); url != "" {
		fwd, err := forward.New(pool, forward.Config{URL: url, Stream: os.Getenv("LEDGER_NATS_STREAM"),
			Subject: os.Getenv("LEDGER_NATS_SUBJECT"), Logger: log})
		if err != nil {
			return err
		}
		go func() {
			defer close(fwdDone)
			_ = fwd.Run(runnerCtx)
		}()
	} else {
		close(fwdDone)
	}

	// Scheduled reconciliation, when there is a key to reach Stripe with. Every process runs a
	// scheduler; the one holding its lease schedules the jobs, the others stand by.
	sc, err := stripeConfig()
	if err != nil {
		return err
	}
	if o.stripe != nil {
		sc = *o.stripe
	}
	schedDone := make(chan struct{})
	defer func() {
		stopRunner()
		<-schedDone
	}()
	// The thin fetcher: the objects thin events name, fetched and appended (one process across
	// replicas, a lease).
	thinDone := make(chan struct{})
	defer func() {
		stopRunner()
		<-thinDone
	}()
	if sc.Configured() {
		thin, err := reconcile.NewThinFetcher(pool, reconcile.ThinConfig{Stripe: sc, Store: store, Logger: log, Registerer: reg})
		if err != nil {
			return err
		}
		go func() {
			defer close(thinDone)
			_ = thin.Run(runnerCtx)
		}()
	} else {
		close(thinDone)
	}
	switch {
	case !sc.Configured():
		log.Info("reconciliation off, and thin events are stored but their objects not fetched: STRIPE_SECRET_KEY is not set")
		close(schedDone)
	default:
		sched, err := reconcile.NewScheduler(reconcile.New(pool, reconcile.Config{Stripe: sc, Logger: log,
			WebhookURL: os.Getenv("LEDGER_WEBHOOK_URL")}), o.schedule)
		if err != nil {
			return fmt.Errorf("--reconcile-schedule: %w", err)
		}
		go func() {
			defer close(schedDone)
			sched.Run(runnerCtx)
		}()
	}

	// Signed checkpoints of the head, one process across replicas (a lease).
	if checkpointKey != nil {
		cp, err := integrity.NewCheckpointer(pool, integrity.CheckpointerConfig{Key: checkpointKey,
			Sinks: checkpointSinks, Interval: o.checkpointInterval, Logger: log, Registerer: reg})
		if err != nil {
			return err
		}
		log.Info("checkpoints on", "every", o.checkpointInterval.String(), "sinks", fmt.Sprint(checkpointSinks),
			"key", integrity.KeyID(checkpointKey.Public().(ed25519.PublicKey)))
		cpDone := make(chan struct{})
		defer func() {
			stopRunner()
			<-cpDone
		}()
		go func() {
			defer close(cpDone)
			_ = cp.Run(runnerCtx)
		}()
	}
	// The notify runner fills the outbox from the log, one process across replicas (a lease).
	if notifyCfg != nil {
		notifyDone, err := startNotifyRunner(runnerCtx, pool, store, notifyCfg, log)
		if err != nil {
			return err
		}
		defer func() {
			stopRunner()
			<-notifyDone
		}()
	}
	// The notify deliverer sends the outbox's rows to the channels, one process across replicas
	// (its own lease); a channel down backs off in the outbox and never holds up ingestion.
	if notifyCfg != nil {
		deliverDone, err := startNotifyDeliverer(runnerCtx, pool, notifyCfg, reg, log)
		if err != nil {
			return err
		}
		defer func() {
			stopRunner()
			<-deliverDone
		}()
	}
	// The audit log of every request that presents a token. Closed after the server has drained,
	// so each answered request's record is written.
	var auditLog auth.Recorder
	if !tokens.Open() {
		w := audit.NewWriter(pool, audit.Config{Logger: log, Registry: reg})
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := w.Close(ctx); err != nil {
				log.Error("audit log not flushed", "error", err)
			}
		}()
		auditLog = w
	}
	guard := &auth.Guard{Tokens: tokens, Audit: auditLog, Proxies: proxies}
	promHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})

	mux := http.NewServeMux()
	mux.Handle("/webhooks/stripe", hooks)
	// The API: behind LEDGER_API_TOKEN / LEDGER_TOKENS_FILE; without a token only on a loopback
	// address. /metrics on this port needs an operate token (its own listener needs none).
	apiCfg := api.Config{Tokens: tokens, Audit: auditLog, Proxies: proxies, Identity: identity, FX: fx, Logger: log,
		Stripe: sc, WebhookURL: os.Getenv("LEDGER_WEBHOOK_URL"), Runs: runnerCtx, CheckpointKey: checkpointKey, Stream: hub,
		Notifications: notifyCfg != nil}
	dashCfg := dashboard.Config{Tokens: tokens, Audit: auditLog, Proxies: proxies, NotFound: http.HandlerFunc(webhook.NotFound), Sinks: o.devSinks}
	switch {
	case !tokens.Open():
		mux.Handle("GET /metrics", guard.Require("GET /metrics", auth.Operate, promHandler))
		mux.Handle("/api/v1/", api.New(pool, apiCfg))
		mux.Handle("/", dashboard.New(dashCfg))
	case isLoopback(o.addr):
		log.Warn("API and dashboard open without a token: LEDGER_API_TOKEN and LEDGER_TOKENS_FILE are not set and the address is loopback only")
		mux.Handle("GET /metrics", promHandler)
		mux.Handle("/api/v1/", api.New(pool, apiCfg))
		mux.Handle("/", dashboard.New(dashCfg))
	default:
		log.Warn("API and dashboard off: set LEDGER_API_TOKEN or LEDGER_TOKENS_FILE to serve them on a non-loopback address")
		mux.HandleFunc("/", webhook.NotFound)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", readyHandler(pool))

	if o.debugAddr != "" {
		go func() {
			// pprof registers on http.DefaultServeMux; the main server uses its own mux.
			log.Info("debug listener", "addr", o.debugAddr)
			if err := http.ListenAndServe(o.debugAddr, http.DefaultServeMux); err != nil {
				log.Error("debug listener stopped", "error", err)
			}
		}()
	}
	metricsAddr := ""
	if o.metrics != "off" && o.metrics != "" {
		mln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return fmt.Errorf("could not listen on the metrics address %s (--metrics-addr, LEDGER_METRICS_ADDR; off to disable): %w", o.metrics, err)
		}
		metricsAddr = mln.Addr().String()
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", promHandler)
		msrv := &http.Server{Handler: mmux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("could not listen on %s: %w", o.addr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	srv.RegisterOnShutdown(hub.Close)
	log.Info("listening", "addr", ln.Addr().String(), "tls", o.tlsCert != "", "webhook_secrets", len(secrets.All()),
		"webhook_endpoints", configuredEndpoints(secrets),
		"metrics_addr", metricsAddr, "api_tokens", tokens.Len())
	if o.ready != nil {
		o.ready(ctx, ln.Addr().String(), metricsAddr, pool)
	}
	errc := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			errc <- srv.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("server stopped: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("could not drain requests: %w", err)
	}
	log.Info("stopped")
	return nil
}

// isLoopback says whether a listen address only accepts local connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readyHandler answers 200 only when the database answers and the schema is at the version this
// binary embeds: a load balancer then never routes webhooks to a process that would 503 them.
func readyHandler(pool *pgxpool.Pool) http.HandlerFunc {
	want, _ := migrations.Latest()
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		have, err := migrations.Current(ctx, pool)
		switch {
		case err != nil:
			slog.Warn("not ready", "reason", "database unreachable", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": "database unreachable"})
		case have != want:
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable",
				"error": fmt.Sprintf("schema at version %d, this binary needs %d (run `ledger migrate`)", have, want)})
		default:
			writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "schema_version": have})
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
