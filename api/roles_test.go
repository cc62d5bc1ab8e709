package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/stripeledger/ledger/api"
	"github.com/stripeledger/ledger/audit"
	"github.com/stripeledger/ledger/auth"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/projections"
	"github.com/stripeledger/ledger/query"
)

// routeRequest is the role a route must declare, and a request that reaches it: its path and,
// for POST routes, a body.
type routeRequest struct {
	role       auth.Role
	path, body string
}

// routeRequests has a row for every route the API registers. A route added without a row here
// fails TestEveryRouteEnforcesItsRole; so does a row for a route that no longer exists.
func routeRequests() map[string]routeRequest {
	rows := map[string]routeRequest{
		"GET /api/v1/openapi.json":                {role: auth.Public, path: "/api/v1/openapi.json"},
		"GET /api/v1/metrics/{name}":              {role: auth.Read, path: "/api/v1/metrics/mrr"},
		"GET /api/v1/events/{id}":                 {role: auth.Read, path: "/api/v1/events/evt_1"},
		"GET /api/v1/summary":                     {role: auth.Read, path: "/api/v1/summary"},
		"GET /api/v1/projections/status":          {role: auth.Read, path: "/api/v1/projections/status"},
		"POST /api/v1/projections/retry":          {role: auth.Operate, path: "/api/v1/projections/retry", body: `{"all":true}`},
		"GET /api/v1/reconcile/runs":              {role: auth.Read, path: "/api/v1/reconcile/runs"},
		"POST /api/v1/reconcile/runs":             {role: auth.Operate, path: "/api/v1/reconcile/runs", body: `{"job":"events"}`},
		"GET /api/v1/reconcile/runs/{id}":         {role: auth.Read, path: "/api/v1/reconcile/runs/1"},
		"POST /api/v1/endpoints/setup":            {role: auth.Admin, path: "/api/v1/endpoints/setup", body: `{"url":"https://ledger.example/webhooks/stripe"}`},
		"POST /api/v1/redactions":                 {role: auth.Admin, path: "/api/v1/redactions", body: `{"customer":"cus_nobody","reason":"erasure request"}`},
		"GET /api/v1/stream":                      {role: auth.Read, path: "/api/v1/stream"},
		"GET /api/v1/notify/deliveries":           {role: auth.Read, path: "/api/v1/notify/deliveries"},
		"POST /api/v1/notify/retry":               {role: auth.Operate, path: "/api/v1/notify/retry", body: `{"all_failed":true}`},
		"/api/v1/":                                {role: auth.Read, path: "/api/v1/nothing"},
		"GET /api/v1/payouts/reconciliation":      {role: auth.Read, path: "/api/v1/payouts/reconciliation"},
		"GET /api/v1/payouts/reconciliation/{id}": {role: auth.Read, path: "/api/v1/payouts/reconciliation/po_1"},
		"GET /api/v1/payouts/unreconciled":        {role: auth.Read, path: "/api/v1/payouts/unreconciled"},
		"GET /api/v1/closes":                      {role: auth.Read, path: "/api/v1/closes"},
		"POST /api/v1/closes":                     {role: auth.Operate, path: "/api/v1/closes", body: `{"period":"2020-01"}`},
		"GET /api/v1/closes/{period}":             {role: auth.Read, path: "/api/v1/closes/2020-01"},
		"GET /api/v1/closes/{period}/report":      {role: auth.Read, path: "/api/v1/closes/2020-01/report"},
	}
	// Every read model's list and object, as the API registers them.
	for _, m := range projections.Models {
		rows["GET /api/v1/"+m.Table] = routeRequest{role: auth.Read, path: "/api/v1/" + m.Table}
		rows["GET /api/v1/"+m.Table+"/{id}"] = routeRequest{role: auth.Read, path: "/api/v1/" + m.Table + "/x_1"}
	}
	return rows
}

// handlerAnswered says whether an answer came from the route's handler, not the guard and not a
// failure: a 2xx, or one of the statuses a handler answers for the request's content or this
// server's configuration (400, 404, 409, 503) with a JSON error code of its own. Any other 5xx is
// a handler that broke on the way, which would hide whether the guard let the request through.
func handlerAnswered(code int, body string) bool {
	if code >= 200 && code < 300 {
		return true
	}
	switch code {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable:
	default:
		return false
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return false
	}
	switch e.Error.Code {
	case "", "unauthorized", "forbidden", "client_closed_request": // the guard's codes
		return false
	}
	return e.Error.Message != ""
}

