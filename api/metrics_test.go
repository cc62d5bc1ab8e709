package api_test

import (
	"strings"
	"testing"
)

// The revenue metrics over HTTP: every answer validates against the OpenAPI document, carries
// its definitions and the unvalued count (a CSV as a header), and a reporting-currency request
// without a reporting currency is a precise 400.
func TestRevenueMetricsAnswers(t *testing.T) {
	t.Parallel()
	c, _, _ := setup(t)
	for _, m := range []string{"subscribers", "cohorts", "churn", "movements", "mrr"} {
		var body struct {
			Data        []map[string]any  `json:"data"`
			Definitions map[string]string `json:"definitions"`
			Unvalued    *int64            `json:"unvalued"`
		}
		if code := c.json("/api/v1/metrics/"+m+"?interval=month&from=2026-03-01&to=2026-05-31&livemode=false", &body); code != 200 || len(body.Data) == 0 {
			t.Fatalf("%s: %d, %d rows", m, code, len(body.Data))
		}
		if body.Unvalued == nil || len(body.Definitions) == 0 {
			t.Fatalf("%s: unvalued %v, definitions %v", m, body.Unvalued, body.Definitions)
		}
		for col, def := range body.Definitions {
			if def == "" {
				t.Fatalf("%s: column %s has no definition", m, col)
			}
		}
	}
	code, h, body := c.do("/api/v1/metrics/subscribers?interval=month&from=2026-03-01&to=2026-05-31&livemode=false&format=csv")
	if code != 200 || h.Get("Ledger-Unvalued") == "" || !strings.HasPrefix(string(body), "period,currency,livemode,account,mrr,subscribers,") {
		t.Fatalf("csv: %d %q %.100s", code, h.Get("Ledger-Unvalued"), body)
	}
	for path, want := range map[string]string{
		"/api/v1/metrics/mrr?reporting=true":              "no_reporting_currency",
		"/api/v1/metrics/mrr?reporting=true&currency=usd": "invalid_reporting",
		"/api/v1/metrics/revenue?reporting=true":          "invalid_reporting",
		"/api/v1/metrics/cohorts?interval=day":            "invalid_interval",
		"/api/v1/metrics/subscribers?reporting=yes":       "invalid_reporting",
		"/api/v1/metrics/subscribers?livemode=all":        "modes_not_mixed",
	} {
		code, _, body := c.do(path)
		if code != 400 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s, want 400 %s", path, code, body, want)
		}
	}
}
