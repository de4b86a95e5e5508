package fuzz

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cowfile/cowfile/pager"
)

// sectorSize is the unit of atomicity the power-loss model assumes: after a
// power loss a sector holds either its old or its new bytes, never a mix.
const sectorSize = 512

// opKind names the mutating calls the engine makes through the FS seam.
type opKind uint8

const (
	opWrite   opKind = iota + 1 // WriteAt, WritevAt
	opGrow                      // Truncate, Allocate (any size change)
	opSync                      // File.Sync
	opRename                    // FS.Rename
	opSyncDir                   // FS.SyncDir
)

func (k opKind) String() string {
	switch k {
	case opWrite:
		return "write"
	case opGrow:
		return "truncate"
	case opSync:
		return "sync"
	case opRename:
		return "rename"
	case opSyncDir:
		return "syncdir"
	}
	return fmt.Sprintf("op(%d)", k)
}

// event is one mutating call, reported to the crash-point hook just before
// it runs and just after it returned.
type event struct {
	seq   int // numbers the calls of one FS, from 1
	kind  opKind
	name  string // base name of the file or directory
	off   int64  // write: offset; grow: the requested size
	n     int64  // write: length
	after bool
	err   error // after: what the call returned
}

func (e event) String() string {
	when := "before"
	if e.after {
		when = "after"
	}
	s := fmt.Sprintf("%s %s #%d %s", when, e.kind, e.seq, e.name)
	switch e.kind {
	case opWrite:
		s += fmt.Sprintf(" [%d,+%d)", e.off, e.n)
	case opGrow:
		s += fmt.Sprintf(" to %d", e.off)
	}
	if e.after && e.err != nil {
		s += fmt.Sprintf(" -> %v", e.err)
	}
	return s
}

// pend is one change to a file since its last successful sync. Entries are
// never modified once recorded, so snapshots may share them.
type pend struct {
	seq  int
	kind opKind // opWrite or opGrow
	off  int64  // write offset
	data []byte // the bytes written
	old  []byte // the bytes they replaced (zeros past the old end)
	size int64  // the file's size after the change
}

// recNode is one file (an inode): its current bytes, mirrored in memory,
// and what a power loss would keep of them.
type recNode struct {
	cur  []byte // the real file's content
	dur  []byte // the durable content; its length is the durable size
	pend []pend
	// maxSize is the largest size the file reached since its last sync.
	maxSize int64
}

// faultPlan makes calls of one kind fail: the at-th call (counted from 1
// since the plan was armed), and every later one too when persistent.
type faultPlan struct {
	kind       opKind
	at         int
	persistent bool
	err        error // the injected error; nil with short gives a short count and no error
	short      bool  // write or grow: apply part of the change first
	onlyName   string

	seen  int
	fired int
}

func (p *faultPlan) String() string {
	if p == nil {
		return "none"
	}
	s := fmt.Sprintf("%s #%d", p.kind, p.at)
	if p.persistent {
		s += " persistent"
	}
	if p.short {
		s += " short"
	}
	return fmt.Sprintf("%s err=%v", s, p.err)
}

// recFS is the recording, fault-injecting FS. One recFS stands for one
// machine between power losses: files, the page cache (the real files) and
// the disk (the durable images).
type recFS struct {
	mu       sync.Mutex
	nodes    map[string]*recNode // current name -> file
	durNames map[string]*recNode // what a power loss keeps of the directory
	seq      int
	calls    [opSyncDir + 1]int
	fault    *faultPlan

	// hook, when set, is called before and after every mutating call,
	// without the FS lock held, from the engine's goroutine.
	hook func(ev event)
	// guard, when set, is called for every write before it is applied;
	// it returns a description of the violation or "".
	guard func(name string, off, n int64) string
	// violations collects what guard reported.
	violations []string
}

func newRecFS() *recFS {
	return &recFS{nodes: map[string]*recNode{}, durNames: map[string]*recNode{}}
}

// seed installs an existing file as durable: what a machine finds on its
// disk when it boots.
func (f *recFS) seed(path string, content []byte) error {
	if err := os.WriteFile(path, content, 0o600); err != nil {
		return err
	}
	n := &recNode{cur: clone(content), dur: clone(content), maxSize: int64(len(content))}
	f.mu.Lock()
	f.nodes[path] = n
	f.durNames[path] = n
	f.mu.Unlock()
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// arm installs a fault plan (nil disarms).
func (f *recFS) arm(p *faultPlan) {
	f.mu.Lock()
	f.fault = p
	f.mu.Unlock()
}

// mutations returns how many mutating calls the FS has seen.
func (f *recFS) mutations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq
}

// pendingCount returns how many changes to path are not durable.
func (f *recFS) pendingCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[path]; n != nil {
		return len(n.pend)
	}
	return 0
}

// current returns a copy of path's current content (nil if missing).
func (f *recFS) current(path string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[path]; n != nil {
		return clone(n.cur)
	}
	return nil
}

