package projections

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stripeledger/ledger/domain"
)

// Replay needs each object's whole set of events, but the log is read in one sequential pass in
// the table's order (sorting it by object would make Postgres spill it to disk first, and an
// index-ordered read costs a random heap fetch per event). So the pass decodes each event and
// spills it to a file chosen by hashing its object ID: every event of an object lands in the same
// partition, and each partition is then folded on its own. Memory is bounded by a partition, not
// by the log: the number of partitions grows with the log (Config.PartitionEvents).
//
// Each decoding worker writes its own files, so the pass needs no lock; a partition is the
// workers' files for one (model, partition) pair.

// spill is the spill files of one replay.
type spill struct {
	dir        string
	partitions int
	files      [][][]*spillFile // [worker][model][partition]
}

type spillFile struct {
	f *os.File
	w *bufio.Writer
	n int // records written
}

// spillBuffer is each file's write buffer: small, because a large log has many files open.
const spillBuffer = 16 << 10

func newSpill(dir string, workers, partitions int) (*spill, error) {
	d, err := os.MkdirTemp(dir, "ledger-replay-")
	if err != nil {
		return nil, fmt.Errorf("could not create the replay's spill directory: %w", err)
	}
	s := &spill{dir: d, partitions: partitions, files: make([][][]*spillFile, workers)}
	for w := range workers {
		s.files[w] = make([][]*spillFile, len(Models))
		for m := range Models {
			s.files[w][m] = make([]*spillFile, partitions)
		}
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

// spilled is one event as spilled: where it sits in the log and its decoded fact.
type spilled struct {
	position int64
	objectID string
	fact     domain.Fact
}

// write appends one event of model m to worker w's file for its partition.
func (s *spill) write(w, m int, position int64, objectID string, f domain.Fact, buf []byte) ([]byte, error) {
	p := s.partition(objectID)
	sf := s.files[w][m][p]
	if sf == nil {
		file, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("w%d-m%d-p%d", w, m, p)))
		if err != nil {
			return buf, fmt.Errorf("could not create a spill file: %w", err)
		}
		sf = &spillFile{f: file, w: bufio.NewWriterSize(file, spillBuffer)}
		s.files[w][m][p] = sf
	}
	buf = buf[:0]
	buf = binary.AppendVarint(buf, position)
	buf = appendSpillString(buf, objectID)
	buf = f.AppendBinary(buf)
	var head [binary.MaxVarintLen64]byte
	if _, err := sf.w.Write(head[:binary.PutUvarint(head[:], uint64(len(buf)))]); err != nil {
		return buf, fmt.Errorf("could not write a spill file: %w", err)
	}
	if _, err := sf.w.Write(buf); err != nil {
		return buf, fmt.Errorf("could not write a spill file: %w", err)
	}
	sf.n++
	return buf, nil
}

// flush ends the writing: every file is flushed and closed.
func (s *spill) flush() error {
	var errs []error
	for _, byModel := range s.files {
		for _, byPart := range byModel {
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
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("could not write the spill files: %w", err)
	}
	return nil
}

// read loads partition p of model m: every worker's file, decoded. The facts point into the
// files' bytes, which the returned events keep alive.
func (s *spill) read(m, p int) ([]spilled, error) {
	var out []spilled
	for w := range s.files {
		sf := s.files[w][m][p]
		if sf == nil {
			continue
		}
		b, err := os.ReadFile(sf.f.Name())
		if err != nil {
			return nil, fmt.Errorf("could not read a spill file: %w", err)
		}
		if out == nil {
			out = make([]spilled, 0, sf.n*len(s.files))
		}
		for len(b) > 0 {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return nil, fmt.Errorf("spill file %s is corrupt", sf.f.Name())
			}
			rec := b[k : k+int(n)]
			b = b[k+int(n):]
			pos, k := binary.Varint(rec)
			if k <= 0 {
				return nil, fmt.Errorf("spill file %s is corrupt", sf.f.Name())
			}
			id, rest, ok := readSpillString(rec[k:])
			if !ok {
				return nil, fmt.Errorf("spill file %s is corrupt", sf.f.Name())
			}
			f, _, err := domain.ReadFact(rest)
			if err != nil {
				return nil, fmt.Errorf("spill file %s is corrupt: %w", sf.f.Name(), err)
			}
			out = append(out, spilled{position: pos, objectID: id, fact: f})
		}
		// The partition's files are not needed again: free the disk as the replay goes.
		_ = os.Remove(sf.f.Name())
	}
	return out, nil
}

// remove deletes the spill directory and everything left in it.
func (s *spill) remove() {
	for _, byModel := range s.files {
		for _, byPart := range byModel {
			for _, sf := range byPart {
				if sf != nil && sf.w != nil {
					_ = sf.f.Close()
				}
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
