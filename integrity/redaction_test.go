package integrity_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/internal/testkit"
	"github.com/stripeledger/ledger/redaction"
)

// The database lets a payload be replaced under any redaction record that names it, and whoever
// can append can append one: a forged record, appended through the normal path, lets a past
// payload's money be rewritten with every trigger on, and the chain and the checkpoints still
// hold (they pin the payload's digest, which a redaction keeps). The record's signature is what
// tells the forgery from an erasure: VerifyCheckpoints names every record the checkpoint keys did
// not sign, and passes the genuine one.
func TestCheckpointsCatchAForgedRedaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pub, key := newKey(t)
	_, otherKey := newKey(t)
	customer := func(id, obj, email string) domain.Event {
		e, err := domain.NewEvent([]byte(`{"id":"`+id+`","object":"event","api_version":"2023-10-16","created":1770000000,"livemode":false,`+
			`"type":"customer.created","data":{"object":{"id":"`+obj+`","object":"customer","email":"`+email+`","balance":-500,"created":1770000000,"metadata":{}}}}`),
			domain.SourceImport, "")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// The forged record names position 1 with the digest of a payload whose balance was
	// rewritten; sign makes its signature.
	forge := func(t *testing.T, db *testkit.DB, sign func(eventID string, rec *domain.Redaction)) (string, int64) {
		var payload []byte
		if err := db.Pool.QueryRow(ctx, `SELECT payload FROM ledger.events WHERE position = 1`).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		forged := []byte(strings.Replace(string(payload), `"balance":-500`, `"balance":-99999`, 1))
		sum := sha256.Sum256(forged)
		rec := domain.Redaction{ID: "red_forged", Customer: "cus_nobody", Reason: "erasure", By: "dpo", At: 1770000100,
			Events: []domain.RedactedEvent{{Position: 1, EventID: "evt_a1", PayloadSHA256: hex.EncodeToString(sum[:])}}}
		sign(domain.RedactionEventID(rec.ID), &rec)
		ev, err := domain.NewRedactionEvent(rec, false, "")
		if err != nil {
			t.Fatal(err)
		}
		res, err := eventstore.New(db.Pool).Append(ctx, []domain.Event{ev})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		// Every trigger on: the database accepts it.
		if _, err := db.Pool.Exec(ctx, `UPDATE ledger.events SET payload = $1, redacted_by_position = $2 WHERE position = 1`, forged, res[0].Position); err != nil {
			t.Fatal("the database refused the forged redaction:", err)
		}
		return ev.ID, res[0].Position
	}
	cases := map[string]struct {
		sign   func(eventID string, rec *domain.Redaction)
		reason string
	}{
		"unsigned": {func(string, *domain.Redaction) {}, "not signed"},
		"signed by another key": {func(id string, rec *domain.Redaction) { integrity.SignRedaction(otherKey, id, rec) },
			"not by a given public key (" + integrity.KeyID(pub) + ")"},
		"a genuine signature over another record": {func(id string, rec *domain.Redaction) {
			honest := *rec
			honest.Events = []domain.RedactedEvent{{Position: 1, EventID: "evt_a1", PayloadSHA256: strings.Repeat("0", 64)}}
			integrity.SignRedaction(key, id, &honest)
			rec.Key, rec.Signature = honest.Key, honest.Signature
		}, "signature does not match"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := testkit.New(t)
			store := eventstore.New(db.Pool)
			appendAll(t, store, customer("evt_a1", "cus_A1", "ann@example.com"), customer("evt_b1", "cus_B1", "bob@example.com"))
			before := checkpointNow(t, store, key, time.Unix(1770000001, 0))
			// A genuine redaction first: it must pass.
			if _, err := redaction.Run(ctx, db.Pool, redaction.Request{Customer: "cus_B1", Reason: "erasure request 7", By: "dpo", Key: key}); err != nil {
				t.Fatal(err)
			}
			id, pos := forge(t, db, tc.sign)
			after := checkpointNow(t, store, key, time.Unix(1770000200, 0))

			// The chain alone cannot tell.
			if v, err := store.Verify(ctx); err != nil || v.Broken != nil || v.Redactions != 2 {
				t.Fatalf("verify: %+v %v", v, err)
			}
			rep, err := integrity.VerifyCheckpoints(ctx, store, []integrity.Checkpoint{before, after}, pub)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.Checked != 2 || rep.Redactions != 2 || len(rep.RedactionProblems) != 1 {
				t.Fatalf("want the checkpoints to hold and one redaction unauthenticated: %+v", rep)
			}
			p := rep.RedactionProblems[0]
			if p.EventID != id || p.Position != pos || !strings.Contains(p.Reason, tc.reason) || !strings.Contains(p.String(), id) {
				t.Fatalf("want %s at %d (%s), got %+v", id, pos, tc.reason, p)
			}
		})
	}
}

