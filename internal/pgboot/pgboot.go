// Package pgboot decides which Postgres the ledger uses, for `make run`, `make test` and the
// binary alike:
//
//  1. the first set environment variable of Options.EnvVars (DATABASE_URL; tests:
//     TEST_DATABASE_URL then DATABASE_URL), used as is;
//  2. otherwise a Postgres answering on 127.0.0.1:5432 (user postgres, trust auth);
//  3. otherwise a private cluster under ./.data/pg, created with the distribution's own Postgres
//     binaries (looked up, never assumed; Debian's postgresql package is installed when allowed
//     and they are missing), listening on 127.0.0.1 only. Postgres refuses to run as root, so as
//     root the cluster is created and run as the postgres OS user.
//
// Each call prints one line saying which database is used, never with a password.
package pgboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options say where to look. Zero values take the documented defaults.
type Options struct {
	EnvVars  []string  // checked in order; default {"DATABASE_URL"}
	Probe    string    // address of a local server to try; default "127.0.0.1:5432"; "-" disables
	DataDir  string    // private cluster; default <repo root>/.data/pg
	Port     int       // private cluster port; default 54329, or a free one if that is taken
	Database string    // database to use (created on local and private servers); default "postgres"
	Install  bool      // may apt-get install postgresql when no binaries are found (root only)
	Log      io.Writer // where the one line goes; default os.Stderr
}

// Source says which of the three cases was used.
type Source string

const (
	SourceEnv     Source = "env"
	SourceLocal   Source = "local"
	SourcePrivate Source = "private"
)

// DB is the database chosen.
type DB struct {
	URL     string
	Source  Source
	Started bool   // this call started the private cluster
	DataDir string // private cluster only
	Port    int    // local and private only
}

const defaultPort = 54329

func (o *Options) setDefaults() {
	if len(o.EnvVars) == 0 {
		o.EnvVars = []string{"DATABASE_URL"}
	}
	if o.Probe == "" {
		o.Probe = "127.0.0.1:5432"
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(RepoRoot(), ".data", "pg")
	}
	if o.Port == 0 {
		o.Port = defaultPort
	}
	if o.Database == "" {
		o.Database = "postgres"
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
}

// Ensure returns the database to use, starting the private cluster if it is the one.
func Ensure(ctx context.Context, o Options) (*DB, error) {
	o.setDefaults()
	for _, name := range o.EnvVars {
		if v := os.Getenv(name); v != "" {
			fmt.Fprintf(o.Log, "database: %s (%s)\n", name, Redact(v))
			return &DB{URL: v, Source: SourceEnv}, nil
		}
	}
	if o.Probe != "-" {
		host, portStr, err := net.SplitHostPort(o.Probe)
		if err != nil {
			return nil, fmt.Errorf("bad probe address %q: %w", o.Probe, err)
		}
		port, _ := strconv.Atoi(portStr)
		admin := serverURL(host, port, "postgres")
		if answers(ctx, admin) {
			u, err := ensureDatabase(ctx, host, port, o.Database)
			if err != nil {
				return nil, fmt.Errorf("local server on %s: %w", o.Probe, err)
			}
			fmt.Fprintf(o.Log, "database: local server on %s (database %s)\n", o.Probe, o.Database)
			return &DB{URL: u, Source: SourceLocal, Port: port}, nil
		}
	}
	db, err := ensureCluster(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("could not start private cluster in %s: %w", o.DataDir, err)
	}
	state := "reused"
	if db.Started {
		state = "started"
	}
	fmt.Fprintf(o.Log, "database: private cluster in %s on 127.0.0.1:%d (database %s, %s)\n", o.DataDir, db.Port, o.Database, state)
	return db, nil
}

func serverURL(host string, port int, database string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort(host, strconv.Itoa(port)),
		Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// answers reports whether a Postgres accepts us at u and runs a query.
func answers(ctx context.Context, u string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "select 1").Scan(&one) == nil
}

func ensureDatabase(ctx context.Context, host string, port int, name string) (string, error) {
	conn, err := pgx.Connect(ctx, serverURL(host, port, "postgres"))
	if err != nil {
		return "", fmt.Errorf("could not connect: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("could not look up database %s: %w", name, err)
	}
	if !exists {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // created meanwhile
			return "", fmt.Errorf("could not create database %s: %w", name, err)
		}
	}
	return serverURL(host, port, name), nil
}

// Redact returns u without its password, for printing. Strings that do not parse as URLs are
// reduced to what cannot hold a secret.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		// keyword/value form: drop any password=… pair
		var kept []string
		for _, f := range strings.Fields(u) {
			if !strings.HasPrefix(strings.ToLower(f), "password=") {
				kept = append(kept, f)
			}
		}
		if len(kept) == 0 || err != nil && !strings.Contains(u, "=") {
			return "(unparseable database URL)"
		}
		return strings.Join(kept, " ")
	}
	if p.User != nil {
		p.User = url.User(p.User.Username())
	}
	q := p.Query()
	if q.Has("password") {
		q.Del("password")
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}

// RepoRoot is the nearest directory at or above the working directory holding go.mod, or the
// working directory itself.
func RepoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}

// BinDir is the directory of the Postgres server binaries (initdb, pg_ctl, and beside them
// pg_dump and pg_restore), or "" when none is installed.
func BinDir() string { return binDir() }

// binDir finds the directory holding initdb and pg_ctl.
func binDir() string {
	has := func(d string) bool {
		_, err1 := os.Stat(filepath.Join(d, "initdb"))
		_, err2 := os.Stat(filepath.Join(d, "pg_ctl"))
		return err1 == nil && err2 == nil
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			if d := strings.TrimSpace(string(out)); has(d) {
				return d
			}
		}
	}
	// Debian and Ubuntu install each major version under /usr/lib/postgresql/<major>/bin.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p)
	}
	return ""
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func install(ctx context.Context, log io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("no Postgres binaries found (initdb, pg_ctl): install your distribution's postgresql package, or set DATABASE_URL")
	}
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		return errors.New("no Postgres binaries found and no apt-get to install them: install postgresql, or set DATABASE_URL")
	}
	fmt.Fprintln(log, "database: no Postgres binaries found; installing Debian's postgresql package")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "postgresql"}} {
		cmd := exec.CommandContext(ctx, aptGet, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	return nil
}
