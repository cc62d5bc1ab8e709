package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// GenesisHash is the prev_hash of the first event: 32 zero bytes.
var GenesisHash [32]byte

// The hash chain, version 2. A row's hash is
//
//	SHA-256("ledger.events/v2" || prev_hash || position || content digest)
//
// where the content digest is SHA-256 over every other stored column, each length-prefixed so no
// two different rows share an encoding (received_at as Unix microseconds, the precision Postgres
// keeps; created as Unix seconds) — with SHA-256(payload), stored beside the payload as
// payload_digest, in place of the payload's bytes, and the row's version-1 hash (empty when it
// has none) last. Splitting it this way lets an appender hash the payloads before it takes the
// log's lock; only the cheap outer hash needs the previous row.
//
// Why the payload's digest and not its bytes: personal data must be erasable (GDPR, CCPA). A
// redaction (package redaction) replaces a payload's personal values and leaves payload_digest as
// it was, so every link, and every checkpoint taken over them, still holds. Verify checks a
// payload against its digest while it is as received; a redacted payload cannot be checked that
// way (its original is gone), so it is checked against the SHA-256 its redaction event recorded,
// and the redaction event is itself a link of the chain.
//
// Version 1 (until migrations/011_chain_v2.sql) hashed the payload's bytes into the content
// digest and used the tag "ledger.events/v1". That migration re-chained every existing row with
// version 2 and kept its version-1 hash in hash_v1, so a checkpoint over the old chain is still
// checked at its position (Store.HashAt), and Verify still recomputes the old links of rows that
// were not redacted. Covering hash_v1 in the version-2 digest binds the two: the old chain cannot
// be edited without breaking the new one.
//
// Changing this encoding invalidates every stored chain: it is versioned by the leading tag, and
// ledger.content_digest_v2 and ledger.append_events (migrations/011_chain_v2.sql) mirror it;
// TestChainMigrationRechainsAV1Log holds them to this code (every row's SQL and Go hashes).

// contentDigest is the version-2 content digest of r, whose PayloadDigest must be set.
func contentDigest(r *Record) [32]byte {
	h := sha256.New()
	w := fieldWriter{h: h}
	w.envelope(r)
	w.bytes(r.PayloadDigest[:])
	writeBool(h, r.Signature != "")
	w.string(r.Signature)
	if r.HashV1 != nil {
		w.bytes(r.HashV1[:])
	} else {
		w.bytes(nil)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// contentDigestV1 is the version-1 content digest: the payload's bytes themselves.
func contentDigestV1(r *Record) [32]byte {
	h := sha256.New()
	w := fieldWriter{h: h}
	w.envelope(r)
	w.bytes(r.Payload)
	writeBool(h, r.Signature != "")
	w.string(r.Signature)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

type fieldWriter struct {
	h hash.Hash
	n [8]byte
}

func (w *fieldWriter) int(v int64) {
	binary.BigEndian.PutUint64(w.n[:], uint64(v))
	w.h.Write(w.n[:])
}

func (w *fieldWriter) bytes(b []byte) {
	w.int(int64(len(b)))
	w.h.Write(b)
}

func (w *fieldWriter) string(s string) { w.bytes([]byte(s)) }

// envelope writes the columns both versions hash the same way, up to received_at.
func (w *fieldWriter) envelope(r *Record) {
	w.string(r.ID)
	w.string(r.Type)
	w.string(r.APIVersion)
	w.int(r.Created)
	writeBool(w.h, r.Livemode)
	w.string(r.Account)
	w.string(r.ObjectType)
	w.string(r.ObjectID)
	w.string(string(r.Source))
	w.int(r.ReceivedAt.UnixMicro())
}

// linkHash is mirrored by ledger.append_events and ledger.chain_v2_link
// (migrations/011_chain_v2.sql), which link rows on the server; Verify recomputes it here, so the
// two cannot drift apart unnoticed.
func linkHash(prev [32]byte, position int64, content [32]byte) [32]byte {
	return link("ledger.events/v2", prev, position, content)
}

// linkHashV1 is the version-1 link (migrations/003_append_function.sql).
func linkHashV1(prev [32]byte, position int64, content [32]byte) [32]byte {
	return link("ledger.events/v1", prev, position, content)
}

func link(tag string, prev [32]byte, position int64, content [32]byte) [32]byte {
	var buf [16 + 32 + 8 + 32]byte
	copy(buf[:16], tag)
	copy(buf[16:48], prev[:])
	binary.BigEndian.PutUint64(buf[48:56], uint64(position))
	copy(buf[56:], content[:])
	return sha256.Sum256(buf[:])
}

func writeBool(h hash.Hash, b bool) {
	if b {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
}
