package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	stripewebhook "github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/internal/pgboot"
	"github.com/stripeledger/ledger/internal/testkit"
)

const integritySecret = "whsec_integrity_test_secret"

// appendSigned appends n webhook events signed by Stripe's own code with integritySecret.
func appendSigned(t *testing.T, store *eventstore.Store, prefix string, n int) {
	t.Helper()
	var evs []domain.Event
	for i := range n {
		body := testkit.EventJSON(fmt.Sprintf("evt_%s%d", prefix, i), "charge.succeeded", fmt.Sprintf("ch_%s%d", prefix, i), 1700000000+int64(i), 600)
		p := stripewebhook.GenerateTestSignedPayload(&stripewebhook.UnsignedPayload{Payload: body, Secret: integritySecret, Timestamp: time.Unix(1700000000+int64(i), 0)})
		ev, err := domain.NewEvent(body, domain.SourceWebhook, p.Header)
		if err != nil {
			t.Fatal(err)
		}
		ev.ReceivedAt = p.Timestamp // ingest takes a webhook only within minutes of its signature
		evs = append(evs, ev)
	}
	if _, err := store.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointAndSignatureCommands(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	dir := t.TempDir()
	key, file := filepath.Join(dir, "checkpoint.key"), filepath.Join(dir, "checkpoints.jsonl")
	env := []string{"DATABASE_URL=" + db.URL, "LEDGER_CHECKPOINT_KEY=" + key, "LEDGER_CHECKPOINT_SINK=file:" + file}

	r := ledger(t, nil, "checkpoint", "keygen", "--out", key)
	if r.code != 0 || !strings.Contains(r.stdout, "public key:  "+key+".pub") {
		t.Fatalf("keygen: %+v", r)
	}
	if r := ledger(t, nil, "checkpoint", "keygen", "--out", key); r.code != 2 || !strings.Contains(r.stderr, "file exists") {
		t.Fatalf("keygen over a key: %+v", r)
	}
	appendSigned(t, store, "a", 20)
	if r := ledger(t, env, "checkpoint"); r.code != 0 || !strings.Contains(r.stderr, "checkpoint: position 20") {
		t.Fatalf("checkpoint: %+v", r)
	}
	appendSigned(t, store, "b", 5)
	if r := ledger(t, env, "checkpoint"); r.code != 0 {
		t.Fatalf("checkpoint: %+v", r)
	}
	r = ledger(t, env, "verify", "--checkpoints", file, "--public-key", key+".pub")
	if r.code != 0 || !strings.Contains(r.stdout, "ok: 25 events") || !strings.Contains(r.stdout, "checkpoints: 2 of 2 verified") {
		t.Fatalf("verify --checkpoints: %+v", r)
	}

	withSecret := append(env, "STRIPE_WEBHOOK_SECRET="+integritySecret)
	r = ledger(t, withSecret, "verify", "--signatures")
	if r.code != 0 || !strings.Contains(r.stdout, "signatures: 25 verified, 0 unverifiable, 0 failed") {
		t.Fatalf("verify --signatures: %+v", r)
	}
	// Stripe's secret rolled: the old one, now retired, still verifies its era; with it gone
	// the era is unverifiable, which fails the check unless --allow-unverifiable says the
	// secret is known to be lost.
	rolled := append(env, "STRIPE_WEBHOOK_SECRET=whsec_the_new_one", "STRIPE_WEBHOOK_SECRET_RETIRED="+integritySecret)
	if r := ledger(t, rolled, "verify", "--signatures"); r.code != 0 || !strings.Contains(r.stdout, "25 verified") {
		t.Fatalf("retired secret: %+v", r)
	}
	lost := append(env, "STRIPE_WEBHOOK_SECRET=whsec_the_new_one")
	if r := ledger(t, lost, "verify", "--signatures"); r.code != 1 || !strings.Contains(r.stdout, "0 verified, 25 unverifiable, 0 failed") ||
		!strings.Contains(r.stderr, "25 webhook events are unverifiable (--allow-unverifiable accepts them)") {
		t.Fatalf("lost secret: %+v", r)
	}
	if r := ledger(t, lost, "verify", "--signatures", "--allow-unverifiable"); r.code != 0 {
		t.Fatalf("lost secret, allowed: %+v", r)
	}

	testkit.Tamper(t, db, `UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '1999', '19'), 'UTF8') WHERE event_id = 'evt_a7'`)
	r = ledger(t, withSecret, "verify", "--signatures")
	if r.code != 1 || !strings.Contains(r.stdout, "failed: evt_a7 (position 8): no known secret's signature matches") || !strings.Contains(r.stdout, "24 verified, 0 unverifiable, 1 failed") {
		t.Fatalf("tampered body: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, integritySecret) {
		t.Fatal("a secret was printed")
	}

	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"verify", "--signatures"}, "no webhook signing secret to re-check with"},
		{append(env, "STRIPE_WEBHOOK_SECRET_RETIRED=sk_live_x"), []string{"verify", "--signatures"}, "STRIPE_WEBHOOK_SECRET_RETIRED entry 1 does not start with whsec_"},
		{env, []string{"verify", "--checkpoints", file}, "--checkpoints and --public-key go together"},
		{env, []string{"verify", "--allow-unverifiable"}, "--allow-unverifiable goes with --signatures"},
		{env, []string{"verify", "--checkpoints", key, "--public-key", key + ".pub"}, "line 1: not a checkpoint"},
		{env, []string{"verify", "--checkpoints", file, "--public-key", "AAAA"}, "neither a file nor a 32-byte key"},
		{[]string{"DATABASE_URL=" + db.URL}, []string{"checkpoint"}, "no checkpoint key: set LEDGER_CHECKPOINT_KEY"},
		{append(env, "LEDGER_CHECKPOINT_SINK=ftp://x"), []string{"checkpoint"}, `"ftp://x" is not a sink`},
	} {
		if r := ledger(t, c.env, c.args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %+v, want exit 2 and %q", c.args, r, c.want)
		}
	}
}

