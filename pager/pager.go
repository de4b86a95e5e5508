package pager

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Errors the pager's errors wrap; test them with errors.Is.
var (
	// ErrTimeout: Open gave up waiting for the file lock.
	ErrTimeout = errors.New("cowfile: timeout waiting for file lock")
	// ErrEmpty: the file exists but has no bytes — a crash during a
	// creation that did not go through a temporary file, or a stranger's
	// empty file. The caller decides what to do with it.
	ErrEmpty = errors.New("cowfile: file is empty")
	// ErrClosed: the pager is closed, or a mapping was used after its last
	// Release.
	ErrClosed = errors.New("cowfile: pager closed")
	// ErrOutOfRange: Mapping.Bytes was asked for bytes beyond the file or
	// the mapping. In a well-formed file that only happens by following a
	// corrupt reference.
	ErrOutOfRange = errors.New("cowfile: read out of range")
)

// Options configure Open.
type Options struct {
	ReadOnly bool
	// Timeout is how long Open waits for the file lock: 0 waits forever, a
	// negative value tries once. On expiry Open returns an error wrapping
	// ErrTimeout.
	Timeout time.Duration
	// FS is the file system; nil means OSFS.
	FS FS
	// Create, when the file does not exist and !ReadOnly, returns the
	// complete initial image of a new file. Open writes it to a temporary
	// file in the same directory (name+".tmp-<random>"), syncs it, renames
	// it to the real name, then syncs the directory — so a crash never
	// leaves a half-made file under the real name. nil Create and a missing
	// file give an error wrapping os.ErrNotExist.
	Create func() ([]byte, error)
	// MinMapSize is the smallest address-space reservation for the map of
	// a writable pager; 0 means 1 GiB on 64-bit platforms, 256 MiB on
	// 32-bit ones. A read-only pager maps just the file: it cannot grow
	// while the shared lock is held.
	MinMapSize int64
}

// Growth and mapping granularity.
const (
	// mapAlign rounds map lengths and grown file sizes; it is a multiple
	// of every OS page size in use (4 KiB, 16 KiB, 64 KiB).
	mapAlign = 64 << 10
	// maxGrowStep caps the slack Grow adds beyond a request.
	maxGrowStep = 1 << 30
	// smallFile is the size up to which Grow adds an eighth as slack.
	smallFile = 16 << 20
)

func defaultMinMapSize() int64 {
	if strconv.IntSize == 64 {
		return 1 << 30
	}
	return 256 << 20
}

// Pager owns the open, locked, mapped database file.
//
// Any number of goroutines may call Acquire, Size, ReadAt and use
// Mappings concurrently with one another and with the writer. The
// mutating calls (WritePages, Grow, Truncate, Sync, Close) are serialized
// internally, but the engine is expected to issue them from one writer.
type Pager struct {
	path   string
	fs     FS
	f      File
	ro     bool
	minMap int64

	// size is the file's length as far as reads may trust it: raised only
	// after the file has grown, lowered before it shrinks.
	size atomic.Int64
	// cur is the current mapping; the pager holds one reference to it.
	// nil after Close.
	cur atomic.Pointer[Mapping]

	mu     sync.Mutex // serializes mutations and Close
	closed bool

	errMu sync.Mutex
	err   error // first unmap failure, reported by Close
}

