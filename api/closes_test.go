package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/query"
)

// The printable report is text/html: its body is checked as a string.
func init() { openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder) }

// post sends a JSON body and validates the answer against the OpenAPI document.
func (c *client) post(path, body string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	vreq, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(body))
	vreq.Header.Set("Content-Type", "application/json")
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		c.t.Fatalf("%s: not in the OpenAPI document: %v", path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(out)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Fatalf("POST %s: answer %d does not match the OpenAPI document: %v\n%.600s", path, resp.StatusCode, err, out)
	}
	return resp.StatusCode, out
}

// operateClient is a client of an API over db whose token (the same) has role operate, and
// whose name is what a close records as closed_by.
func operateClient(t *testing.T, db *testkit.DB) *client {
	t.Helper()
	srv := httptest.NewServer(api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("month-end:operate:" + token),
		FX: query.FX{Reporting: "usd", RateDate: query.FXPeriodStart}}))
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
	return &client{t: t, base: srv.URL, router: router}
}

// POST /api/v1/closes closes a month once (201), then answers 409 saying when; a month not
// ended is 422, a malformed one 400. GET /api/v1/closes/{period} is the close as JSON, CSV and
// the printable HTML report; the payout reconciliation and its drill-down answer JSON and CSV;
// every answer matches the OpenAPI document.
func TestClosesAndPayoutsAPI(t *testing.T) {
	t.Parallel()
	_, db, _ := setup(t)
	c := operateClient(t, db)
	ctx := context.Background()

	code, body := c.post("/api/v1/closes", `{"period":"2026-05"}`)
	var closed struct {
		Period   string    `json:"period"`
		ClosedAt time.Time `json:"closed_at"`
		ClosedBy *string   `json:"closed_by"`
		Position int64     `json:"position"`
		Figures  []struct {
			Currency     string `json:"currency"`
			GrossRevenue int64  `json:"gross_revenue"`
		} `json:"figures"`
		// The server runs with a reporting currency: the close froze its rates.
		Reporting *struct {
			Currency string `json:"currency"`
			Figures  []any  `json:"figures"`
		} `json:"reporting"`
	}
	if err := json.Unmarshal(body, &closed); err != nil || code != http.StatusCreated || closed.Period != "2026-05" || len(closed.Figures) == 0 ||
		closed.Position == 0 || closed.ClosedBy == nil || *closed.ClosedBy != "month-end" ||
		closed.Reporting == nil || closed.Reporting.Currency != "usd" || len(closed.Reporting.Figures) == 0 {
		t.Fatalf("close: %d %s", code, body)
	}
	var gross int64
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM ledger.charges WHERE status = 'succeeded' AND currency = $1
		AND created >= '2026-05-01' AND created < '2026-06-01'`, closed.Figures[0].Currency).Scan(&gross); err != nil {
		t.Fatal(err)
	}
	if gross != closed.Figures[0].GrossRevenue || gross == 0 {
		t.Fatalf("gross revenue in %s: close %d, charges %d", closed.Figures[0].Currency, closed.Figures[0].GrossRevenue, gross)
	}
	code, body = c.post("/api/v1/closes", `{"period":"2026-05"}`)
	if code != http.StatusConflict || !strings.Contains(string(body), closed.ClosedAt.UTC().Format(time.RFC3339)) {
		t.Fatalf("closing again: %d %s", code, body)
	}
	next := time.Now().UTC().AddDate(0, 1, 0).Format("2006-01")
	if code, body = c.post("/api/v1/closes", `{"period":"`+next+`"}`); code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "period_not_ended") {
		t.Fatalf("closing next month: %d %s", code, body)
	}
	for _, bad := range []string{`{"period":"2026-13"}`, `{}`, `{"period":"2026-05","when":"now"}`} {
		if code, body = c.post("/api/v1/closes", bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}

	var got struct {
		Period      string            `json:"period"`
		Adjustments []json.RawMessage `json:"adjustments"`
		Adjusted    []json.RawMessage `json:"adjusted"`
	}
	if code := c.json("/api/v1/closes/2026-05", &got); code != http.StatusOK || got.Period != "2026-05" || len(got.Adjustments) != 0 || len(got.Adjusted) != len(closed.Figures) {
		t.Fatalf("get: %d %+v", code, got)
	}
	if code, _, body := c.do("/api/v1/closes/2026-04"); code != http.StatusNotFound {
		t.Fatalf("a month not closed: %d %s", code, body)
	}
	if code, _, body := c.do("/api/v1/closes/2026-5"); code != http.StatusBadRequest || !strings.Contains(string(body), "YYYY-MM") {
		t.Fatalf("a malformed month: %d %s", code, body)
	}
	code, hdr, body := c.do("/api/v1/closes/2026-05?format=csv&livemode=false")
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || len(recs) != 1+2*len(closed.Figures)+2*len(closed.Reporting.Figures) {
		t.Fatalf("csv: %d %v %d records", code, err, len(recs))
	}
	code, hdr, body = c.do("/api/v1/closes/2026-05/report")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "Figures as closed") ||
		!strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("report: %d %s", code, hdr)
	}
	var list struct {
		Data []struct{ Period string } `json:"data"`
	}
	if code := c.json("/api/v1/closes", &list); code != http.StatusOK || len(list.Data) != 1 || list.Data[0].Period != "2026-05" {
		t.Fatalf("list: %d %+v", code, list)
	}

	// Payouts came by webhook; no balance transaction has been fetched, so none reconciles.
	var payouts struct {
		Data []struct {
			Payout string `json:"payout"`
			Match  bool   `json:"match"`
			Amount int64  `json:"amount"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	if code := c.json("/api/v1/payouts/reconciliation?limit=5&livemode=false", &payouts); code != http.StatusOK || len(payouts.Data) != 5 || !payouts.HasMore || payouts.Data[0].Match {
		t.Fatalf("reconciliation: %d %+v", code, payouts)
	}
	var detail struct {
		Payout              string            `json:"payout"`
		BalanceTransactions []json.RawMessage `json:"balance_transactions"`
	}
	if code := c.json("/api/v1/payouts/reconciliation/"+payouts.Data[0].Payout, &detail); code != http.StatusOK || detail.Payout != payouts.Data[0].Payout {
		t.Fatalf("drill-down: %d %+v", code, detail)
	}
	if code, _, _ := c.do("/api/v1/payouts/reconciliation/po_nothere"); code != http.StatusNotFound {
		t.Fatalf("an unknown payout: %d", code)
	}
	code, _, body = c.do("/api/v1/payouts/reconciliation?format=csv")
	recs, err = csv.NewReader(bytes.NewReader(body)).ReadAll()
	var n int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger.payouts`).Scan(&n)
	if err != nil || code != http.StatusOK || len(recs) != n+1 || recs[0][0] != "payout" {
		t.Fatalf("reconciliation csv: %d %v %d records for %d payouts", code, err, len(recs), n)
	}
	var found struct {
		Data []struct{ Kind, Object string } `json:"data"`
	}
	if code := c.json("/api/v1/payouts/unreconciled?kind=payout_mismatch", &found); code != http.StatusOK || len(found.Data) == 0 {
		t.Fatalf("unreconciled: %d %+v", code, found)
	}
	for _, bad := range []string{"/api/v1/payouts/reconciliation?match=maybe", "/api/v1/payouts/unreconciled?kind=all", "/api/v1/payouts/reconciliation?sort=amount"} {
		if code, _, body := c.do(bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
}
