package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// GenesisHash is the prev_hash of the first event: 32 zero bytes.
var GenesisHash [32]byte

// chainHash computes a row's hash: SHA-256 over the previous row's hash and every stored column of
// this row, each length-prefixed so no two different rows share an encoding. received_at enters as
// Unix microseconds, the precision Postgres keeps; created as Unix seconds.
//
// Changing this encoding invalidates every stored chain: it is versioned by the leading tag.
func chainHash(prev [32]byte, r *Record) [32]byte {
	h := sha256.New()
	h.Write([]byte("ledger.events/v1"))
	h.Write(prev[:])
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

	writeInt(r.Position)
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

func writeBool(h hash.Hash, b bool) {
	if b {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
}
