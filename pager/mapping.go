package pager

import (
	"fmt"
	"sync/atomic"

	"github.com/edsrzf/mmap-go"
)

// Mapping is one read-only map of the file, reference counted. A reader
// holds a Mapping (from Pager.Acquire) for its whole life, and the slices
// Bytes returns stay valid until the reader's Release: a mapping that growth
// superseded is unmapped only when its last holder lets go.
type Mapping struct {
	p    *Pager // nil for the placeholder returned by a closed pager
	data mmap.MMap
	refs atomic.Int64
	// dead is set just before the unmap. Bytes checks it so that a caller
	// who uses a mapping after releasing it gets an error, not a fault
	// (unless it races with the unmap itself, which no rule can save).
	dead atomic.Bool
}

// closedMapping is what Acquire returns after Close: every Bytes fails.
var closedMapping = &Mapping{}

// Bytes returns data[off:off+n] of the map, or an error if the range lies
// outside the file size the pager knows now or outside this mapping. The
// slice's capacity ends at off+n, so an append can never write into the
// (read-only) map. It does not allocate on success.
func (m *Mapping) Bytes(off, n int64) ([]byte, error) {
	if m == nil || m.p == nil || m.dead.Load() {
		return nil, m.deadErr()
	}
	// Bytes past the end of the file are mapped but backed by nothing:
	// touching them would raise SIGBUS. The pager raises size only after
	// the file has grown, so checking against it is enough.
	size := m.p.size.Load()
	end := off + n
	if off < 0 || n < 0 || end < off || end > size || end > int64(len(m.data)) {
		return nil, m.rangeErr(off, n, size)
	}
	return m.data[off:end:end], nil
}

// Retain adds a reference and returns m. Call it only while already
// holding a reference.
func (m *Mapping) Retain() *Mapping {
	if m != nil && m.p != nil {
		m.refs.Add(1)
	}
	return m
}

// Release drops one reference. The last release of a mapping the pager no
// longer uses (superseded by growth, or the pager closed) unmaps it; after
// that its slices must not be touched.
func (m *Mapping) Release() {
	if m == nil || m.p == nil {
		return
	}
	if m.refs.Add(-1) == 0 {
		m.dead.Store(true)
		// Unmap through a copy: mmap-go nils the slice it is given, and
		// m.data must stay unwritten so a late Bytes sees no data race.
		d := m.data
		if err := d.Unmap(); err != nil {
			m.p.noteErr(fmt.Errorf("cowfile: %s: munmap: %w", m.p.path, err))
		}
	}
}

// Len is the length of the mapping (the address space reserved), which can
// exceed the file's size.
func (m *Mapping) Len() int64 {
	if m == nil {
		return 0
	}
	return int64(len(m.data))
}

func (m *Mapping) deadErr() error {
	if m == nil || m.p == nil {
		return fmt.Errorf("%w: no mapping", ErrClosed)
	}
	return fmt.Errorf("%w: %s: mapping used after its last Release", ErrClosed, m.p.path)
}

func (m *Mapping) rangeErr(off, n, size int64) error {
	return fmt.Errorf("%w: %s: %d bytes at offset %d (file size %d, mapped %d)",
		ErrOutOfRange, m.p.path, n, off, size, len(m.data))
}
