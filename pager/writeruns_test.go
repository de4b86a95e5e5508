package pager

import (
	"bytes"
	"os"
	"testing"
)

// Many scattered runs in one call (a commit of random changes): every byte
// must land where it belongs, and the file grow to the last run.
func TestWritePagesManyRuns(t *testing.T) {
	const ps = 4096
	p, path := openNew(t, image(2*ps, 1), Options{})
	want := image(2*ps, 1)
	var runs []Run
	for i := 0; i < 200; i++ {
		off := int64(2+3*i) * ps // a hole of two pages between runs
		a, b := image(ps, byte(i)), image(ps, byte(i)+100)
		runs = append(runs, Run{Off: off, Bufs: [][]byte{a, b}})
		for int64(len(want)) < off+2*ps {
			want = append(want, make([]byte, ps)...)
		}
		copy(want[off:], a)
		copy(want[off+ps:], b)
	}
	if err := p.WritePages(runs); err != nil {
		t.Fatal(err)
	}
	if p.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", p.Size(), len(want))
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("file content differs from the runs written")
	}
	m := p.Acquire()
	defer m.Release()
	last := runs[len(runs)-1]
	b, err := m.Bytes(last.Off+ps, ps)
	if err != nil || !bytes.Equal(b, last.Bufs[1]) {
		t.Fatalf("map of the last page: %v", err)
	}
}
