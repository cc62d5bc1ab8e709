package integrity_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/internal/testkit"
)

// A log through two secret rolls, a lost secret, a Connect endpoint and API-fetched events: the
// re-check tells each apart, and a body edited behind the triggers' back fails.
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
	)
	secrets := integrity.Secrets{Current: []string{secretNow, secretConnect}, Retired: []string{secretOld}}

	rep, err := integrity.VerifySignatures(ctx, store, secrets, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 11 || rep.Verified != 7 || rep.Failed != 0 || rep.Unverifiable != 3 || rep.Fetched[domain.SourceReconcile] != 1 {
		t.Fatalf("sound log: %+v", rep)
	}
	if got := sorted(rep.UnverifiableIDs); !slices.Equal(got, []string{"evt_live", "evt_lost_1", "evt_lost_2"}) {
		t.Fatalf("unverifiable: %v", got)
	}

	// A superuser edits two bodies (one in the retired secret's span, one in the current's,
	// the last event of the log) and one signature header's timestamp.
	testkit.Tamper(t, db, `UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '1999', '9999'), 'UTF8') WHERE event_id IN ('evt_old_2', 'evt_now_3')`)
	testkit.Tamper(t, db, `UPDATE ledger.events SET signature = replace(signature, 't=3000', 't=3001') WHERE event_id = 'evt_now_1'`)
	rep, err = integrity.VerifySignatures(ctx, store, secrets, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.FailedIDs, []string{"evt_old_2", "evt_now_1", "evt_now_3"}) || rep.Failed != 3 || rep.OK() {
		t.Fatalf("tampered: failed %v (%+v)", rep.FailedIDs, rep)
	}
	if rep.Verified != 4 || rep.Unverifiable != 3 {
		t.Fatalf("tampered: %+v", rep)
	}

	// Without the retired secret its era is unverifiable, not failed: a lost secret is not
	// tampering. The edited body in it cannot be told from a genuine one any more.
	rep, err = integrity.VerifySignatures(ctx, store, integrity.Secrets{Current: []string{secretNow, secretConnect}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sorted(rep.UnverifiableIDs); !slices.Equal(got, []string{"evt_live", "evt_lost_1", "evt_lost_2", "evt_old_1", "evt_old_2"}) {
		t.Fatalf("without the retired secret: unverifiable %v", got)
	}
	if !slices.Equal(rep.FailedIDs, []string{"evt_now_1", "evt_now_3"}) {
		t.Fatalf("without the retired secret: failed %v", rep.FailedIDs)
	}

	if _, err := integrity.VerifySignatures(ctx, store, integrity.Secrets{}, nil); !errors.Is(err, integrity.ErrNoSecrets) {
		t.Fatalf("no secrets: %v", err)
	}
}

func TestParseSecretList(t *testing.T) {
	got, err := integrity.ParseSecretList("X", " whsec_a, ,whsec_b ")
	if err != nil || !slices.Equal(got, []string{"whsec_a", "whsec_b"}) {
		t.Fatalf("%v %v", got, err)
	}
	_, err = integrity.ParseSecretList("STRIPE_WEBHOOK_SECRET_RETIRED", "whsec_a,sk_live_secretvalue")
	if err == nil || err.Error() != "STRIPE_WEBHOOK_SECRET_RETIRED entry 2 does not start with whsec_" {
		t.Fatalf("bad entry: %v", err)
	}
}
