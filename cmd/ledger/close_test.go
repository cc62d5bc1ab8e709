package main_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/stripesim"
)

// `ledger close` closes a month once: again exits 1 saying when it was closed; a month not
// ended exits 2, as does a malformed one, each with a message that says what is wanted. `close
// show` prints the close (text, JSON, the CSV and HTML report); a month never closed exits 1.
// `ledger query payouts` reconciles the payouts; --unreconciled exits 1 when anything does not
// reconcile (here: no balance transaction has been fetched, so no paid payout adds up).
func TestCloseCommand(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 23, Customers: 40, Duration: 60 * 24 * time.Hour, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
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
	// Exit 1 is a replay that quarantined events it could not fold (the simulator renders price
	// shapes some reducers do not fold yet): the close reads the rest all the same.
	if r := ledger(t, env, "replay"); r.code != 0 && (r.code != 1 || !strings.Contains(r.stderr, "quarantined")) {
		t.Fatalf("replay: %+v", r)
	}

	r := ledger(t, env, "close", "2026-05", "--by", "finance")
	if r.code != 0 || !strings.Contains(r.stdout, "Close 2026-05") || !strings.Contains(r.stdout, "FIGURES AS CLOSED") || !strings.Contains(r.stdout, "by finance") {
		t.Fatalf("close: %+v", r)
	}
	var closedAt time.Time
	if err := db.Pool.QueryRow(context.Background(), `SELECT closed_at FROM ledger.closes WHERE period = '2026-05-01'`).Scan(&closedAt); err != nil {
		t.Fatal(err)
	}
	r = ledger(t, env, "close", "2026-05")
	if r.code != 1 || !strings.Contains(r.stderr, "already closed") || !strings.Contains(r.stderr, closedAt.UTC().Format(time.RFC3339)) {
		t.Fatalf("closing again: want exit 1 saying when, got %+v", r)
	}
	next := time.Now().UTC().AddDate(0, 1, 0)
	r = ledger(t, env, "close", fmt.Sprintf("%04d-%02d", next.Year(), int(next.Month())))
	if r.code != 2 || !strings.Contains(r.stderr, "has not ended") {
		t.Fatalf("closing next month: want exit 2, got %+v", r)
	}
	for _, bad := range []string{"2026-13", "26-05", "november", "2026-05-01"} {
		if r := ledger(t, env, "close", bad); r.code != 2 || !strings.Contains(r.stderr, "YYYY-MM") {
			t.Errorf("close %s: want exit 2 naming YYYY-MM, got %+v", bad, r)
		}
	}
	if r := ledger(t, env, "close"); r.code != 2 || r.stderr == "" {
		t.Errorf("close without a month: %+v", r)
	}

	r = ledger(t, env, "close", "show", "2026-05", "--format", "json")
	var c struct {
		Period      string            `json:"period"`
		ClosedBy    string            `json:"closed_by"`
		Figures     []json.RawMessage `json:"figures"`
		Adjustments []json.RawMessage `json:"adjustments"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || r.code != 0 || c.Period != "2026-05" || c.ClosedBy != "finance" || len(c.Figures) == 0 || len(c.Adjustments) != 0 {
		t.Fatalf("show json: %v %+v", err, r)
	}
	r = ledger(t, env, "close", "show", "2026-05", "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || r.code != 0 || len(recs) != 1+2*len(c.Figures) || recs[0][0] != "row" {
		t.Fatalf("show csv: %v %d records for %d figures", err, len(recs), len(c.Figures))
	}
	r = ledger(t, env, "close", "show", "2026-05", "--format", "html")
	if r.code != 0 || !strings.Contains(r.stdout, "<h1>Month-end close: 2026-05</h1>") || !strings.Contains(r.stdout, "none: the period's figures are as closed") {
		t.Fatalf("show html: %+v", r)
	}
	if r := ledger(t, env, "close", "show", "2026-04"); r.code != 1 || !strings.Contains(r.stderr, "not closed") {
		t.Errorf("show a month never closed: %+v", r)
	}
	if r := ledger(t, env, "close", "show", "2026-05", "--account", "everyone"); r.code != 2 {
		t.Errorf("show with a bad account: %+v", r)
	}
	if r := ledger(t, env, "close", "list"); r.code != 0 || !strings.Contains(r.stdout, "2026-05") {
		t.Errorf("list: %+v", r)
	}

	r = ledger(t, env, "query", "payouts", "--format", "json", "--all")
	var payouts []struct {
		Payout string `json:"payout"`
		Match  bool   `json:"match"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &payouts); err != nil || r.code != 0 || len(payouts) < 20 {
		t.Fatalf("query payouts: %v %d payouts %+v", err, len(payouts), r.stderr)
	}
	if r := ledger(t, env, "query", "payouts"); r.code != 0 || !strings.Contains(r.stdout, "MATCH") || !strings.Contains(r.stdout, "✗") {
		t.Errorf("query payouts table: %+v", r)
	}
	if r := ledger(t, env, "query", "payouts", "--payout", payouts[0].Payout); r.code != 0 || !strings.Contains(r.stdout, "Payout "+payouts[0].Payout) {
		t.Errorf("one payout: %+v", r)
	}
	if r := ledger(t, env, "query", "payouts", "--unreconciled"); r.code != 1 || !strings.Contains(r.stdout, "payout_mismatch") {
		t.Errorf("unreconciled: want exit 1 listing the mismatches, got %+v", r)
	}
	if r := ledger(t, env, "query", "payouts", "--unreconciled", "--kind", "sometimes"); r.code != 2 {
		t.Errorf("an unknown kind: %+v", r)
	}
}
