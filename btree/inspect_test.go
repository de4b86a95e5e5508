package btree

import (
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// Elements decodes what the writer encoded: values, a nested bucket's
// header and a large value's reference.
func TestElements(t *testing.T) {
	s := NewMemStore(1024)
	tr := Open(s, page.Ref{})
	tr.Put([]byte("a"), []byte("one"))
	tr.Put([]byte("b"), make([]byte, 2000)) // large: its own run
	tr.PutBucket([]byte("c"), BucketHeader{Root: page.Ref{ID: 9, Checksum: 7, TxID: 1}, Sequence: 42})
	tr.Put([]byte("d"), nil)
	root, err := tr.Spill()
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Read(root, page.TypeLeaf)
	if err != nil {
		t.Fatal(err)
	}
	els, err := Elements(p)
	if err != nil || len(els) != 4 {
		t.Fatalf("Elements: %d, %v", len(els), err)
	}
	if e := els[0]; string(e.Key) != "a" || e.Kind != KindValue || string(e.Value) != "one" {
		t.Errorf("a: %+v", e)
	}
	if e := els[1]; e.Kind != KindLarge || e.LargeLen != 2000 || e.Large.IsZero() {
		t.Errorf("b: %+v", e)
	}
	if e := els[2]; e.Kind != KindBucket || e.Bucket.Sequence != 42 || e.Bucket.Root.ID != 9 {
		t.Errorf("c: %+v", e)
	}
	if e := els[3]; e.Kind != KindValue || len(e.Value) != 0 {
		t.Errorf("d: %+v", e)
	}
	// header, 4 elements and their heads, the prefix length, the keys,
	// "one", the 32-byte large reference and the 32-byte bucket header.
	if got, want := UsedBytes(p), page.HeaderSize+4*(leafElemSize+leafHeadSize)+prefixLenSize+4+3+largeRefSize+bucketHeaderSize; got != want {
		t.Errorf("UsedBytes = %d, want %d", got, want)
	}
}

// Damaged pages give an error naming the element, and what was decoded
// before it; random bytes never panic.
func TestElementsDamaged(t *testing.T) {
	p := make([]byte, 1024)
	page.PutHeader(p, page.Header{ID: 5, Type: page.TypeLeaf, Count: 2, Span: 1})
	e := p[page.HeaderSize:]
	binary.LittleEndian.PutUint16(e[0:], 100) // off
	binary.LittleEndian.PutUint16(e[2:], 1)   // ksize
	binary.LittleEndian.PutUint16(e[8:], 1020)
	binary.LittleEndian.PutUint16(e[10:], 10) // runs past the page
	els, err := Elements(p)
	if len(els) != 1 || err == nil {
		t.Fatalf("Elements: %d, %v", len(els), err)
	}
	if err.Error() != "cowfile: corrupt: page 5: element 1: bytes [1020, 1030) outside the page" {
		t.Errorf("error: %v", err)
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		b := make([]byte, r.Intn(2048))
		r.Read(b)
		if len(b) > 24 {
			b[24] = byte(page.TypeLeaf + page.Type(r.Intn(2)))
		}
		Elements(b)
		UsedBytes(b)
	}
}

// Heads reports a page's head width and prefix, and nothing for a page of
// format 2 or one whose heads would not fit.
func TestHeads(t *testing.T) {
	for _, leaf := range []bool{true, false} {
		var ins []inode
		for _, k := range []string{"user/alice", "user/bob", "user/carol"} {
			in := inode{key: []byte(k), value: []byte("v")}
			if !leaf {
				in.value = refValue(page.Ref{ID: 2, TxID: 1})
			}
			ins = append(ins, in)
		}
		p := make([]byte, 1024)
		encode(p, ins, leaf, 5, 1)
		if w, pre, ok := Heads(p); !ok || w != headSize(leaf) || pre != 5 {
			t.Errorf("leaf %v: Heads = %d, %d, %v; want %d, 5, true", leaf, w, pre, ok, headSize(leaf))
		}
		if _, _, ok := Heads(legacyPage(p, leaf)); ok {
			t.Errorf("leaf %v: heads reported on a page of format 2", leaf)
		}
		binary.LittleEndian.PutUint16(p[26:], 1000) // count: heads past the page
		if _, _, ok := Heads(p); ok {
			t.Errorf("leaf %v: heads reported past the end of the page", leaf)
		}
	}
}
