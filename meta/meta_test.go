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

// TestTornMetaCannotBeCompleted checks that a meta torn after its fields'
// sector (one sector lost or garbage) stays invalid whatever a later write
// or the device puts in that sector: zeros, a wipe, or the same sector of
// another commit's meta for the same slot. Only its own bytes complete it.
func TestTornMetaCannotBeCompleted(t *testing.T) {
	const sector = 512
	for _, ps := range []int{1024, 4096, 16384} {
		enc := func(tx page.TxID) []byte {
			b := make([]byte, ps)
			Meta{TxID: tx, PageSize: ps, HWM: 10}.Encode(b)
			return b
		}
		const tx = 7
		own := enc(tx)
		wipe := make([]byte, ps)
		Wipe(wipe)
		sources := map[string][]byte{
			"zeros": make([]byte, ps), "a wipe": wipe, "tx 9's meta": enc(tx + 2), "tx 5's meta": enc(tx - 2),
		}
		for s := 1; s < ps/sector; s++ { // sector 0 holds the fields
			for name, src := range sources {
				b := append([]byte(nil), own...)
				copy(b[s*sector:(s+1)*sector], src[s*sector:(s+1)*sector])
				if _, err := Decode(b, Slot(tx)); err == nil {
					t.Fatalf("ps %d: sector %d from %s completes tx %d's meta", ps, s, name, tx)
				}
			}
			b := append([]byte(nil), own...)
			if _, err := Decode(b, Slot(tx)); err != nil {
				t.Fatalf("ps %d: the meta's own bytes: %v", ps, err)
			}
		}
		if _, err := Decode(wipe, 0); err == nil {
			t.Fatal("a wiped slot decodes as a meta")
		}
	}
}
