// Package reconcile compares the ledger with Stripe and repairs it by appending: missing events
// from the Events API, typed snapshot events for drift no event explains, and a health check of
// the webhook endpoints. Every run is recorded in ledger.reconcile_runs.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"golang.org/x/time/rate"
)

// StripeConfig says how to reach Stripe's API.
type StripeConfig struct {
	// APIKey is a secret (sk_…) or restricted (rk_…) key, or a live and a test key separated by
	// a comma; TestKey is a test key given on its own (STRIPE_SECRET_KEY_TEST). Each key's mode
	// comes from its prefix, and there is at most one key per mode: Keys checks. Never logged.
	APIKey  string
	TestKey string
	APIBase string // "" for api.stripe.com; the simulator or stripe-mock in tests
	// LiveRateLimit and TestRateLimit are requests per second per key: one limiter per key,
	// shared by every connected account read with it and by every run of the reconciler.
	// Defaults 90 and 22, just under Stripe's 100 and 25. RateLimit, when set, is the default
	// of both.
	LiveRateLimit, TestRateLimit float64
	RateLimit                    float64
	// Accounts says which connected accounts are reconciled beside the platform's own: "auto"
	// (or "") lists them with GET /v1/accounts in each mode, "none" reconciles the platform's
	// account only, and "acct_a,acct_b" names them.
	Accounts string
	// MaxRetries is how many times a request answered 429 or 5xx (or not answered) is tried
	// again, with exponential back-off and jitter; default 8. stripe-go v76 retries no 429.
	MaxRetries int
	// BaseBackoff is the first back-off; it doubles each retry up to 10 s. Default 250 ms.
	BaseBackoff time.Duration
}

// The default rates per key: at least 90 % of Stripe's documented bound (100 requests a second
// in live mode, 25 in test mode) and under it, leaving a little for the dashboard and other
// clients of the same key; 429s are retried anyway.
const (
	DefaultLiveRateLimit = 90
	DefaultTestRateLimit = 22
)

func (c *StripeConfig) setDefaults() {
	if c.LiveRateLimit <= 0 {
		c.LiveRateLimit = c.RateLimit
	}
	if c.TestRateLimit <= 0 {
		c.TestRateLimit = c.RateLimit
	}
	if c.LiveRateLimit <= 0 {
		c.LiveRateLimit = DefaultLiveRateLimit
	}
	if c.TestRateLimit <= 0 {
		c.TestRateLimit = DefaultTestRateLimit
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 8
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 250 * time.Millisecond
	}
}

// ErrNoAPIKey is returned when reconciliation is asked for without STRIPE_SECRET_KEY.
var ErrNoAPIKey = errors.New("no Stripe API key: set STRIPE_SECRET_KEY (sk_… or a restricted rk_… key with read access to events, " +
	"customers, subscriptions, invoices, charges, refunds, disputes, Checkout sessions, accounts and webhook endpoints; a live " +
	"and a test key separated by a comma, or the test key in STRIPE_SECRET_KEY_TEST)")

// KeyMode reads a key's mode from its prefix: sk_live_/rk_live_ is live, sk_test_/rk_test_ test.
func KeyMode(key string) (live, ok bool) {
	switch {
	case strings.HasPrefix(key, "sk_live_"), strings.HasPrefix(key, "rk_live_"):
		return true, true
	case strings.HasPrefix(key, "sk_test_"), strings.HasPrefix(key, "rk_test_"):
		return false, true
	}
	return false, false
}

// Keys are the configured keys by mode (true: live). The errors name the variable and the entry,
// never the key: two keys of one mode, a key of no known mode, a live key in
// STRIPE_SECRET_KEY_TEST, or no key at all (ErrNoAPIKey).
func (c StripeConfig) Keys() (map[bool]string, error) {
	keys := map[bool]string{}
	mode := func(live bool) string {
		if live {
			return "live"
		}
		return "test"
	}
	if strings.TrimSpace(c.APIKey) != "" {
		for i, k := range strings.Split(c.APIKey, ",") {
			k = strings.TrimSpace(k)
			live, ok := KeyMode(k)
			if !ok {
				return nil, fmt.Errorf("STRIPE_SECRET_KEY: entry %d is not a Stripe secret or restricted key "+
					"(want a prefix sk_live_, rk_live_, sk_test_ or rk_test_)", i+1)
			}
			if _, dup := keys[live]; dup {
				return nil, fmt.Errorf("STRIPE_SECRET_KEY: two %s keys; give one key per mode (a live and a test key, comma-separated)", mode(live))
			}
			keys[live] = k
		}
	}
	if k := strings.TrimSpace(c.TestKey); k != "" {
		live, ok := KeyMode(k)
		if !ok || live {
			return nil, errors.New("STRIPE_SECRET_KEY_TEST: not a test key (want a prefix sk_test_ or rk_test_)")
		}
		if _, dup := keys[false]; dup {
			return nil, errors.New("STRIPE_SECRET_KEY and STRIPE_SECRET_KEY_TEST both hold a test key; give one key per mode")
		}
		keys[false] = k
	}
	if len(keys) == 0 {
		return nil, ErrNoAPIKey
	}
	return keys, nil
}

