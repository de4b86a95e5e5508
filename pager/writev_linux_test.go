package pager

import (
	"bytes"
	"testing"
)

func TestAdvance(t *testing.T) {
	a, b, c := []byte("abc"), []byte("de"), []byte("fghi")
	for n, want := range map[int]string{0: "abcdefghi", 2: "cdefghi", 3: "defghi", 4: "efghi", 5: "fghi", 8: "i", 9: ""} {
		bufs := [][]byte{a, b, c}
		got := bytes.Join(advance(bufs, n), nil)
		if string(got) != want {
			t.Errorf("advance(%d) = %q, want %q", n, got, want)
		}
		if string(bytes.Join(bufs, nil)) != "abcdefghi" {
			t.Errorf("advance(%d) modified its input", n)
		}
	}
}