// Open opens path (creating it through o.Create if it is missing), locks
// it — exclusively unless o.ReadOnly, shared otherwise — and maps it.
func Open(path string, o Options) (*Pager, error) {
	fsys := o.FS
	if fsys == nil {
		fsys = OSFS
	}
	flag := os.O_RDWR
	if o.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := fsys.OpenFile(path, flag, 0o600)
	if err != nil && errors.Is(err, os.ErrNotExist) && !o.ReadOnly && o.Create != nil {
		if err = create(fsys, path, o.Create); err != nil {
			return nil, err
		}
		f, err = fsys.OpenFile(path, flag, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("cowfile: open %s: %w", path, err)
	}

	p := &Pager{path: path, fs: fsys, f: f, ro: o.ReadOnly, minMap: o.MinMapSize}
	if p.minMap <= 0 {
		p.minMap = defaultMinMapSize()
	}
	if err := lockFile(f, !o.ReadOnly, o.Timeout, path); err != nil {
		f.Close()
		return nil, err
	}
	if err := p.start(); err != nil {
		unlock(f.Fd())
		f.Close()
		return nil, err
	}
	return p, nil
}

// start reads the size and makes the first mapping.
func (p *Pager) start() error {
	size, err := p.f.Size()
	if err != nil {
		return fmt.Errorf("cowfile: %s: stat: %w", p.path, err)
	}
	if size == 0 {
		return fmt.Errorf("%w: %s", ErrEmpty, p.path)
	}
	p.size.Store(size)
	m, err := p.newMapping(size, 0)
	if err != nil {
		return err
	}
	p.cur.Store(m)
	return nil
}

// lockFile takes the file lock, polling without blocking so that a
// timeout can be honoured: 10 ms between attempts at first, backing off to
// 50 ms.
func lockFile(f File, exclusive bool, timeout time.Duration, path string) error {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	wait := 10 * time.Millisecond
	for {
		busy, err := tryLock(f.Fd(), exclusive)
		if err != nil {
			return fmt.Errorf("cowfile: %s: lock: %w", path, err)
		}
		if !busy {
			return nil
		}
		if timeout < 0 {
			return fmt.Errorf("%w: %s is locked by another user", ErrTimeout, path)
		}
		d := wait
		if timeout > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("%w: %s still locked after %v", ErrTimeout, path, timeout)
			}
			d = min(d, left)
		}
		time.Sleep(d)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Path returns the file's path.
func (p *Pager) Path() string { return p.path }

// Size returns the file's size in bytes as the pager knows it.
func (p *Pager) Size() int64 { return p.size.Load() }

// ReadAt reads from the file itself rather than the map: for metas read
// before the page size is known, and for callers that want a copy. Like
// io.ReaderAt it returns io.EOF (unwrapped) when the file ends before b is
// full; other errors are wrapped with the path and offset.
func (p *Pager) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("cowfile: %s: read at negative offset %d", p.path, off)
	}
	n, err := p.f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("cowfile: %s: read %d bytes at offset %d: %w", p.path, len(b), off, err)
	}
	return n, err
}

// Acquire returns the current mapping with a reference added; the caller
// must Release it. After Close it returns a placeholder whose Bytes fails
// with ErrClosed.
func (p *Pager) Acquire() *Mapping {
	for {
		m := p.cur.Load()
		if m == nil {
			return closedMapping
		}
		// Add a reference only while the count is positive: a count of 0
		// means the mapping was superseded and is being unmapped, and p.cur
		// already points elsewhere, so load it again.
		r := m.refs.Load()
		if r > 0 && m.refs.CompareAndSwap(r, r+1) {
			return m
		}
		if r <= 0 && p.cur.Load() == m {
			// Only an extra Release by some holder can unmap the
			// current mapping; fail reads rather than spin forever.
			return closedMapping
		}
	}
}

