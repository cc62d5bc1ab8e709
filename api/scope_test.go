package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

// connectPlatform loads a simulated Connect platform — its own account and two connected
// accounts, each in live and test mode at once — into a ledger and serves the API over it.
func connectPlatform(t *testing.T) (*client, *testkit.DB, *stripesim.Platform) {
	t.Helper()
	p := stripesim.NewPlatform(stripesim.PlatformConfig{Seed: 14, Accounts: 2, Customers: 60, AccountCustomers: 30,
		Duration: 60 * 24 * time.Hour, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	p.Run(time.Time{})
	db := testkit.New(t)
	var evs []domain.Event
	for _, sim := range p.Sims() {
		for _, ev := range sim.Events() {
			e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
	}
	ctx := context.Background()
	if _, err := eventstore.New(db.Pool).Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Rebuild(ctx, db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(token)}))
	t.Cleanup(srv.Close)
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: srv.URL, router: router}, db, p
}

func accountParam(sc stripesim.Scope) string {
	if sc.Account == "" {
		return "platform"
	}
	return sc.Account
}

type mrrAnswer struct {
	Livemode bool   `json:"livemode"`
	Account  string `json:"account"`
	Includes string `json:"includes"`
	Data     []struct {
		Period   string  `json:"period"`
		Currency string  `json:"currency"`
		Livemode bool    `json:"livemode"`
		Account  *string `json:"account"`
		MRR      int64   `json:"mrr"`
	} `json:"data"`
}

// endMRR is the answer's MRR per currency in its last period; with byAccount, per account and
// currency ("acct_…/usd", "all/usd"; the platform's as "usd").
func endMRR(a mrrAnswer, byAccount bool) map[string]int64 {
	out := map[string]int64{}
	for _, r := range a.Data {
		if r.Period == "2026-06-01" {
			key := r.Currency
			if r.Account != nil && byAccount {
				key = *r.Account + "/" + r.Currency
			}
			out[key] = r.MRR
		}
	}
	return out
}

func sameMRR(got, want map[string]int64) bool {
	for cur, v := range want {
		if got[cur] != v {
			return false
		}
	}
	for cur, v := range got {
		if want[cur] != v {
			return false
		}
	}
	return true
}

