package integrity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/testkit"
)

// Secrets the tests sign with. Stripe's own code signs (stripe-go's GenerateTestSignedPayload),
// so the checker under test is held to Stripe's scheme, not to itself.
const (
	secretNow     = "whsec_current_0123456789"
	secretOld     = "whsec_retired_0123456789"
	secretLost    = "whsec_nobody_kept_this_1"
	secretConnect = "whsec_connect_0123456789"
)

// eventBody is a Stripe event for object objectID, in a mode and an account.
func eventBody(id string, created int64, live bool, account string) []byte {
	acct := ""
	if account != "" {
		acct = fmt.Sprintf(`"account":%q,`, account)
	}
	return fmt.Appendf(nil, `{"id":%q,"object":"event",%s"api_version":"2023-10-16","created":%d,"livemode":%t,`+
		`"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"charge.succeeded",`+
		`"data":{"object":{"id":"ch_%s","object":"charge","amount":1999,"currency":"usd","billing_details":{"email":"jo@example.com"}}}}`,
		id, acct, created, live, id)
}

// signedHeader is the Stripe-Signature header of body signed at `at` with secret, by stripe-go.
func signedHeader(t *testing.T, body []byte, at int64, secret string) string {
	t.Helper()
	return stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: time.Unix(at, 0)}).Header
}

// signed is a webhook event signed at t with every given secret (as Stripe does during a roll).
func signed(t *testing.T, id string, at int64, live bool, account string, secrets ...string) domain.Event {
	t.Helper()
	body := eventBody(id, at, live, account)
	header := fmt.Sprintf("t=%d", at)
	for _, s := range secrets {
		p := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: s, Timestamp: time.Unix(at, 0)})
		header += "," + p.Header[len(fmt.Sprintf("t=%d,", at)):]
	}
	ev, err := domain.NewEvent(body, domain.SourceWebhook, header)
	if err != nil {
		t.Fatal(err)
	}
	ev.ReceivedAt = time.Unix(at, 0) // ingest takes a webhook only within minutes of its signature
	return ev
}

func fetched(t *testing.T, id string, at int64, source domain.Source) domain.Event {
	t.Helper()
	ev, err := domain.NewEvent(eventBody(id, at, false, ""), source, "")
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func appendAll(t *testing.T, store *eventstore.Store, evs ...domain.Event) {
	t.Helper()
	res, err := store.Append(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Duplicate {
			t.Fatalf("event %d not appended: %+v", i, r)
		}
	}
}

// rechain rewrites every payload digest and hash from position from to the head with the
// chain's own encoding and moves the head, as a superuser who edited a row and wanted
// `ledger verify` to pass would.
func rechain(t *testing.T, db *testkit.DB, from int64, verifies ...bool) {
	t.Helper()
	ctx := context.Background()
	store := eventstore.New(db.Pool)
	recs, err := store.List(ctx, eventstore.Filter{Payload: true})
	if err != nil {
		t.Fatal(err)
	}
	prev := eventstore.GenesisHash
	if from > 1 {
		l, err := store.HashAt(ctx, from-1)
		if err != nil {
			t.Fatal(err)
		}
		prev = l.Hash
	}
	for i := range recs {
		r := &recs[i]
		if r.Position < from {
			continue
		}
		r.PayloadDigest = sha256.Sum256(r.Payload)
		h := eventstore.ChainHash(prev, r)
		testkit.Tamper(t, db, fmt.Sprintf(`UPDATE ledger.events SET payload_digest = '\x%x', prev_hash = '\x%x', hash = '\x%x' WHERE position = %d`,
			r.PayloadDigest, prev, h, r.Position))
		prev = h
	}
	testkit.Tamper(t, db, fmt.Sprintf(`UPDATE ledger.log_head SET hash = '\x%x'`, prev))
	// A log with a version-1 part still fails verify: the old links are recomputed too.
	if len(verifies) > 0 && !verifies[0] {
		return
	}
	v, err := store.Verify(ctx)
	if err != nil || v.Broken != nil {
		t.Fatalf("the recomputed chain should verify: %v %v", err, v.Broken)
	}
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}
