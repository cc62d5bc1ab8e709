package projections

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Replay needs each object's whole set of events, but the log is read in one sequential pass in
// the table's order (sorting it by object would make Postgres spill it to disk first, and an
// index-ordered read costs a random heap fetch per event). So the pass spills each event's
// payload to a file chosen by hashing its object ID: every event of an object lands in the same
// partition, and each partition is then decoded and folded on its own. Memory is bounded by a
// partition, not by the log: the number of partitions grows with the log
// (Config.PartitionEvents). The pass only copies bytes, so it goes at the speed Postgres sends
// them; decoding happens while earlier partitions are being written.

// spill is the spill files of one replay.
type spill struct {
	dir        string
	partitions int
	files      [][]*spillFile // [model][partition]
}

type spillFile struct {
	f *os.File
	w *bufio.Writer
	n int // records written
}

// spillBuffer is each file's write buffer: a file per model and partition, so a 2M-event log
// has some 150 of them open (10 MB).
const spillBuffer = 64 << 10

func newSpill(dir string, partitions int) (*spill, error) {
	d, err := os.MkdirTemp(dir, "ledger-replay-")
	if err != nil {
		return nil, fmt.Errorf("could not create the replay's spill directory: %w", err)
	}
	s := &spill{dir: d, partitions: partitions, files: make([][]*spillFile, len(Models))}
	for m := range Models {
		s.files[m] = make([]*spillFile, partitions)
	}
	return s, nil
}

// partition is the partition of an object: FNV-1a of its ID.
func (s *spill) partition(objectID string) int {
	h := uint32(2166136261)
	for i := 0; i < len(objectID); i++ {
		h ^= uint32(objectID[i])
		h *= 16777619
	}
	return int(h % uint32(s.partitions))
}

// spilled is one event as spilled: where it sits in the log, what it is about, its payload.
type spilled struct {
	position        int64
	id, typ, object string
	payload         []byte
}

// write appends one event of model m to its partition's file. buf is scratch space, returned
// for the next call.
func (s *spill) write(m int, position int64, id, typ, objectID string, payload, buf []byte) ([]byte, error) {
	p := s.partition(objectID)
	sf := s.files[m][p]
	if sf == nil {
		file, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("m%d-p%d", m, p)))
		if err != nil {
			return buf, fmt.Errorf("could not create a spill file: %w", err)
		}
		sf = &spillFile{f: file, w: bufio.NewWriterSize(file, spillBuffer)}
		s.files[m][p] = sf
	}
	buf = buf[:0]
	buf = binary.AppendVarint(buf, position)
	buf = appendSpillString(buf, id)
	buf = appendSpillString(buf, typ)
	buf = appendSpillString(buf, objectID)
	buf = binary.AppendUvarint(buf, uint64(len(payload)))
	var head [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(head[:], uint64(len(buf)+len(payload)))
	for _, b := range [][]byte{head[:n], buf, payload} {
		if _, err := sf.w.Write(b); err != nil {
			return buf, fmt.Errorf("could not write a spill file: %w", err)
		}
	}
	sf.n++
	return buf, nil
}

// flush ends the writing: every file is flushed and closed.
func (s *spill) flush() error {
	var errs []error
	for _, byPart := range s.files {
		for _, sf := range byPart {
			if sf == nil {
				continue
			}
			if err := sf.w.Flush(); err != nil {
				errs = append(errs, err)
			}
			if err := sf.f.Close(); err != nil {
				errs = append(errs, err)
			}
			sf.w = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("could not write the spill files: %w", err)
	}
	return nil
}

// read loads partition p of model m. The payloads point into the file's bytes, which the
// returned events keep alive.
func (s *spill) read(m, p int) ([]spilled, error) {
	sf := s.files[m][p]
	if sf == nil {
		return nil, nil
	}
	b, err := os.ReadFile(sf.f.Name())
	if err != nil {
		return nil, fmt.Errorf("could not read a spill file: %w", err)
	}
	// The partition's file is not needed again: free the disk as the replay goes.
	_ = os.Remove(sf.f.Name())
	corrupt := fmt.Errorf("spill file %s is corrupt", sf.f.Name())
	out := make([]spilled, 0, sf.n)
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, corrupt
		}
		rec := b[k : k+int(n)]
		b = b[k+int(n):]
		var ev spilled
		pos, k := binary.Varint(rec)
		if k <= 0 {
			return nil, corrupt
		}
		ev.position, rec = pos, rec[k:]
		var ok bool
		if ev.id, rec, ok = readSpillString(rec); !ok {
			return nil, corrupt
		}
		if ev.typ, rec, ok = readSpillString(rec); !ok {
			return nil, corrupt
		}
		if ev.object, rec, ok = readSpillString(rec); !ok {
			return nil, corrupt
		}
		size, k := binary.Uvarint(rec)
		if k <= 0 || size != uint64(len(rec)-k) {
			return nil, corrupt
		}
		ev.payload = rec[k:]
		out = append(out, ev)
	}
	return out, nil
}

// remove deletes the spill directory and everything left in it.
func (s *spill) remove() {
	for _, byPart := range s.files {
		for _, sf := range byPart {
			if sf != nil && sf.w != nil {
				_ = sf.f.Close()
			}
		}
	}
	_ = os.RemoveAll(s.dir)
}

func appendSpillString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readSpillString(b []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}
