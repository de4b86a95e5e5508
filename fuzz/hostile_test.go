package fuzz

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowfile/cowfile"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// probeResult is what the engine did with an arbitrary file.
type probeResult struct {
	panicked string
	hung     bool
	alloc    uint64 // bytes allocated while probing
	detected bool   // some step reported ErrCorrupt, or Open reported a fallback
	corrupt  bool   // some step returned ErrCorrupt (or ErrIncompatible)
	wrong    string // a value written and read back came back different
	steps    []string
}

// probeTimeout bounds one probe: a hostile file must never make the
// engine loop.
const probeTimeout = 20 * time.Second

var probeSeq atomic.Int64

// probe opens img read-only and read-write, reads everything, runs Check,
// writes a little, reopens and reads that back: whatever the bytes, no
// panic, no hang, no allocation out of proportion to the file, and a value
// written is read back as written or not at all (an error).
func probe(dir string, img []byte) probeResult {
	path := filepath.Join(dir, fmt.Sprintf("p%d.cow", probeSeq.Add(1)))
	defer removeMatching(path)
	done := make(chan probeResult, 1)
	go func() {
		var res probeResult
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		defer func() {
			if p := recover(); p != nil {
				res.panicked = fmt.Sprintf("%v\n%s", p, debug.Stack())
			}
			runtime.ReadMemStats(&ms)
			res.alloc = ms.TotalAlloc - before
			done <- res
		}()
		if err := os.WriteFile(path, img, 0o600); err != nil {
			res.steps = append(res.steps, err.Error())
			return
		}
		note := func(step string, err error) {
			if err != nil {
				res.steps = append(res.steps, step+": "+err.Error())
				if errors.Is(err, cowfile.ErrCorrupt) || errors.Is(err, cowfile.ErrIncompatible) {
					res.detected, res.corrupt = true, true
				}
			}
		}
		readAllOf := func(db *cowfile.DB, step string) string {
			var dump string
			note(step+" read", db.View(func(tx *cowfile.Tx) error {
				var err error
				dump, err = dumpTx(tx)
				return err
			}))
			note(step+" check", db.View(func(tx *cowfile.Tx) error { return tx.Check() }))
			return dump
		}
		if db, err := cowfile.Open(path, &cowfile.Options{ReadOnly: true, Timeout: -1}); err != nil {
			note("open read-only", err)
		} else {
			if st := db.Stats(); st.FellBack {
				// Reported, not silent: Open says which meta it passed
				// over and why.
				res.detected = true
				res.steps = append(res.steps, "fell back: "+st.FallbackReason)
			}
			readAllOf(db, "read-only")
			note("close", db.Close())
		}
		db, err := cowfile.Open(path, &cowfile.Options{Timeout: -1})
		if err != nil {
			note("open", err)
			return
		}
		readAllOf(db, "read-write")
		werr := db.Update(func(tx *cowfile.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("probe"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("written by the probe"))
		})
		note("write", werr)
		note("close", db.Close())
		if werr != nil {
			return
		}
		db, err = cowfile.Open(path, &cowfile.Options{Timeout: -1})
		if err != nil {
			note("reopen", err)
			return
		}
		defer db.Close()
		var got []byte
		var found bool
		rerr := db.View(func(tx *cowfile.Tx) error {
			if b := tx.Bucket([]byte("probe")); b != nil {
				if v := b.Get([]byte("k")); v != nil {
					got, found = append([]byte(nil), v...), true
				}
			}
			return nil
		})
		note("read back", rerr)
		if rerr == nil && (!found || string(got) != "written by the probe") {
			res.wrong = fmt.Sprintf("read back %q (found %v) after a successful write", got, found)
		}
		readAllOf(db, "after write")
	}()
	select {
	case res := <-done:
		return res
	case <-time.After(probeTimeout):
		return probeResult{hung: true}
	}
}

