package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/stripesim"
)

const token = "tok_finance"

// client calls the API and validates every JSON answer against the OpenAPI document it serves.
type client struct {
	t      *testing.T
	base   string
	router routers.Router
}

func (c *client) do(path string, header ...string) (int, http.Header, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		c.t.Fatalf("%s: not in the OpenAPI document: %v", path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Fatalf("%s: answer %d does not match the OpenAPI document: %v\n%.600s", path, resp.StatusCode, err, body)
	}
	return resp.StatusCode, resp.Header, body
}

func (c *client) json(path string, v any) int {
	c.t.Helper()
	code, _, body := c.do(path)
	if code == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			c.t.Fatalf("%s: %v", path, err)
		}
	}
	return code
}

type page struct {
	Data       []map[string]any `json:"data"`
	HasMore    bool             `json:"has_more"`
	NextCursor string           `json:"next_cursor"`
}

func setup(t *testing.T) (*client, *testkit.DB, *stripesim.Sim) {
	t.Helper()
	sim := stripesim.New(stripesim.Config{Seed: 88, Customers: 120, End: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	sim.Run(time.Time{})
	db := testkit.New(t)
	var evs []domain.Event
	for _, ev := range sim.Events() {
		e, err := domain.NewEvent(ev.Webhook, domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if _, err := eventstore.New(db.Pool).Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Rebuild(context.Background(), db.Pool, projections.Config{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv(token)}))
	t.Cleanup(srv.Close)
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: srv.URL, router: router}, db, sim
}

// Lists page through every row once, newest first, with filters; one object comes with the
// events that produced it; every answer matches the OpenAPI document.
func TestListsAndObjects(t *testing.T) {
	t.Parallel()
	c, db, _ := setup(t)
	ctx := context.Background()
	for _, res := range []string{"subscriptions", "charges", "invoices", "refunds", "disputes", "customers"} {
		var want int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.`+res).Scan(&want); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		last := ""
		path := "/api/v1/" + res + "?limit=37"
		for pages := 0; ; pages++ {
			var p page
			if code := c.json(path, &p); code != 200 {
				t.Fatalf("%s: %d", path, code)
			}
			for _, row := range p.Data {
				id := row["id"].(string)
				created := row["created"].(string)
				if seen[id] {
					t.Fatalf("%s: %s listed twice", res, id)
				}
				if last != "" && created > last {
					t.Fatalf("%s: not newest first", res)
				}
				seen[id], last = true, created
			}
			if !p.HasMore {
				break
			}
			path = "/api/v1/" + res + "?limit=37&cursor=" + p.NextCursor
		}
		if len(seen) != want || want == 0 {
			t.Fatalf("%s: paged through %d of %d rows", res, len(seen), want)
		}
	}
	var active page
	c.json("/api/v1/subscriptions?status=active&currency=usd&limit=1000", &active)
	var wantActive int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.subscriptions WHERE status = 'active' AND currency = 'usd'`).Scan(&wantActive)
	if len(active.Data) != wantActive || wantActive == 0 {
		t.Fatalf("status=active&currency=usd: %d rows, want %d", len(active.Data), wantActive)
	}
	var may page
	c.json("/api/v1/charges?created_gte=2026-05-01&created_lt=2026-05-08&limit=1000", &may)
	for _, row := range may.Data {
		if cr := row["created"].(string); cr < "2026-05-01" || cr >= "2026-05-08" {
			t.Fatalf("created range: %s", cr)
		}
	}
	var one struct {
		Object map[string]any   `json:"object"`
		Events []map[string]any `json:"events"`
	}
	id := active.Data[0]["id"].(string)
	if c.json("/api/v1/subscriptions/"+id, &one); one.Object["id"] != id || len(one.Events) == 0 {
		t.Fatalf("one subscription: %+v", one)
	}
	if code, _, _ := c.do("/api/v1/subscriptions/sub_nope"); code != 404 {
		t.Fatalf("missing subscription: %d", code)
	}
	if code, _, body := c.do("/api/v1/events/" + one.Events[0]["event_id"].(string)); code != 200 || !bytes.Contains(body, []byte(`"payload"`)) {
		t.Fatalf("event: %d %s", code, body)
	}
	for path, wantCode := range map[string]string{
		"/api/v1/charges?limit=0":                                            "invalid_limit",
		"/api/v1/charges?limit=many":                                         "invalid_limit",
		"/api/v1/charges?cursor=abc":                                         "invalid_cursor",
		"/api/v1/charges?created_gte=tomorrow":                               "invalid_created_gte",
		"/api/v1/charges?currency=USD":                                       "invalid_currency",
		"/api/v1/charges?colour=red":                                         "unknown_parameter",
		"/api/v1/invoices?as_of=yesterday":                                   "invalid_as_of",
		"/api/v1/invoices?known_at=yesterday":                                "invalid_known_at",
		"/api/v1/invoices?known_at=position:-3":                              "invalid_known_at",
		"/api/v1/invoices/in_1?known_at=position:x":                          "invalid_known_at",
		"/api/v1/metrics/mrr?known_at=position:x":                            "invalid_known_at",
		"/api/v1/invoices/in_1?colour=red":                                   "unknown_parameter",
		"/api/v1/charges?format=xml":                                         "invalid_format",
		"/api/v1/metrics/mrr?interval=week":                                  "invalid_interval",
		"/api/v1/metrics/mrr?from=2026-05-01&to=2026-04-01":                  "invalid_range",
		"/api/v1/metrics/revenue?interval=day&from=0001-01-01&to=9999-12-31": "range_too_long",
		"/api/v1/charges?customer=cus_%00":                                   "invalid_text",
		"/api/v1/subscriptions/sub_%FF":                                      "invalid_text",
	} {
		code, _, body := c.do(path)
		if code != 400 || !strings.Contains(string(body), wantCode) {
			t.Errorf("%s: %d %s, want 400 %s", path, code, body, wantCode)
		}
	}
	resp, err := http.Get(c.base + "/api/v1/charges")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("without a token: %v %v", resp, err)
	}
	resp, err = http.Get(c.base + "/api/v1/openapi.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("openapi.json: %v %v", resp, err)
	}
}

// CSV (Accept: text/csv or format=csv) streams every row with a header; money stays integer
// minor units beside a currency column.
func TestCSV(t *testing.T) {
	t.Parallel()
	c, db, _ := setup(t)
	for _, path := range []string{"/api/v1/charges?format=csv", "/api/v1/charges"} {
		code, hdr, body := c.do(path, "Accept", "text/csv")
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
			t.Fatalf("%s: %d %s", path, code, hdr.Get("Content-Type"))
		}
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var want int
		_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.charges`).Scan(&want)
		if len(recs) != want+1 || recs[0][1] != "amount" || recs[0][5] != "currency" {
			t.Fatalf("%s: %d records (want %d + header), header %v", path, len(recs), want, recs[0])
		}
		for _, r := range recs[1:] {
			if strings.ContainsAny(r[1], ".,e") || len(r[5]) != 3 {
				t.Fatalf("not integer minor units with a currency: %v", r)
			}
		}
	}
	code, _, body := c.do("/api/v1/metrics/revenue?interval=month&from=2026-01-01&format=csv&livemode=false")
	if code != 200 || !strings.HasPrefix(string(body), "period,currency,livemode,account,gross_revenue") || !strings.Contains(string(body), ",false,,") {
		t.Fatalf("metrics CSV: %d %.200s", code, body)
	}
}

// ?as_of= answers with the state at that moment, folded from the log: before the account opened
// nothing; at its end what the read models hold now; in between, what was true then.
func TestAsOf(t *testing.T) {
	t.Parallel()
	c, db, sim := setup(t)
	var before page
	c.json("/api/v1/subscriptions?as_of=2020-01-01", &before)
	if len(before.Data) != 0 {
		t.Fatalf("%d subscriptions before the account opened", len(before.Data))
	}
	var now, live page
	c.json("/api/v1/subscriptions?limit=1000&as_of="+sim.Now().Format(time.RFC3339), &now)
	c.json("/api/v1/subscriptions?limit=1000", &live)
	if len(now.Data) != len(live.Data) || len(now.Data) == 0 {
		t.Fatalf("as of the end: %d rows, live %d", len(now.Data), len(live.Data))
	}
	byID := map[string]map[string]any{}
	for _, r := range live.Data {
		byID[r["id"].(string)] = r
	}
	for _, r := range now.Data {
		l := byID[r["id"].(string)]
		if l == nil || r["status"] != l["status"] || r["mrr"] != l["mrr"] || r["app_user_id"] != l["app_user_id"] {
			t.Fatalf("as of the end differs from live: %v vs %v", r, l)
		}
	}
	// Mid-way: the MRR by currency then equals the movement log's running total at that time.
	mid := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	var then page
	c.json("/api/v1/subscriptions?limit=1000&as_of="+mid.Format(time.RFC3339), &then)
	got := map[string]int64{}
	for _, r := range then.Data {
		if mrr, ok := r["mrr"].(float64); ok { // null: unvalued, and its log has no movement either
			got[r["currency"].(string)] += int64(mrr)
		}
	}
	rows, err := db.Pool.Query(context.Background(), `SELECT currency, sum(amount) FROM ledger.subscription_movements WHERE at <= $1 GROUP BY currency`, mid)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var cur string
		var want int64
		_ = rows.Scan(&cur, &want)
		if got[cur] != want {
			t.Errorf("MRR in %s as of %s: %d from as_of, %d from the movements", cur, mid.Format("2006-01-02"), got[cur], want)
		}
	}
	rows.Close()
	var charge struct {
		Object map[string]any   `json:"object"`
		Events []map[string]any `json:"events"`
	}
	var charges page
	c.json("/api/v1/charges?status=succeeded&limit=1", &charges)
	id := charges.Data[0]["id"].(string)
	if code := c.json("/api/v1/charges/"+id+"?as_of="+sim.Now().Format(time.RFC3339), &charge); code != 200 || charge.Object["amount"] != charges.Data[0]["amount"] {
		t.Fatalf("charge as of the end: %d %+v", code, charge.Object)
	}
	if code, _, _ := c.do("/api/v1/charges/" + id + "?as_of=2020-01-01"); code != 404 {
		t.Fatalf("a charge before it existed: %d", code)
	}

	// known_at: at the head, what the read models hold; at position 0, nothing; at the charge's
	// first event, the charge as that event made it, with that one event.
	var head int64
	_ = db.Pool.QueryRow(context.Background(), `SELECT max(position) FROM ledger.events`).Scan(&head)
	var known page
	c.json(fmt.Sprintf("/api/v1/subscriptions?limit=1000&known_at=position:%d", head), &known)
	if len(known.Data) != len(live.Data) {
		t.Fatalf("known at the head: %d rows, live %d", len(known.Data), len(live.Data))
	}
	var nothing page
	c.json("/api/v1/subscriptions?known_at=position:0", &nothing)
	if len(nothing.Data) != 0 {
		t.Fatalf("%d subscriptions known before the first event", len(nothing.Data))
	}
	first := charge.Events[0]["position"].(float64)
	var early struct {
		Object map[string]any   `json:"object"`
		Events []map[string]any `json:"events"`
	}
	if code := c.json(fmt.Sprintf("/api/v1/charges/%s?known_at=position:%d", id, int64(first)), &early); code != 200 ||
		len(early.Events) != 1 || early.Object["event_id"] != early.Events[0]["event_id"] {
		t.Fatalf("charge known at its first event: %d %+v %v", code, early.Object, early.Events)
	}
	if code, _, _ := c.do("/api/v1/charges/" + id + "?known_at=position:0"); code != 404 {
		t.Fatalf("a charge known before its first event: %d", code)
	}
}

// The metrics endpoints answer from the metric views for every metric and interval.
func TestMetricsEndpoints(t *testing.T) {
	t.Parallel()
	c, db, _ := setup(t)
	for _, m := range []string{"mrr", "revenue", "refunds", "churn", "movements"} {
		for _, interval := range []string{"day", "month"} {
			var body struct {
				Data []map[string]any `json:"data"`
			}
			if code := c.json("/api/v1/metrics/"+m+"?interval="+interval+"&from=2026-03-01&to=2026-05-31&livemode=false", &body); code != 200 || len(body.Data) == 0 {
				t.Fatalf("%s by %s: %d, %d rows", m, interval, code, len(body.Data))
			}
		}
	}
	var mrr struct {
		Data []struct {
			Period   string `json:"period"`
			Currency string `json:"currency"`
			MRR      int64  `json:"mrr"`
		} `json:"data"`
	}
	c.json("/api/v1/metrics/mrr?interval=month&from=2026-05-01&to=2026-05-31&currency=eur&livemode=false", &mrr)
	var want int64
	_ = db.Pool.QueryRow(context.Background(), `SELECT mrr FROM ledger.metrics_monthly WHERE month = '2026-05-01' AND currency = 'eur' AND NOT livemode AND account IS NULL`).Scan(&want)
	if len(mrr.Data) != 1 || mrr.Data[0].MRR != want || mrr.Data[0].Currency != "eur" {
		t.Fatalf("May MRR in eur: %+v, want %d", mrr.Data, want)
	}
	// Every series equals the metric views over the same periods, column by column.
	for _, m := range []string{"mrr", "revenue", "movements"} {
		for _, interval := range []string{"day", "month"} {
			var body struct {
				Data []map[string]any `json:"data"`
			}
			c.json("/api/v1/metrics/"+m+"?interval="+interval+"&from=2026-02-01&to=2026-05-31&livemode=false", &body)
			view, col := "ledger.metrics_daily", "day"
			if interval == "month" {
				view, col = "ledger.metrics_monthly", "month"
			}
			rows, err := db.Pool.Query(context.Background(), `SELECT row_to_json(v)::text FROM `+view+` v WHERE `+col+` BETWEEN '2026-02-01' AND '2026-05-31' AND NOT livemode AND account IS NULL`)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]map[string]any{}
			for rows.Next() {
				var js string
				_ = rows.Scan(&js)
				var r map[string]any
				_ = json.Unmarshal([]byte(js), &r)
				want[r[col].(string)+r["currency"].(string)] = r
			}
			rows.Close()
			// The view's days start at a currency's first charge or movement, the MRR series at
			// its first movement: rows only the view has carry no MRR and no movement.
			got := map[string]bool{}
			for _, row := range body.Data {
				got[row["period"].(string)+row["currency"].(string)] = true
			}
			for key, v := range want {
				if !got[key] && (m != "revenue" && v["mrr"].(float64) != 0 || m == "revenue" && v["gross_revenue"].(float64) != 0) {
					t.Fatalf("%s by %s: the view has %s (%v), the API not", m, interval, key, v)
				}
			}
			if len(body.Data) == 0 {
				t.Fatalf("%s by %s: no rows", m, interval)
			}
			for _, row := range body.Data {
				v, ok := want[row["period"].(string)+row["currency"].(string)]
				if !ok { // before the currency's first activity: nothing happened
					for k, x := range row {
						if n, isNum := x.(float64); isNum && n != 0 {
							t.Fatalf("%s by %s: %s %s is not in the view but has %s = %v", m, interval, row["period"], row["currency"], k, n)
						}
					}
					continue
				}
				for k, got := range row {
					if exp, ok := v[k]; ok && k != "period" && exp != got {
						t.Fatalf("%s by %s, %s %s: %s = %v, the view says %v", m, interval, row["period"], row["currency"], k, got, exp)
					}
				}
			}
		}
	}
	if code, _, _ := c.do("/api/v1/projections/status"); code != 200 {
		t.Fatalf("projections status: %d", code)
	}
}