// Over a Connect platform in live and test mode at once: every row's livemode and account are
// its object's in the simulator; each scope's MRR is the simulator's own figure for that scope
// alone (computed by the simulator from its subscriptions, not by the ledger's reducers); the
// default is the platform's live MRR; account=all adds the accounts up in rows that say so;
// livemode=all is refused; lists filter by mode and account.
func TestModesAndAccountsNeverMix(t *testing.T) {
	t.Parallel()
	c, db, p := connectPlatform(t)
	ctx := context.Background()

	// Every row carries its object's mode and account.
	for _, sc := range p.Scopes() {
		truth, _ := p.Truth(sc)
		for _, kind := range stripesim.Kinds {
			var objs []struct{ ID string }
			if err := json.Unmarshal(truth.Objects[kind], &objs); err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(objs))
			for i, o := range objs {
				ids[i] = o.ID
			}
			var n, wrong int
			if err := db.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE livemode <> $2 OR account IS DISTINCT FROM nullif($3, ''))
				FROM ledger.%s WHERE id = ANY($1)`, kind), ids, sc.Livemode, sc.Account).Scan(&n, &wrong); err != nil {
				t.Fatal(err)
			}
			if n != len(ids) || wrong != 0 {
				t.Fatalf("%s %s: %d of %d objects in the read model, %d with another mode or account", sc, kind, n, len(ids), wrong)
			}
		}
	}

	// Each scope's MRR is that scope's alone.
	mrr := func(query string) mrrAnswer {
		var a mrrAnswer
		if code := c.json("/api/v1/metrics/mrr?interval=month&from=2026-06-01&to=2026-06-01"+query, &a); code != 200 {
			t.Fatalf("mrr%s: %d", query, code)
		}
		return a
	}
	liveTotal := map[string]int64{}
	for _, sc := range p.Scopes() {
		want := p.Sim(sc).TruthMetrics().MRR
		a := mrr(fmt.Sprintf("&livemode=%t&account=%s", sc.Livemode, accountParam(sc)))
		if got := endMRR(a, false); !sameMRR(got, want) {
			t.Errorf("%s: MRR %v, the simulator says %v", sc, got, want)
		}
		if a.Livemode != sc.Livemode || a.Account != accountParam(sc) || a.Includes == "" {
			t.Errorf("%s: the answer says livemode %t, account %q, includes %q", sc, a.Livemode, a.Account, a.Includes)
		}
		for _, r := range a.Data {
			if r.Livemode != sc.Livemode || (r.Account == nil) != (sc.Account == "") || r.Account != nil && *r.Account != sc.Account {
				t.Fatalf("%s: a row of another scope: %+v", sc, r)
			}
		}
		if sc.Livemode {
			for cur, v := range want {
				liveTotal[cur] += v
			}
		}
		// The SQL views agree, scope by scope.
		rows, err := db.Pool.Query(ctx, `SELECT currency, mrr FROM ledger.metrics_daily
			WHERE day = '2026-06-01' AND livemode = $1 AND account IS NOT DISTINCT FROM nullif($2, '')`, sc.Livemode, sc.Account)
		if err != nil {
			t.Fatal(err)
		}
		view := map[string]int64{}
		for rows.Next() {
			var cur string
			var v int64
			_ = rows.Scan(&cur, &v)
			if v != 0 {
				view[cur] = v
			}
		}
		rows.Close()
		nonzero := map[string]int64{}
		for cur, v := range want {
			if v != 0 {
				nonzero[cur] = v
			}
		}
		if !sameMRR(view, nonzero) {
			t.Errorf("%s: ledger.metrics_daily says MRR %v, the simulator %v", sc, view, want)
		}
	}
	platformLive := stripesim.Scope{Livemode: true}
	def := mrr("")
	if got, want := endMRR(def, false), p.Sim(platformLive).TruthMetrics().MRR; !sameMRR(got, want) || !def.Livemode || def.Account != "platform" {
		t.Errorf("default: MRR %v (livemode %t, account %q), want the platform's live MRR %v alone", got, def.Livemode, def.Account, want)
	}
	if !strings.Contains(def.Includes, "live mode") || !strings.Contains(def.Includes, "platform") {
		t.Errorf("default: includes %q", def.Includes)
	}

	// account=all: one row per account, and rows "all" adding them up per currency.
	all := mrr("&account=all")
	got := endMRR(all, true)
	totals := map[string]int64{}
	for key, v := range got {
		if cur, ok := strings.CutPrefix(key, "all/"); ok {
			totals[cur] = v
		}
	}
	if !sameMRR(totals, liveTotal) {
		t.Errorf("account=all: totals %v, the simulator's live scopes add up to %v", totals, liveTotal)
	}
	for _, acct := range p.Accounts() {
		want := p.Sim(stripesim.Scope{Livemode: true, Account: acct.ID}).TruthMetrics().MRR
		for cur, v := range want {
			if got[acct.ID+"/"+cur] != v {
				t.Errorf("account=all: %s in %s is %d, the simulator says %d", acct.ID, cur, got[acct.ID+"/"+cur], v)
			}
		}
	}
	if !strings.Contains(all.Includes, "every account") {
		t.Errorf("account=all: includes %q", all.Includes)
	}

	// Never both modes; a wrong account is named.
	for _, m := range query4xx {
		code, _, body := c.do("/api/v1/metrics/" + m.path)
		if code != http.StatusBadRequest || !strings.Contains(string(body), m.code) {
			t.Errorf("%s: %d %s, want 400 %s", m.path, code, body, m.code)
		}
	}

	// Lists filter by mode and account: each scope's rows are its objects, every one of them.
	for _, sc := range p.Scopes() {
		counts := p.Sim(sc).TruthMetrics().Counts
		for _, kind := range []string{"customers", "subscriptions", "charges", "invoices", "refunds", "disputes", "checkout_sessions"} {
			code, _, body := c.do(fmt.Sprintf("/api/v1/%s?format=csv&livemode=%t&account=%s", kind, sc.Livemode, accountParam(sc)))
			recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
			if code != 200 || err != nil {
				t.Fatalf("%s %s: %d %v", sc, kind, code, err)
			}
			if len(recs)-1 != counts[kind] {
				t.Errorf("%s %s: %d rows, the simulator has %d", sc, kind, len(recs)-1, counts[kind])
			}
		}
	}
	var everything page
	c.json("/api/v1/customers?limit=1000", &everything)
	var total int
	for _, sc := range p.Scopes() {
		total += p.Sim(sc).TruthMetrics().Counts["customers"]
	}
	if len(everything.Data) != total {
		t.Errorf("customers without a filter: %d, want every scope's %d", len(everything.Data), total)
	}
}

var query4xx = []struct{ path, code string }{
	{"mrr?livemode=all", "modes_not_mixed"},
	{"revenue?livemode=both", "modes_not_mixed"},
	{"mrr?livemode=maybe", "invalid_livemode"},
	{"mrr?account=cus_123", "invalid_account"},
	{"churn?account=acct_%27DROP", "invalid_account"},
}
