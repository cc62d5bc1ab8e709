package integrity_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
	"github.com/stripeledger/ledger/integrity"
	"github.com/stripeledger/ledger/internal/natstest"
	"github.com/stripeledger/ledger/internal/testkit"
)

func appendN(t *testing.T, store *eventstore.Store, from, n int) {
	t.Helper()
	var evs []domain.Event
	for i := from; i < from+n; i++ {
		evs = append(evs, signed(t, "evt_"+string(rune('a'+i)), int64(1000+i), false, "", secretNow))
	}
	appendAll(t, store, evs...)
}

func checkpointNow(t *testing.T, store *eventstore.Store, key ed25519.PrivateKey, at time.Time) integrity.Checkpoint {
	t.Helper()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return integrity.Sign(key, head, integrity.ChainTag, at)
}

func reasons(rep integrity.CheckpointReport) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.String())
	}
	return out
}

// A row edited before a checkpoint fails the proof even when the whole chain after it was
// recomputed and `verify` alone passes; so does a truncated log and a forged checkpoint.
func TestCheckpointsCatchARecomputedChain(t *testing.T) {
	ctx := context.Background()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	pub, key := newKey(t)
	genesis := checkpointNow(t, store, key, time.Unix(900, 0))
	appendN(t, store, 0, 5)
	cp5 := checkpointNow(t, store, key, time.Unix(2000, 0))
	appendN(t, store, 5, 5)
	cp10 := checkpointNow(t, store, key, time.Unix(3000, 0))
	cps := []integrity.Checkpoint{genesis, cp5, cp10}

	rep, err := integrity.VerifyCheckpoints(ctx, store, cps, pub)
	if err != nil || !rep.OK() || rep.Checked != 3 {
		t.Fatalf("sound log: %+v %v %v", rep, err, reasons(rep))
	}

	// Another key's checkpoint, and a checkpoint whose position was edited, are not authentic.
	_, otherKey := newKey(t)
	forged := checkpointNow(t, store, otherKey, time.Unix(3000, 0))
	edited := cp10
	edited.Position = 9
	rep, err = integrity.VerifyCheckpoints(ctx, store, []integrity.Checkpoint{forged, edited}, pub)
	if err != nil || rep.OK() || rep.Checked != 0 || len(rep.Problems) != 2 ||
		!strings.Contains(rep.Problems[0].Reason, "not by a given public key") ||
		!strings.Contains(rep.Problems[1].Reason, "altered or forged") {
		t.Fatalf("forged: %v %v", reasons(rep), err)
	}

	// After a key rotation the verifier holds both keys; each checkpoint names its own.
	otherPub := otherKey.Public().(ed25519.PublicKey)
	rep, err = integrity.VerifyCheckpoints(ctx, store, []integrity.Checkpoint{forged, cp10}, pub, otherPub)
	if err != nil || !rep.OK() || rep.Checked != 2 {
		t.Fatalf("two keys: %v %v", reasons(rep), err)
	}

	// Row 3 edited, every hash from it recomputed: the chain verifies, the checkpoints do not.
	testkit.Tamper(t, db, `UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '1999', '1'), 'UTF8') WHERE position = 3`)
	rechain(t, db, 3)
	rep, err = integrity.VerifyCheckpoints(ctx, store, cps, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Chain.Broken != nil || rep.Checked != 1 || len(rep.Problems) != 2 ||
		rep.Problems[0].Position != 5 || rep.Problems[1].Position != 10 ||
		!strings.Contains(rep.Problems[0].Reason, "a row at or before it was changed") {
		t.Fatalf("recomputed chain: chain %v, %v", rep.Chain.Broken, reasons(rep))
	}

	// The log cut back to 7 events with a consistent head: the checkpoint at 10 sees it.
	db2 := testkit.New(t)
	store2 := eventstore.New(db2.Pool)
	appendN(t, store2, 0, 10)
	cp10b := checkpointNow(t, store2, key, time.Unix(3000, 0))
	h7, err := store2.HashAt(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Tamper(t, db2, `DELETE FROM ledger.events WHERE position > 7`)
	testkit.Tamper(t, db2, `UPDATE ledger.log_head SET position = 7, hash = '\x`+hex.EncodeToString(h7.Hash[:])+`'`)
	rep, err = integrity.VerifyCheckpoints(ctx, store2, []integrity.Checkpoint{cp10b}, pub)
	if err != nil || rep.Chain.Broken != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Reason, "no event at this position") {
		t.Fatalf("truncated: chain %v, %v %v", rep.Chain.Broken, reasons(rep), err)
	}
}

func TestCheckpointFormat(t *testing.T) {
	pub, key := newKey(t)
	cp := integrity.Sign(key, eventstore.Head{Position: 42, Hash: [32]byte{1, 2, 3}}, integrity.ChainTag, time.Date(2026, 11, 30, 23, 59, 59, 5, time.UTC))
	if err := cp.Check(pub); err != nil {
		t.Fatal(err)
	}
	line := cp.Line()
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil || len(fields) != 7 || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("line %s: %v", line, err)
	}
	got, err := integrity.ReadCheckpoints(bytes.NewReader(append(append(line, '\n'), line...)))
	if err != nil || len(got) != 2 || got[1] != cp {
		t.Fatalf("read back: %+v %v", got, err)
	}
	for _, mutate := range []func(*integrity.Checkpoint){
		func(c *integrity.Checkpoint) { c.Head = strings.Repeat("0", 64) },
		func(c *integrity.Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) },
		func(c *integrity.Checkpoint) { c.Chain = "ledger.events/v0" },
	} {
		c := cp
		mutate(&c)
		if c.Check(pub) == nil {
			t.Fatalf("an altered checkpoint verified: %+v", c)
		}
	}
	_, err = integrity.ReadCheckpoints(strings.NewReader(string(line) + "{\"checkpoint\":1,\"extra\":true}\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: not a checkpoint") {
		t.Fatalf("bad line: %v", err)
	}
}

func TestCheckpointKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint.key")
	pub, err := integrity.GenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", st.Mode(), err)
	}
	if _, err := integrity.GenerateKey(path); err == nil {
		t.Fatal("keygen overwrote a key")
	}
	priv, err := integrity.LoadPrivateKey(path)
	if err != nil || !priv.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatalf("load private: %v", err)
	}
	for _, s := range []string{path + ".pub", base64.StdEncoding.EncodeToString(pub), hex.EncodeToString(pub)} {
		got, err := integrity.LoadPublicKey(s)
		if err != nil || !got.Equal(pub) {
			t.Fatalf("load public %q: %v", s, err)
		}
	}
	if _, err := integrity.LoadPrivateKey(filepath.Join(dir, "missing.key")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := integrity.LoadPrivateKey(path + ".pub"); err == nil || !strings.Contains(err.Error(), `not a PEM "PRIVATE KEY" file`) {
		t.Fatalf("public file as private key: %v", err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := integrity.LoadPrivateKey(path); err == nil || !strings.Contains(err.Error(), "is readable by others (mode 0640): chmod 600") {
		t.Fatalf("a key others can read: %v", err)
	}
	if _, err := integrity.LoadPublicKey("not-a-key"); err == nil {
		t.Fatal("junk public key accepted")
	}
}

// The checkpointer writes at once, then every interval of its clock, to every sink; each line
// in the file and on the NATS stream proves the log.
func TestCheckpointerWritesToEverySink(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	pub, key := newKey(t)
	url := natstest.Start(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := nc.JetStream()
	if _, err := js.AddStream(&nats.StreamConfig{Name: "LEDGER_EVENTS", Subjects: []string{"ledger.events.>"}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	var stdout bytes.Buffer
	sinks, err := integrity.OpenSinks(integrity.SinkConfig{Spec: "file:" + file + ",nats,stdout", NATSURL: url, Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range sinks {
			s.Close()
		}
	}()
	clock := testkit.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	cp, err := integrity.NewCheckpointer(db.Pool, integrity.CheckpointerConfig{Key: key, Sinks: sinks, Interval: time.Hour, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	cp.Signals.Written.Init(t)
	done := make(chan error, 1)
	go func() { done <- cp.Run(ctx) }()

	first := cp.Signals.Written.Wait()
	appendN(t, store, 0, 3)
	clock.Advance(time.Hour)
	second := cp.Signals.Written.Wait()
	if first.Position != 0 || second.Position != 3 || !second.Time.Equal(clock.Now()) {
		t.Fatalf("checkpoints: %+v then %+v", first, second)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	fromFile, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromFile, stdout.Bytes()) {
		t.Fatalf("file and stdout differ:\n%s\n%s", fromFile, stdout.Bytes())
	}
	sub, err := js.SubscribeSync(integrity.CheckpointSubject(""), nats.DeliverAll())
	if err != nil {
		t.Fatal(err)
	}
	var fromNATS []byte
	for range 2 {
		msg, err := sub.NextMsg(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		fromNATS = append(fromNATS, msg.Data...)
	}
	if !bytes.Equal(fromFile, fromNATS) {
		t.Fatalf("file and NATS differ:\n%s\n%s", fromFile, fromNATS)
	}
	cps, err := integrity.ReadCheckpoints(bytes.NewReader(fromFile))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := integrity.VerifyCheckpoints(context.Background(), store, cps, pub)
	if err != nil || !rep.OK() || rep.Checked != 2 {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestOpenSinksRefusesBadSpecs(t *testing.T) {
	for spec, want := range map[string]string{
		"s3://bucket": `"s3://bucket" is not a sink`,
		"file:":       `"file:" is not a sink`,
		"nats":        "LEDGER_NATS_URL is not set",
		"file:" + filepath.Join(t.TempDir(), "no", "dir"): "checkpoint file:",
	} {
		if _, err := integrity.OpenSinks(integrity.SinkConfig{Spec: spec}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
	}
}

// A sink that refuses a checkpoint does not keep it from the others, and is counted.
func TestCheckpointerCountsAFailingSink(t *testing.T) {
	db := testkit.New(t)
	_, key := newKey(t)
	dir := t.TempDir()
	broken, err := integrity.OpenFileSink(filepath.Join(dir, "broken.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	broken.Close() // writes now fail
	good, err := integrity.OpenFileSink(filepath.Join(dir, "good.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	reg := prometheus.NewRegistry()
	cp, err := integrity.NewCheckpointer(db.Pool, integrity.CheckpointerConfig{Key: key, Sinks: []integrity.Sink{broken, good}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Once(context.Background()); err == nil || !strings.Contains(err.Error(), "broken.jsonl") {
		t.Fatalf("a failing sink: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "good.jsonl")); bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("the good sink got %q", b)
	}
	want := `
# HELP ledger_checkpoint_sink_failures_total Checkpoint writes a sink refused, by sink.
# TYPE ledger_checkpoint_sink_failures_total counter
ledger_checkpoint_sink_failures_total{sink="file:` + filepath.Join(dir, "broken.jsonl") + `"} 1
# HELP ledger_checkpoints_written_total Checkpoints this process signed and wrote to every sink.
# TYPE ledger_checkpoints_written_total counter
ledger_checkpoints_written_total 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ledger_checkpoint_sink_failures_total", "ledger_checkpoints_written_total"); err != nil {
		t.Fatal(err)
	}
}

// Once a row before its last checkpoint was rewritten (chain recomputed), the checkpointer
// refuses to sign the new head, which would vouch for the rewrite.
func TestCheckpointerRefusesARewrittenLog(t *testing.T) {
	ctx := context.Background()
	db := testkit.New(t)
	store := eventstore.New(db.Pool)
	_, key := newKey(t)
	appendN(t, store, 0, 4)
	var out bytes.Buffer
	reg := prometheus.NewRegistry()
	cp, err := integrity.NewCheckpointer(db.Pool, integrity.CheckpointerConfig{Key: key,
		Sinks: []integrity.Sink{integrity.NewWriterSink("buffer", &out)}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Once(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, store, 4, 2)
	if _, err := cp.Once(ctx); err != nil {
		t.Fatalf("an extended log: %v", err)
	}
	testkit.Tamper(t, db, `UPDATE ledger.events SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '1999', '1'), 'UTF8') WHERE position = 2`)
	rechain(t, db, 2)
	if _, err := cp.Once(ctx); err == nil || !strings.Contains(err.Error(), "the log no longer extends the checkpoint at position 6") {
		t.Fatalf("a rewritten log: %v", err)
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 2 {
		t.Fatalf("%d checkpoints written, want 2", n)
	}
	if v := testutil.ToFloat64(mustCounter(t, reg, "ledger_checkpoint_divergence_total")); v != 1 {
		t.Fatalf("divergence counted %v times", v)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: name}, func() float64 { return mf.GetMetric()[0].GetCounter().GetValue() })
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
