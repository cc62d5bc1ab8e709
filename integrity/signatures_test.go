package integrity_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/redaction"
)

func ids(fs []integrity.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func reasonOf(fs []integrity.Finding, id string) string {
	for _, f := range fs {
		if f.ID == id {
			return f.Reason
		}
	}
	return ""
}

// A log through a secret roll, a lost secret, a Connect endpoint and API-fetched events: the
// re-check tells each apart, and every way of changing a stored webhook behind the triggers'
// back fails it.
func TestVerifySignatures(t *testing.T) {
	ctx := context.Background()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	appendAll(t, store,
		// An era whose secret nobody kept: unverifiable.
		signed(t, "evt_lost_1", 1000, false, "", secretLost),
		signed(t, "evt_lost_2", 1100, false, "", secretLost),
		// The retired secret's era, then a roll: both sign for a while.
		signed(t, "evt_old_1", 2000, false, "", secretOld),
		signed(t, "evt_old_2", 2100, false, "", secretOld),
		signed(t, "evt_roll", 2200, false, "", secretOld, secretNow),
		signed(t, "evt_now_1", 3000, false, "", secretNow),
		// The live endpoint's secret is not configured at all: unverifiable.
		signed(t, "evt_live", 3050, true, "", "whsec_live_secret_unknown"),
		// The Connect endpoint has its own secret.
		signed(t, "evt_connect", 3100, false, "acct_1", secretConnect),
		fetched(t, "evt_repaired", 3150, domain.SourceReconcile),
		signed(t, "evt_now_2", 3200, false, "", secretNow),
		signed(t, "evt_now_3", 3300, false, "", secretNow),
		signed(t, "evt_now_4", 3400, false, "", secretNow),
		signed(t, "evt_now_5", 3500, false, "", secretNow),
	)
	secrets := integrity.Secrets{Current: []string{secretNow, secretConnect}, Retired: []string{secretOld}}
	check := func(s integrity.Secrets) integrity.SignatureReport {
		t.Helper()
		rep, err := integrity.VerifySignatures(ctx, store, s, integrity.SignatureOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	rep := check(secrets)
	if rep.Events != 13 || rep.Verified != 9 || rep.Failed != 0 || rep.Unverifiable != 3 || rep.Fetched[domain.SourceReconcile] != 1 {
		t.Fatalf("sound log: %+v", rep)
	}
	if got := ids(rep.UnverifiableEvents); !slices.Equal(got, []string{"evt_lost_1", "evt_lost_2", "evt_live"}) {
		t.Fatalf("unverifiable: %v", got)
	}

	// A superuser edits what the log holds, each a different way.
	edit := func(sql string) { testkit.Tamper(t, db, sql) }
	// Bodies: one in the retired secret's span, the last event of the log.
	edit(`UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '1999', '9999'), 'UTF8') WHERE event_id IN ('evt_old_2', 'evt_now_5')`)
	// A header's time moved a second (still inside the tolerance), another's moved far off.
	edit(`UPDATE ledger.events SET signature = replace(signature, 't=3000', 't=3001') WHERE event_id = 'evt_now_1'`)
	edit(`UPDATE ledger.events SET signature = replace(signature, 't=3200', 't=5') WHERE event_id = 'evt_now_2'`)
	// A column the body is the source of, so that the body and its signature still hold: moved
	// to live mode, where no secret is known.
	edit(`UPDATE ledger.events SET livemode = true WHERE event_id = 'evt_now_3'`)
	// The header cut down to nothing readable.
	edit(`UPDATE ledger.events SET signature = 'v1=00' WHERE event_id = 'evt_now_4'`)

	rep = check(secrets)
	want := []string{"evt_old_2", "evt_now_1", "evt_now_2", "evt_now_3", "evt_now_4", "evt_now_5"}
	if got := ids(rep.FailedEvents); !slices.Equal(got, want) || rep.Failed != 6 || rep.OK() {
		t.Fatalf("tampered: failed %v, want %v (%+v)", got, want, rep)
	}
	for id, reason := range map[string]string{
		"evt_old_2": "though one was signing for its endpoint then",
		"evt_now_2": "signed at 1970-01-01T00:00:05Z but received at",
		"evt_now_3": "the log's livemode differs from the signed body",
		"evt_now_4": "header is unreadable",
	} {
		if got := reasonOf(rep.FailedEvents, id); !strings.Contains(got, reason) {
			t.Errorf("%s: reason %q, want %q", id, got, reason)
		}
	}
	if rep.Verified != 3 || rep.Unverifiable != 3 {
		t.Fatalf("tampered: %+v", rep)
	}

	// Without the retired secret its era is unverifiable, not failed: a lost secret is not
	// tampering (and an edit inside that era can no longer be told from a genuine event).
	rep = check(integrity.Secrets{Current: []string{secretNow, secretConnect}})
	if got := ids(rep.UnverifiableEvents); !slices.Equal(got, []string{"evt_lost_1", "evt_lost_2", "evt_old_1", "evt_old_2", "evt_live"}) {
		t.Fatalf("without the retired secret: unverifiable %v", got)
	}
	if got := ids(rep.FailedEvents); !slices.Equal(got, want[1:]) {
		t.Fatalf("without the retired secret: failed %v", got)
	}

	if _, err := integrity.VerifySignatures(ctx, store, integrity.Secrets{}, integrity.SignatureOptions{}); !errors.Is(err, integrity.ErrNoSecrets) {
		t.Fatalf("no secrets: %v", err)
	}
}

// Between two verified events of an endpoint, an event no secret matches failed, even where the
// secrets' time spans do not show it: the endpoint was being signed by a known secret throughout.
func TestVerifySignaturesBetweenVerifiedEvents(t *testing.T) {
	ctx := context.Background()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	appendAll(t, store,
		signed(t, "evt_c1", 1000, false, "acct_9", secretConnect),
		signed(t, "evt_c2", 1100, false, "acct_9", secretConnect),
		signed(t, "evt_c3", 1200, false, "acct_9", secretConnect),
	)
	// The middle event's header moved to a time (within the tolerance) before the span.
	testkit.Tamper(t, db, `UPDATE ledger.events SET signature = replace(signature, 't=1100', 't=990'), received_at = to_timestamp(990) WHERE event_id = 'evt_c2'`)
	rep, err := integrity.VerifySignatures(ctx, store, integrity.Secrets{Retired: []string{secretConnect}}, integrity.SignatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rep.FailedEvents); !slices.Equal(got, []string{"evt_c2"}) || !strings.Contains(rep.FailedEvents[0].Reason, "events of its endpoint before and after it verify") {
		t.Fatalf("%+v", rep)
	}
}

// A redacted customer's webhook events are reported as redacted, not failed, and the chain and
// the checkpoints taken before the redaction still hold.
func TestRedactedEventsAreNotFailures(t *testing.T) {
	ctx := context.Background()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	pub, key := newKey(t)
	var evs []domain.Event
	for i, body := range []string{
		`{"id":"evt_cus","object":"event","api_version":"2023-10-16","created":1000,"livemode":false,"type":"customer.created","data":{"object":{"id":"cus_jo","object":"customer","email":"jo@example.com","name":"Jo Doe"}}}`,
		`{"id":"evt_ch","object":"event","api_version":"2023-10-16","created":1001,"livemode":false,"type":"charge.succeeded","data":{"object":{"id":"ch_1","object":"charge","customer":"cus_jo","amount":500,"currency":"usd","billing_details":{"email":"jo@example.com","name":"Jo Doe"}}}}`,
		`{"id":"evt_other","object":"event","api_version":"2023-10-16","created":1002,"livemode":false,"type":"customer.created","data":{"object":{"id":"cus_al","object":"customer","email":"al@example.com"}}}`,
	} {
		at := int64(1000 + i)
		p := signedHeader(t, []byte(body), at, secretNow)
		ev, err := domain.NewEvent([]byte(body), domain.SourceWebhook, p)
		if err != nil {
			t.Fatal(err)
		}
		ev.ReceivedAt = time.Unix(at, 0)
		evs = append(evs, ev)
	}
	appendAll(t, store, evs...)
	before := checkpointNow(t, store, key, time.Unix(1003, 0))

	sum, err := redaction.Run(ctx, db.Pool, redaction.Request{Customer: "cus_jo", Reason: "erasure request 42", By: "dpo", Key: key})
	if err != nil || sum.Redacted != 2 {
		t.Fatalf("redaction: %+v %v", sum, err)
	}
	rep, err := integrity.VerifySignatures(ctx, store, integrity.Secrets{Current: []string{secretNow}}, integrity.SignatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Redacted != 2 || rep.Verified != 1 || rep.Failed != 0 || rep.Unverifiable != 0 || rep.Fetched[domain.SourceLedger] != 1 {
		t.Fatalf("after the redaction: %+v", rep)
	}
	after := checkpointNow(t, store, key, time.Unix(1004, 0))
	crep, err := integrity.VerifyCheckpoints(ctx, store, []integrity.Checkpoint{before, after}, pub)
	if err != nil || !crep.OK() || crep.Checked != 2 || crep.Chain.Redacted != 2 || crep.Redactions != 1 {
		t.Fatalf("checkpoints across the redaction: %v %v (chain %+v)", reasons(crep), err, crep.Chain)
	}
}
