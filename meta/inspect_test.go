package meta

import (
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// DecodeUnchecked shows what a damaged meta says.
func TestDecodeUnchecked(t *testing.T) {
	m := Meta{TxID: 7, PageSize: 1024, Version: Version, Root: page.Ref{ID: 3, Checksum: 9, TxID: 7}, HWM: 10}
	b := make([]byte, 1024)
	m.Encode(b)
	b[Size+10] ^= 1 // breaks the checksum only
	if _, err := Decode(b, 1); err == nil {
		t.Fatal("Decode accepted a damaged meta")
	}
	got, ok := DecodeUnchecked(b)
	if !ok || got != m {
		t.Fatalf("DecodeUnchecked = %+v, %v", got, ok)
	}
	if _, ok := DecodeUnchecked(b[:Size-1]); ok {
		t.Error("short page decoded")
	}
}
