// Package webhook is the ledger's front door: POST /webhooks/stripe.
//
// It proves each request came from Stripe (HMAC-SHA256 over the raw body, checked by stripe-go's
// webhook package against every configured secret), decodes only the event envelope, and appends
// the body byte for byte to the event log through the group-commit appender. It answers 200 only
// after the event is committed, 503 when the database cannot commit it in time (Stripe retries),
// and a precise 4xx with a one-line JSON error for everything that is not a signed event.
//
// The secret that verified a request names the endpoint it came to (EndpointSecrets), and the
// event is appended with it. An event that disagrees with its endpoint — a live event signed by
// the test endpoint's secret, a connected account's event on a platform endpoint, a platform
// event on a Connect endpoint — is stored and acknowledged like any other (Stripe must not retry
// a signed event for days), marked with the reason in its row, counted and logged; the read
// models leave it out until an operator releases it (package projections).
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"
	"golang.org/x/time/rate"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// Appender is what the handler appends through (eventstore.Appender in production): each
// request's event with the endpoint that verified it.
type Appender interface {
	AppendFrom(ctx context.Context, from eventstore.Endpoint, events []domain.Event) ([]eventstore.Result, error)
}

// Quarantiner keeps signed bodies that are not events (eventstore.Store in production).
type Quarantiner interface {
	Quarantine(ctx context.Context, reason, detail, signature string, payload []byte) error
}