// serve writes a checkpoint when it starts (and every interval); a key it cannot read stops it.
func TestServeCheckpoints(t *testing.T) {
	t.Parallel()
	db := testkit.New(t)
	dir := t.TempDir()
	key, file := filepath.Join(dir, "checkpoint.key"), filepath.Join(dir, "checkpoints.jsonl")
	base := []string{"DATABASE_URL=" + db.URL, "STRIPE_WEBHOOK_SECRET=" + integritySecret, "LEDGER_ADDR=127.0.0.1:0",
		"LEDGER_CHECKPOINT_SINK=file:" + file}

	r := ledger(t, append(base, "LEDGER_CHECKPOINT_KEY="+filepath.Join(dir, "missing.key")), "serve")
	if r.code != 2 || !strings.Contains(r.stderr, "checkpoint key: open "+filepath.Join(dir, "missing.key")+": no such file or directory") {
		t.Fatalf("missing key: %+v", r)
	}
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := ledger(t, append(base, "LEDGER_CHECKPOINT_KEY="+key), "serve"); r.code != 2 || !strings.Contains(r.stderr, `not a PEM "PRIVATE KEY" file`) {
		t.Fatalf("bad key: %+v", r)
	}
	if r := ledger(t, append(base, "LEDGER_CHECKPOINT_KEY="+key, "LEDGER_CHECKPOINT_INTERVAL=soon"), "serve"); r.code != 2 || !strings.Contains(r.stderr, `LEDGER_CHECKPOINT_INTERVAL "soon"`) {
		t.Fatalf("bad interval: %+v", r)
	}
	os.Remove(key)
	if r := ledger(t, nil, "checkpoint", "keygen", "--out", key); r.code != 0 {
		t.Fatalf("keygen: %+v", r)
	}
	p := startLedger(t, append(base, "LEDGER_CHECKPOINT_KEY="+key), "serve")
	p.stderr.waitFor(t, "the first checkpoint", func(l string) bool { return strings.Contains(l, `"msg":"checkpoint written"`) })
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if r := ledger(t, base, "verify", "--checkpoints", file, "--public-key", key+".pub"); r.code != 0 || !strings.Contains(r.stdout, "checkpoints: 1 of 1 verified") {
		t.Fatalf("serve's checkpoint: %+v", r)
	}
}

// A pg_dump of a ledger restored into a fresh database proves itself against the checkpoints
// taken before the dump: what the README's backup section tells operators to do.
func TestRestoredDumpVerifiesAgainstCheckpoints(t *testing.T) {
	t.Parallel()
	bin := pgboot.BinDir()
	if bin == "" {
		t.Fatal("no Postgres binaries: pg_dump and pg_restore come with the server")
	}
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	dir := t.TempDir()
	key, file, dump := filepath.Join(dir, "checkpoint.key"), filepath.Join(dir, "checkpoints.jsonl"), filepath.Join(dir, "ledger.dump")
	env := []string{"DATABASE_URL=" + db.URL, "LEDGER_CHECKPOINT_KEY=" + key, "LEDGER_CHECKPOINT_SINK=file:" + file}
	if r := ledger(t, nil, "checkpoint", "keygen", "--out", key); r.code != 0 {
		t.Fatalf("keygen: %+v", r)
	}
	appendSigned(t, store, "a", 30)
	if r := ledger(t, env, "checkpoint"); r.code != 0 {
		t.Fatalf("checkpoint: %+v", r)
	}
	appendSigned(t, store, "b", 10)
	if r := ledger(t, env, "checkpoint"); r.code != 0 {
		t.Fatalf("checkpoint: %+v", r)
	}
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--format=custom", "--file", dump, "--dbname", db.URL).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	appendSigned(t, store, "c", 5) // after the dump: the restore is behind the live log

	restored := testkit.NewEmpty(t)
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--no-owner", "--exit-on-error", "--dbname", restored.URL, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v %s", err, out)
	}
	renv := []string{"DATABASE_URL=" + restored.URL}
	r := ledger(t, renv, "verify", "--checkpoints", file, "--public-key", key+".pub")
	if r.code != 0 || !strings.Contains(r.stdout, "ok: 40 events") || !strings.Contains(r.stdout, "checkpoints: 2 of 2 verified") {
		t.Fatalf("restored: %+v", r)
	}
	// A checkpoint taken after the dump is beyond what the restore holds, and says so.
	if r := ledger(t, env, "checkpoint"); r.code != 0 {
		t.Fatalf("checkpoint: %+v", r)
	}
	r = ledger(t, renv, "verify", "--checkpoints", file, "--public-key", key+".pub")
	if r.code != 1 || !strings.Contains(r.stderr, "(position 45, ") || !strings.Contains(r.stderr, "no event at this position") {
		t.Fatalf("restore behind a checkpoint: %+v", r)
	}
}
