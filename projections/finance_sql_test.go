package projections_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// Every table, view and column in schema ledger is described in the catalog (what a BI tool
// shows), and a replay's swap keeps the descriptions.
func TestEveryColumnDocumented(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 77, Customers: 10, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	if _, err := projections.Rebuild(context.Background(), db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool.Query(context.Background(), `
		SELECT c.relname || coalesce('.' || a.attname, '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = 'ledger' AND c.relkind IN ('r', 'v')
		  AND (obj_description(c.oid, 'pg_class') IS NULL OR col_description(c.oid, a.attnum) IS NULL)
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("undocumented in the catalog: %v", missing)
	}
}

// The metric views agree with the read models they summarise and with the simulated account
// itself: MRR and active subscribers at the end equal the subscriptions' own; gross revenue and
// refunds equal the account's charges and refunds; the movement kinds add up to MRR; months are
// the sums of their days.
func TestMetricsViews(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 78, Customers: 150, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	ctx := context.Background()
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	truth := sim.Truth()
	var checked int
	rows, err := db.Pool.Query(ctx, `
		WITH last AS (SELECT DISTINCT ON (currency) currency, mrr, arr, active_subscribers FROM ledger.metrics_daily ORDER BY currency, day DESC),
		     sums AS (SELECT currency, sum(gross_revenue) AS gross, sum(refunds) AS refunds,
		                     sum(new_mrr + expansion_mrr + contraction_mrr + churned_mrr + reactivation_mrr) AS moved
		              FROM ledger.metrics_daily GROUP BY currency),
		     subs AS (SELECT currency, sum(mrr) AS mrr, count(*) FILTER (WHERE mrr > 0) AS active FROM ledger.subscriptions GROUP BY currency),
		     asof AS (SELECT s.currency, sum(m.amount) AS moved FROM ledger.subscription_movements m JOIN ledger.subscriptions s ON s.id = m.subscription
		              WHERE s.mrr IS NOT NULL AND m.at <= `+asOfSQL+` GROUP BY 1),
		     tc AS (SELECT o->>'currency' AS currency, sum((o->>'amount')::bigint) AS gross
		            FROM jsonb_array_elements($1::jsonb) o WHERE o->>'status' = 'succeeded' GROUP BY 1),
		     tr AS (SELECT o->>'currency' AS currency, sum((o->>'amount')::bigint) AS refunds
		            FROM jsonb_array_elements($2::jsonb) o WHERE o->>'status' = 'succeeded' GROUP BY 1)
		SELECT l.currency, l.mrr, l.arr, l.active_subscribers, coalesce(s.mrr, 0), coalesce(s.active, 0),
		       x.gross, coalesce(tc.gross, 0), x.refunds, coalesce(tr.refunds, 0), x.moved, coalesce(a.moved, 0)
		FROM last l JOIN sums x USING (currency) LEFT JOIN subs s USING (currency) LEFT JOIN asof a USING (currency)
		LEFT JOIN tc USING (currency) LEFT JOIN tr USING (currency)`,
		string(truth.Objects["charges"]), string(truth.Objects["refunds"]))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var cur string
		var mrr, arr, active, subMRR, subActive, gross, truthGross, refunds, truthRefunds, moved, movedAsOf int64
		if err := rows.Scan(&cur, &mrr, &arr, &active, &subMRR, &subActive, &gross, &truthGross, &refunds, &truthRefunds, &moved, &movedAsOf); err != nil {
			t.Fatal(err)
		}
		checked++
		// The view's last day counts every movement, those rules time after the latest events
		// too; the subscriptions' mrr is as of their newest inputs.
		if subMRR != movedAsOf || arr != 12*mrr || moved != mrr || active != subActive {
			t.Errorf("%s: mrr %d (subscriptions %d, movements %d), arr %d, active %d (subscriptions %d)", cur, mrr, subMRR, moved, arr, active, subActive)
		}
		if gross != truthGross || refunds != truthRefunds {
			t.Errorf("%s: gross %d (account %d), refunds %d (account %d)", cur, gross, truthGross, refunds, truthRefunds)
		}
	}
	rows.Close()
	if checked < 2 {
		t.Fatalf("metrics for %d currencies", checked)
	}
	var bad int
	if err := db.Pool.QueryRow(ctx, `
		SELECT count(*) FROM ledger.metrics_monthly m JOIN (
			SELECT date_trunc('month', day)::date AS month, currency, sum(net_revenue) AS net, sum(failed_payments) AS failed,
			       (array_agg(mrr ORDER BY day DESC))[1] AS mrr
			FROM ledger.metrics_daily GROUP BY 1, 2) d USING (month, currency)
		WHERE m.net_revenue <> d.net OR m.failed_payments <> d.failed OR m.mrr <> d.mrr
		   OR m.net_revenue <> m.gross_revenue - m.refunds - m.dispute_losses`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d months differ from their days (%v)", bad, err)
	}
	var withRefunds, withFailures int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE refunds > 0), count(*) FILTER (WHERE failed_payments > 0) FROM ledger.metrics_daily`).Scan(&withRefunds, &withFailures)
	if withRefunds == 0 || withFailures == 0 {
		t.Fatalf("the account had no refunds (%d days) or failed payments (%d days): the test checks too little", withRefunds, withFailures)
	}
}

// The BI role of docs/bi-readonly.sql can read every read model, still can after a replay
// replaced the tables, and cannot write.
func TestBIRoleSurvivesReplay(t *testing.T) {
	t.Parallel()
	sim := stripesim.New(stripesim.Config{Seed: 79, Customers: 20, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := load(t, sim.Events())
	ctx := context.Background()
	script, err := os.ReadFile("../docs/bi-readonly.sql")
	if err != nil {
		t.Fatal(err)
	}
	role := fmt.Sprintf("ledger_bi_%d", time.Now().UnixNano())
	sql := strings.ReplaceAll(string(script), "ledger_bi", role)
	sql = strings.ReplaceAll(sql, ":bi_password", "'test-password'")
	if _, err := db.Pool.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), fmt.Sprintf(`DROP OWNED BY %s; DROP ROLE %s`, role, role))
	})
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = role, "test-password"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var subs, months int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM ledger.subscriptions), (SELECT count(*) FROM ledger.metrics_monthly)`).Scan(&subs, &months); err != nil || subs == 0 || months == 0 {
		t.Fatalf("the BI role after a replay: %d subscriptions, %d months, %v", subs, months, err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM ledger.subscriptions`); err == nil {
		t.Fatal("the BI role could delete")
	}
}
