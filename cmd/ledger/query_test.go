package main_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/stripesim"
)

// `ledger query` answers what the API answers, as a table, CSV or JSON; a bad filter exits 2.
func TestQueryCommand(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 89, Customers: 40, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := testkit.New(t)
	var evs []domain.Event
	for _, ev := range sim.Events() {
		e, _ := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
		evs = append(evs, e)
	}
	if _, err := eventstore.New(db.Pool).Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL}
	if r := ledger(t, env, "replay"); r.code != 0 {
		t.Fatalf("replay: %+v", r)
	}
	var active int
	_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.subscriptions WHERE status = 'active'`).Scan(&active)

	r := ledger(t, env, "query", "subscriptions", "--status", "active", "--format", "json", "--all", "--limit", "7")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != 0 || len(rows) != active || active == 0 {
		t.Fatalf("json: %d rows of %d active (%v) %+v", len(rows), active, err, r.stderr)
	}
	r = ledger(t, env, "query", "charges", "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	var charges int
	_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.charges`).Scan(&charges)
	if err != nil || r.code != 0 || len(recs) != charges+1 {
		t.Fatalf("csv: %d records for %d charges (%v)", len(recs), charges, err)
	}
	r = ledger(t, env, "query", "subscriptions")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ID") || !strings.Contains(r.stdout, "APP_USER_ID") {
		t.Fatalf("table: %+v", r)
	}
	// The account is in test mode: live mode, the default, has no MRR; --livemode false has.
	r = ledger(t, env, "query", "mrr", "--interval", "month", "--from", "2026-01-01", "--to", "2026-05-31")
	if r.code != 0 || !strings.Contains(r.stdout, "ACTIVE_SUBSCRIBERS") || strings.Contains(r.stdout, "2026-05-01") || !strings.Contains(r.stderr, "live mode") {
		t.Fatalf("mrr in live mode: %+v", r)
	}
	r = ledger(t, env, "query", "mrr", "--interval", "month", "--from", "2026-01-01", "--to", "2026-05-31", "--livemode", "false")
	if r.code != 0 || !strings.Contains(r.stdout, "2026-05-01") || !strings.Contains(r.stderr, "test mode") {
		t.Fatalf("mrr in test mode: %+v", r)
	}
	r = ledger(t, env, "query", "subscriptions", "--as-of", "2020-01-01", "--format", "json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("as of before the account: %+v", r)
	}
	for _, bad := range [][]string{
		{"query", "charges", "--created-gte", "soon"},
		{"query", "subscriptions", "--email", "a@b.c"},
		{"query", "payouts", "--match", "maybe"},
		{"query", "transfers"},
		{"query", "charges", "--format", "xml"},
		{"query", "mrr", "--livemode", "all"},
		{"query", "revenue", "--account", "everyone"},
	} {
		if r := ledger(t, env, bad...); r.code != 2 || r.stderr == "" {
			t.Errorf("%v: want exit 2 with a message, got %+v", bad, r)
		}
	}
}