// A record's signed message holds everything that authorises the change, each field
// length-prefixed: changing any of them, or moving text from one field to another, breaks the
// signature.
func TestRedactionSignatureCoversTheRecord(t *testing.T) {
	t.Parallel()
	pub, key := newKey(t)
	rec := domain.Redaction{ID: "red_1", Customer: "cus_A1", Reason: "ticket 1", By: "dpo", At: 1770000000,
		Events: []domain.RedactedEvent{{Position: 9, EventID: "evt_9", PayloadSHA256: strings.Repeat("b", 64)},
			{Position: 3, EventID: "evt_3", PayloadSHA256: strings.Repeat("a", 64)}}}
	integrity.SignRedaction(key, "evt_ledger_red_1", &rec)
	if err := integrity.CheckRedaction("evt_ledger_red_1", rec, pub); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*domain.Redaction) (eventID string){
		"event ID":    func(*domain.Redaction) string { return "evt_ledger_red_2" },
		"customer":    func(r *domain.Redaction) string { r.Customer = "cus_B1"; return "" },
		"by":          func(r *domain.Redaction) string { r.By = "someone"; return "" },
		"at":          func(r *domain.Redaction) string { r.At++; return "" },
		"reason":      func(r *domain.Redaction) string { r.Reason = "ticket 2"; return "" },
		"text moved":  func(r *domain.Redaction) string { r.By, r.Reason = "dpo\nreason 8 ticket 1", ""; return "" },
		"a position":  func(r *domain.Redaction) string { r.Events[0].Position = 10; return "" },
		"an event ID": func(r *domain.Redaction) string { r.Events[1].EventID = "evt_4"; return "" },
		"a digest":    func(r *domain.Redaction) string { r.Events[1].PayloadSHA256 = strings.Repeat("c", 64); return "" },
		"an event more": func(r *domain.Redaction) string {
			r.Events = append(r.Events, domain.RedactedEvent{Position: 1})
			return ""
		},
	} {
		r := rec
		r.Events = append([]domain.RedactedEvent(nil), rec.Events...)
		id := mutate(&r)
		if id == "" {
			id = "evt_ledger_red_1"
		}
		if err := integrity.CheckRedaction(id, r, pub); err == nil {
			t.Errorf("%s changed, the signature still holds", name)
		}
	}
	// The events' order in the record is not part of what is signed; their positions are.
	r := rec
	r.Events = []domain.RedactedEvent{rec.Events[1], rec.Events[0]}
	if err := integrity.CheckRedaction("evt_ledger_red_1", r, pub); err != nil {
		t.Fatalf("the same events in another order: %v", err)
	}
	if !strings.HasPrefix(string(rec.SignedMessage("evt_ledger_red_1")), "ledger redaction 1\nevent 16 evt_ledger_red_1\ncustomer 6 cus_A1\n") {
		t.Fatalf("the message: %q", rec.SignedMessage("evt_ledger_red_1"))
	}
}