// begin numbers a call, reports it to the hook and decides whether it
// fails. It returns the event (to be completed by end) and the plan if the
// call must fail.
func (f *recFS) begin(kind opKind, name string, off, n int64) (event, *faultPlan) {
	f.mu.Lock()
	f.seq++
	f.calls[kind]++
	ev := event{seq: f.seq, kind: kind, name: filepath.Base(name), off: off, n: n}
	var fail *faultPlan
	if p := f.fault; p != nil && p.kind == kind && (p.onlyName == "" || p.onlyName == ev.name) {
		p.seen++
		if p.seen == p.at || (p.persistent && p.seen > p.at) {
			p.fired++
			fail = p
		}
	}
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(ev)
	}
	return ev, fail
}

func (f *recFS) end(ev event, err error) {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		ev.after, ev.err = true, err
		hook(ev)
	}
}

func (f *recFS) OpenFile(name string, flag int, perm os.FileMode) (pager.File, error) {
	inner, err := pager.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[name]
	if n == nil {
		// A file this FS has not seen: created now (empty, its name not
		// yet durable), or found on disk (durable as it is).
		content, rerr := os.ReadFile(name)
		if rerr != nil {
			inner.Close()
			return nil, rerr
		}
		n = &recNode{cur: content, maxSize: int64(len(content))}
		if len(content) > 0 || flag&os.O_CREATE == 0 {
			n.dur = clone(content)
			f.durNames[name] = n
		}
		f.nodes[name] = n
	}
	if flag&os.O_TRUNC != 0 && len(n.cur) > 0 {
		return nil, fmt.Errorf("recFS: O_TRUNC is not modelled (%s)", name)
	}
	return &recFile{File: inner, fs: f, name: name, node: n}, nil
}

func (f *recFS) Rename(oldpath, newpath string) error {
	ev, fail := f.begin(opRename, oldpath+" -> "+filepath.Base(newpath), 0, 0)
	var err error
	if fail != nil {
		err = &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fail.err}
	} else if err = pager.OSFS.Rename(oldpath, newpath); err == nil {
		f.mu.Lock()
		f.nodes[newpath] = f.nodes[oldpath]
		delete(f.nodes, oldpath)
		f.mu.Unlock()
	}
	f.end(ev, err)
	return err
}

func (f *recFS) Remove(name string) error {
	err := pager.OSFS.Remove(name)
	if err == nil {
		f.mu.Lock()
		delete(f.nodes, name)
		f.mu.Unlock()
	}
	return err
}

// SyncDir makes the names in dir durable: every rename and create in it.
func (f *recFS) SyncDir(dir string) error {
	ev, fail := f.begin(opSyncDir, dir, 0, 0)
	var err error
	if fail != nil {
		err = &os.PathError{Op: "fsync", Path: dir, Err: fail.err}
	} else if err = pager.OSFS.SyncDir(dir); err == nil {
		f.mu.Lock()
		for name, n := range f.nodes {
			if filepath.Dir(name) == filepath.Clean(dir) {
				f.durNames[name] = n
			}
		}
		for name := range f.durNames {
			if filepath.Dir(name) == filepath.Clean(dir) && f.nodes[name] == nil {
				delete(f.durNames, name)
			}
		}
		f.mu.Unlock()
	}
	f.end(ev, err)
	return err
}

// recFile is one open file of a recFS.
type recFile struct {
	pager.File
	fs   *recFS
	name string
	node *recNode
}

// record applies a write of data at off to the mirror and logs it as
// pending. Called with fs.mu held, after the real write succeeded.
func (r *recFile) record(seq int, off int64, data []byte) {
	n := r.node
	end := off + int64(len(data))
	if end > int64(len(n.cur)) {
		n.cur = append(n.cur, make([]byte, end-int64(len(n.cur)))...)
	}
	old := clone(n.cur[off:end])
	copy(n.cur[off:end], data)
	n.pend = append(n.pend, pend{seq: seq, kind: opWrite, off: off, data: clone(data), old: old, size: int64(len(n.cur))})
	n.maxSize = max(n.maxSize, int64(len(n.cur)))
}

// resize sets the mirror's size and logs it as pending.
func (r *recFile) resize(seq int, size int64) {
	n := r.node
	if size > int64(len(n.cur)) {
		n.cur = append(n.cur, make([]byte, size-int64(len(n.cur)))...)
	} else {
		n.cur = n.cur[:size]
	}
	n.pend = append(n.pend, pend{seq: seq, kind: opGrow, size: size})
	n.maxSize = max(n.maxSize, size)
}

func (r *recFile) WriteAt(p []byte, off int64) (int, error) {
	return r.write(p, off, func(b []byte) (int, error) { return r.File.WriteAt(b, off) })
}

