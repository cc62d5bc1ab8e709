// Package audit owns ledger.audit_log: the record of every request to the API, the dashboard
// and /metrics that presented a token (auth.Guard makes the records), and the listing `ledger
// audit` prints.
//
// Records are written by one goroutine in batches (one INSERT per batch), so auditing adds no
// round trip to a request. Nothing is dropped quietly: when the database is slow or down the
// writer keeps its batch and retries, the queue fills, and then requests wait for room — the
// audit log slows the API rather than lose a call — until the request itself ends (its client
// went away), when its record is counted and logged as lost. Records still queued when the
// process stops are written by Close within its deadline; any it cannot write are counted and
// logged as lost.
//
// A record's text is made valid UTF-8 without NUL and its client address a valid inet (or NULL)
// before it is queued, so no request can make Postgres refuse a batch. Should Postgres still
// refuse one for its data (SQLSTATE class 22 or 23), the batch is written row by row and each
// row it still refuses is counted and logged as lost: a retry could never succeed, and retrying
// it forever would stop every later record and, once the queue is full, the API.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stripeledger/ledger/auth"
)

// Config configures a Writer. Zero values take the documented defaults.
type Config struct {
	Queue    int           // records waiting to be written before Record blocks; default 8192
	Batch    int           // records per INSERT at most; default 500
	Retry    time.Duration // the first wait after a failed write, doubling to 5 s; default 100 ms
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
	// Failed, if set, is called in the writer's goroutine after each failed write, before the
	// wait that precedes the retry (tests wait on it).
	Failed func(attempt int, err error)
}

