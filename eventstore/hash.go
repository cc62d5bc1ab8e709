package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// GenesisHash is the prev_hash of the first event: 32 zero bytes.
var GenesisHash [32]byte

// The hash chain. A row's hash is
//
//	SHA-256("ledger.events/v1" || prev_hash || position || content digest)
//
// where the content digest is SHA-256 over every other stored column, each length-prefixed so no
// two different rows share an encoding (received_at as Unix microseconds, the precision Postgres
// keeps; created as Unix seconds). Splitting it this way lets an appender hash the payloads before
// it takes the log's lock; only the cheap outer hash needs the previous row.
//
// Changing this encoding invalidates every stored chain: it is versioned by the leading tag.

func contentDigest(r *Record) [32]byte {
	h := sha256.New()
	var n [8]byte
	writeInt := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	writeBytes := func(b []byte) {
		writeInt(int64(len(b)))
		h.Write(b)
	}
	writeString := func(s string) { writeBytes([]byte(s)) }

	writeString(r.ID)
	writeString(r.Type)
	writeString(r.APIVersion)
	writeInt(r.Created)
	writeBool(h, r.Livemode)
	writeString(r.Account)
	writeString(r.ObjectType)
	writeString(r.ObjectID)
	writeString(string(r.Source))
	writeInt(r.ReceivedAt.UnixMicro())
	writeBytes(r.Payload)
	writeBool(h, r.Signature != "")
	writeString(r.Signature)

	var out [32]byte
	h.Sum(out[:0])
	return out
}

// linkHash is mirrored by ledger.append_events (migrations/003_append_function.sql), which links
// rows on the server; Verify recomputes it here, so the two cannot drift apart unnoticed.
func linkHash(prev [32]byte, position int64, content [32]byte) [32]byte {
	var buf [16 + 32 + 8 + 32]byte
	copy(buf[:16], "ledger.events/v1")
	copy(buf[16:48], prev[:])
	binary.BigEndian.PutUint64(buf[48:56], uint64(position))
	copy(buf[56:], content[:])
	return sha256.Sum256(buf[:])
}

// chainHash is a row's hash given the previous row's.
func chainHash(prev [32]byte, r *Record) [32]byte {
	return linkHash(prev, r.Position, contentDigest(r))
}

func writeBool(h hash.Hash, b bool) {
	if b {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
}