// Configured reports whether any key is set (valid or not: Keys says).
func (c StripeConfig) Configured() bool {
	return strings.TrimSpace(c.APIKey) != "" || strings.TrimSpace(c.TestKey) != ""
}

// Counters are a run's API usage.
type Counters struct {
	Requests    atomic.Int64
	RateLimited atomic.Int64
}

// stripeAPI is a stripe-go client of one key whose HTTP requests go through that key's rate
// limiter and the ledger's back-off, counted per run.
type stripeAPI struct {
	*client.API
	livemode bool
	counters *Counters
	// For raw requests stripe-go v76 cannot make (the v2 API): the same limited client.
	http *http.Client
	key  string
	base string
}

// newStripeAPI is a client of key sharing limiter (nil: a limiter of its own at the key's mode's
// rate).
func newStripeAPI(cfg StripeConfig, key string, limiter *rate.Limiter, counters *Counters) *stripeAPI {
	cfg.setDefaults()
	live, _ := KeyMode(key)
	if limiter == nil {
		limiter = newLimiter(cfg, live)
	}
	t := &limitedTransport{
		base:     http.DefaultTransport,
		limiter:  limiter,
		retries:  cfg.MaxRetries,
		backoff:  cfg.BaseBackoff,
		counters: counters,
	}
	noRetries := int64(0) // ours do it, with the limiter and 429s
	hc := &http.Client{Transport: t, Timeout: 60 * time.Second}
	bc := &stripe.BackendConfig{
		HTTPClient:        hc,
		MaxNetworkRetries: &noRetries,
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	base := stripe.APIURL
	if cfg.APIBase != "" {
		bc.URL = stripe.String(cfg.APIBase)
		base = strings.TrimRight(cfg.APIBase, "/")
	}
	return &stripeAPI{API: client.New(key, stripe.NewBackendsWithConfig(bc)), livemode: live, counters: counters,
		http: hc, key: key, base: base}
}

// newLimiter is a key's limiter: its mode's rate, no burst (requests spread evenly).
func newLimiter(cfg StripeConfig, live bool) *rate.Limiter {
	cfg.setDefaults()
	perSecond := cfg.TestRateLimit
	if live {
		perSecond = cfg.LiveRateLimit
	}
	return rate.NewLimiter(rate.Limit(perSecond), 1)
}

// limitedTransport waits for the rate limiter before every request and retries 429s, 5xx and
// transport errors with exponential back-off and full jitter, honouring Retry-After.
type limitedTransport struct {
	base     http.RoundTripper
	limiter  *rate.Limiter
	retries  int
	backoff  time.Duration
	counters *Counters
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		if err := t.limiter.Wait(ctx); err != nil {
			if ctx.Err() == nil {
				// The limiter refuses at once when the next token comes after ctx's deadline:
				// the run is out of time, which is a deadline, not a Stripe failure.
				return nil, fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
			}
			return nil, ctx.Err()
		}
		r := req
		if attempt > 0 && req.Body != nil {
			if req.GetBody == nil {
				return nil, errors.New("cannot retry a request whose body cannot be re-read")
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		t.counters.Requests.Add(1)
		resp, err := t.base.RoundTrip(r)
		retryable := err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if !retryable || attempt >= t.retries || ctx.Err() != nil {
			return resp, err
		}
		wait := t.backoff << min(attempt, 6)
		wait = min(wait, 10*time.Second)
		wait = wait/2 + rand.N(wait/2+1) // jitter: many runners must not retry in step
		if resp != nil {
			if resp.StatusCode == http.StatusTooManyRequests {
				t.counters.RateLimited.Add(1)
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = max(wait, time.Duration(s)*time.Second)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// stripeError is an error answer from Stripe, said without the key or the request body.
type stripeError struct {
	what string
	err  *stripe.Error
}

func (e *stripeError) Error() string {
	return fmt.Sprintf("%s: Stripe answered %d %s: %s", e.what, e.err.HTTPStatusCode, e.err.Code, e.err.Msg)
}

func (e *stripeError) Unwrap() error { return e.err }

// apiError describes a Stripe API failure without the key or the request body.
//
// When ctx has ended, the request was abandoned for that reason (stripe-go reports it as a plain
// transport error): the answer is ctx's error, so that a cancelled run is recorded as cancelled
// and resumed rather than failed.
func apiError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, context.DeadlineExceeded)
	}
	var se *stripe.Error
	if errors.As(err, &se) {
		return &stripeError{what: what, err: se}
	}
	return fmt.Errorf("%s: %w", what, err)
}
