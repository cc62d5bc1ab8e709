// Package integrity proves the log from outside the database: it re-checks the Stripe
// signatures of every stored webhook body, and it signs and checks checkpoints of the hash
// chain's head with a key the database never holds.
//
// The hash chain (`ledger verify`) shows the log is internally consistent, but a database
// superuser who edits a row can recompute every hash after it. The two proofs here do not
// depend on anything the database holds: a Stripe signature can only be made by Stripe (or by
// whoever holds the endpoint's signing secret), and a checkpoint only by whoever holds the
// checkpoint key.
package integrity

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// Secrets are the webhook signing secrets a re-check may use: those configured now (every
// endpoint's, STRIPE_WEBHOOK_SECRET_LIVE … and STRIPE_WEBHOOK_SECRET) and those retired after a
// roll (STRIPE_WEBHOOK_SECRET_RETIRED). Retired secrets need no endpoint: which endpoint each
// signed for is learnt from the events it verifies (their stored attribution), as for current
// ones.
// A current secret is taken to sign everything from its first verified event to now; a retired
// one only the span of events it verified (see SignatureReport).
type Secrets struct {
	Current []string
	Retired []string
}

// SignatureReport is what a re-check found. Every event is counted once: webhook events under
// Verified, Unverifiable, Failed or Redacted; events reconciliation or an import fetched from the
// API (which Stripe does not sign) under Fetched, by source (the ledger's own redaction records
// under "ledger").
//
// A Redacted event's personal values were erased (`ledger redact`): its body is no longer what
// Stripe signed, so its signature cannot hold, and it is not a failure. What still proves it is
// the chain: Verify checks the redacted body against the digest its redaction recorded, and the
// original body's digest stays in the chain.
//
// A webhook event is Failed when what the log holds cannot be what arrived:
//   - its header is unreadable (ingest refuses those);
//   - its header's t= is not within Tolerance of received_at (ingest refused any other);
//   - a known secret's signature matches, but the log's columns (type, mode, account, object,
//     created) differ from the signed body they were read from;
//   - no known secret matches, yet one was signing for its endpoint at that time, or the event
//     lies between verified events of its endpoint in the log.
//
// It is Unverifiable when no known secret matches and none can be shown to have been signing
// for it: an era whose secret was not kept, an endpoint whose secret was never configured here.
// Telling a changed body from one signed with a secret nobody kept is not possible from an HMAC
// alone, so an unverifiable event is not a pass: `ledger verify --signatures` exits 1 on one
// unless told the era is known to be lost.
type SignatureReport struct {
	Events       int64                   // every event read
	Verified     int64                   //
	Unverifiable int64                   //
	Failed       int64                   //
	Redacted     int64                   // webhook events whose personal values were erased
	Fetched      map[domain.Source]int64 // events not delivered by webhook, by source
	// FailedEvents are every failed event, in log order, each with why.
	FailedEvents []Finding
	// UnverifiableEvents are the first MaxListed unverifiable events, in log order.
	UnverifiableEvents []Finding
}

// Finding names one event and what is wrong with it.
type Finding struct {
	Position int64
	ID       string
	Reason   string
}

// MaxListed bounds UnverifiableEvents (a lost secret can make a whole era unverifiable).
const MaxListed = 100

// OK says whether no event failed.
func (r SignatureReport) OK() bool { return r.Failed == 0 }

// Progress is called now and then with the events read and the log's length.
type Progress func(done, total int64)

// SignatureOptions tune a re-check. Zero values take the defaults.
type SignatureOptions struct {
	// Tolerance bounds how far a webhook's signed time may be from when the log received it.
	// Ingest refuses anything outside its own --signature-tolerance (5 minutes by default) of
	// its clock; the default here, 10 minutes, leaves room for the append's own wait.
	Tolerance time.Duration
	Progress  Progress
}

