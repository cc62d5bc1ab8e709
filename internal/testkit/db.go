// Package testkit holds what several packages' tests share: a freshly migrated Postgres
// database per test on a real server, and realistic Stripe events.
//
// The server is TEST_DATABASE_URL, else DATABASE_URL, else a Postgres answering on 127.0.0.1:5432,
// else a private cluster under .data/test-pg (see internal/pgboot). Migrations are applied once per
// schema version into a template database; each test then gets CREATE DATABASE … TEMPLATE, which
// costs milliseconds, and the database is dropped when the test ends.
package testkit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/migrations"
	"github.com/stripeledger/ledger/projections"
)

// DB is one test's database.
type DB struct {
	URL  string
	Name string
	Pool *pgxpool.Pool
}

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
)

// ServerURL is the Postgres server the tests use (a URL to an existing database on it).
func ServerURL(tb testing.TB) string {
	tb.Helper()
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// LEDGER_PG_PROBE=- skips the local server, to exercise the fresh-machine path.
		db, err := pgboot.Ensure(ctx, pgboot.Options{
			EnvVars: []string{"TEST_DATABASE_URL", "DATABASE_URL"},
			Probe:   os.Getenv("LEDGER_PG_PROBE"),
			DataDir: filepath.Join(pgboot.RepoRoot(), ".data", "test-pg"),
			Port:    54330,
			Install: true,
			Log:     os.Stderr,
		})
		if err != nil {
			serverErr = err
			return
		}
		serverURL = db.URL
	})
	if serverErr != nil {
		tb.Fatalf("no Postgres for tests: %v", serverErr)
	}
	return serverURL
}

// New creates a migrated database for this test and drops it when the test ends.
func New(tb testing.TB) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmpl := templateName(tb)
	ensureTemplate(tb, ctx, ServerURL(tb), tmpl)
	db := create(tb, ctx, "TEMPLATE "+tmpl)
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		tb.Fatalf("connect to %s: %v", db.Name, err)
	}
	tb.Cleanup(pool.Close) // runs before the drop registered by create
	db.Pool = pool
	return db
}

// NewEmpty creates an unmigrated database (for tests of migrating itself), without a pool.
func NewEmpty(tb testing.TB) *DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return create(tb, ctx, "")
}

// create makes a uniquely named database on the test server and drops it when the test ends.
func create(tb testing.TB, ctx context.Context, options string) *DB {
	tb.Helper()
	admin := ServerURL(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "ledger_test_" + hex.EncodeToString(b[:])
	exec(tb, ctx, admin, strings.TrimSpace("CREATE DATABASE "+name+" "+options))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		exec(tb, ctx, admin, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return &DB{URL: withDatabase(tb, admin, name), Name: name}
}

// FreePort returns a loopback TCP port nothing listens on right now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	port, err := pgboot.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// templateName changes whenever a migration file or a read model's declaration changes, so a
// stale template is never used.
func templateName(tb testing.TB) string {
	h := sha256.New()
	h.Write([]byte(projections.Fingerprint()))
	err := fs.WalkDir(migrations.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.Files, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		tb.Fatalf("hash migrations: %v", err)
	}
	return "ledger_tmpl_" + hex.EncodeToString(h.Sum(nil)[:6])
}

// templateLock serialises template creation across test processes (go test runs packages in
// parallel) on the server itself.
const templateLock = int64(0x6c65646765720002)

func ensureTemplate(tb testing.TB, ctx context.Context, admin, tmpl string) {
	tb.Helper()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		tb.Fatalf("lock template: %v", err)
	}
	defer conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", templateLock) //nolint:errcheck
	var ready bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", tmpl).Scan(&ready)
	if err != nil {
		tb.Fatalf("look up template: %v", err)
	}
	if ready {
		return
	}
	// A template left half-made by a killed run is not marked datistemplate: start it over.
	mustExec(tb, ctx, conn, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", tmpl))
	mustExec(tb, ctx, conn, "CREATE DATABASE "+tmpl)
	tconn, err := pgx.Connect(ctx, withDatabase(tb, admin, tmpl))
	if err != nil {
		tb.Fatalf("connect to template: %v", err)
	}
	if _, _, err := migrations.Apply(ctx, tconn); err != nil {
		tconn.Close(ctx)
		tb.Fatalf("migrate template: %v", err)
	}
	tconn.Close(ctx)
	if err := prepare(ctx, withDatabase(tb, admin, tmpl)); err != nil {
		tb.Fatalf("prepare template: %v", err)
	}
	mustExec(tb, ctx, conn, fmt.Sprintf("ALTER DATABASE %s WITH IS_TEMPLATE true", tmpl))

	// Templates of earlier migration sets are no longer used: drop them, best effort.
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE 'ledger\\_tmpl\\_%' AND datname <> $1", tmpl)
	if err != nil {
		return
	}
	stale, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, name := range stale {
		_, _ = conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH IS_TEMPLATE false", name))
		_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	}
}

// prepare creates the read models' tables from their declarations, as `ledger migrate` does.
func prepare(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return projections.Prepare(ctx, pool)
}

func exec(tb testing.TB, ctx context.Context, connURL, sql string) {
	tb.Helper()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		tb.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	mustExec(tb, ctx, conn, sql)
}

func mustExec(tb testing.TB, ctx context.Context, conn *pgx.Conn, sql string) {
	tb.Helper()
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func withDatabase(tb testing.TB, connURL, name string) string {
	tb.Helper()
	u, err := url.Parse(connURL)
	if err != nil {
		tb.Fatalf("parse test server URL: %v", pgboot.Redact(connURL))
	}
	u.Path = "/" + name
	return u.String()
}

// Tamper runs sql against the log with its immutability triggers disabled, as a superuser could,
// so tests can show the hash chain catching what the triggers cannot.
func Tamper(tb testing.TB, db *DB, sql string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	mustExec(tb, ctx, conn, "SET session_replication_role = replica") // skips ordinary triggers
	mustExec(tb, ctx, conn, sql)
}

// OpenPool opens another pool on the test's database with room for maxConns connections; it is
// closed when the test ends.
func (db *DB) OpenPool(tb testing.TB, maxConns int32) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// ClusterDir returns a path for a private cluster's data directory that the postgres OS user can
// reach when the tests run as root (t.TempDir's folders are 0700 root). The cluster is stopped
// and the folder removed when the test ends.
func ClusterDir(tb testing.TB) string {
	tb.Helper()
	parent := tb.TempDir()
	for p := parent; p != filepath.Dir(p) && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	dir := filepath.Join(parent, "pg")
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = pgboot.StopCluster(ctx, dir)
	})
	return dir
}

// Cluster is a private Postgres cluster of one test's own, for tests that stop and restart the
// database under a running ledger.
type Cluster struct {
	Dir  string
	Port int
	DB   *DB // the migrated "ledger" database on it
}

// StartCluster starts a private cluster, migrates its "ledger" database and stops the cluster
// when the test ends.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c := &Cluster{Dir: ClusterDir(tb), Port: FreePort(tb)}
	url := c.Start(tb)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, _, err := migrations.Apply(ctx, conn); err != nil {
		tb.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if err := projections.Prepare(ctx, pool); err != nil {
		tb.Fatal(err)
	}
	c.DB = &DB{URL: url, Name: "ledger", Pool: pool}
	return c
}

// Start starts (or restarts) the cluster on its port and returns the database URL.
func (c *Cluster) Start(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := pgboot.Ensure(ctx, pgboot.Options{
		EnvVars:  []string{"LEDGER_TEST_NO_SUCH_VARIABLE"},
		Probe:    "-",
		DataDir:  c.Dir,
		Port:     c.Port,
		Database: "ledger",
		Log:      io.Discard,
	})
	if err != nil {
		tb.Fatalf("start private cluster: %v", err)
	}
	if db.Port != c.Port {
		tb.Fatalf("cluster came back on port %d, not %d", db.Port, c.Port)
	}
	return db.URL
}

// Stop stops the cluster (fast shutdown: open connections are cut, as in an outage).
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pgboot.StopCluster(ctx, c.Dir); err != nil {
		tb.Fatalf("stop private cluster: %v", err)
	}
}

