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
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"golang.org/x/time/rate"
)

// StripeConfig says how to reach Stripe's API.
type StripeConfig struct {
	APIKey  string // sk_… or rk_…; never logged
	APIBase string // "" for api.stripe.com; the simulator or stripe-mock in tests
	// RateLimit is requests per second; default 20, under Stripe's 25 per endpoint in test mode.
	RateLimit float64
	// MaxRetries is how many times a request answered 429 or 5xx (or not answered) is tried
	// again, with exponential back-off and jitter; default 8. stripe-go v76 retries no 429.
	MaxRetries int
	// BaseBackoff is the first back-off; it doubles each retry up to 10 s. Default 250 ms.
	BaseBackoff time.Duration
}

func (c *StripeConfig) setDefaults() {
	if c.RateLimit <= 0 {
		c.RateLimit = 20
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 8
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 250 * time.Millisecond
	}
}

// ErrNoAPIKey is returned when reconciliation is asked for without STRIPE_SECRET_KEY.
var ErrNoAPIKey = errors.New("no Stripe API key: set STRIPE_SECRET_KEY (sk_… or a restricted rk_… key with read access to events, subscriptions, charges, invoices and webhook endpoints)")

// Counters are a run's API usage.
type Counters struct {
	Requests    atomic.Int64
	RateLimited atomic.Int64
}

// stripeAPI is a stripe-go client whose HTTP requests go through the ledger's own rate limiter
// and back-off, counted per run.
type stripeAPI struct {
	*client.API
	counters *Counters
}

func newStripeAPI(cfg StripeConfig, counters *Counters) (*stripeAPI, error) {
	if cfg.APIKey == "" {
		return nil, ErrNoAPIKey
	}
	cfg.setDefaults()
	t := &limitedTransport{
		base:     http.DefaultTransport,
		limiter:  rate.NewLimiter(rate.Limit(cfg.RateLimit), 1),
		retries:  cfg.MaxRetries,
		backoff:  cfg.BaseBackoff,
		counters: counters,
	}
	noRetries := int64(0) // ours do it, with the limiter and 429s
	bc := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Transport: t, Timeout: 60 * time.Second},
		MaxNetworkRetries: &noRetries,
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.APIBase != "" {
		bc.URL = stripe.String(cfg.APIBase)
	}
	return &stripeAPI{API: client.New(cfg.APIKey, stripe.NewBackendsWithConfig(bc)), counters: counters}, nil
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
