package btree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// commit spills t and reopens it in a new transaction of s, checking the
// tree and that the store's live pages are exactly the reachable ones.
func commit(t *testing.T, s *MemStore, tr *Tree) *Tree {
	t.Helper()
	if tr.rootNode != nil {
		checkNodes(t, tr.rootNode)
	}
	root, err := tr.Spill()
	if err != nil {
		t.Fatalf("spill: %v", err)
	}
	for id := range s.Freed {
		delete(s.Pages, id)
	}
	s.Freed = map[page.ID]page.TxID{}
	reach := map[page.ID]bool{}
	w := Walker{Store: s, Strict: true, Visit: func(r page.Ref, run []byte, _ int) error {
		reach[r.ID] = true
		return nil
	}}
	if err := w.Walk(root); err != nil {
		t.Fatalf("walk after commit: %v", err)
	}
	if len(reach) != len(s.Pages) {
		t.Fatalf("reachable %d pages, store holds %d (leak or lost page)", len(reach), len(s.Pages))
	}
	s.Tx++
	return Open(s, root)
}

// checkNodes checks the sizes and flags a node keeps about its elements.
func checkNodes(t *testing.T, n *node) {
	t.Helper()
	if want := elemBytes(n.inodes, n.leaf); n.bytes != want {
		t.Fatalf("node (leaf %v, %d elements) says %d bytes, has %d", n.leaf, len(n.inodes), n.bytes, want)
	}
	for i := range n.inodes {
		in := &n.inodes[i]
		if in.kind == kindPending && !n.pending {
			t.Fatalf("node holds a pending large value but is not marked")
		}
		if in.child != nil {
			checkNodes(t, in.child)
		}
	}
}

func checkModel(t *testing.T, tr *Tree, model map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(model))
	for k := range model {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c := tr.Cursor()
	i := 0
	for k, v, _ := c.First(); k != nil; k, v, _ = c.Next() {
		if i >= len(keys) || string(k) != keys[i] || string(v) != model[keys[i]] {
			t.Fatalf("forward walk at %d: got %q, want %q", i, k, keys[min(i, len(keys)-1)])
		}
		i++
	}
	if c.Err() != nil || i != len(keys) {
		t.Fatalf("forward walk saw %d of %d keys (err %v)", i, len(keys), c.Err())
	}
	i = len(keys) - 1
	for k, _, _ := c.Last(); k != nil; k, _, _ = c.Prev() {
		if i < 0 || string(k) != keys[i] {
			t.Fatalf("backward walk at %d: got %q", i, k)
		}
		i--
	}
	if i != -1 {
		t.Fatalf("backward walk stopped at %d", i)
	}
	for _, k := range keys {
		v, _, ok, err := tr.Get([]byte(k))
		if err != nil || !ok || string(v) != model[k] {
			t.Fatalf("Get(%q) = %q %v %v", k, v, ok, err)
		}
	}
}

func randValue(r *rand.Rand, ps int) []byte {
	n := r.Intn(40)
	switch r.Intn(20) {
	case 0:
		n = ps/2 + r.Intn(3*ps) // large, its own run
	case 1:
		n = r.Intn(ps / 2)
	}
	v := make([]byte, n)
	r.Read(v)
	return v
}

func TestModel(t *testing.T) {
	for _, ps := range []int{1024, 4096} {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("ps%d/seed%d", ps, seed), func(t *testing.T) {
				r := rand.New(rand.NewSource(seed))
				s := NewMemStore(ps)
				tr := Open(s, page.Ref{})
				model := map[string]string{}
				for step := 0; step < 3000; step++ {
					switch op := r.Intn(10); {
					case op < 6:
						k := []byte(fmt.Sprintf("k%05d", r.Intn(2000)))
						if r.Intn(10) == 0 {
							k = append(k, bytes.Repeat([]byte{'x'}, r.Intn(MaxKeySize(ps)-len(k)))...)
						}
						v := randValue(r, ps)
						if err := tr.Put(k, v); err != nil {
							t.Fatal(err)
						}
						model[string(k)] = string(v)
					case op < 9:
						k := fmt.Sprintf("k%05d", r.Intn(2000))
						found, err := tr.Delete([]byte(k), KindValue)
						if _, ok := model[k]; err != nil || ok != found {
							t.Fatalf("Delete(%q) = %v %v, model has it: %v", k, found, err, ok)
						}
						delete(model, k)
					default:
						// Delete a run of keys through a cursor.
						c := tr.Cursor()
						k, _, _ := c.Seek([]byte(fmt.Sprintf("k%05d", r.Intn(2000))))
						for j := 0; j < 30 && k != nil; j++ {
							if err := c.Delete(KindValue); err != nil {
								t.Fatal(err)
							}
							delete(model, string(k))
							k, _, _ = c.Next()
						}
					}
					if step%100 == 99 {
						checkModel(t, tr, model)
						tr = commit(t, s, tr)
						checkModel(t, tr, model)
					}
				}
			})
		}
	}
}