// allocBound is the most a probe may allocate for a file of n bytes: a
// generous constant plus a multiple of the file. An allocation sized by an
// unchecked header field (a count, a span, a HWM) blows through it.
func allocBound(n int) uint64 { return 256<<20 + 64*uint64(n) }

func checkProbe(t testing.TB, what string, n int, r probeResult) {
	t.Helper()
	switch {
	case r.panicked != "":
		t.Errorf("%s: panic: %s", what, r.panicked)
	case r.hung:
		t.Errorf("%s: no answer within %v", what, probeTimeout)
	case r.alloc > allocBound(n):
		t.Errorf("%s: allocated %d bytes for a %d-byte file", what, r.alloc, n)
	case r.wrong != "":
		t.Errorf("%s: %s", what, r.wrong)
	}
}

// smallFile builds a small real file (trimmed to its high-water mark) for
// fuzz seeds: buckets, a nested bucket, a large value, a multi-level tree.
func smallFile(t testing.TB, ps int, keys int) []byte {
	path := filepath.Join(scratchDir(t), "small.cow")
	db, err := cowfile.Open(path, &cowfile.Options{PageSize: ps})
	if err != nil {
		t.Fatal(err)
	}
	root := newMBucket()
	steps := [][]action{manyKeys(keys)}
	for i, op := range []uint8{opLarge, opMkB, opPut, opDel} {
		steps = append(steps, actions(op, root, i+1, ps))
		applyModel(root, steps[len(steps)-1])
	}
	for _, as := range steps {
		if err := db.Update(func(tx *cowfile.Tx) error { return applyTx(tx, as) }); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	return trimToHWM(readAll(path), ps)
}

// trimToHWM cuts the preallocated tail: a file is valid as long as it
// holds every page below its metas' high-water marks.
func trimToHWM(img []byte, ps int) []byte {
	end := 2 * ps
	ms, _ := decodeMetas(img, ps)
	for _, m := range ms {
		end = max(end, int(m.HWM)*ps)
	}
	return img[:min(end, len(img))]
}

// hostile is one constructed hostile file.
type hostile struct {
	what string
	img  []byte
	// wiped: the older meta is gone, so a fallback is no answer: an
	// error wrapping ErrCorrupt must come from the structural checks.
	wiped bool
}

// hostileFiles derives from a real file the structures an attacker or a
// bad disk could build, re-sealed so that checksums and references hold
// and only the structural checks stand between them and the engine.
func hostileFiles(t testing.TB) []hostile {
	const ps = 1024
	base := chainBase(t, ps)
	var cur *meta.Meta
	ms, _ := decodeMetas(base, ps)
	for _, m := range ms {
		if cur == nil || m.TxID > cur.TxID {
			cur = &m.Meta
		}
	}
	runs, err := reachRuns(base, ps, cur)
	if err != nil {
		t.Fatal(err)
	}
	var out []hostile
	// Each structure comes twice: with the older meta intact (Open may
	// fall back to it, which must be reported) and with it wiped, so that
	// only the structural checks stand in the way.
	add := func(what string, f func(b []byte) bool) {
		b := clone(base)
		if !f(b) {
			t.Fatalf("hostile file %q: nothing to mutate", what)
		}
		reseal(b)
		out = append(out, hostile{what: what, img: b})
		only := clone(b)
		older := 1 - int(cur.TxID%2)
		clear(only[older*ps : (older+1)*ps])
		out = append(out, hostile{what: what + " (older meta wiped)", img: only, wiped: true})
	}
	pageOf := func(b []byte, id page.ID) []byte { return b[int(id)*ps : int(id+1)*ps] }
	find := func(b []byte, typ page.Type, minCount int) page.ID {
		for _, id := range sortedIDs(runs) {
			p := pageOf(b, id)
			if h := page.GetHeader(p); h.Type == typ && int(h.Count) >= minCount && runs[h.ID] == h.ID {
				return h.ID
			}
		}
		return 0
	}
	add("branch whose child is itself", func(b []byte) bool {
		id := find(b, page.TypeBranch, 2)
		if id == 0 {
			return false
		}
		binary.LittleEndian.PutUint64(pageOf(b, id)[page.HeaderSize:], uint64(id))
		return true
	})
	add("bucket whose root is the catalog root", func(b []byte) bool {
		root := cur.Root.ID
		p := pageOf(b, root)
		if page.GetHeader(p).Type != page.TypeLeaf {
			return false
		}
		for i := 0; i < page.CountOf(p); i++ {
			e := p[page.HeaderSize+i*leafElem:]
			if e[6] == kindBucket {
				off := int(binary.LittleEndian.Uint16(e[0:])) + int(binary.LittleEndian.Uint16(e[2:]))
				binary.LittleEndian.PutUint64(p[off:], uint64(root))
				return true
			}
		}
		return false
	})
	swapKeys := func(dup bool) func(b []byte) bool {
		return func(b []byte) bool {
			id := find(b, page.TypeLeaf, 3)
			if id == 0 {
				return false
			}
			p := pageOf(b, id)
			k := func(i int) []byte {
				e := p[page.HeaderSize+i*leafElem:]
				off := int(binary.LittleEndian.Uint16(e[0:]))
				return p[off : off+int(binary.LittleEndian.Uint16(e[2:]))]
			}
			a, c := k(0), k(1)
			if len(a) != len(c) {
				return false
			}
			if dup {
				copy(c, a)
			} else {
				tmp := clone(a)
				copy(a, c)
				copy(c, tmp)
			}
			return true
		}
	}
	add("leaf with keys out of order", swapKeys(false))
	add("leaf with a duplicate key", swapKeys(true))
	// Heads that disagree with their keys would send a search to the
	// wrong element without any offset leaving the page.
	add("leaf heads of each other's keys", func(b []byte) bool {
		id := find(b, page.TypeLeaf, 2)
		p := pageOf(b, id)
		if id == 0 || p[25] != flagHeads {
			return false
		}
		hs := page.HeaderSize + page.CountOf(p)*leafElem
		h0, h1 := clone(p[hs:hs+leafHead]), clone(p[hs+leafHead:hs+2*leafHead])
		if string(h0) == string(h1) {
			return false
		}
		copy(p[hs:], h1)
		copy(p[hs+leafHead:], h0)
		return true
	})
	add("branch prefix longer than its keys share", func(b []byte) bool {
		id := find(b, page.TypeBranch, 2)
		p := pageOf(b, id)
		if id == 0 || p[25] != flagHeads {
			return false
		}
		at := page.HeaderSize + page.CountOf(p)*(branchElem+branchHead)
		binary.LittleEndian.PutUint16(p[at:], binary.LittleEndian.Uint16(p[at:])+1)
		return true
	})
	add("leaf count beyond the page", func(b []byte) bool {
		id := find(b, page.TypeLeaf, 1)
		binary.LittleEndian.PutUint16(pageOf(b, id)[26:], 0xffff)
		return id != 0
	})
	add("leaf element pointing outside the page", func(b []byte) bool {
		id := find(b, page.TypeLeaf, 1)
		binary.LittleEndian.PutUint16(pageOf(b, id)[page.HeaderSize:], 0xfff0)
		return id != 0
	})
	add("large value run past the end of the file", func(b []byte) bool {
		id := find(b, page.TypeValue, 0)
		binary.LittleEndian.PutUint32(pageOf(b, id)[28:], 1<<30)
		return id != 0
	})
	add("high-water mark past the end of the file", func(b []byte) bool {
		for slot := 0; slot < 2; slot++ {
			binary.LittleEndian.PutUint64(b[slot*ps+120:], 1<<40)
		}
		return true
	})
	add("free-space run past the end of the file", func(b []byte) bool {
		id := cur.Freelist.ID
		binary.LittleEndian.PutUint32(pageOf(b, id)[28:], 1<<31)
		return id != 0
	})
	add("free-space log listing a reachable page", func(b []byte) bool {
		id := cur.Freelist.ID
		p := pageOf(b, id)
		body := p[page.HeaderSize:]
		n := binary.LittleEndian.Uint64(body[40:])
		leaf := find(b, page.TypeLeaf, 1)
		switch page.GetHeader(p).Type {
		case page.TypeFreeDelta:
			if n == 0 {
				return false
			}
			// Turn the first op into "free one page" of a reachable leaf.
			op := body[48:]
			binary.LittleEndian.PutUint64(op[0:], uint64(leaf))
			binary.LittleEndian.PutUint32(op[8:], 1)
			binary.LittleEndian.PutUint32(op[12:], 2)
			binary.LittleEndian.PutUint64(op[16:], 1)
			return true
		case page.TypeFreeCheckp:
			return addFreeEntry(body, 48, n, leaf, func(n uint64) { binary.LittleEndian.PutUint64(body[40:], n) })
		case page.TypeFreeSweep:
			// A small file's head segment covers every page.
			nops, nents := binary.LittleEndian.Uint32(body[40:]), binary.LittleEndian.Uint32(body[44:])
			return addFreeEntry(body, 64+24*uint64(nops), uint64(nents), leaf, func(n uint64) { binary.LittleEndian.PutUint32(body[44:], uint32(n)) })
		}
		return false
	})
	add("branch child of the wrong type (free-space run)", func(b []byte) bool {
		id := find(b, page.TypeBranch, 1)
		binary.LittleEndian.PutUint64(pageOf(b, id)[page.HeaderSize:], uint64(cur.Freelist.ID))
		return id != 0
	})
	// Regression: a page of type 0 passed the read path's check for
	// "branch or leaf" (want 0) and was walked as a branch: a panic.
	add("tree page of type 0", func(b []byte) bool {
		p := pageOf(b, cur.Root.ID)
		p[24] = 0
		return true
	})
	// Regression: a bucket reference newer than the page holding it was
	// not followed when the holder's commit was verified, but was after
	// the next commit copied the holder: that commit, acknowledged, was
	// then dropped at the following Open.
	add("bucket reference from a later transaction", func(b []byte) bool {
		var free page.ID
		for id := page.ID(2); id < cur.HWM && free == 0; id++ {
			if _, ok := runs[id]; !ok {
				free = id
			}
		}
		leaf := find(b, page.TypeLeaf, 1)
		catalog := pageOf(b, cur.Root.ID)
		if free == 0 || leaf == 0 || page.GetHeader(catalog).Type != page.TypeLeaf {
			return false
		}
		fp := pageOf(b, free)
		copy(fp, pageOf(b, leaf))
		h := page.GetHeader(fp)
		h.ID, h.TxID = free, cur.TxID+1
		page.PutHeader(fp, h)
		e := catalog[page.HeaderSize:]
		off := int(binary.LittleEndian.Uint16(e[0:])) + int(binary.LittleEndian.Uint16(e[2:]))
		binary.LittleEndian.PutUint64(catalog[off:], uint64(free))
		return e[6] == kindBucket
	})
	add("tree 100 levels deep", func(b []byte) bool {
		// Chain free pages into single-child branches above bucket t's root.
		free := []page.ID{}
		for id := page.ID(2); id < cur.HWM; id++ {
			if _, ok := runs[id]; !ok {
				free = append(free, id)
			}
		}
		if len(free) < 100 {
			return false
		}
		catalog := pageOf(b, cur.Root.ID)
		for i := 0; i < page.CountOf(catalog); i++ {
			e := catalog[page.HeaderSize+i*leafElem:]
			off := int(binary.LittleEndian.Uint16(e[0:]))
			ks := int(binary.LittleEndian.Uint16(e[2:]))
			if string(catalog[off:off+ks]) != "t" {
				continue
			}
			hdr := catalog[off+ks:]
			below := page.GetRef(hdr)
			for d := 99; d >= 0; d-- {
				id := free[d]
				p := pageOf(b, id)
				clear(p)
				page.PutHeader(p, page.Header{ID: id, TxID: below.TxID, Type: page.TypeBranch, Count: 1, Span: 1})
				page.PutRef(p[page.HeaderSize:], below)
				binary.LittleEndian.PutUint16(p[page.HeaderSize+24:], 1)
				binary.LittleEndian.PutUint16(p[page.HeaderSize+26:], uint16(page.HeaderSize+branchElem))
				p[page.HeaderSize+branchElem] = 'k'
				below = page.Ref{ID: id, TxID: below.TxID}
			}
			page.PutRef(hdr, below)
			return true
		}
		return false
	})
	out = append(out, recordHostiles(t, ps)...)
	out = append(out,
		hostile{what: "empty file", wiped: true},
		hostile{what: "one byte", img: []byte{1}, wiped: true},
		hostile{what: "file cut in half", img: clone(base[:len(base)/2]), wiped: true},
		hostile{what: "only the metas", img: clone(base[:2*ps]), wiped: true},
	)
	return out
}

// recordHostiles damages the newest commit record of a file whose latest
// version only a record holds (the file as a crash leaves it), each time
// re-sealed so that only the record's structural checks and the walk's
// link check stand in the way: Open must fall back to the record before
// and say why.
func recordHostiles(t testing.TB, ps int) []hostile {
	path := filepath.Join(scratchDir(t), "records.cow")
	db, err := cowfile.Open(path, &cowfile.Options{PageSize: ps})
	if err != nil {
		t.Fatal(err)
	}
	steps := [][]action{manyKeys(20)}
	for i := 0; i < 5; i++ {
		steps = append(steps, []action{{kind: "put", path: []string{"t"}, key: fmt.Sprintf("r%d", i), val: "v"}})
	}
	for _, as := range steps {
		if err := db.Update(func(tx *cowfile.Tx) error { return applyTx(tx, as) }); err != nil {
			t.Fatal(err)
		}
	}
	base := trimToHWM(readAll(path), ps) // before Close writes a meta slot
	db.Close()
	ms, _ := decodeMetas(base, ps)
	var last *meta.Meta
	for i := range ms {
		if ms[i].IsRecord() && (last == nil || ms[i].TxID > last.TxID) {
			last = &ms[i].Meta
		}
	}
	if last == nil {
		t.Fatal("record base: no commit record")
	}
	var out []hostile
	add := func(what string, f func(m *meta.Meta)) {
		b := clone(base)
		m := *last
		f(&m)
		at := last.Page()
		pg := b[int(at)*ps : int(at+1)*ps]
		m.EncodeRecord(pg, at) // sealed
		out = append(out, hostile{what: what, img: b})
	}
	add("commit record whose next record is itself", func(m *meta.Meta) { m.Next = m.Page() })
	add("commit record listing a page past the end", func(m *meta.Meta) { m.Chain[0] = m.HWM + 100 })
	add("commit record with a reference from a later transaction", func(m *meta.Meta) { m.Root.TxID = m.TxID + 1 })
	add("commit record that follows another commit", func(m *meta.Meta) { m.Prev ^= 1 })
	add("commit record of an earlier commit than its predecessor", func(m *meta.Meta) { m.TxID -= 2 })
	return out
}

func sortedIDs(m map[page.ID]page.ID) []page.ID {
	ids := make([]page.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// chainBase is a small file with a multi-level tree, a large value,
// nested buckets and more than a hundred free pages.
func chainBase(t testing.TB, ps int) []byte {
	return chainBaseWith(t, ps, -1)
}

// chainBaseWith is chainBase with Options.MaxChain set to maxChain: -1
// writes every meta to a slot (so the older slot is the only fallback,
// as the hostile files assume), 0 chains commit records.
func chainBaseWith(t testing.TB, ps, maxChain int) []byte {
	path := filepath.Join(scratchDir(t), "chain.cow")
	db, err := cowfile.Open(path, &cowfile.Options{PageSize: ps, MaxChain: maxChain})
	if err != nil {
		t.Fatal(err)
	}
	root := newMBucket()
	var steps [][]action
	steps = append(steps, manyKeys(300))
	z := []action{{kind: "mkb", key: "z"}}
	for i := 0; i < 150; i++ {
		z = append(z, action{kind: "put", path: []string{"z"}, key: fmt.Sprintf("z%03d", i), val: strings.Repeat("z", 900)})
	}
	steps = append(steps, z)
	for i, op := range []uint8{opLarge, opMkB} {
		steps = append(steps, actions(op, root, i+1, ps))
		applyModel(root, steps[len(steps)-1])
	}
	steps = append(steps, []action{{kind: "rmb", key: "z"}}, actions(opPut, root, 9, ps), actions(opPut, root, 10, ps))
	for _, as := range steps {
		if err := db.Update(func(tx *cowfile.Tx) error { return applyTx(tx, as) }); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	return trimToHWM(readAll(path), ps)
}

// TestHostileFiles opens constructed hostile files: cycles, unsorted and
// duplicate keys, counts and offsets outside the page, runs past the end,
// a free-space log that lists a reachable page, a tree 100 levels deep,
// truncated files. Each must be reported as corrupt, with no panic, no
// hang and no outsized allocation.
func TestHostileFiles(t *testing.T) {
	c := &counters{}
	t.Cleanup(func() { c.log(t) })
	dir := scratchDir(t)
	for _, h := range hostileFiles(t) {
		c.hostileFiles.Add(1)
		r := probe(dir, h.img)
		checkProbe(t, h.what, len(h.img), r)
		if r.panicked != "" {
			c.panics.Add(1)
		}
		if len(r.steps) > 0 {
			t.Logf("%s: %s", h.what, r.steps[0])
		}
		if (!r.detected || (h.wiped && !r.corrupt)) && !r.hung && r.panicked == "" {
			c.undetected.Add(1)
			t.Errorf("%s: not reported as corrupt: %v", h.what, r.steps)
		}
	}
}

// FuzzOpen feeds arbitrary bytes to Open, reads, Check and a write. The
// first byte chooses the mode: odd re-seals every checksum and reference
// after the mutation, so the fuzzer's changes reach the tree code instead
// of stopping at the first checksum.
func FuzzOpen(f *testing.F) {
	for _, ps := range []int{1024, 4096} {
		small := smallFile(f, ps, 2*ps/64)
		f.Add(append([]byte{0}, small...))
		f.Add(append([]byte{1}, small...))
	}
	for _, h := range hostileFiles(f) {
		f.Add(append([]byte{1}, h.img...))
	}
	dir := scratchDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 4<<20 {
			t.Skip()
		}
		img := clone(data[1:])
		if data[0]&1 == 1 {
			reseal(img)
		}
		checkProbe(t, "input", len(img), probe(dir, img))
	})
}

// addFreeEntry adds page id as a free entry, in ID order, to the n entries
// at body[off:] (entries are 32 bytes: id, span, reserved, born, freed),
// and stores the new count with setCount.
func addFreeEntry(body []byte, off, n uint64, id page.ID, setCount func(uint64)) bool {
	const size = 32
	if off+(n+1)*size > uint64(len(body)) {
		return false
	}
	entries := body[off : off+n*size]
	at := uint64(0)
	for at < n && page.ID(binary.LittleEndian.Uint64(entries[at*size:])) < id {
		at++
	}
	copy(body[off+(at+1)*size:off+(n+1)*size], body[off+at*size:off+n*size])
	e := body[off+at*size : off+(at+1)*size]
	clear(e)
	binary.LittleEndian.PutUint64(e[0:], uint64(id))
	binary.LittleEndian.PutUint32(e[8:], 1)
	setCount(n + 1)
	return true
}