// Config configures the handler. Zero values take the documented defaults.
type Config struct {
	// Endpoints are each Stripe endpoint's signing secrets (whsec_…): a request is authentic
	// when any one of them verifies it, and came to that secret's endpoint.
	Endpoints EndpointSecrets
	// Secrets are added to Endpoints.Unstated: signing secrets of a platform endpoint whose mode
	// is not said (as STRIPE_WEBHOOK_SECRET). At least one secret overall is required.
	Secrets []string
	// Tolerance is how far the signed timestamp may be from now, in the past or the future.
	// Default 300 s, Stripe's.
	Tolerance time.Duration
	// MaxBodyBytes bounds the request body; larger answers 413. Stripe sets no maximum and real
	// payloads exceed 64 KiB. Default 1 MiB.
	MaxBodyBytes int64
	// AppendTimeout bounds the wait for the commit; past it the answer is 503 and Stripe retries.
	// Default 5 s.
	AppendTimeout time.Duration
	// Logger for one line per rejection (rate-limited) and per accepted event. Default slog's.
	Logger *slog.Logger
	// RejectionLogsPerSecond bounds rejection log lines (a flood of forged requests must not
	// flood the logs). Default 5/s with bursts of 20.
	RejectionLogsPerSecond float64
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// endpointKey is one secret and the endpoint it verifies for.
type endpointKey struct {
	endpoint eventstore.Endpoint
	secret   string
}

func (c *Config) setDefaults() {
	if c.Tolerance <= 0 {
		c.Tolerance = stripewebhook.DefaultTolerance
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.AppendTimeout <= 0 {
		c.AppendTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RejectionLogsPerSecond <= 0 {
		c.RejectionLogsPerSecond = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Handler serves POST /webhooks/stripe.
type Handler struct {
	cfg           Config
	keys          []endpointKey // in the order they are tried
	appender      Appender
	quarantine    Quarantiner
	metrics       *Metrics
	logLimit      *rate.Limiter // rejection lines
	mismatchLimit *rate.Limiter // endpoint-mismatch lines, bounded apart so neither hides the other
}

// New returns the handler. The secrets must pass EndpointSecrets.Validate.
func New(cfg Config, appender Appender, quarantine Quarantiner, metrics *Metrics) (*Handler, error) {
	cfg.setDefaults()
	cfg.Endpoints.Unstated = append(slices.Clip(cfg.Endpoints.Unstated), cfg.Secrets...)
	if err := cfg.Endpoints.Validate(); err != nil {
		return nil, err
	}
	var keys []endpointKey
	for _, e := range eventstore.Endpoints {
		for _, secret := range *cfg.Endpoints.Of(e) {
			keys = append(keys, endpointKey{e, secret})
		}
	}
	return &Handler{
		cfg: cfg, keys: keys, appender: appender, quarantine: quarantine, metrics: metrics,
		logLimit:      rate.NewLimiter(rate.Limit(cfg.RejectionLogsPerSecond), 20),
		mismatchLimit: rate.NewLimiter(rate.Limit(cfg.RejectionLogsPerSecond), 20),
	}, nil
}

// rejection is a non-2xx answer: status, stable reason token and a message for people.
type rejection struct {
	status  int
	reason  string
	message string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.cfg.Now()
	status := h.serve(w, r)
	h.metrics.Latency.WithLabelValues(strconv.Itoa(status)).Observe(time.Since(start).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return h.reject(w, r, &rejection{http.StatusMethodNotAllowed, reasonMethod, "method " + r.Method + " not allowed: Stripe webhooks are POSTed"})
	}
	h.metrics.Received.Inc()
	sig := r.Header.Get("Stripe-Signature")
	body, from, rj := h.admit(sig, r.ContentLength, http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if rj != nil {
		return h.reject(w, r, rj)
	}

	// Authentic from here on: never answer 4xx for something Stripe will retry for days unless
	// it truly is not an event, and then keep it.
	ev, err := domain.NewEvent(body, domain.SourceWebhook, sig)
	if err != nil {
		return h.quarantineBody(w, r, err, sig, body)
	}
	ev.ReceivedAt = h.cfg.Now()
	thin := domain.IsThin(ev.Type) // unversioned; the ledger fetches its object (package reconcile)
	if known := domain.KnownEventType(ev.Type) || thin && domain.KnownEventType(ev.Type[3:]); !known {
		h.metrics.UnknownTypes.Inc()
	}
	if ev.APIVersion != domain.PinnedAPIVersion && !thin {
		h.metrics.OtherVersions.WithLabelValues(domain.VersionLabel(ev.APIVersion)).Inc()
	}

	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.AppendTimeout)
	defer cancel()
	res, err := h.appender.AppendFrom(ctx, from, []domain.Event{ev})
	if err != nil {
		h.cfg.Logger.Error("webhook not committed", "event_id", ev.ID, "type", ev.Type, "error", err)
		return h.reject(w, r, &rejection{http.StatusServiceUnavailable, reasonDatabase, "the event log could not commit the event; retry later"})
	}
	if res[0].Err != nil {
		return h.reject(w, r, &rejection{http.StatusBadRequest, reasonInvalidEvent, res[0].Err.Error()})
	}
	if res[0].Duplicate {
		h.metrics.Duplicates.Inc()
	} else {
		h.metrics.Appended.Inc()
	}
	if reason := from.HoldReason(ev.Livemode, ev.Account); reason != "" {
		// Every such delivery is counted, a duplicate's too (a leaked test secret replaying live
		// events is worth an alert even when the log has them); a duplicate's stored row keeps
		// the first delivery's attribution, so only a new event is held for this reason.
		h.metrics.EndpointMismatch.WithLabelValues(string(from), reason).Inc()
		if h.mismatchLimit.Allow() {
			h.cfg.Logger.Warn("webhook disagrees with its endpoint: stored, held out of the read models",
				"event_id", ev.ID, "type", ev.Type, "endpoint", from, "reason", reason, "livemode", ev.Livemode,
				"account", ev.Account, "position", res[0].Position, "duplicate", res[0].Duplicate)
		}
	}
	h.cfg.Logger.Info("webhook", "event_id", ev.ID, "type", ev.Type, "endpoint", from, "position", res[0].Position, "duplicate", res[0].Duplicate)
	writeJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": res[0].Duplicate})
	return http.StatusOK
}

// admit decides whether a request is a body Stripe signed, without touching the database: the
// signature header, the timestamp window (past and future), the body size, and the HMAC against
// every configured secret. The header is checked before the body is read, so a forged or stale
// request costs no more than its headers. It answers the endpoint whose secret verified it.
func (h *Handler) admit(sig string, contentLength int64, body io.Reader) ([]byte, eventstore.Endpoint, *rejection) {
	if sig == "" {
		return nil, "", &rejection{http.StatusBadRequest, reasonMissingHeader, "missing Stripe-Signature header"}
	}
	hdr, problem := parseHeader(sig)
	if problem != "" {
		return nil, "", &rejection{http.StatusBadRequest, reasonMalformed, "malformed Stripe-Signature header: " + problem}
	}
	now := h.cfg.Now()
	if age := now.Sub(hdr.timestamp); age > h.cfg.Tolerance {
		return nil, "", &rejection{http.StatusBadRequest, reasonTooOld,
			fmt.Sprintf("signature timestamp is %s old, beyond the %s tolerance", age.Truncate(time.Second), h.cfg.Tolerance)}
	} else if -age > h.cfg.Tolerance {
		return nil, "", &rejection{http.StatusBadRequest, reasonInFuture,
			fmt.Sprintf("signature timestamp is %s in the future, beyond the %s tolerance", (-age).Truncate(time.Second), h.cfg.Tolerance)}
	}
	if contentLength > h.cfg.MaxBodyBytes {
		return nil, "", h.tooLarge()
	}
	// With a Content-Length (Stripe sends one) the body is read into one allocation of exactly
	// that size; net/http ends the body there. Without one, read up to the limit.
	var raw []byte
	var err error
	if contentLength > 0 {
		raw = make([]byte, contentLength)
		_, err = io.ReadFull(body, raw)
	} else {
		raw, err = io.ReadAll(io.LimitReader(body, h.cfg.MaxBodyBytes+1))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", h.tooLarge()
		}
		return nil, "", &rejection{http.StatusBadRequest, reasonReadFailed, "could not read the request body"}
	}
	if int64(len(raw)) > h.cfg.MaxBodyBytes {
		return nil, "", h.tooLarge()
	}
	if len(raw) == 0 {
		return nil, "", &rejection{http.StatusBadRequest, reasonEmptyBody, "empty body"}
	}
	from, ok := h.verify(raw, sig)
	if !ok {
		return nil, "", &rejection{http.StatusBadRequest, reasonBadSignature, "no valid signature for any configured signing secret"}
	}
	return raw, from, nil
}

// verify checks the body against every secret with stripe-go's webhook package (HMAC-SHA256,
// constant-time comparison, every v1 in the header), in the documented order, and answers the
// endpoint of the first that verifies. The timestamp was bounded above.
func (h *Handler) verify(body []byte, sig string) (eventstore.Endpoint, bool) {
	for _, k := range h.keys {
		// IgnoringTolerance: the window was already enforced in both directions against the
		// handler's clock; stripe-go's check is past-only and uses the wall clock.
		if stripewebhook.ValidatePayloadIgnoringTolerance(body, sig, k.secret) == nil {
			return k.endpoint, true
		}
	}
	return "", false
}

func (h *Handler) tooLarge() *rejection {
	return &rejection{http.StatusRequestEntityTooLarge, reasonTooLarge,
		fmt.Sprintf("body larger than %d bytes", h.cfg.MaxBodyBytes)}
}

func (h *Handler) quarantineBody(w http.ResponseWriter, r *http.Request, decodeErr error, sig string, body []byte) int {
	reason, detail := domain.ReasonNotAnEvent, decodeErr.Error()
	var ee *domain.EnvelopeError
	if errors.As(decodeErr, &ee) {
		reason, detail = ee.Reason, ee.Detail
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.AppendTimeout)
	defer cancel()
	if err := h.quarantine.Quarantine(ctx, reason, detail, sig, body); err != nil {
		h.cfg.Logger.Error("signed body not quarantined", "reason", reason, "error", err)
		return h.reject(w, r, &rejection{http.StatusServiceUnavailable, reasonDatabase, "could not keep the signed body; retry later"})
	}
	h.metrics.Quarantined.WithLabelValues(reason).Inc()
	return h.reject(w, r, &rejection{http.StatusBadRequest, reasonNotAnEvent, "signed body is not a Stripe event (" + detail + "); kept in quarantine"})
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, rj *rejection) int {
	h.metrics.Rejected.WithLabelValues(rj.reason).Inc()
	if h.logLimit.Allow() {
		h.cfg.Logger.Warn("webhook rejected", "status", rj.status, "reason", rj.reason, "detail", rj.message, "remote", r.RemoteAddr)
	}
	writeJSON(w, rj.status, map[string]any{"error": rj.message, "reason": rj.reason})
	return rj.status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// NotFound answers unknown paths with the same one-line JSON error as the webhook.
func NotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such path: " + r.URL.Path, "reason": "not_found"})
}