func (r *recFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	var all []byte
	for _, b := range bufs {
		all = append(all, b...)
	}
	return r.write(all, off, func(b []byte) (int, error) {
		if len(b) == len(all) {
			return r.File.WritevAt(bufs, off)
		}
		return r.File.WriteAt(b, off)
	})
}

// write runs one write: the guard, the fault plan, the real write and the
// record.
func (r *recFile) write(p []byte, off int64, do func([]byte) (int, error)) (int, error) {
	ev, fail := r.fs.begin(opWrite, r.name, off, int64(len(p)))
	r.fs.mu.Lock()
	guard := r.fs.guard
	r.fs.mu.Unlock()
	if guard != nil {
		if v := guard(r.name, off, int64(len(p))); v != "" {
			r.fs.mu.Lock()
			r.fs.violations = append(r.fs.violations, fmt.Sprintf("%v: %s", ev, v))
			r.fs.mu.Unlock()
		}
	}
	data := p
	var ferr error
	if fail != nil {
		data = nil
		if fail.short {
			// A short write: the first half (whole sectors) lands.
			data = p[:(len(p)/2)&^(sectorSize-1)]
		}
		ferr = fail.err
	}
	n := 0
	var err error
	if len(data) > 0 {
		n, err = do(data)
	}
	if n > 0 {
		r.fs.mu.Lock()
		r.record(ev.seq, off, data[:n])
		r.fs.mu.Unlock()
	}
	if err == nil {
		err = ferr
	}
	if err != nil {
		err = &os.PathError{Op: "write", Path: r.name, Err: err}
	}
	r.fs.end(ev, err)
	return n, err
}

func (r *recFile) Truncate(size int64) error {
	return r.grow(size, true, func(s int64) error { return r.File.Truncate(s) })
}

// Allocate is the growth path the engine takes on linux (fallocate); it is
// recorded like Truncate, as a size change.
func (r *recFile) Allocate(off, n int64) error {
	return r.grow(off+n, false, func(s int64) error {
		cur, err := r.File.Size()
		if err != nil || s <= cur {
			return err
		}
		if a, ok := r.File.(pager.Allocator); ok {
			return a.Allocate(cur, s-cur)
		}
		return r.File.Truncate(s)
	})
}

// grow runs a size change: to size exactly (Truncate), or to at least size
// (Allocate).
func (r *recFile) grow(size int64, exact bool, do func(int64) error) error {
	ev, fail := r.fs.begin(opGrow, r.name, size, 0)
	var err error
	if fail != nil {
		err = fail.err
		if fail.short {
			r.fs.mu.Lock()
			cur := int64(len(r.node.cur))
			r.fs.mu.Unlock()
			if size > cur {
				part := cur + ((size-cur)/2)&^(sectorSize-1)
				if part > cur && do(part) == nil {
					r.fs.mu.Lock()
					r.resize(ev.seq, part)
					r.fs.mu.Unlock()
				}
			}
		}
		if err == nil {
			err = fmt.Errorf("injected short size change")
		}
	} else if err = do(size); err == nil {
		r.fs.mu.Lock()
		if !exact {
			size = max(size, int64(len(r.node.cur)))
		}
		r.resize(ev.seq, size)
		r.fs.mu.Unlock()
	}
	if err != nil {
		err = &os.PathError{Op: "truncate", Path: r.name, Err: err}
	}
	r.fs.end(ev, err)
	return err
}

func (r *recFile) Sync() error {
	ev, fail := r.fs.begin(opSync, r.name, 0, 0)
	var err error
	if fail != nil {
		// Nothing becomes durable: the kernel may have written any part
		// of the pending changes before failing, which is exactly what a
		// power-loss image still allows.
		err = &os.PathError{Op: "fdatasync", Path: r.name, Err: fail.err}
	} else if err = r.File.Sync(); err == nil {
		r.fs.mu.Lock()
		n := r.node
		n.dur = clone(n.cur)
		n.pend = nil
		n.maxSize = int64(len(n.cur))
		r.fs.mu.Unlock()
	}
	r.fs.end(ev, err)
	return err
}

// fileState is what a power loss at one instant could leave of one name.
type fileState struct {
	missing bool // no file at this name at all
	// absentToo: the name's creation (a rename) is not durable yet, so a
	// power loss may also leave no file.
	absentToo bool
	dur       []byte
	pend      []pend
	cur       []byte
	maxSize   int64
}

// state snapshots what a power loss now could leave of path.
func (f *recFS) state(path string) *fileState {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[path]
	d := f.durNames[path]
	switch {
	case n == nil && d == nil:
		return &fileState{missing: true}
	case n == nil:
		// Removed or renamed away, not durably: the old file is there.
		return &fileState{dur: clone(d.dur), cur: clone(d.dur), maxSize: int64(len(d.dur))}
	}
	st := &fileState{dur: clone(n.dur), pend: append([]pend(nil), n.pend...), cur: clone(n.cur), maxSize: n.maxSize}
	if d != n {
		st.absentToo = true
	}
	return st
}
