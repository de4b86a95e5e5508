package btree

import (
	"bytes"
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
func TestSearchPages(t *testing.T) {
	const ps = 4096
	r := rand.New(rand.NewSource(4))
	for round := 0; round < 600; round++ {
		leaf := round%2 == 0
		// Wide rounds: keys of 16 to 20 bytes, many to a page, most
		// compared on their first sixteen bytes as two words.
		wide := round%4 >= 2
		keyOf := func() []byte {
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
		n := decodeInto(p, make([]inode, len(keys)))
		for q := 0; q < 200; q++ {
			key := keyOf()
			if q%4 == 0 {
				key = []byte(keys[r.Intn(len(keys))])
			}
			first := sort.SearchStrings(keys, string(key))
			if leaf {
				i, ok := searchLeaf(p, key)
				wantOK := first < len(keys) && keys[first] == string(key)
				if i != first || ok != wantOK {
					t.Fatalf("searchLeaf(%x) = %d, %v; want %d, %v", key, i, ok, first, wantOK)
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
			if got := searchBranch(p, key); got != want {
				t.Fatalf("searchBranch(%x) = %d, want %d", key, got, want)
			}
			if got := n.childIndex(key); got != want {
				t.Fatalf("node.childIndex(%x) = %d, want %d", key, got, want)
			}
		}
	}
}

func refValue(r page.Ref) []byte {
	b := make([]byte, page.RefSize)
	page.PutRef(b, r)
	return b
}
