package pgboot_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/internal/testkit"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"postgres://ledger:s3cret@db.example:5432/ledger?sslmode=require": "postgres://ledger@db.example:5432/ledger?sslmode=require",
		"postgres://db.example/ledger?password=s3cret&sslmode=disable":    "postgres://db.example/ledger?sslmode=disable",
		"postgres://ledger@127.0.0.1/ledger":                              "postgres://ledger@127.0.0.1/ledger",
		"host=db.example user=ledger password=s3cret dbname=ledger":       "host=db.example user=ledger dbname=ledger",
		"%%%s3cret": "(unparseable database URL)",
	}
	for in, want := range cases {
		if got := pgboot.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(pgboot.Redact(in), "s3cret") {
			t.Errorf("Redact(%q) leaks the password", in)
		}
	}
}

func TestEnvWinsWithoutConnecting(t *testing.T) {
	t.Setenv("PGBOOT_TEST_URL", "postgres://u:pw@203.0.113.1:1/nowhere")
	var log bytes.Buffer
	db, err := pgboot.Ensure(context.Background(), pgboot.Options{EnvVars: []string{"PGBOOT_TEST_UNSET", "PGBOOT_TEST_URL"}, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if db.Source != pgboot.SourceEnv || db.URL != "postgres://u:pw@203.0.113.1:1/nowhere" {
		t.Fatalf("%+v", db)
	}
	if log.String() != "database: PGBOOT_TEST_URL (postgres://u@203.0.113.1:1/nowhere)\n" {
		t.Fatalf("line %q", log.String())
	}
}

func TestLocalServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	probe, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Skip("nothing answers on 127.0.0.1:5432")
	}
	probe.Close(ctx)
	name := fmt.Sprintf("pgboot_test_%d", time.Now().UnixNano())
	var log bytes.Buffer
	db, err := pgboot.Ensure(ctx, pgboot.Options{EnvVars: []string{"PGBOOT_TEST_UNSET"}, Database: name, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
		if err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	if db.Source != pgboot.SourceLocal || !strings.Contains(log.String(), "local server on 127.0.0.1:5432 (database "+name+")") {
		t.Fatalf("%+v %q", db, log.String())
	}
	assertDatabase(t, db.URL, name)
}

func TestPrivateCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := testkit.ClusterDir(t)
	opts := pgboot.Options{
		EnvVars:  []string{"PGBOOT_TEST_UNSET"},
		Probe:    "127.0.0.1:" + freePort(t), // nothing listens there
		DataDir:  dir,
		Port:     testkit.FreePort(t),
		Database: "ledger",
		Install:  false,
	}
	var log bytes.Buffer
	opts.Log = &log
	db, err := pgboot.Ensure(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if db.Source != pgboot.SourcePrivate || !db.Started || db.Port != opts.Port {
		t.Fatalf("%+v", db)
	}
	if want := fmt.Sprintf("database: private cluster in %s on 127.0.0.1:%d (database ledger, started)\n", dir, opts.Port); log.String() != want {
		t.Fatalf("line %q, want %q", log.String(), want)
	}
	assertDatabase(t, db.URL, "ledger")

	again, err := pgboot.Ensure(ctx, opts)
	if err != nil || again.Started || again.Port != db.Port {
		t.Fatalf("second Ensure did not reuse: %+v %v", again, err)
	}
	if err := pgboot.StopCluster(ctx, dir); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(cctx, db.URL); err == nil {
		conn.Close(ctx)
		t.Fatal("cluster still answers after StopCluster")
	}
	if err := pgboot.StopCluster(ctx, dir); err != nil {
		t.Fatalf("stopping a stopped cluster: %v", err)
	}
}

func assertDatabase(t *testing.T, url, want string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var got string
	if err := conn.QueryRow(ctx, "select current_database()").Scan(&got); err != nil || got != want {
		t.Fatalf("current_database %q %v", got, err)
	}
}

func freePort(t *testing.T) string { return strconv.Itoa(testkit.FreePort(t)) }