// Grow makes the file at least size bytes long and the mapping at least as
// long as the file.
//
// Growth policy: a file that must grow is extended beyond the request by
// some slack, rounded up to 64 KiB, so a file that grows a little each
// commit changes its length — a metadata update that every later fdatasync
// would have to carry — only every so often. The slack is an eighth of the
// requested size up to 16 MiB (2 MiB), then a sixty-fourth (at least
// 2 MiB, at most 1 GiB): a bulk-loaded file of any size ends at most about
// 1.6% larger than its contents (plus 2 MiB), yet a file that grows by a
// megabyte per commit still changes its length only every other commit or
// less. On linux the blocks are reserved with fallocate.
//
// If the file outgrows the mapping, a new mapping is made, at least twice
// as long as the old one and twice the file, and becomes current; the old
// one lives on until its last holder releases it.
func (p *Pager) Grow(size int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writable(); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("cowfile: %s: grow to negative size %d", p.path, size)
	}
	cur := p.size.Load()
	if size > cur {
		target := growTarget(size)
		var err error
		if a, ok := p.f.(Allocator); ok {
			err = a.Allocate(cur, target-cur)
		} else {
			err = p.f.Truncate(target)
		}
		if err != nil {
			return fmt.Errorf("cowfile: %s: grow from %d to %d bytes: %w", p.path, cur, target, err)
		}
		p.size.Store(target)
	}
	return p.ensureMapped()
}

// growTarget applies the growth policy documented on Grow.
func growTarget(size int64) int64 {
	step := size / 8
	if size > smallFile {
		step = min(max(size/64, smallFile/8), maxGrowStep)
	}
	t := size + step
	if t < size { // overflow: no slack then
		return size
	}
	if r := roundUp(t, mapAlign); r >= t {
		return r
	}
	return t
}

// WritePages writes each run with one WritevAt. Runs must be sorted by
// offset and must not overlap; the pager checks that and returns an error
// otherwise. Writes past the end extend the file and the known size.
func (p *Pager) WritePages(runs []Run) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writable(); err != nil {
		return err
	}
	var prevEnd int64
	for i, r := range runs {
		n := int64(sumLen(r.Bufs))
		if r.Off < 0 || r.Off+n < r.Off {
			return fmt.Errorf("cowfile: %s: run %d: bad range of %d bytes at offset %d", p.path, i, n, r.Off)
		}
		if i > 0 && r.Off < prevEnd {
			return fmt.Errorf("cowfile: %s: run %d at offset %d overlaps or precedes the previous run ending at %d", p.path, i, r.Off, prevEnd)
		}
		prevEnd = r.Off + n
	}
	for _, r := range runs {
		want := sumLen(r.Bufs)
		if want == 0 {
			continue
		}
		n, err := p.f.WritevAt(r.Bufs, r.Off)
		if err == nil && n != want {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fmt.Errorf("cowfile: %s: write %d bytes at offset %d: %w", p.path, want, r.Off, err)
		}
		if end := r.Off + int64(want); end > p.size.Load() {
			p.size.Store(end)
		}
	}
	return p.ensureMapped()
}

// Run is a contiguous stretch of the file written at once: Bufs land
// back to back starting at Off.
type Run struct {
	Off  int64
	Bufs [][]byte
}

// StartWriteback asks the kernel to begin writing [off, off+n) back to the
// disk now, without waiting, where the File supports it (WritebackStarter).
// It is a hint, not a sync: nothing becomes durable before Sync. A commit
// that writes megabytes calls it as it goes, so the disk works while the
// commit encodes the rest, and the final Sync waits for less. An error
// means the file could not be written back and is returned as such.
func (p *Pager) StartWriteback(off, n int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writable(); err != nil {
		return err
	}
	ws, ok := p.f.(WritebackStarter)
	if !ok || n <= 0 {
		return nil
	}
	if err := ws.StartWriteback(off, n); err != nil {
		return fmt.Errorf("cowfile: %s: start writeback of %d bytes at offset %d: %w", p.path, n, off, err)
	}
	return nil
}

// Sync makes everything written so far durable (see File.Sync).
func (p *Pager) Sync() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("%w: %s", ErrClosed, p.path)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("cowfile: %s: sync: %w", p.path, err)
	}
	return nil
}