func TestSequentialFill(t *testing.T) {
	s := NewMemStore(4096)
	tr := Open(s, page.Ref{})
	payload := 0
	for i := 0; i < 100000; i++ {
		k := []byte(fmt.Sprintf("%016d", i))
		v := bytes.Repeat([]byte{'v'}, 100)
		if err := tr.Put(k, v); err != nil {
			t.Fatal(err)
		}
		payload += len(k) + len(v)
		if i%10000 == 9999 {
			tr = commit(t, s, tr)
		}
	}
	used := len(s.Pages) * 4096
	ratio := float64(used) / float64(payload)
	t.Logf("pages %d, %.3f x payload", len(s.Pages), ratio)
	if ratio > 1.15 {
		t.Fatalf("sequential load uses %.3f x payload, want <= 1.15", ratio)
	}
}

func TestKindsAndErrors(t *testing.T) {
	s := NewMemStore(1024)
	tr := Open(s, page.Ref{})
	if err := tr.Put(nil, []byte("x")); !errors.Is(err, ErrKeyRequired) {
		t.Fatalf("empty key: %v", err)
	}
	if err := tr.Put(make([]byte, MaxKeySize(1024)+1), nil); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("long key: %v", err)
	}
	if err := tr.Put(make([]byte, MaxKeySize(1024)), nil); err != nil {
		t.Fatalf("longest key: %v", err)
	}
	if err := tr.PutBucket([]byte("b"), BucketHeader{Sequence: 7}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Put([]byte("b"), []byte("v")); !errors.Is(err, ErrKindMismatch) {
		t.Fatalf("value over bucket: %v", err)
	}
	if _, err := tr.Delete([]byte("b"), KindValue); !errors.Is(err, ErrKindMismatch) {
		t.Fatalf("delete bucket as value: %v", err)
	}
	tr = commit(t, s, tr)
	v, kind, ok, err := tr.Get([]byte("b"))
	if err != nil || !ok || kind != KindBucket || DecodeBucket(v).Sequence != 7 {
		t.Fatalf("bucket header: %v %v %v %v", v, kind, ok, err)
	}
}

func TestDropFreesEverything(t *testing.T) {
	s := NewMemStore(1024)
	tr := Open(s, page.Ref{})
	r := rand.New(rand.NewSource(9))
	for i := 0; i < 2000; i++ {
		tr.Put([]byte(fmt.Sprintf("k%05d", i)), randValue(r, 1024))
	}
	tr = commit(t, s, tr)
	// change part of it, then drop it all in the same transaction
	for i := 0; i < 500; i++ {
		tr.Delete([]byte(fmt.Sprintf("k%05d", i*3)), KindValue)
	}
	if err := tr.DropAll(nil); err != nil {
		t.Fatal(err)
	}
	tr = commit(t, s, tr)
	if len(s.Pages) != 0 {
		t.Fatalf("%d pages left after DropAll", len(s.Pages))
	}
}

// A corrupt page must give an error wrapping page.ErrCorrupt, not a panic.
func TestCorruptPages(t *testing.T) {
	s := NewMemStore(1024)
	tr := Open(s, page.Ref{})
	for i := 0; i < 500; i++ {
		tr.Put([]byte(fmt.Sprintf("k%05d", i)), []byte("value"))
	}
	tr = commit(t, s, tr)
	root := tr.Root()
	r := rand.New(rand.NewSource(3))
	for id, p := range s.Pages {
		orig := append([]byte(nil), p...)
		for trial := 0; trial < 20; trial++ {
			copy(p, orig)
			p[r.Intn(len(p))] ^= byte(1 + r.Intn(255))
			tr := Open(s, root)
			w := Walker{Store: s, Strict: true}
			if err := w.Walk(root); !errors.Is(err, page.ErrCorrupt) {
				t.Fatalf("page %d: walk after corruption: %v", id, err)
			}
			c := tr.Cursor()
			for k, _, _ := c.First(); k != nil; k, _, _ = c.Next() {
			}
			if !errors.Is(c.Err(), page.ErrCorrupt) {
				t.Fatalf("page %d: cursor walk after corruption: %v", id, c.Err())
			}
		}
		copy(p, orig)
	}
}

