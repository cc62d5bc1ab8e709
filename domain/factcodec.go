package domain

import (
	"encoding/binary"
	"encoding/json"
	"errors"
)

// A fact's binary form, for a replay that spills the decoded log to disk and reads it back one
// partition at a time: the fields the reducers read, length-prefixed, so reading it back is a
// few slice operations and no JSON parsing (data.object and the previous values are kept as the
// raw JSON they were).

// AppendBinary appends the fact's binary form to b.
func (f Fact) AppendBinary(b []byte) []byte {
	b = appendString(b, f.EventID)
	b = appendString(b, f.Type)
	b = binary.AppendVarint(b, f.Created)
	b = appendString(b, f.APIVersion)
	b = append(b, boolByte(f.Livemode))
	b = appendString(b, f.Account)
	b = appendString(b, string(f.ObjectRaw))
	b = binary.AppendUvarint(b, uint64(len(f.Prev)))
	for k, v := range f.Prev {
		b = appendString(b, k)
		b = appendString(b, string(v))
	}
	b = appendString(b, f.ListedBy)
	return appendString(b, f.ThinType)
}

var errShortFact = errors.New("truncated fact")

// ReadFact reads one fact's binary form from the start of b and returns the rest. The fact's
// raw JSON points into b: b must outlive it.
func ReadFact(b []byte) (Fact, []byte, error) {
	var f Fact
	var ok bool
	var s []byte
	if s, b, ok = readBytes(b); !ok {
		return Fact{}, nil, errShortFact
	}
	f.EventID = string(s)
	if s, b, ok = readBytes(b); !ok {
		return Fact{}, nil, errShortFact
	}
	f.Type = string(s)
	created, n := binary.Varint(b)
	if n <= 0 {
		return Fact{}, nil, errShortFact
	}
	f.Created, b = created, b[n:]
	if s, b, ok = readBytes(b); !ok {
		return Fact{}, nil, errShortFact
	}
	f.APIVersion = string(s)
	if len(b) == 0 {
		return Fact{}, nil, errShortFact
	}
	f.Livemode, b = b[0] == 1, b[1:]
	if s, b, ok = readBytes(b); !ok {
		return Fact{}, nil, errShortFact
	}
	f.Account = string(s)
	if s, b, ok = readBytes(b); !ok {
		return Fact{}, nil, errShortFact
	}
	f.ObjectRaw = json.RawMessage(s)
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return Fact{}, nil, errShortFact
	}
	b = b[n:]
	if count > 0 {
		f.Prev = make(map[string]json.RawMessage, count)
		for range count {
			var k, v []byte
			if k, b, ok = readBytes(b); !ok {
				return Fact{}, nil, errShortFact
			}
			if v, b, ok = readBytes(b); !ok {
				return Fact{}, nil, errShortFact
			}
			f.Prev[string(k)] = json.RawMessage(v)
		}
	}
	if s, b, ok = readBytes(b); !ok {
		return Fact{}, nil, errShortFact
	}
	f.ListedBy = string(s)
	if s, b, ok = readBytes(b); !ok {
		return Fact{}, nil, errShortFact
	}
	f.ThinType = string(s)
	return f, b, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readBytes(b []byte) (value, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	b = b[k:]
	return b[:n:n], b[n:], true
}