// VerifySignatures re-checks the signature of every webhook event in the log, streaming in log
// order: memory holds a few words for each event no secret matched, not the log.
func VerifySignatures(ctx context.Context, store *eventstore.Store, secrets Secrets, opt SignatureOptions) (SignatureReport, error) {
	rep := SignatureReport{Fetched: map[domain.Source]int64{}}
	if len(secrets.Current)+len(secrets.Retired) == 0 {
		return rep, ErrNoSecrets
	}
	if len(secrets.Current)+len(secrets.Retired) > 64 {
		return rep, errors.New("more than 64 webhook signing secrets: retire the ones no event needs")
	}
	if opt.Tolerance <= 0 {
		opt.Tolerance = 10 * time.Minute
	}
	tolerance := int64(opt.Tolerance / time.Second)
	head, err := store.Head(ctx)
	if err != nil {
		return rep, err
	}
	c := newChecker(secrets)
	var unmatched []pending
	// Per endpoint, the first and last positions of verified events.
	verified := map[endpoint]*span{}
	fail := func(r *eventstore.Record, format string, args ...any) {
		rep.Failed++
		rep.FailedEvents = append(rep.FailedEvents, Finding{r.Position, r.ID, fmt.Sprintf(format, args...)})
	}
	lastProgress := time.Now()
	err = store.Scan(ctx, eventstore.Filter{Payload: true, Borrow: true, UpToPosition: max(head.Position, 1)}, func(r *eventstore.Record) error {
		rep.Events++
		if opt.Progress != nil && rep.Events%4096 == 0 && time.Since(lastProgress) > time.Second {
			lastProgress = time.Now()
			opt.Progress(rep.Events, head.Position)
		}
		if r.Source != domain.SourceWebhook {
			rep.Fetched[r.Source]++
			return nil
		}
		if r.Redacted() {
			rep.Redacted++
			return nil
		}
		ts, matched := c.check(r.Payload, r.Signature)
		received := r.ReceivedAt.Unix()
		switch {
		case ts == 0:
			fail(r, "its Stripe-Signature header is unreadable (ingest accepts none such)")
			return nil
		case ts < received-tolerance || ts > received+tolerance:
			fail(r, "signed at %s but received at %s: the header's time or received_at was changed",
				time.Unix(ts, 0).UTC().Format(time.RFC3339), r.ReceivedAt.Format(time.RFC3339))
			return nil
		}
		ep := endpointOf(r)
		if matched == 0 {
			unmatched = append(unmatched, pending{position: r.Position, endpoint: ep, at: ts})
			return nil
		}
		if field := columnsDiffer(r); field != "" {
			fail(r, "the signature holds, but the log's %s differs from the signed body", field)
			return nil
		}
		rep.Verified++
		for i := range c.macs {
			if matched&(1<<i) != 0 {
				c.saw(i, ep, ts)
			}
		}
		if v := verified[ep]; v == nil {
			verified[ep] = &span{r.Position, r.Position}
		} else {
			v.to = r.Position
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if opt.Progress != nil {
		opt.Progress(rep.Events, head.Position)
	}
	// The events no secret matched, decided now that every secret's span is known.
	// Their IDs are looked up for those listed.
	var failed []Finding
	for _, p := range unmatched {
		v := verified[p.endpoint]
		switch {
		case c.covered(p.endpoint, p.at):
			failed = append(failed, Finding{Position: p.position,
				Reason: "no known secret's signature matches, though one was signing for its endpoint then: the body or header was changed"})
		case v != nil && v.from < p.position && p.position < v.to:
			failed = append(failed, Finding{Position: p.position,
				Reason: "no known secret's signature matches, though events of its endpoint before and after it verify: the body or header was changed"})
		default:
			rep.Unverifiable++
			if len(rep.UnverifiableEvents) < MaxListed {
				rep.UnverifiableEvents = append(rep.UnverifiableEvents, Finding{Position: p.position,
					Reason: "no known secret's signature matches and none is known to have signed for its endpoint then"})
			}
		}
	}
	var positions []int64
	for _, f := range slices.Concat(failed, rep.UnverifiableEvents) {
		positions = append(positions, f.Position)
	}
	ids, err := store.IDsAt(ctx, positions)
	if err != nil {
		return rep, err
	}
	for i := range failed {
		failed[i].ID = ids[failed[i].Position]
	}
	for i := range rep.UnverifiableEvents {
		rep.UnverifiableEvents[i].ID = ids[rep.UnverifiableEvents[i].Position]
	}
	rep.Failed += int64(len(failed))
	rep.FailedEvents = append(rep.FailedEvents, failed...)
	slices.SortFunc(rep.FailedEvents, func(a, b Finding) int { return cmp.Compare(a.Position, b.Position) })
	return rep, nil
}

// columnsDiffer names the first indexed column of r that is not what its body says: the body
// is what Stripe signed, the columns were read from it at append.
func columnsDiffer(r *eventstore.Record) string {
	env, err := domain.DecodeSignedEnvelope(r.Payload) // called only once the signature holds
	switch {
	case err != nil:
		return "body (it is not an event)"
	case env.ID != r.ID:
		return "event_id"
	case env.Type != r.Type:
		return "type"
	case env.APIVersion != r.APIVersion:
		return "api_version"
	case env.Created != r.Created:
		return "created"
	case env.Livemode != r.Livemode:
		return "livemode"
	case env.Account != r.Account:
		return "account"
	case env.ObjectType != r.ObjectType:
		return "object_type"
	case env.ObjectID != r.ObjectID:
		return "object_id"
	}
	return ""
}

// endpoint tells Stripe's endpoints apart: each mode has its own, and Connect events (those of
// a connected account) come to a Connect endpoint with a secret of its own.
type endpoint struct {
	live    bool
	connect bool
}

// endpointOf is the endpoint r came to: the one whose secret verified it at ingest, stored with
// it, when it has one — so an event that disagreed with its endpoint (a live event signed by the
// test endpoint's secret) counts with the endpoint that signed it. Webhooks appended before
// endpoints were told apart have none, and neither has the legacy unstated endpoint's mode: the
// event's own livemode and account stand in.
func endpointOf(r *eventstore.Record) endpoint {
	switch r.Endpoint {
	case eventstore.EndpointLive:
		return endpoint{live: true}
	case eventstore.EndpointTest:
		return endpoint{}
	case eventstore.EndpointConnectLive:
		return endpoint{live: true, connect: true}
	case eventstore.EndpointConnectTest:
		return endpoint{connect: true}
	case eventstore.EndpointUnstated:
		return endpoint{live: r.Livemode}
	}
	return endpoint{live: r.Livemode, connect: r.Account != ""}
}

// pending is an event no secret matched, decided once every secret's span is known: a few
// words, not its ID, since a lost secret can leave millions of them.
type pending struct {
	position int64
	at       int64 // the header's t=
	endpoint endpoint
}

// checker computes HMACs without allocating per event: one keyed hash per secret, reset each
// time.
type checker struct {
	macs    []hash.Hash
	current []bool
	spans   map[spanKey]*span
	sum     []byte
	want    [][]byte
	t       []byte // "<t>." as signed
}

type spanKey struct {
	secret   int
	endpoint endpoint
}

type span struct{ from, to int64 }

func newChecker(s Secrets) *checker {
	c := &checker{spans: map[spanKey]*span{}}
	for i, list := range [][]string{s.Current, s.Retired} {
		for _, secret := range list {
			c.macs = append(c.macs, hmac.New(sha256.New, []byte(secret)))
			c.current = append(c.current, i == 0)
		}
	}
	return c
}

// check returns the header's timestamp and the set of secrets (bit i for secret i) whose HMAC
// matches one of its v1 signatures. The scheme is Stripe's: HMAC-SHA256(secret, t + "." + body),
// hex-encoded in v1= (several during a roll); v0 and other schemes are not signatures. With one
// v1 it stops at the first match; with several (a roll) it finds every secret that signed, so
// each secret's span is known (see covered).
func (c *checker) check(body []byte, header string) (int64, uint64) {
	// The header is read exactly as stripe-go's webhook package reads it at ingest (a pair that
	// is not one key=value voids the header; the last t= counts; the signed timestamp is t= as
	// a parsed integer), so an event verifies here exactly when it verified on arrival.
	// FuzzCheckerAgreesWithStripeGo holds the two together.
	var ts int64
	var haveT bool
	c.want = c.want[:0]
	for pair := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(v, "=") {
			return 0, 0
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, 0
			}
			ts, haveT = n, true
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				c.want = append(c.want, b)
			}
		}
	}
	if !haveT || len(c.want) == 0 {
		return 0, 0
	}
	c.t = strconv.AppendInt(c.t[:0], ts, 10)
	c.t = append(c.t, '.')
	var matched uint64
	for i, mac := range c.macs {
		mac.Reset()
		mac.Write(c.t)
		mac.Write(body)
		c.sum = mac.Sum(c.sum[:0])
		for _, w := range c.want {
			if hmac.Equal(c.sum, w) {
				matched |= 1 << i
				if len(c.want) == 1 {
					return ts, matched
				}
				break
			}
		}
	}
	return ts, matched
}

// saw records that secret idx signed an event of ep at ts.
func (c *checker) saw(idx int, ep endpoint, ts int64) {
	k := spanKey{idx, ep}
	s := c.spans[k]
	if s == nil {
		c.spans[k] = &span{ts, ts}
		return
	}
	s.from, s.to = min(s.from, ts), max(s.to, ts)
}

// covered says whether some known secret was signing ep's events at ts.
func (c *checker) covered(ep endpoint, ts int64) bool {
	for k, s := range c.spans {
		if k.endpoint != ep || ts < s.from {
			continue
		}
		if c.current[k.secret] || ts <= s.to {
			return true
		}
	}
	return false
}

// Sources lists a report's fetched sources in a stable order, for printing.
func (r SignatureReport) Sources() []domain.Source { return slices.Sorted(maps.Keys(r.Fetched)) }

// ErrNoSecrets is returned when a re-check is asked for with no secret to check with.
var ErrNoSecrets = errors.New("no webhook signing secret to re-check with: set the endpoints' STRIPE_WEBHOOK_SECRET_LIVE, _TEST, _CONNECT_LIVE, _CONNECT_TEST or STRIPE_WEBHOOK_SECRET (and STRIPE_WEBHOOK_SECRET_RETIRED for rolled secrets)")
