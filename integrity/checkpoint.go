package integrity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/stripeledger/ledger/domain"
	"github.com/stripeledger/ledger/eventstore"
)

// A Checkpoint is a signed statement "at Time, the log's event at Position had chain hash Head".
// Kept outside the database (a file, a NATS stream, a log shipper), it pins the log's history up
// to Position: whoever rewrites a row at or before it and recomputes the chain after it changes
// the hash at Position, and cannot sign a new checkpoint without the key, which the database
// never holds.
//
// A checkpoint is one JSON line; Signature is Ed25519 over the message built by signedMessage.
type Checkpoint struct {
	Version   int       `json:"checkpoint"` // the format: 1
	Position  int64     `json:"position"`
	Head      string    `json:"head"`  // the chain hash at Position, hex
	Chain     string    `json:"chain"` // the chain's encoding (eventstore's tag), e.g. ledger.events/v2
	Time      time.Time `json:"time"`
	Key       string    `json:"key"`       // KeyID of the signing key
	Signature string    `json:"signature"` // base64
}

// CheckpointVersion is the format this package writes and reads.
const CheckpointVersion = 1

// signedMessage is what the key signs: every field but the signature, in a fixed text form, so a
// verifier in another language can rebuild it.
func (c Checkpoint) signedMessage() []byte {
	return fmt.Appendf(nil, "ledger checkpoint %d\nposition %d\nhead %s\nchain %s\ntime %s\nkey %s\n",
		c.Version, c.Position, c.Head, c.Chain, c.Time.UTC().Format(time.RFC3339Nano), c.Key)
}

// Sign makes the checkpoint of head at now.
func Sign(key ed25519.PrivateKey, head eventstore.Head, chain string, now time.Time) Checkpoint {
	c := Checkpoint{Version: CheckpointVersion, Position: head.Position, Head: hex.EncodeToString(head.Hash[:]),
		Chain: chain, Time: now.UTC(), Key: KeyID(key.Public().(ed25519.PublicKey))}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.signedMessage()))
	return c
}

// Check verifies the checkpoint's signature with the one of pubs it names (a verifier holds
// every key that signed checkpoints, after a rotation the old and the new).
func (c Checkpoint) Check(pubs ...ed25519.PublicKey) error {
	if c.Version != CheckpointVersion {
		return fmt.Errorf("checkpoint format %d: this ledger reads format %d", c.Version, CheckpointVersion)
	}
	var pub ed25519.PublicKey
	var given []string
	for _, p := range pubs {
		if KeyID(p) == c.Key {
			pub = p
		}
		given = append(given, KeyID(p))
	}
	if pub == nil {
		return fmt.Errorf("signed by key %s, not by a given public key (%s)", c.Key, strings.Join(given, ", "))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.signedMessage(), sig) {
		return errors.New("the signature does not match: the checkpoint was altered or forged")
	}
	return nil
}

// Line is the checkpoint as one line of JSON, newline included.
func (c Checkpoint) Line() []byte {
	b, _ := json.Marshal(c) // a struct of strings, ints and a time: cannot fail
	return append(b, '\n')
}

// KeyID names a public key: the first 8 bytes of its SHA-256, hex. It tells keys apart after a
// rotation; it is not secret.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// LoadPrivateKey reads an Ed25519 private key from a PEM file (PKCS #8, "PRIVATE KEY": what
// `ledger checkpoint keygen` and `openssl genpkey -algorithm ed25519` write). Errors name the
// file, never its content.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("checkpoint key %s: not a PEM \"PRIVATE KEY\" file (make one with `ledger checkpoint keygen`)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key %s: not a PKCS #8 private key", path)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("checkpoint key %s: a %T, not an Ed25519 key", path, k)
	}
	// Whoever can read the key can sign a checkpoint of a rewritten log; refuse one that
	// others can read, as ssh does.
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("checkpoint key %s is readable by others (mode %04o): chmod 600 %s", path, st.Mode().Perm(), path)
	}
	return priv, nil
}

// LoadPublicKey reads the key that checks checkpoints: a PEM file ("PUBLIC KEY", as keygen
// writes beside the private key), or the raw 32-byte key in base64 or hex given inline.
func LoadPublicKey(s string) (ed25519.PublicKey, error) {
	if s == "" {
		return nil, errors.New("no public key: give --public-key (a PEM file, or the key in base64)")
	}
	b, err := os.ReadFile(s)
	switch {
	case err == nil:
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("public key %s: not a PEM \"PUBLIC KEY\" file", s)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", s, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s: a %T, not an Ed25519 key", s, k)
		}
		return pub, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("public key: %w", err)
	}
	for _, dec := range []func(string) ([]byte, error){base64.StdEncoding.DecodeString, hex.DecodeString} {
		if raw, err := dec(s); err == nil && len(raw) == ed25519.PublicKeySize {
			return ed25519.PublicKey(raw), nil
		}
	}
	return nil, errors.New("public key: neither a file nor a 32-byte key in base64 or hex")
}

// GenerateKey writes a new private key to path (mode 0600, refusing to overwrite) and its
// public key to path + ".pub", and returns the public key.
func GenerateKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	// The public half first: a key without its .pub beside it would be unverifiable, and a
	// stale .pub from an earlier key must never be paired with a new one.
	if err := writeNew(path+".pub", 0o644, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})); err != nil {
		return nil, err
	}
	if err := writeNew(path, 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		os.Remove(path + ".pub")
		return nil, err
	}
	return pub, nil
}

