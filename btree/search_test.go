package btree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"sort"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

func TestCompareKeys(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	key := func() []byte {
		b := make([]byte, r.Intn(40))
		for i := range b {
			b[i] = byte(r.Intn(3)) // few symbols: many shared prefixes
		}
		return b
	}
	for i := 0; i < 200000; i++ {
		a, b := key(), key()
		if i%3 == 0 {
			b = append(append([]byte(nil), a...), b...) // a is a prefix of b
		}
		want := bytes.Compare(a, b)
		if got := sign(compareKeys(a, b)); got != want {
			t.Fatalf("compareKeys(%x, %x) = %d, want %d", a, b, got, want)
		}
		sk := prepareKey(b)
		got := 0
		if sk.wide && len(a) >= 16 {
			got = sk.wordsCompare(a)
		}
		if got == 0 {
			got = sk.compare(a)
		}
		if sign(got) != want {
			t.Fatalf("searchKey(%x).compare(%x) = %d, want %d", b, a, got, want)
		}
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// TestSearchPages checks searchLeaf and searchBranch, and the searches of
// the page decoded as a node, against sort.Search on encoded pages of keys
// of mixed lengths with shared prefixes, and on pages of many keys of at
// least sixteen bytes (the searches' two-word comparisons).
//
// Every page is searched twice: as encoded (with heads) and as a page of
// format 2 (legacyPage). Keys over few symbols make heads collide; in
// prefixed rounds every key of the page starts with a common prefix of up
// to 20 bytes, and the searched keys are below it, above it, a part of it,
// or inside it.
func TestSearchPages(t *testing.T) {
	const ps = 4096
	r := rand.New(rand.NewSource(4))
	for round := 0; round < 900; round++ {
		leaf := round%2 == 0
		// Wide rounds: keys of 16 to 20 bytes, many to a page, most
		// compared on their first sixteen bytes as two words.
		wide := round%6 == 2 || round%6 == 3
		prefixed := round%6 >= 4
		var common []byte
		if prefixed {
			common = make([]byte, r.Intn(21))
			for i := range common {
				common[i] = byte(r.Intn(3))
			}
		}
		symbols := func(n int) []byte {
			k := make([]byte, n)
			for i := range k {
				k[i] = byte(r.Intn(3))
			}
			return k
		}
		keyOf := func() []byte {
			if prefixed {
				return append(bytes.Clone(common), symbols(1+r.Intn(6))...)
			}
			if !wide {
				k := make([]byte, 1+r.Intn(26))
				for i := range k {
					k[i] = byte(r.Intn(3))
				}
				return k
			}
			k := make([]byte, 16+r.Intn(5))
			for i := range k {
				k[i] = byte(r.Intn(2))
			}
			return k
		}
		count := 1 + r.Intn(60)
		if wide {
			count = 1 + r.Intn(80)
		}
		set := map[string]bool{}
		for len(set) < count {
			k := keyOf()
			if !wide && len(k) > 24 {
				k = k[:24]
			}
			set[string(k)] = true
		}
		keys := make([]string, 0, len(set))
		for k := range set {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		ins := make([]inode, len(keys))
		for i, k := range keys {
			ins[i] = inode{key: []byte(k), value: []byte("v")}
			if !leaf {
				ins[i].value = refValue(page.Ref{ID: 2, TxID: 1})
			}
		}
		p := make([]byte, ps)
		encode(p, ins, leaf, 5, 1)
		if err := Validate(p, ps); err != nil {
			t.Fatal(err)
		}
		old := legacyPage(p, leaf)
		if err := Validate(old, ps); err != nil {
			t.Fatal(err)
		}
		n := decodeInto(p, make([]inode, len(keys)))
		for q := 0; q < 200; q++ {
			key := keyOf()
			switch {
			case q%4 == 0:
				key = []byte(keys[r.Intn(len(keys))])
			case prefixed && q%8 == 1:
				key = symbols(r.Intn(len(common) + 3)) // below, above, or a part of the prefix
			case prefixed && q%8 == 3:
				key = common[:r.Intn(len(common)+1)]
				if len(key) == 0 {
					key = []byte{0}
				}
			}
			first := sort.SearchStrings(keys, string(key))
			if leaf {
				wantOK := first < len(keys) && keys[first] == string(key)
				for _, pg := range [][]byte{p, old} {
					if i, ok := searchLeaf(pg, key); i != first || ok != wantOK {
						t.Fatalf("searchLeaf(%x), flags %d = %d, %v; want %d, %v", key, pg[25], i, ok, first, wantOK)
					}
				}
				if i, ok := n.search(key); i != first || ok != wantOK {
					t.Fatalf("node.search(%x) = %d, %v; want %d, %v", key, i, ok, first, wantOK)
				}
				continue
			}
			want := sort.Search(len(keys), func(i int) bool { return keys[i] > string(key) })
			if want > 0 {
				want--
			}
			for _, pg := range [][]byte{p, old} {
				if got := searchBranch(pg, key); got != want {
					t.Fatalf("searchBranch(%x), flags %d = %d, want %d", key, pg[25], got, want)
				}
			}
			if got := n.childIndex(key); got != want {
				t.Fatalf("node.childIndex(%x) = %d, want %d", key, got, want)
			}
		}
	}
}

// legacyPage returns p (with heads) as a page of format 2: the same
// elements, keys and values where they are, no flag, and zeros where the
// heads and the prefix length were.
func legacyPage(p []byte, leaf bool) []byte {
	old := bytes.Clone(p)
	n, esz := page.CountOf(p), branchElemSize
	if leaf {
		esz = leafElemSize
	}
	hs := page.HeaderSize + n*esz
	clear(old[hs : hs+n*headSize(leaf)+prefixLenSize])
	old[25] = 0
	page.Seal(old)
	return old
}

func refValue(r page.Ref) []byte {
	b := make([]byte, page.RefSize)
	page.PutRef(b, r)
	return b
}

// Validate refuses a page with heads whose heads or prefix length do not
// match its keys, whose key bytes overlap its heads, or whose flags are
// unknown: each would make a search by heads disagree with the keys.
func TestValidateHeads(t *testing.T) {
	const ps = 1024
	for _, leaf := range []bool{true, false} {
		var ins []inode
		for _, k := range []string{"user/alice", "user/bob", "user/carol", "user/dave"} {
			in := inode{key: []byte(k), value: []byte("v")}
			if !leaf {
				in.value = refValue(page.Ref{ID: 2, TxID: 1})
			}
			ins = append(ins, in)
		}
		good := make([]byte, ps)
		encode(good, ins, leaf, 5, 1)
		if err := Validate(good, ps); err != nil {
			t.Fatalf("leaf %v: valid page refused: %v", leaf, err)
		}
		n, esz := len(ins), branchElemSize
		if leaf {
			esz = leafElemSize
		}
		hs := page.HeaderSize + n*esz
		pl := hs + n*headSize(leaf) // the prefix length
		if got := binary.LittleEndian.Uint16(good[pl:]); got != 5 {
			t.Fatalf("leaf %v: prefix length %d, want 5 (user/)", leaf, got)
		}
		keyOff := page.HeaderSize // leaf: the first element's offset field
		if !leaf {
			keyOff = page.HeaderSize + 26
		}
		for _, c := range []struct {
			name string
			bad  func(p []byte)
		}{
			{"unknown flags", func(p []byte) { p[25] = 3 }},
			{"head of another key", func(p []byte) { p[hs+headSize(leaf)]++ }},
			{"prefix longer than shared", func(p []byte) { binary.LittleEndian.PutUint16(p[pl:], 6) }},
			{"prefix shorter than used", func(p []byte) { binary.LittleEndian.PutUint16(p[pl:], 4) }},
			{"prefix longer than the keys", func(p []byte) { binary.LittleEndian.PutUint16(p[pl:], 200) }},
			{"key over the heads", func(p []byte) { binary.LittleEndian.PutUint16(p[keyOff:], uint16(pl)) }},
		} {
			p := bytes.Clone(good)
			c.bad(p)
			if err := Validate(p, ps); !errors.Is(err, page.ErrCorrupt) {
				t.Errorf("leaf %v, %s: Validate = %v", leaf, c.name, err)
			}
		}
	}
}