// Cached is a database on the test server that is expensive to build (a benchmark's log of
// millions of events): built once by build and kept, under a name that carries name and the
// schema's version (migrations and read-model declarations), so later runs reuse it. It is
// dropped only when a build for a newer schema replaces it (or by DROP DATABASE).
func Cached(tb testing.TB, name string, build func(ctx context.Context, pool *pgxpool.Pool) error) *pgxpool.Pool {
	tb.Helper()
	ctx := context.Background()
	admin := ServerURL(tb)
	full := fmt.Sprintf("ledger_bench_%s_%s", name, strings.TrimPrefix(templateName(tb), "ledger_tmpl_"))
	url := withDatabase(tb, admin, full)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	// Two benchmark processes asking for it at once build it once.
	mustExec(tb, ctx, conn, fmt.Sprintf("SELECT pg_advisory_lock(hashtextextended('%s', 0))", full))
	defer conn.Exec(ctx, fmt.Sprintf("SELECT pg_advisory_unlock(hashtextextended('%s', 0))", full)) //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, full).Scan(&exists); err != nil {
		tb.Fatal(err)
	}
	if exists {
		pool, err := pgxpool.New(ctx, url)
		if err == nil {
			var ready bool
			if pool.QueryRow(ctx, `SELECT to_regclass('public.bench_ready') IS NOT NULL`).Scan(&ready) == nil && ready {
				tb.Cleanup(pool.Close)
				return pool
			}
			pool.Close()
		}
		// Left half-built by an interrupted run: start over.
		mustExec(tb, ctx, conn, fmt.Sprintf("DROP DATABASE %s WITH (FORCE)", full))
	}
	// Versions of it built for earlier schemas are no longer used, and they are large: dropped.
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2",
		strings.ReplaceAll("ledger_bench_"+name+"_", "_", `\_`)+"%", full)
	if err == nil {
		stale, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, db := range stale {
			_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db))
		}
	}
	ensureTemplate(tb, ctx, admin, templateName(tb))
	mustExec(tb, ctx, conn, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", full, templateName(tb)))
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	start := time.Now()
	if err := build(ctx, pool); err != nil {
		tb.Fatalf("building %s: %v", full, err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE public.bench_ready (); ANALYZE`); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built %s in %s; kept for later runs", full, time.Since(start).Round(time.Second))
	return pool
}