func writeNew(path string, mode os.FileMode, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadCheckpoints parses a file of checkpoint lines (blank lines are skipped). An unreadable
// line is an error naming it: a checkpoint file is evidence, so nothing in it is skipped quietly.
func ReadCheckpoints(r io.Reader) ([]Checkpoint, error) {
	var out []Checkpoint
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c Checkpoint
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("line %d: not a checkpoint: %v", n, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: not a checkpoint: more than one JSON value", n)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	return out, nil
}

// CheckpointReport is what VerifyCheckpoints found.
type CheckpointReport struct {
	Checked  int // checkpoints whose signature and hash both held
	Chain    eventstore.Verification
	Problems []CheckpointProblem // each checkpoint that did not hold, in file order
	// Redactions counts the redaction records the walk met (all of them when the chain holds);
	// RedactionProblems lists each that the given keys do not authenticate, in log order.
	Redactions        int
	RedactionProblems []RedactionProblem
}

// RedactionProblem is a redaction record that no given checkpoint key signed: unsigned, signed by
// another key, or altered. The payloads it names may have been rewritten under it.
type RedactionProblem struct {
	Position int64
	EventID  string
	Reason   string
}

func (p RedactionProblem) String() string {
	return fmt.Sprintf("redaction %s (position %d): %s", p.EventID, p.Position, p.Reason)
}

// CheckpointProblem is one checkpoint the log does not extend, or that is not authentic.
type CheckpointProblem struct {
	Index    int // 1-based, in the file's order
	Position int64
	Time     time.Time
	Reason   string
}

func (p CheckpointProblem) String() string {
	return fmt.Sprintf("checkpoint %d (position %d, %s): %s", p.Index, p.Position, p.Time.Format(time.RFC3339), p.Reason)
}

// OK says whether the chain holds, the log extends every checkpoint and every redaction record
// is authentic.
func (r CheckpointReport) OK() bool {
	return r.Chain.Broken == nil && len(r.Problems) == 0 && len(r.RedactionProblems) == 0
}

// VerifyCheckpoints proves the log still extends every checkpoint: each checkpoint's signature
// holds under one of pubs, the chain holds from the genesis to the head (the walk of Verify), and
// the hash the walk found at each checkpoint's position is the one the checkpoint signed — in
// the chain version it names: a checkpoint signed before migration 011 is compared with the
// version-1 hash that migration kept. Together: every row up to that position is the row that
// was there when the checkpoint was taken, even if whoever edited one recomputed the chain after
// it. The hashes are taken during the walk, so they are the ones it checked.
//
// The walk also authenticates every redaction record it meets with pubs (CheckRedaction): a
// checkpoint pins a row's payload digest, not its payload, which a redaction replaces, so an
// authentic record is what shows each replaced payload is an operator's erasure.
func VerifyCheckpoints(ctx context.Context, store *eventstore.Store, cps []Checkpoint, pubs ...ed25519.PublicKey) (CheckpointReport, error) {
	var rep CheckpointReport
	want := map[int64]bool{}
	for _, c := range cps {
		want[c.Position] = true
	}
	links := map[int64]eventstore.Link{0: {Hash: eventstore.GenesisHash, HashV1: &eventstore.GenesisHash}}
	v, err := store.VerifyWith(ctx, eventstore.VerifyOptions{Each: func(l eventstore.Link) error {
		if want[l.Position] {
			links[l.Position] = l
		}
		return nil
	}, Redaction: func(eventID string, position int64, rec domain.Redaction) error {
		rep.Redactions++
		if err := CheckRedaction(eventID, rec, pubs...); err != nil {
			rep.RedactionProblems = append(rep.RedactionProblems, RedactionProblem{Position: position, EventID: eventID, Reason: err.Error()})
		}
		return nil
	}})
	if err != nil {
		return rep, err
	}
	rep.Chain = v
	for i, c := range cps {
		problem := func(reason string) {
			rep.Problems = append(rep.Problems, CheckpointProblem{Index: i + 1, Position: c.Position, Time: c.Time, Reason: reason})
		}
		if err := c.Check(pubs...); err != nil {
			problem(err.Error())
			continue
		}
		l, walked := links[c.Position]
		signed, err := hex.DecodeString(c.Head)
		if err != nil || len(signed) != 32 {
			problem("the head hash is not 32 bytes of hex")
			continue
		}
		var got *[32]byte
		switch c.Chain {
		case ChainTag:
			got = &l.Hash
		case eventstore.ChainTagV1:
			got = l.HashV1 // nil past the migration: a v1 checkpoint of a row appended after it cannot exist
		default:
			problem(fmt.Sprintf("chain encoding %q: this ledger checks %q and %q", c.Chain, ChainTag, eventstore.ChainTagV1))
			continue
		}
		switch {
		case !walked && v.Broken != nil && c.Position >= v.Broken.Position:
			problem(fmt.Sprintf("the chain is broken at position %d, at or before this checkpoint", v.Broken.Position))
		case !walked && c.Position > v.Count:
			problem("the log has no event at this position: events the checkpoint covered are gone")
		case got == nil:
			problem("a version-1 checkpoint of a row the version-1 chain never held")
		case !bytes.Equal(got[:], signed):
			problem("the hash at this position is not the one signed: a row at or before it was changed")
		default:
			rep.Checked++
		}
	}
	return rep, nil
}

// ChainTag is the chain encoding checkpoints of this log name.
const ChainTag = eventstore.ChainTag
