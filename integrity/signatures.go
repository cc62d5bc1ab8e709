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
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// Secrets are the webhook signing secrets a re-check may use: those configured now
// (STRIPE_WEBHOOK_SECRET) and those retired after a roll (STRIPE_WEBHOOK_SECRET_RETIRED).
// A current secret is taken to sign everything from its first verified event to now; a retired
// one only the span of events it verified (see SignatureReport).
type Secrets struct {
	Current []string
	Retired []string
}

// ParseSecretList splits a comma-separated list of whsec_ secrets. name is the variable it came
// from, for the error; errors never echo a secret.
func ParseSecretList(name, s string) ([]string, error) {
	var out []string
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.HasPrefix(part, "whsec_") {
			return nil, fmt.Errorf("%s entry %d does not start with whsec_", name, i+1)
		}
		out = append(out, part)
	}
	return out, nil
}

// Signature statuses, as reported per event.
const (
	Verified     = "verified"     // a known secret's HMAC matches the stored body and header
	Unverifiable = "unverifiable" // no known secret matches and none is known for its time
	Failed       = "failed"       // a known secret was signing at its time, yet none matches
)

// SignatureReport is what a re-check found. Every event is counted once: webhook events under
// Verified, Unverifiable or Failed; events reconciliation or an import fetched from the API
// (which Stripe does not sign) under Fetched, by source.
//
// Telling a tampered body from a body signed with a secret nobody kept is not possible from an
// HMAC alone, so the report decides by time: a secret known to have signed events of an
// endpoint (same mode, platform or Connect) at times t₁…t₂ — or from t₁ on, for a current
// secret — was signing there throughout, because Stripe signs with every active secret during a
// roll. An event of that endpoint inside that span that no secret matches is Failed; one
// outside every span is Unverifiable.
type SignatureReport struct {
	Events       int64                   // every event read
	Verified     int64                   //
	Unverifiable int64                   //
	Failed       int64                   //
	Fetched      map[domain.Source]int64 // events not delivered by webhook, by source
	FailedIDs    []string                // every failed event, in log order
	// UnverifiableIDs are the first MaxListed unverifiable events, in log order.
	UnverifiableIDs []string
	Head            int64 // the last position read
}

// MaxListed bounds UnverifiableIDs (a lost secret can make a whole era unverifiable).
const MaxListed = 100

// OK says whether no event failed.
func (r SignatureReport) OK() bool { return r.Failed == 0 }

// Progress is called now and then with the events read and the log's length.
type Progress func(done, total int64)

// VerifySignatures re-checks the signature of every webhook event in the log, streaming: memory
// holds the events no secret matched, not the log.
func VerifySignatures(ctx context.Context, store *eventstore.Store, secrets Secrets, progress Progress) (SignatureReport, error) {
	rep := SignatureReport{Fetched: map[domain.Source]int64{}}
	if len(secrets.Current)+len(secrets.Retired) == 0 {
		return rep, ErrNoSecrets
	}
	if len(secrets.Current)+len(secrets.Retired) > 64 {
		return rep, errors.New("more than 64 webhook signing secrets: retire the ones no event needs")
	}
	head, err := store.Head(ctx)
	if err != nil {
		return rep, err
	}
	c := newChecker(secrets)
	var unmatched []pending
	lastProgress := time.Now()
	err = store.Scan(ctx, eventstore.Filter{Payload: true, Borrow: true, UpToPosition: max(head.Position, 1)}, func(r *eventstore.Record) error {
		rep.Events++
		rep.Head = r.Position
		if progress != nil && rep.Events%4096 == 0 && time.Since(lastProgress) > time.Second {
			lastProgress = time.Now()
			progress(rep.Events, head.Position)
		}
		if r.Source != domain.SourceWebhook {
			rep.Fetched[r.Source]++
			return nil
		}
		ep := endpointOf(r)
		ts, matched := c.check(r.Payload, r.Signature)
		if matched == 0 {
			unmatched = append(unmatched, pending{id: r.ID, endpoint: ep, at: ts})
			return nil
		}
		rep.Verified++
		for i := range c.macs {
			if matched&(1<<i) != 0 {
				c.saw(i, ep, ts)
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if progress != nil {
		progress(rep.Events, head.Position)
	}
	for _, p := range unmatched {
		if c.covered(p.endpoint, p.at) {
			rep.Failed++
			rep.FailedIDs = append(rep.FailedIDs, p.id)
			continue
		}
		rep.Unverifiable++
		if len(rep.UnverifiableIDs) < MaxListed {
			rep.UnverifiableIDs = append(rep.UnverifiableIDs, p.id)
		}
	}
	return rep, nil
}

// endpoint tells Stripe's endpoints apart: each mode has its own, and Connect events (those of
// a connected account) come to a Connect endpoint with a secret of its own.
type endpoint struct {
	live    bool
	connect bool
}

func endpointOf(r *eventstore.Record) endpoint {
	return endpoint{live: r.Livemode, connect: r.Account != ""}
}

// pending is an event no secret matched, decided once every secret's span is known.
type pending struct {
	id       string
	endpoint endpoint
	at       int64 // the header's t=, 0 when unreadable
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
	if ts == 0 {
		// An unreadable header on a stored webhook event: the ingest path refuses those, so
		// the header was edited. Nothing can verify it.
		return true
	}
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
func (r SignatureReport) Sources() []domain.Source {
	out := make([]domain.Source, 0, len(r.Fetched))
	for s := range r.Fetched {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ErrNoSecrets is returned when a re-check is asked for with no secret to check with.
var ErrNoSecrets = errors.New("no webhook signing secret to re-check with: set STRIPE_WEBHOOK_SECRET (and STRIPE_WEBHOOK_SECRET_RETIRED for rolled secrets)")