func (c *Config) setDefaults() {
	if c.Queue <= 0 {
		c.Queue = 8192
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Retry <= 0 {
		c.Retry = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// item is a record, or a flush marker: done is closed once everything queued before it is
// written.
type item struct {
	rec  auth.Record
	done chan error
}

// Writer writes audit records to ledger.audit_log. It implements auth.Recorder.
type Writer struct {
	pool *pgxpool.Pool
	cfg  Config
	ch   chan item
	quit chan struct{} // closed by Close: stop once the queue is written
	done chan struct{} // closed when the loop has ended
	// ctx bounds every write; Close cancels it when its own deadline passes, so a write under way
	// cannot hold Close past it.
	ctx    context.Context
	cancel context.CancelFunc
	// sending is held (shared) by each Record while it may send on ch, and taken by Close after
	// quit is closed: once Close holds it, nothing more can enter the queue, so whatever is left
	// in it after the loop has ended can be counted.
	sending sync.RWMutex

	closeOnce sync.Once
	written   prometheus.Counter
	lost      prometheus.Counter
	failures  prometheus.Counter
}

// NewWriter starts a writer; Close stops it.
func NewWriter(pool *pgxpool.Pool, cfg Config) *Writer {
	cfg.setDefaults()
	w := &Writer{pool: pool, cfg: cfg, ch: make(chan item, cfg.Queue), quit: make(chan struct{}), done: make(chan struct{}),
		written:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_audit_records_written_total", Help: "Audit records written to ledger.audit_log."}),
		lost:     prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_audit_records_lost_total", Help: "Audit records never written: refused by Postgres for their data, abandoned by their request while the queue was full, or unwritten when the writer closed."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "ledger_audit_write_failures_total", Help: "Failed writes of an audit batch (each retried, or written row by row when refused for its data)."}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(w.written, w.lost, w.failures, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ledger_audit_queue_length", Help: "Audit records waiting to be written."}, func() float64 { return float64(len(w.ch)) }))
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.loop()
	return w
}

// Record queues rec; it blocks while the queue is full, until ctx (the request's) ends, when rec
// is counted lost. After Close it counts rec as lost.
func (w *Writer) Record(ctx context.Context, rec auth.Record) {
	rec = clean(rec)
	w.sending.RLock()
	defer w.sending.RUnlock()
	select {
	case <-w.quit:
		w.lose(1, errors.New("the audit writer is closed"), rec)
		return
	default:
	}
	select {
	case w.ch <- item{rec: rec}:
		return
	default:
	}
	select {
	case w.ch <- item{rec: rec}:
	case <-w.quit:
		w.lose(1, errors.New("the audit writer is closed"), rec)
	case <-ctx.Done():
		w.lose(1, fmt.Errorf("the request ended while the audit queue was full: %w", context.Cause(ctx)), rec)
	}
}

// clean makes rec's text what Postgres accepts as text (valid UTF-8, no NUL) and its client
// address what it accepts as inet (no zone), or nothing when it is no address.
func clean(rec auth.Record) auth.Record {
	rec.Token, rec.Method, rec.Route, rec.Path = validText(rec.Token), validText(rec.Method), validText(rec.Route), validText(rec.Path)
	if rec.Client != "" {
		if a, err := netip.ParseAddr(rec.Client); err == nil {
			rec.Client = a.WithZone("").String()
		} else {
			rec.Client = ""
		}
	}
	return rec
}

func validText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// Flush waits until every record queued before the call is written, or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case <-w.quit: // checked first: once the loop has ended nobody would answer the marker
		return errors.New("the audit writer is closed")
	default:
	}
	select {
	case w.ch <- item{done: done}:
	case <-w.quit:
		return errors.New("the audit writer is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued and stops the writer, returning by ctx's deadline: what is still
// unwritten then is counted and logged as lost.
func (w *Writer) Close(ctx context.Context) error {
	var err error
	w.closeOnce.Do(func() {
		err = w.Flush(ctx)
		close(w.quit)
		w.sending.Lock() // every Record under way has queued its record or counted it lost
		//lint:ignore SA2001 the lock is a barrier: nothing is done while holding it
		w.sending.Unlock()
		select {
		case <-w.done:
		case <-ctx.Done():
			w.cancel() // aborts the write under way, which counts its batch lost
			<-w.done
		}
		w.cancel()
		// Records the loop did not see before it ended.
		for {
			select {
			case it := <-w.ch:
				if it.done != nil {
					close(it.done)
				} else {
					w.lose(1, errors.New("the audit writer closed before writing it"), it.rec)
				}
				continue
			default:
			}
			break
		}
	})
	return err
}

// lose counts n records lost and logs why; rec, when given, is the one record lost (its method
// and route say which request it was; its path is not logged, it is the client's to choose).
func (w *Writer) lose(n int, why error, rec ...auth.Record) {
	w.lost.Add(float64(n))
	attrs := []any{"records", n, "error", why}
	if len(rec) == 1 {
		attrs = append(attrs, "at", rec[0].At, "method", rec[0].Method, "route", rec[0].Route, "status", rec[0].Status)
	}
	w.cfg.Logger.Error("audit records lost", attrs...)
}

func (w *Writer) loop() {
	defer close(w.done)
	batch := make([]auth.Record, 0, w.cfg.Batch)
	for {
		var first item
		select {
		case first = <-w.ch:
		case <-w.quit:
			// Close flushed before quitting; a Record racing with it may have slipped in.
			for {
				select {
				case it := <-w.ch:
					if it.done != nil {
						close(it.done)
					} else {
						batch = append(batch, it.rec)
					}
				default:
					if len(batch) > 0 {
						ctx, cancel := context.WithTimeout(w.ctx, 2*time.Second)
						if err := w.insert(ctx, batch); err != nil {
							w.lose(len(batch), err)
						}
						cancel()
					}
					return
				}
			}
		}
		var flushes []chan error
		take := func(it item) {
			if it.done != nil {
				flushes = append(flushes, it.done)
			} else {
				batch = append(batch, it.rec)
			}
		}
		take(first)
	drain:
		for len(batch) < w.cfg.Batch && len(flushes) == 0 {
			select {
			case it := <-w.ch:
				take(it)
			default:
				break drain
			}
		}
		w.write(batch, flushes)
		batch = batch[:0]
	}
}

// write inserts batch, retrying with back-off until it succeeds; the flushes waiting on it are
// answered after. A batch Postgres refuses for its data is written row by row, the rows it still
// refuses counted lost. Otherwise only Close gives up on a batch, counting it lost.
func (w *Writer) write(batch []auth.Record, flushes []chan error) {
	wait := w.cfg.Retry
	for attempt := 1; len(batch) > 0; attempt++ {
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		err := w.insert(ctx, batch)
		cancel()
		if err == nil {
			break
		}
		w.failures.Inc()
		if isDataError(err) {
			w.cfg.Logger.Warn("audit records refused for their data; writing them one by one", "records", len(batch), "error", err)
			if batch, err = w.oneByOne(batch); len(batch) == 0 {
				break
			}
		}
		w.cfg.Logger.Warn("could not write audit records; retrying", "records", len(batch), "attempt", attempt, "error", err)
		if w.cfg.Failed != nil {
			w.cfg.Failed(attempt, err)
		}
		select {
		case <-time.After(wait):
		case <-w.quit:
			w.lose(len(batch), err)
			batch = nil
		}
		wait = min(2*wait, 5*time.Second)
	}
	for _, f := range flushes {
		close(f)
	}
}

// oneByOne inserts each record of batch alone, counting lost each one Postgres refuses for its
// data. On any other error it stops, and returns the records from the one that failed on, with
// the error, to be retried.
func (w *Writer) oneByOne(batch []auth.Record) ([]auth.Record, error) {
	for i, r := range batch {
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		err := w.insert(ctx, batch[i:i+1])
		cancel()
		switch {
		case err == nil:
		case isDataError(err):
			w.lose(1, err, r)
		default:
			return batch[i:], err
		}
	}
	return nil, nil
}

// isDataError says whether Postgres refused the statement for the values it was given: SQLSTATE
// class 22 (data exception: invalid text, an inet that does not parse) or 23 (integrity
// constraint violation: a CHECK). Sending the same values again cannot succeed.
func isDataError(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) != 5 {
		return false
	}
	return strings.HasPrefix(pg.Code, "22") || strings.HasPrefix(pg.Code, "23")
}

const insertRecords = `INSERT INTO ledger.audit_log (at, token_name, role, method, route, path, status, client_addr, duration_us)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::inet[], $9::bigint[])`

// maxPath bounds what is kept of a path: enough to see what was asked for.
const maxPath = 1024

func (w *Writer) insert(ctx context.Context, batch []auth.Record) error {
	n := len(batch)
	at, names, roles := make([]time.Time, n), make([]*string, n), make([]*string, n)
	methods, routes, paths := make([]string, n), make([]string, n), make([]string, n)
	status, clients, took := make([]int32, n), make([]*string, n), make([]int64, n)
	for i, r := range batch {
		at[i], methods[i], routes[i], status[i], took[i] = r.At, r.Method, r.Route, int32(r.Status), r.Duration.Microseconds()
		paths[i] = truncate(r.Path, maxPath)
		if r.Token != "" {
			name, role := r.Token, r.Role.String()
			names[i], roles[i] = &name, &role
		}
		if r.Client != "" {
			c := r.Client
			clients[i] = &c
		}
	}
	if _, err := w.pool.Exec(ctx, insertRecords, at, names, roles, methods, routes, paths, status, clients, took); err != nil {
		return fmt.Errorf("could not insert audit records: %w", err)
	}
	w.written.Add(float64(n))
	return nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Entry is one row of ledger.audit_log.
type Entry struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Token    *string   `json:"token_name"` // nil: the token presented is not configured
	Role     *string   `json:"role"`
	Method   string    `json:"method"`
	Route    string    `json:"route"`
	Path     string    `json:"path"`
	Status   int       `json:"status"`
	Client   *string   `json:"client_addr"`
	Duration int64     `json:"duration_us"`
}

// Filter selects entries; zero fields select everything.
type Filter struct {
	Since  time.Time
	Token  string // a token's name
	Status int
	Limit  int // default 50
}

// List is the newest entries that match f, newest first.
func List(ctx context.Context, pool *pgxpool.Pool, f Filter) ([]Entry, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var since *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	var token *string
	if f.Token != "" {
		token = &f.Token
	}
	var status *int
	if f.Status != 0 {
		status = &f.Status
	}
	rows, err := pool.Query(ctx, `SELECT id, at, token_name, role, method, route, path, status, host(client_addr), duration_us
		FROM ledger.audit_log
		WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::text IS NULL OR token_name = $2) AND ($3::int IS NULL OR status = $3)
		ORDER BY at DESC, id DESC LIMIT $4`, since, token, status, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("could not read the audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := row.Scan(&e.ID, &e.At, &e.Token, &e.Role, &e.Method, &e.Route, &e.Path, &e.Status, &e.Client, &e.Duration)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("could not read the audit log: %w", err)
	}
	return out, nil
}
