package btree

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// searchPages encodes count full pages of 16-byte keys (with vsize-byte
// values for leaves), far more than the caches hold, and returns them with
// the keys of each page.
func searchPages(count int, leaf bool, vsize int) ([][]byte, [][][]byte) {
	const ps = 4096
	pages := make([][]byte, count)
	keys := make([][][]byte, count)
	mem := make([]byte, count*ps)
	val := make([]byte, vsize)
	next := uint64(0)
	for i := range pages {
		var ins []inode
		size := page.HeaderSize
		for {
			k := make([]byte, 16)
			binary.BigEndian.PutUint64(k[8:], next)
			in := inode{key: k, value: val}
			if !leaf {
				in = inode{key: k, value: refValue(page.Ref{ID: 2, TxID: 1})}
			}
			if size+in.elemSize(leaf) > ps {
				break
			}
			size += in.elemSize(leaf)
			ins = append(ins, in)
			keys[i] = append(keys[i], k)
			next += 3
		}
		pages[i] = mem[i*ps : (i+1)*ps]
		encode(pages[i], ins, leaf, page.ID(i+2), 1)
	}
	return pages, keys
}

func newRand() *rand.Rand { return rand.New(rand.NewSource(1)) }

func benchSearch(b *testing.B, leaf bool) {
	pages, keys := searchPages(20000, leaf, 100)
	r := newRand()
	type probe struct {
		p   []byte
		key []byte
	}
	probes := make([]probe, 1<<16)
	for i := range probes {
		pi := r.Intn(len(pages))
		k := bytes.Clone(keys[pi][r.Intn(len(keys[pi]))])
		if !leaf {
			k[15]++ // between two branch keys
		}
		probes[i] = probe{pages[pi], k}
	}
	b.ResetTimer()
	sink := 0
	for i := 0; i < b.N; i++ {
		pr := &probes[i&(len(probes)-1)]
		if leaf {
			j, _ := searchLeaf(pr.p, pr.key)
			sink += j
		} else {
			sink += searchBranch(pr.p, pr.key)
		}
	}
	_ = sink
}

// BenchmarkSearchLeaf and BenchmarkSearchBranch measure one search of a
// page that is not in cache (20,000 pages, 80 MB), as a point read in a
// large tree does.
func BenchmarkSearchLeaf(b *testing.B)   { benchSearch(b, true) }
func BenchmarkSearchBranch(b *testing.B) { benchSearch(b, false) }

// BenchmarkEncodeLeaf measures encoding a leaf of 16-byte keys and 100-byte
// values decoded from another page, as a commit rewrites a changed leaf.
func BenchmarkEncodeLeaf(b *testing.B) {
	pages, _ := searchPages(1, true, 100)
	ins := decodeInto(pages[0], make([]inode, page.CountOf(pages[0]))).inodes
	p := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(p)
		encode(p, ins, true, 5, 1)
	}
}
