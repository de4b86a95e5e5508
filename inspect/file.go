package inspect

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/freelist"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// File is a cowfile file opened for inspection.
type File struct {
	path string
	f    *os.File
	size int64
	ps   int
	// PageSizeFrom says where the page size came from: "meta slot 0",
	// "meta slot 1", "option", or "default" when no meta names a valid one.
	PageSizeFrom string
}

// Open opens path for reading. pageSize 0 takes the page size from the
// metas, as the engine does; a non-zero value overrides it (for files
// whose metas are both unreadable).
func Open(path string, pageSize int) (*File, error) {
	if pageSize != 0 && !page.ValidSize(pageSize) {
		return nil, fmt.Errorf("page size %d: want a power of two from %d to %d", pageSize, page.MinSize, page.MaxSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	file := &File{path: path, f: f, size: st.Size()}
	if pageSize != 0 {
		file.ps, file.PageSizeFrom = pageSize, "option"
	} else {
		file.ps, file.PageSizeFrom = file.detectPageSize()
	}
	return file, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Size returns the file's length in bytes.
func (f *File) Size() int64 { return f.size }

// PageSize returns the page size the file is decoded with.
func (f *File) PageSize() int { return f.ps }

// Pages returns the number of whole pages in the file.
func (f *File) Pages() uint64 { return uint64(f.size / int64(f.ps)) }

// detectPageSize follows the engine: slot 0's page size when its meta is
// valid, else the first size at which slot 1 decodes, else whatever size a
// meta's magic claims, else the default.
func (f *File) detectPageSize() (int, string) {
	head := make([]byte, page.MaxSize)
	n, _ := f.f.ReadAt(head, 0)
	head = head[:n]
	ps0, ok0 := meta.PeekPageSize(head)
	if ok0 && len(head) >= ps0 {
		if _, err := meta.Decode(head[:ps0], 0); err == nil {
			return ps0, "meta slot 0"
		}
	}
	var peek1 int
	for s := page.MinSize; s <= page.MaxSize; s *= 2 {
		b := make([]byte, s)
		if n, _ := f.f.ReadAt(b, int64(s)); n != s {
			break
		}
		if _, err := meta.Decode(b, 1); err == nil {
			return s, "meta slot 1"
		}
		if ps, ok := meta.PeekPageSize(b); ok && ps == s && peek1 == 0 {
			peek1 = s
		}
	}
	switch {
	case ok0:
		return ps0, "meta slot 0 (unverified)"
	case peek1 != 0:
		return peek1, "meta slot 1 (unverified)"
	}
	return page.DefaultSize, "default"
}

// ReadPages reads up to n pages starting at page id. At the end of the
// file it returns the whole pages there are (possibly none).
func (f *File) ReadPages(id page.ID, n uint64) ([]byte, error) {
	total := f.Pages()
	if uint64(id) >= total {
		return nil, nil
	}
	n = min(n, total-uint64(id))
	if n > uint64(math.MaxInt/f.ps) {
		return nil, page.Corrupt(id, "run of %d pages is too large to read on this platform", n)
	}
	b := make([]byte, n*uint64(f.ps))
	got, err := f.f.ReadAt(b, int64(id)*int64(f.ps))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: reading page %d: %w", f.path, id, err)
	}
	return b[:got-got%f.ps], nil
}

// store reads the pages of one version for btree.Walker and
// freelist.Load, verifying every page completely (the engine's checks
// with a cold cache): header, reference, checksum and structure.
type store struct {
	f   *File
	hwm page.ID
}

func (s *store) PageSize() int   { return s.f.ps }
func (s *store) TxID() page.TxID { return 0 }

func (s *store) Read(ref page.Ref, want page.Type) ([]byte, error) {
	limit := min(uint64(s.hwm), s.f.Pages())
	if ref.ID < 2 || uint64(ref.ID) >= uint64(s.hwm) {
		return nil, page.Corrupt(ref.ID, "reference past the high-water mark %d", s.hwm)
	}
	if uint64(ref.ID) >= limit {
		return nil, page.Corrupt(ref.ID, "page lies past the end of the file (%d pages)", s.f.Pages())
	}
	first, err := s.f.ReadPages(ref.ID, 1)
	if err != nil {
		return nil, err
	}
	span := uint64(page.GetHeader(first).Span)
	if span == 0 || span > limit-uint64(ref.ID) {
		return nil, page.Corrupt(ref.ID, "run of %d pages runs past the high-water mark or the end of the file", span)
	}
	run := first
	if span > 1 {
		if run, err = s.f.ReadPages(ref.ID, span); err != nil {
			return nil, err
		}
	}
	run, err = btree.CheckRef(run, ref, want, s.f.ps)
	if err != nil {
		return nil, err
	}
	if err := btree.VerifyRun(run, ref.ID, s.f.ps); err != nil {
		return nil, err
	}
	return run, nil
}

// readFree reads a run of the free-space log.
func (s *store) readFree(ref page.Ref) ([]byte, error) { return freelist.ReadRun(ref, s.Read) }

// The walkers never write; reaching these is a bug in this package.
func (s *store) Allocate(int) page.ID         { panic("inspect: the store is read-only") }
func (s *store) Free(page.ID, int, page.TxID) { panic("inspect: the store is read-only") }
func (s *store) Write(page.ID, []byte)        { panic("inspect: the store is read-only") }
