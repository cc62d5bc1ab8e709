package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/stripesim"
)

// `ledger fx import` refuses a bad file whole, naming the line, loads a good one, replaces on
// re-import; `ledger query --reporting true` then answers in the reporting currency and says
// which rates it lacked.
func TestFXImportCommand(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 91, Customers: 30, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := testkit.New(t)
	ctx := context.Background()
	var evs []domain.Event
	for _, ev := range sim.Events() {
		e, _ := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
		evs = append(evs, e)
	}
	if _, err := eventstore.New(db.Pool).Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + db.URL}
	if r := ledger(t, env, "replay"); r.code != 0 {
		t.Fatalf("replay: %+v", r)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.csv", "date,currency,rate\n2026-05-01,eur,1.08\n2026-05-02,eur,1,08\n")
	if r := ledger(t, env, "fx", "import", bad); r.code != 2 || !strings.Contains(r.stderr, "no reporting currency") {
		t.Fatalf("without a reporting currency: %+v", r)
	}
	usd := append(env, "LEDGER_REPORTING_CURRENCY=usd")
	if r := ledger(t, usd, "fx", "import", bad); r.code != 2 || !strings.Contains(r.stderr, "line 3: 4 fields") {
		t.Fatalf("bad file: %+v", r)
	}
	var n int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.fx_rates`).Scan(&n)
	if n != 0 {
		t.Fatalf("a refused file left %d rates", n)
	}
	// No rates yet: the answer names what it lacks.
	r := ledger(t, usd, "query", "mrr", "--livemode", "false", "--reporting", "true", "--from", "2026-03-01", "--to", "2026-05-31")
	if r.code != 0 || !strings.Contains(r.stderr, "# in usd") || strings.Contains(r.stderr, "missing rates: none") || !strings.Contains(r.stderr, "# unvalued: 0") {
		t.Fatalf("query without rates: %+v", r)
	}
	rates := stripesim.FXRatesCSV("usd", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	good := write("rates.csv", string(rates))
	if r := ledger(t, usd, "fx", "import", good); r.code != 0 || !strings.Contains(r.stdout, " 0 replaced") {
		t.Fatalf("good file: %+v", r)
	}
	if r := ledger(t, usd, "fx", "import", good); r.code != 0 || !strings.Contains(r.stdout, " 0 new") {
		t.Fatalf("re-import: %+v", r)
	}
	r = ledger(t, usd, "query", "mrr", "--livemode", "false", "--reporting", "true", "--from", "2026-03-01", "--to", "2026-05-31", "--format", "csv")
	if r.code != 0 || !strings.Contains(r.stderr, "missing rates: none") || !strings.Contains(r.stdout, ",usd,false,") {
		t.Fatalf("query with rates: %+v", r)
	}
}
