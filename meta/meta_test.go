package meta

import (
	"errors"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

func sample(tx page.TxID) Meta {
	return Meta{
		TxID: tx, PageSize: 4096, Version: Version,
		Root:     page.Ref{ID: 7, Checksum: 0xabc, TxID: tx},
		Freelist: page.Ref{ID: 9, Checksum: 0xdef, TxID: tx - 1},
		HWM:      12,
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tx := range []page.TxID{2, 3} {
		m := sample(tx)
		b := make([]byte, 4096)
		m.Encode(b)
		got, err := Decode(b, Slot(tx))
		if err != nil {
			t.Fatal(err)
		}
		if got != m {
			t.Fatalf("round trip: got %+v want %+v", got, m)
		}
		if ps, ok := PeekPageSize(b); !ok || ps != 4096 {
			t.Fatalf("PeekPageSize = %d %v", ps, ok)
		}
	}
}

// Every single-bit flip anywhere in the page must be rejected.
func TestEveryBitFlipDetected(t *testing.T) {
	b := make([]byte, 1024)
	m := sample(4)
	m.PageSize = 1024
	m.Encode(b)
	for i := 0; i < len(b)*8; i++ {
		c := append([]byte(nil), b...)
		c[i/8] ^= 1 << (i % 8)
		if _, err := Decode(c, 0); err == nil {
			t.Fatalf("flip of bit %d not detected", i)
		}
	}
}

func TestWrongSlotAndVersion(t *testing.T) {
	b := make([]byte, 4096)
	sample(2).Encode(b)
	if _, err := Decode(b, 1); !errors.Is(err, page.ErrCorrupt) {
		t.Fatalf("wrong slot: %v", err)
	}
	if _, err := Decode(b[:100], 0); !errors.Is(err, page.ErrCorrupt) {
		t.Fatalf("short: %v", err)
	}
	if _, err := Decode(b[:2048], 0); !errors.Is(err, page.ErrCorrupt) {
		t.Fatalf("wrong page size: %v", err)
	}
}