func TestZeroAllocReads(t *testing.T) {
	s := NewMemStore(4096)
	tr := Open(s, page.Ref{})
	for i := 0; i < 5000; i++ {
		tr.Put([]byte(fmt.Sprintf("k%05d", i)), []byte("value"))
	}
	tr = commit(t, s, tr)
	key := []byte("k01234")
	if n := testing.AllocsPerRun(100, func() { tr.Get(key) }); n != 0 {
		t.Fatalf("Get allocates %v times", n)
	}
	c := tr.Cursor()
	c.First()
	if n := testing.AllocsPerRun(100, func() {
		if k, _, _ := c.Next(); k == nil {
			c.First()
		}
	}); n != 0 {
		t.Fatalf("Next allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { c.Seek(key) }); n != 0 {
		t.Fatalf("Seek allocates %v times", n)
	}
}

// garbageStore is a MemStore whose Buffer hands out buffers full of
// garbage, as recycled buffers are: the tree must write or clear every
// byte of them.
type garbageStore struct{ *MemStore }

func (s garbageStore) Buffer(span int) []byte {
	// Larger capacity than asked, as a size class gives.
	b := make([]byte, span*s.Size, 2*span*s.Size)
	for i := range b[:cap(b)] {
		b[:cap(b)][i] = 0xA5
	}
	return b
}

// TestRecycledBuffersLeaveNoGarbage writes the same transactions through a
// store that hands out fresh zeroed buffers and one that hands out garbage:
// every page, large-value runs included, must come out byte for byte the
// same.
func TestRecycledBuffersLeaveNoGarbage(t *testing.T) {
	const ps = 1024
	fresh, dirty := NewMemStore(ps), NewMemStore(ps)
	trees := []*Tree{Open(fresh, page.Ref{}), Open(garbageStore{dirty}, page.Ref{})}
	r := rand.New(rand.NewSource(7))
	for round := 0; round < 20; round++ {
		var ops [][2][]byte
		for i := 0; i < 30; i++ {
			k := []byte(fmt.Sprintf("k%03d", r.Intn(200)))
			v := bytes.Repeat([]byte{byte(i + 1)}, []int{10, 300, 2500, 7000}[r.Intn(4)])
			ops = append(ops, [2][]byte{k, v})
		}
		for ti, tr := range trees {
			for _, op := range ops {
				if err := tr.Put(op[0], op[1]); err != nil {
					t.Fatal(err)
				}
			}
			root, err := tr.Spill()
			if err != nil {
				t.Fatal(err)
			}
			s := []*MemStore{fresh, dirty}[ti]
			s.Tx++
			trees[ti] = Open(tr.s, root)
		}
		if len(fresh.Pages) != len(dirty.Pages) {
			t.Fatalf("round %d: %d pages written with fresh buffers, %d with recycled ones", round, len(fresh.Pages), len(dirty.Pages))
		}
		for id, want := range fresh.Pages {
			if got := dirty.Pages[id]; !bytes.Equal(got, want) {
				t.Fatalf("round %d: page %d differs when written into a recycled buffer", round, id)
			}
		}
	}
}

// Elements at the size limits: keys of MaxKeySize that differ only in
// their last bytes (a page's prefix is nearly the whole key, its heads
// mostly padding), with values at the inline limit and just past it. Two
// such leaf elements and their heads need a page each. Every page is
// validated by the walk of each commit, and the tree read back whole.
func TestLimitElements(t *testing.T) {
	for _, ps := range []int{1024, 4096} {
		s := NewMemStore(ps)
		tr := Open(s, page.Ref{})
		model := map[string]string{}
		klen := MaxKeySize(ps)
		for i := 0; i < 300; i++ {
			k := bytes.Repeat([]byte{'k'}, klen)
			binary.BigEndian.PutUint16(k[klen-2:], uint16(i*7919%65536))
			vlen := maxElem(ps) - leafElemSize - klen // the largest inline value
			if i%3 == 0 {
				vlen++ // its own run
			}
			v := bytes.Repeat([]byte{byte(i)}, vlen)
			if !inline(ps, klen, vlen) != (i%3 == 0) {
				t.Fatalf("value of %d bytes under a %d-byte key: inline %v", vlen, klen, inline(ps, klen, vlen))
			}
			if err := tr.Put(k, v); err != nil {
				t.Fatal(err)
			}
			model[string(k)] = string(v)
			if i%50 == 49 {
				tr = commit(t, s, tr)
				checkModel(t, tr, model)
			}
		}
		single := 0 // leaves holding one element: the case above was reached
		for _, p := range s.Pages {
			if page.TypeOf(p) == page.TypeLeaf && page.CountOf(p) == 1 {
				single++
			}
		}
		if single == 0 {
			t.Errorf("ps %d: no leaf holds a single element at the limit", ps)
		}
	}
}