// Truncate sets the file's length to size exactly. Shrinking is the
// caller's promise that no reader can still reach the bytes cut off: a
// slice already handed out over them would fault when touched.
func (p *Pager) Truncate(size int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writable(); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("cowfile: %s: truncate to negative size %d", p.path, size)
	}
	cur := p.size.Load()
	if size < cur {
		// Lower the known size first, so no new Bytes call reaches the
		// part being cut off.
		p.size.Store(size)
	}
	if err := p.f.Truncate(size); err != nil {
		// If the file's length is known, trust it, but never let the
		// known size rise above what it was before this call.
		if real, serr := p.f.Size(); serr == nil {
			p.size.Store(min(real, cur))
		}
		return fmt.Errorf("cowfile: %s: truncate from %d to %d bytes: %w", p.path, cur, size, err)
	}
	p.size.Store(size)
	return p.ensureMapped()
}

// Close drops the pager's reference to its mapping (unmapping it unless a
// reader still holds it), unlocks and closes the file. A second Close
// returns nil.
func (p *Pager) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if m := p.cur.Swap(nil); m != nil {
		m.Release()
	}
	var errs []error
	if err := unlock(p.f.Fd()); err != nil {
		errs = append(errs, fmt.Errorf("cowfile: %s: unlock: %w", p.path, err))
	}
	if err := p.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("cowfile: %s: close: %w", p.path, err))
	}
	p.errMu.Lock()
	if p.err != nil {
		errs = append(errs, p.err)
	}
	p.errMu.Unlock()
	return errors.Join(errs...)
}

func (p *Pager) writable() error {
	if p.closed {
		return fmt.Errorf("%w: %s", ErrClosed, p.path)
	}
	if p.ro {
		return fmt.Errorf("cowfile: %s: opened read-only", p.path)
	}
	return nil
}

// noteErr remembers the first failure of an unmap, which happens in
// Release and has no caller to report to.
func (p *Pager) noteErr(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
}

// ensureMapped replaces the current mapping if it no longer covers the
// file. Called with p.mu held, after the file has grown.
func (p *Pager) ensureMapped() error {
	cur := p.cur.Load()
	need := p.size.Load()
	if cur == nil || int64(len(cur.data)) >= need {
		return nil
	}
	m, err := p.newMapping(need, int64(len(cur.data)))
	if err != nil {
		return err
	}
	p.cur.Store(m)
	cur.Release() // the pager's reference; readers may still hold theirs
	return nil
}

// newMapping maps at least need bytes (need never exceeds the file's
// length). Where mapping past the end is allowed, a writable pager
// reserves max(MinMapSize, 2×need, 2×old) so that growth seldom remaps; if
// the system refuses such a reservation (a 32-bit address space, a
// ulimit), it settles for the file itself.
func (p *Pager) newMapping(need, old int64) (*Mapping, error) {
	if need <= 0 || need > math.MaxInt {
		return nil, fmt.Errorf("cowfile: %s: cannot map a file of %d bytes on this platform", p.path, need)
	}
	// exact covers the file; want adds the reservation for growth.
	exact := need
	if mapPastEOF {
		if r := roundUp(need, mapAlign); r >= need && r <= math.MaxInt {
			exact = r
		}
	}
	want := exact
	if mapPastEOF && !p.ro {
		want = roundUp(max(p.minMap, sat2(need), sat2(old)), mapAlign)
		want = min(max(want, exact), math.MaxInt) // max also undoes a rounding overflow
	}
	data, err := mapFile(p.f.Fd(), p.path, int(want))
	if err != nil && want > exact {
		data, err = mapFile(p.f.Fd(), p.path, int(exact))
	}
	if err != nil {
		return nil, fmt.Errorf("cowfile: %s: map %d bytes: %w", p.path, want, err)
	}
	m := &Mapping{p: p, data: data}
	m.refs.Store(1)
	return m, nil
}

// sat2 doubles n, saturating instead of overflowing.
func sat2(n int64) int64 {
	if n > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return 2 * n
}

// roundUp rounds n up to a multiple of a (a power of two). On overflow it
// returns a value smaller than n, which callers check.
func roundUp(n, a int64) int64 { return (n + a - 1) &^ (a - 1) }
