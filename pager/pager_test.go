package pager

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// image returns n bytes of a known, position-dependent pattern.
func image(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ byte(i>>8) ^ seed
	}
	return b
}

func creator(img []byte) func() ([]byte, error) {
	return func() ([]byte, error) { return append([]byte(nil), img...), nil }
}

// openNew creates a file with img in a fresh directory.
func openNew(t *testing.T, img []byte, o Options) (*Pager, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	o.Create = creator(img)
	p, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, path
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func readAll(t *testing.T, p *Pager, off int64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if got, err := p.ReadAt(b, off); err != nil || got != n {
		t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, got, err)
	}
	return b
}

func TestCreateWritesImage(t *testing.T) {
	img := image(3*4096, 1)
	p, path := openNew(t, img, Options{})

	if p.Path() != path {
		t.Errorf("Path = %q, want %q", p.Path(), path)
	}
	if p.Size() != int64(len(img)) {
		t.Errorf("Size = %d, want %d", p.Size(), len(img))
	}
	if got := readAll(t, p, 0, len(img)); !bytes.Equal(got, img) {
		t.Error("ReadAt differs from the created image")
	}
	m := p.Acquire()
	defer m.Release()
	got, err := m.Bytes(0, int64(len(img)))
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("Bytes = %v, differs from image", err)
	}
	disk, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(disk, img) {
		t.Fatalf("file on disk differs from image (%v)", err)
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(path)
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("mode = %v, want 0600", perm)
		}
	}
	if names := dirNames(t, filepath.Dir(path)); len(names) != 1 || names[0] != "db" {
		t.Errorf("directory holds %v, want only db (no temporary left behind)", names)
	}
}

func TestCreateProtocol(t *testing.T) {
	fsys := newFaultFS()
	img := image(4096, 2)
	p, path := openNew(t, img, Options{FS: fsys})
	_ = p
	log := fsys.ops()
	// The image must be written and synced under the temporary name, then
	// renamed, then the directory synced, and only then the real name used.
	var steps []string
	for _, op := range log {
		switch {
		case strings.HasPrefix(op, "write "+path+".tmp-"):
			steps = append(steps, "write-tmp")
		case strings.HasPrefix(op, "sync "+path+".tmp-"):
			steps = append(steps, "sync-tmp")
		case strings.HasPrefix(op, "rename "+path+".tmp-") && strings.HasSuffix(op, " -> "+path):
			steps = append(steps, "rename")
		case op == "syncdir "+filepath.Dir(path):
			steps = append(steps, "syncdir")
		case strings.HasPrefix(op, "write "+path+" "):
			t.Errorf("image written under the real name: %q", op)
		}
	}
	want := []string{"write-tmp", "sync-tmp", "rename", "syncdir"}
	if strings.Join(steps, ",") != strings.Join(want, ",") {
		t.Errorf("creation steps = %v, want %v\nlog: %q", steps, want, log)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	for _, op := range []string{"write", "sync", "rename"} {
		t.Run(op, func(t *testing.T) {
			fsys := newFaultFS()
			fsys.failNext(op, 1)
			dir := t.TempDir()
			path := filepath.Join(dir, "db")
			p, err := Open(path, Options{FS: fsys, Create: creator(image(4096, 3))})
			if err == nil {
				p.Close()
				t.Fatal("Open succeeded despite the injected fault")
			}
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("error %v does not wrap EIO", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("directory holds %v after a failed creation, want nothing", names)
			}
		})
	}
}

func TestCreateCallbackError(t *testing.T) {
	boom := errors.New("boom")
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "db"), Options{Create: func() ([]byte, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapping boom", err)
	}
	_, err = Open(filepath.Join(dir, "db"), Options{Create: func() ([]byte, error) { return nil, nil }})
	if err == nil {
		t.Fatal("an empty initial image was accepted")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v, want nothing", names)
	}
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	for _, o := range []Options{{}, {ReadOnly: true}, {ReadOnly: true, Create: creator(image(4096, 0))}} {
		_, err := Open(path, o)
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open(%+v) err = %v, want ErrNotExist", o, err)
		}
	}
}

func TestOpenEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: ro, Create: creator(image(4096, 0))})
		if !errors.Is(err, ErrEmpty) {
			t.Fatalf("ReadOnly=%v: err = %v, want ErrEmpty", ro, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the file", err)
		}
	}
	// The failed Opens must have released their locks.
	p, err := Open(path, Options{Timeout: -1})
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("third Open: %v (p=%v), want ErrEmpty", err, p)
	}
}

func TestOpenExisting(t *testing.T) {
	img := image(8192, 9)
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	called := false
	p, err := Open(path, Options{Create: func() ([]byte, error) { called = true; return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if called {
		t.Error("Create was called for an existing file")
	}
	if got := readAll(t, p, 0, len(img)); !bytes.Equal(got, img) {
		t.Error("contents differ")
	}
}

func TestExclusiveLockTimeout(t *testing.T) {
	p, path := openNew(t, image(4096, 0), Options{})

	start := time.Now()
	q, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		if q != nil {
			q.Close()
		}
		t.Fatalf("second exclusive Open: err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("waited %v, want about 100ms", d)
	}
	if _, err := Open(path, Options{ReadOnly: true, Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrTimeout) {
		t.Errorf("reader while a writer holds the file: err = %v, want ErrTimeout", err)
	}
	if _, err := Open(path, Options{Timeout: -1}); !errors.Is(err, ErrTimeout) {
		t.Errorf("negative timeout: err = %v, want ErrTimeout", err)
	}

	// A waiter (Timeout 0 = forever) gets the lock once the holder closes.
	done := make(chan error, 1)
	go func() {
		q, err := Open(path, Options{})
		if err == nil {
			err = q.Close()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("waiter returned (%v) while the lock was held", err)
	default:
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter never got the lock after Close")
	}
}

func TestSharedLock(t *testing.T) {
	p, path := openNew(t, image(4096, 4), Options{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	r1, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := Open(path, Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	defer r2.Close()
	if _, err := Open(path, Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrTimeout) {
		t.Errorf("writer while readers hold the file: err = %v, want ErrTimeout", err)
	}
	m := r2.Acquire()
	defer m.Release()
	if got, err := m.Bytes(0, 4096); err != nil || !bytes.Equal(got, image(4096, 4)) {
		t.Errorf("reader's Bytes: %v", err)
	}
	if m.Len() != mapAlign {
		t.Errorf("read-only map length = %d, want the file rounded up to %d", m.Len(), mapAlign)
	}
	if err := r1.WritePages([]Run{{Off: 0, Bufs: [][]byte{{1}}}}); err == nil {
		t.Error("WritePages on a read-only pager succeeded")
	}
	if err := r1.Grow(1 << 20); err == nil {
		t.Error("Grow on a read-only pager succeeded")
	}
	if err := r1.Truncate(1); err == nil {
		t.Error("Truncate on a read-only pager succeeded")
	}
}

func TestBytesRange(t *testing.T) {
	const size = 3 * 4096
	p, _ := openNew(t, image(size, 5), Options{MinMapSize: 1 << 20})
	m := p.Acquire()
	defer m.Release()
	if m.Len() != 1<<20 {
		t.Fatalf("map length = %d, want the 1 MiB reservation", m.Len())
	}

	ok := []struct{ off, n int64 }{{0, size}, {size, 0}, {size - 1, 1}, {4096, 4096}, {0, 0}}
	for _, c := range ok {
		b, err := m.Bytes(c.off, c.n)
		if err != nil {
			t.Errorf("Bytes(%d, %d): %v", c.off, c.n, err)
			continue
		}
		if int64(len(b)) != c.n || int64(cap(b)) != c.n {
			t.Errorf("Bytes(%d, %d): len %d cap %d", c.off, c.n, len(b), cap(b))
		}
		if !bytes.Equal(b, image(size, 5)[c.off:c.off+c.n]) {
			t.Errorf("Bytes(%d, %d): wrong contents", c.off, c.n)
		}
	}
	bad := []struct{ off, n int64 }{
		{0, size + 1},          // past EOF, though inside the mapping
		{size, 1},              // starts at EOF
		{size + 4096, 4096},    // wholly past EOF
		{-1, 2},                // negative offset
		{0, -1},                // negative length
		{1, math.MaxInt64},     // end overflows
		{math.MaxInt64, 1},     // end overflows
		{2 << 20, 4096},        // past the mapping
		{math.MinInt64, 4096},  // very negative
		{size - 4096, 1 << 21}, // runs off the mapping
	}
	for _, c := range bad {
		b, err := m.Bytes(c.off, c.n)
		if !errors.Is(err, ErrOutOfRange) || b != nil {
			t.Errorf("Bytes(%d, %d) = %d bytes, %v; want ErrOutOfRange", c.off, c.n, len(b), err)
		}
	}
	var nilMap *Mapping
	if _, err := nilMap.Bytes(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("nil mapping: %v", err)
	}
}

func TestBytesDoesNotAllocate(t *testing.T) {
	p, _ := openNew(t, image(8192, 6), Options{})
	m := p.Acquire()
	defer m.Release()
	var sink byte
	allocs := testing.AllocsPerRun(1000, func() {
		b, err := m.Bytes(4096, 100)
		if err != nil {
			panic(err)
		}
		sink ^= b[0]
	})
	if allocs != 0 {
		t.Errorf("Bytes allocates %v times per call", allocs)
	}
	_ = sink
}

func TestGrowPolicy(t *testing.T) {
	cases := []struct{ size, want int64 }{
		{1, 64 << 10},
		{8 << 10, 64 << 10},
		{64 << 10, 128 << 10},          // 64K + 8K -> 128K
		{1 << 20, 1<<20 + 128<<10},     // +1/8, already aligned
		{16 << 20, 18 << 20},           // +1/8 up to 16 MiB
		{20 << 20, 22 << 20},           // then 1/64, at least 2 MiB
		{1 << 30, 1<<30 + 16<<20},      // +1/64
		{128 << 30, 129 << 30},         // step capped at 1 GiB
		{math.MaxInt64, math.MaxInt64}, // no room: exactly the request
	}
	for _, c := range cases {
		if got := growTarget(c.size); got != c.want {
			t.Errorf("growTarget(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

func TestGrowRemapKeepsOldMapping(t *testing.T) {
	img := image(8192, 7)
	p, path := openNew(t, img, Options{MinMapSize: 64 << 10})
	m1 := p.Acquire()
	if m1.Len() != 64<<10 {
		t.Fatalf("first map length = %d, want 64 KiB", m1.Len())
	}

	// Growth inside the reservation keeps the mapping.
	if err := p.Grow(20 << 10); err != nil {
		t.Fatal(err)
	}
	if p.Size() != 64<<10 {
		t.Errorf("Size after Grow(20K) = %d, want 64K (policy)", p.Size())
	}
	if m := p.Acquire(); m != m1 {
		t.Error("growth inside the reservation remapped")
		m.Release()
	} else {
		m.Release()
	}

	// Growth past it makes a new, larger mapping.
	if err := p.Grow(100 << 10); err != nil {
		t.Fatal(err)
	}
	if want := int64(128 << 10); p.Size() != want {
		t.Errorf("Size after Grow(100K) = %d, want %d", p.Size(), want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != p.Size() {
		t.Errorf("file size on disk = %v (%v), pager says %d", fi.Size(), err, p.Size())
	}
	m2 := p.Acquire()
	defer m2.Release()
	if m2 == m1 {
		t.Fatal("growth past the reservation did not remap")
	}
	if m2.Len() < 2*m1.Len() || m2.Len() < 2*p.Size() {
		t.Errorf("new map length %d, want at least double the old (%d) and the file (%d)", m2.Len(), m1.Len(), p.Size())
	}

	// The old mapping still reads what it always could.
	if got, err := m1.Bytes(0, int64(len(img))); err != nil || !bytes.Equal(got, img) {
		t.Fatalf("old mapping after remap: %v", err)
	}
	if _, err := m1.Bytes(0, 100<<10); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("old mapping beyond its length: %v, want ErrOutOfRange", err)
	}
	// The new one reads the whole grown file: the image, then zeros.
	got, err := m2.Bytes(0, p.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:len(img)], img) || !bytes.Equal(got[len(img):], make([]byte, p.Size()-int64(len(img)))) {
		t.Error("new mapping: wrong contents")
	}

	m1.Release()
	if _, err := m1.Bytes(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("released old mapping: %v, want ErrClosed", err)
	}
	// Grow never shrinks.
	if err := p.Grow(1); err != nil || p.Size() != 128<<10 {
		t.Errorf("Grow(1): %v, size %d", err, p.Size())
	}
}

func TestWritePages(t *testing.T) {
	const ps = 4096
	img := image(4*ps, 8)
	p, _ := openNew(t, img, Options{MinMapSize: 64 << 10})

	a, b, c := image(ps, 11), image(2*ps, 12), image(ps, 13)
	d := image(100, 14)
	runs := []Run{
		{Off: ps, Bufs: [][]byte{a, b[:ps], b[ps:]}}, // pages 1-3 in three pieces
		{Off: 5 * ps, Bufs: [][]byte{c, d}},          // past EOF, with a gap at page 4
	}
	if err := p.WritePages(runs); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), img[:ps]...)
	want = append(want, a...)
	want = append(want, b...)
	want = append(want, make([]byte, ps)...) // the gap reads as zeros
	want = append(want, c...)
	want = append(want, d...)
	if p.Size() != int64(len(want)) {
		t.Fatalf("Size = %d, want %d", p.Size(), len(want))
	}
	if got := readAll(t, p, 0, len(want)); !bytes.Equal(got, want) {
		t.Error("ReadAt after WritePages differs")
	}
	m := p.Acquire()
	defer m.Release()
	if got, err := m.Bytes(0, int64(len(want))); err != nil || !bytes.Equal(got, want) {
		t.Errorf("mapping after WritePages differs (%v)", err)
	}

	// Many small buffers: more than one pwritev batch (IOV_MAX).
	var bufs [][]byte
	var flat []byte
	for i := range 3000 {
		piece := image(7, byte(i))
		bufs = append(bufs, piece)
		flat = append(flat, piece...)
	}
	if err := p.WritePages([]Run{{Off: 3, Bufs: bufs}}); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, p, 3, len(flat)); !bytes.Equal(got, flat) {
		t.Error("a run of 3000 buffers landed wrong")
	}

	// Writing past the reservation remaps.
	far := image(ps, 15)
	if err := p.WritePages([]Run{{Off: 200 << 10, Bufs: [][]byte{far}}}); err != nil {
		t.Fatal(err)
	}
	m2 := p.Acquire()
	defer m2.Release()
	if got, err := m2.Bytes(200<<10, ps); err != nil || !bytes.Equal(got, far) {
		t.Errorf("write past the reservation not readable through the new map: %v", err)
	}

	// Bad runs are refused before anything is written.
	before := readAll(t, p, 0, 2*ps)
	for name, bad := range map[string][]Run{
		"unsorted":    {{Off: ps, Bufs: [][]byte{a}}, {Off: 0, Bufs: [][]byte{a}}},
		"overlapping": {{Off: 0, Bufs: [][]byte{a}}, {Off: ps - 1, Bufs: [][]byte{a}}},
		"negative":    {{Off: -ps, Bufs: [][]byte{a}}},
	} {
		if err := p.WritePages(bad); err == nil {
			t.Errorf("%s runs accepted", name)
		}
	}
	if got := readAll(t, p, 0, 2*ps); !bytes.Equal(got, before) {
		t.Error("a refused WritePages changed the file")
	}
	if err := p.WritePages(nil); err != nil {
		t.Errorf("empty WritePages: %v", err)
	}
}

func TestFaultsPropagate(t *testing.T) {
	const ps = 4096
	fsys := newFaultFS()
	p, path := openNew(t, image(2*ps, 16), Options{FS: fsys, MinMapSize: 64 << 10})

	// The second of three runs fails: the first landed, the error names the
	// file and offset, and the size did not move for the failed run.
	fsys.failNext("writev", 2)
	err := p.WritePages([]Run{
		{Off: 0, Bufs: [][]byte{image(ps, 17)}},
		{Off: 4 * ps, Bufs: [][]byte{image(ps, 18)}},
		{Off: 6 * ps, Bufs: [][]byte{image(ps, 19)}},
	})
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("WritePages: %v, want EIO", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "offset 16384") {
		t.Errorf("error %q lacks the path or offset", msg)
	}
	if p.Size() != 2*ps {
		t.Errorf("Size after failed write = %d, want %d", p.Size(), 2*ps)
	}
	if got := readAll(t, p, 0, ps); !bytes.Equal(got, image(ps, 17)) {
		t.Error("the run before the failure did not land")
	}

	fsys.failNext("sync", 1)
	if err := p.Sync(); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), path) {
		t.Errorf("Sync: %v, want EIO naming the file", err)
	}
	if err := p.Sync(); err != nil {
		t.Errorf("Sync after the fault: %v", err)
	}

	fsys.failNext("truncate", 1)
	if err := p.Grow(10 * ps); !errors.Is(err, syscall.EIO) {
		t.Errorf("Grow: %v, want EIO", err)
	}
	if p.Size() != 2*ps {
		t.Errorf("Size after failed Grow = %d, want %d", p.Size(), 2*ps)
	}
	if err := p.Grow(10 * ps); err != nil {
		t.Errorf("Grow after the fault: %v", err)
	}

	fsys.failNext("truncate", 1)
	if err := p.Truncate(ps); !errors.Is(err, syscall.EIO) {
		t.Errorf("Truncate: %v, want EIO", err)
	}
	if p.Size() > 64<<10 {
		t.Errorf("Size after failed Truncate = %d, larger than before", p.Size())
	}

	// A fault at every position of a sequence of calls always surfaces.
	for n := 1; n <= 3; n++ {
		fsys.failNext("writev", n)
		var first error
		for i := range 3 {
			if err := p.WritePages([]Run{{Off: int64(i) * ps, Bufs: [][]byte{image(ps, 20)}}}); err != nil && first == nil {
				first = err
			}
		}
		if !errors.Is(first, syscall.EIO) {
			t.Errorf("fault at writev call %d not reported: %v", n, first)
		}
	}
}

func TestTruncate(t *testing.T) {
	const ps = 4096
	p, path := openNew(t, image(4*ps, 21), Options{})
	m := p.Acquire()
	defer m.Release()
	if err := p.Truncate(2 * ps); err != nil {
		t.Fatal(err)
	}
	if p.Size() != 2*ps {
		t.Errorf("Size = %d", p.Size())
	}
	if fi, _ := os.Stat(path); fi.Size() != 2*ps {
		t.Errorf("file size on disk = %d", fi.Size())
	}
	if _, err := m.Bytes(2*ps, ps); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Bytes past the truncated end: %v, want ErrOutOfRange", err)
	}
	b := make([]byte, ps)
	if n, err := p.ReadAt(b, 2*ps); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at EOF = %d, %v; want 0, io.EOF", n, err)
	}
	if err := p.Truncate(3 * ps); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Bytes(2*ps, ps); err != nil || !bytes.Equal(got, make([]byte, ps)) {
		t.Errorf("regrown tail: %v, want zeros", err)
	}
	if err := p.Truncate(-1); err == nil {
		t.Error("negative Truncate accepted")
	}
}

func TestClose(t *testing.T) {
	img := image(4096, 22)
	p, path := openNew(t, img, Options{})
	held := p.Acquire()

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// A mapping held across Close stays readable until released.
	if got, err := held.Bytes(0, 4096); err != nil || !bytes.Equal(got, img) {
		t.Errorf("held mapping after Close: %v", err)
	}
	held.Release()
	if _, err := held.Bytes(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("released mapping after Close: %v", err)
	}

	m := p.Acquire()
	if _, err := m.Bytes(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Acquire after Close: Bytes = %v, want ErrClosed", err)
	}
	m.Retain().Release()
	m.Release()
	for name, err := range map[string]error{
		"WritePages":     p.WritePages([]Run{{Off: 0, Bufs: [][]byte{{1}}}}),
		"Grow":           p.Grow(1 << 20),
		"Truncate":       p.Truncate(1),
		"Sync":           p.Sync(),
		"StartWriteback": p.StartWriteback(0, 4096),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	// The lock is gone: another writer gets in at once.
	q, err := Open(path, Options{Timeout: -1})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	q.Close()
}

// StartWriteback is a hint: on the real file system it succeeds over
// written pages (the data stays as written), and a File without it is
// simply not hinted.
func TestStartWriteback(t *testing.T) {
	const ps = 4096
	p, _ := openNew(t, image(2*ps, 30), Options{})
	page := image(ps, 31)
	if err := p.WritePages([]Run{{Off: 2 * ps, Bufs: [][]byte{page}}}); err != nil {
		t.Fatal(err)
	}
	if err := p.StartWriteback(2*ps, ps); err != nil {
		t.Fatalf("StartWriteback: %v", err)
	}
	if got := readAll(t, p, 2*ps, ps); !bytes.Equal(got, page) {
		t.Error("page changed by the hint")
	}
	if _, ok := p.f.(WritebackStarter); !ok && runtime.GOOS == "linux" {
		t.Error("the linux file does not start writeback")
	}

	q, _ := openNew(t, image(2*ps, 32), Options{FS: plainFS{}})
	if _, ok := q.f.(WritebackStarter); ok {
		t.Fatal("plainFS file has StartWriteback")
	}
	if err := q.StartWriteback(0, ps); err != nil {
		t.Fatalf("StartWriteback without support: %v", err)
	}
}

// plainFS hides every optional method of the real files.
type plainFS struct{}

func (plainFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := OSFS.OpenFile(name, flag, perm)
	return struct{ File }{f}, err
}
func (plainFS) Rename(a, b string) error { return OSFS.Rename(a, b) }
func (plainFS) Remove(name string) error { return OSFS.Remove(name) }
func (plainFS) SyncDir(dir string) error { return OSFS.SyncDir(dir) }

func TestRetainRelease(t *testing.T) {
	img := image(4096, 23)
	p, _ := openNew(t, img, Options{MinMapSize: 64 << 10})
	m := p.Acquire()
	m2 := m.Retain()
	if m2 != m {
		t.Fatal("Retain returned another mapping")
	}
	if err := p.Grow(1 << 20); err != nil { // supersedes m
		t.Fatal(err)
	}
	m.Release()
	if _, err := m2.Bytes(0, 4096); err != nil {
		t.Fatalf("mapping with one reference left: %v", err)
	}
	m2.Release()
	if _, err := m.Bytes(0, 4096); !errors.Is(err, ErrClosed) {
		t.Errorf("after the last Release: %v, want ErrClosed", err)
	}
}

// Readers acquire, read and release while the writer writes and grows the
// file through several remaps. Run with -race.
func TestConcurrentReadersDuringGrowth(t *testing.T) {
	const ps = 4096
	img := image(ps, 24)
	p, _ := openNew(t, img, Options{MinMapSize: 64 << 10})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := p.Acquire()
				got, err := m.Bytes(0, ps)
				if err != nil || !bytes.Equal(got, img) {
					errs <- err
					m.Release()
					return
				}
				// Read whatever the file holds now; the last page is
				// always fully written.
				size := p.Size()
				if b, err := m.Bytes(size-ps, ps); err == nil {
					_ = b[ps-1]
				}
				m.Release()
			}
		}()
	}
	for i := 1; i <= 60; i++ {
		off := int64(i) * 8 * ps
		if err := p.WritePages([]Run{{Off: off, Bufs: [][]byte{image(ps, byte(i))}}}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if err := p.Grow(off * 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("reader saw wrong data or error: %v", err)
	}
	m := p.Acquire()
	defer m.Release()
	for i := 1; i <= 60; i++ {
		off := int64(i) * 8 * ps
		if got, err := m.Bytes(off, ps); err != nil || !bytes.Equal(got, image(ps, byte(i))) {
			t.Fatalf("page at %d: %v", off, err)
		}
	}
}

func TestDefaultReservation(t *testing.T) {
	p, _ := openNew(t, image(4096, 25), Options{})
	m := p.Acquire()
	defer m.Release()
	if m.Len() != defaultMinMapSize() {
		t.Errorf("default reservation = %d, want %d", m.Len(), defaultMinMapSize())
	}
}

// An unbalanced Release is a caller bug; it must not hang Acquire.
func TestOverReleaseDoesNotHang(t *testing.T) {
	p, _ := openNew(t, image(4096, 26), Options{})
	m := p.Acquire()
	m.Release()
	m.Release() // one too many: the pager's own reference is gone
	done := make(chan *Mapping, 1)
	go func() { done <- p.Acquire() }()
	select {
	case m := <-done:
		if _, err := m.Bytes(0, 1); !errors.Is(err, ErrClosed) {
			t.Errorf("Bytes on an over-released pager: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Acquire hangs after an unbalanced Release")
	}
}