// Every route declares a role, and the API enforces it: no token and an unknown token get the
// same 401; a token of a lower role gets 403 naming the role needed; the role and the roles
// above it get through. Each request that presented a token is in the audit log once, refused or
// not, with its route's pattern; an unknown token's row names no token.
func TestEveryRouteEnforcesItsRole(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	ctx := context.Background()
	writer := audit.NewWriter(db.Pool, audit.Config{})
	defer writer.Close(ctx)
	a := api.New(db.Pool, api.Config{Tokens: auth.MustParseEnv("fin:read:tok_read, ops:operate:tok_operate, root:admin:tok_admin"), Audit: writer})
	srv := httptest.NewServer(a)
	defer srv.Close()
	tokens := map[auth.Role]string{auth.Read: "tok_read", auth.Operate: "tok_operate", auth.Admin: "tok_admin"}

	call := func(pattern string, rr routeRequest, token string) (int, string) {
		t.Helper()
		method, _, ok := strings.Cut(pattern, " ")
		if !ok {
			method = http.MethodGet
		}
		var body io.Reader
		if rr.body != "" {
			body = strings.NewReader(rr.body)
		}
		req, _ := http.NewRequest(method, srv.URL+rr.path, body)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	rows := routeRequests()
	wantAudited := map[string]int{}
	routes := a.Routes()
	if len(routes) < len(projections.Models)*2+10 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, route := range routes {
		rr, ok := rows[route.Pattern]
		if !ok {
			t.Errorf("route %q (role %s) has no row in routeRequests", route.Pattern, route.Role)
			continue
		}
		delete(rows, route.Pattern)
		if route.Role != rr.role {
			t.Errorf("%s declares role %s, want %s", route.Pattern, route.Role, rr.role)
		}
		if route.Role == auth.Public {
			if code, body := call(route.Pattern, rr, ""); code != http.StatusOK {
				t.Errorf("%s is public but answers %d without a token: %.200s", route.Pattern, code, body)
			}
			continue
		}
		code, missing := call(route.Pattern, rr, "")
		if code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %.200s", route.Pattern, code, missing)
		}
		code, unknown := call(route.Pattern, rr, "tok_nobody")
		if code != http.StatusUnauthorized || unknown != missing {
			t.Errorf("%s with an unknown token: %d %.200s (without one: %.200s)", route.Pattern, code, unknown, missing)
		}
		wantAudited[route.Pattern]++ // the unknown token
		for _, role := range auth.Roles {
			code, body := call(route.Pattern, rr, tokens[role])
			wantAudited[route.Pattern]++
			if role < route.Role {
				var e struct {
					Error struct {
						Code         string
						RequiredRole string `json:"required_role"`
						Message      string
					}
				}
				_ = json.Unmarshal([]byte(body), &e)
				if code != http.StatusForbidden || e.Error.Code != "forbidden" || e.Error.RequiredRole != route.Role.String() ||
					!strings.Contains(e.Error.Message, "role "+route.Role.String()) {
					t.Errorf("%s (needs %s) with a %s token: %d %.200s", route.Pattern, route.Role, role, code, body)
				}
				continue
			}
			if !handlerAnswered(code, body) {
				t.Errorf("%s (needs %s) with a %s token: %d %.200s", route.Pattern, route.Role, role, code, body)
			}
		}
	}
	for pattern := range rows {
		t.Errorf("routeRequests has a row for %q, which the API does not register", pattern)
	}

	if err := writer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	rs, err := db.Pool.Query(ctx, `SELECT route, count(*), count(*) FILTER (WHERE token_name IS NULL AND status = 401),
		count(*) FILTER (WHERE status = 403 AND token_name IS NOT NULL) FROM ledger.audit_log GROUP BY route`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var route string
		var n, unknown, forbidden int
		if err := rs.Scan(&route, &n, &unknown, &forbidden); err != nil {
			t.Fatal(err)
		}
		got[route] = n
		need := auth.Read
		for _, r := range routes {
			if r.Pattern == route {
				need = r.Role
			}
		}
		if unknown != 1 || forbidden != int(need)-1 {
			t.Errorf("audit of %s: %d unknown-token rows, %d refused ones (needs %s)", route, unknown, forbidden, need)
		}
	}
	if rs.Err() != nil {
		t.Fatal(rs.Err())
	}
	for route, n := range wantAudited {
		if got[route] != n {
			t.Errorf("audit log has %d rows for %s, want %d", got[route], route, n)
		}
	}
	if len(got) != len(wantAudited) {
		t.Errorf("audit log has rows for %d routes, want %d", len(got), len(wantAudited))
	}
}

// handlerAnswered refuses what the guard answers and what a broken handler answers.
func TestHandlerAnswered(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		code int
		body string
		want bool
	}{
		{200, `{"object":"list"}`, true},
		{202, ``, true},
		{404, `{"error":{"code":"not_found","message":"no charge \"x_1\""}}`, true},
		{503, `{"error":{"code":"stripe_not_configured","message":"needs STRIPE_SECRET_KEY"}}`, true},
		{500, `{"error":{"code":"internal","message":"boom"}}`, false},
		{502, `{"error":{"code":"stripe_error","message":"bad gateway"}}`, false},
		{503, `Service Unavailable`, false},
		{404, "404 page not found\n", false},
		{401, `{"error":{"code":"unauthorized","message":"a valid bearer token is required"}}`, false},
		{403, `{"error":{"code":"forbidden","message":"this needs a token of role admin"}}`, false},
		{400, `{"error":{"code":"unauthorized","message":"x"}}`, false},
	} {
		if got := handlerAnswered(c.code, c.body); got != c.want {
			t.Errorf("%d %s: %v, want %v", c.code, c.body, got, c.want)
		}
	}
}

// Every route the API registers is in its OpenAPI document, with the method it answers.
func TestEveryRouteIsDocumented(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	for _, r := range api.New(nil, api.Config{}).Routes() {
		method, path, ok := strings.Cut(r.Pattern, " ")
		if !ok {
			continue // the catch-all 404
		}
		paths := []string{path}
		if strings.HasSuffix(path, "/metrics/{name}") { // documented one metric a path
			paths = nil
			for _, name := range query.MetricNames() {
				paths = append(paths, strings.Replace(path, "{name}", name, 1))
			}
		}
		for _, p := range paths {
			if item := doc.Paths.Find(p); item == nil || item.GetOperation(method) == nil {
				t.Errorf("%s (%s) is not in the OpenAPI document", r.Pattern, p)
			}
		}
	}
}
