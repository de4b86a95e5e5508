package meta

import (
	"errors"
	"testing"

	"github.com/cowfile/cowfile/pager/page"
)

// pages is an in-memory file for Follow: page id -> bytes.
type pages map[page.ID][]byte

func (p pages) read(id page.ID) []byte { return p[id] }

const tps = 1024 // page size of these tests

// record returns commit tx's record at page at, following prev.
func record(prev *Meta, tx page.TxID, at, next page.ID) Meta {
	m := Meta{TxID: tx, PageSize: tps, Version: Version, Flags: FlagRecord, HWM: 64, Next: next, Prev: Link(prev)}
	m.Chain, m.ChainLen = prev.Chain, prev.ChainLen
	m.Chain[m.ChainLen] = at
	m.ChainLen++
	return m
}

func encodeAt(m Meta, at page.ID) []byte {
	b := make([]byte, tps)
	if at < 2 {
		m.Encode(b)
	} else {
		m.EncodeRecord(b, at)
	}
	return b
}

// chain builds slot meta tx 5 (slot 1) and records 6, 7, 8 at pages 10,
// 11, 12, the last reserving page 13.
func chain(t *testing.T) (pages, []Meta) {
	t.Helper()
	base := Meta{TxID: 5, PageSize: tps, Version: Version, HWM: 64, Next: 10}
	ms := []Meta{base}
	p := pages{1: encodeAt(base, 1)}
	for i, at := range []page.ID{10, 11, 12} {
		r := record(&ms[i], page.TxID(6+i), at, at+1)
		p[at] = encodeAt(r, at)
		ms = append(ms, r)
	}
	return p, ms
}

func TestRecordRoundTrip(t *testing.T) {
	p, ms := chain(t)
	for i, at := range []page.ID{10, 11, 12} {
		got, err := Decode(p[at], at)
		if err != nil {
			t.Fatal(err)
		}
		if got != ms[i+1] {
			t.Fatalf("record at %d: got %+v want %+v", at, got, ms[i+1])
		}
		if got.Page() != at || !got.IsRecord() {
			t.Fatalf("record at %d: Page %d IsRecord %v", at, got.Page(), got.IsRecord())
		}
	}
	if _, err := Decode(p[10], 11); !errors.Is(err, page.ErrCorrupt) {
		t.Fatalf("record read at another page: %v", err)
	}
	// A record's bytes in a slot, a slot meta's bytes at a record's page.
	r := ms[1]
	if _, err := Decode(encodeAt(r, 0), 0); !errors.Is(err, page.ErrCorrupt) {
		t.Fatalf("record in a slot: %v", err)
	}
	if _, err := Decode(encodeAt(ms[0], 1), 1); err != nil {
		t.Fatal(err)
	}
	s := ms[0]
	b := make([]byte, tps)
	s.EncodeRecord(b, 10)
	if _, err := Decode(b, 10); !errors.Is(err, page.ErrCorrupt) {
		t.Fatalf("slot meta (no FlagRecord) at a record's page: %v", err)
	}
}

// Decode refuses chains a writer never makes.
func TestDecodeRejectsBadChains(t *testing.T) {
	_, ms := chain(t)
	last := ms[3] // record at 12, chain 10, 11, 12
	cases := map[string]func(m *Meta) page.ID{
		"page listed twice":        func(m *Meta) page.ID { m.Chain[0] = 11; return 12 },
		"page past the HWM":        func(m *Meta) page.ID { m.Chain[0] = 64; return 12 },
		"meta page in the chain":   func(m *Meta) page.ID { m.Chain[0] = 1; return 12 },
		"own page not last":        func(m *Meta) page.ID { m.Chain[1], m.Chain[2] = 12, 11; return 12 },
		"split past the chain":     func(m *Meta) page.ID { m.Split = 4; return 12 },
		"next in the chain":        func(m *Meta) page.ID { m.Next = 10; return 12 },
		"next past the HWM":        func(m *Meta) page.ID { m.Next = 65; return 12 },
		"empty chain in a record":  func(m *Meta) page.ID { m.ChainLen = 0; return 12 },
		"recorded slot, no chain":  func(m *Meta) page.ID { m.Flags, m.ChainLen = FlagRecorded, 0; return 0 },
		"record flagged recorded":  func(m *Meta) page.ID { m.Flags |= FlagRecorded; return 12 },
		"slot meta flagged record": func(m *Meta) page.ID { m.TxID = 8; return 0 },
	}
	for name, f := range cases {
		m := last
		at := f(&m)
		var b []byte
		if at < 2 {
			b = make([]byte, tps)
			m.encode(b, at) // keeps the flags as set
		} else {
			b = encodeAt(m, at)
		}
		if _, err := Decode(b, at); !errors.Is(err, page.ErrCorrupt) {
			t.Errorf("%s: Decode = %v", name, err)
		}
	}
	// More records than a meta holds.
	b := encodeAt(last, 12)
	b[offChainLen] = MaxChain + 1
	page.Seal(b)
	if _, err := Decode(b, 12); !errors.Is(err, page.ErrCorrupt) {
		t.Errorf("chain of %d: %v", MaxChain+1, err)
	}
}

func TestFollow(t *testing.T) {
	p, ms := chain(t)
	w := Follow(ms[0], p.read)
	if len(w.Records) != 3 || w.Damaged != nil {
		t.Fatalf("walk: %d records, damaged %v", len(w.Records), w.Damaged)
	}
	for i, r := range w.Records {
		if r != ms[i+1] {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// A walk from a slot copy of record 6 (same Link) reaches 7 and 8.
	copy6 := ms[1]
	copy6.Flags = FlagRecorded
	if w := Follow(copy6, p.read); len(w.Records) != 2 || w.Records[1].TxID != 8 {
		t.Fatalf("walk from a slot copy: %+v", w)
	}

	// Whatever lies at the next reserved page ends the walk quietly unless
	// it claims to be a later record there: an older record, a tree page,
	// a record of a later commit that follows another one.
	stale := record(&ms[0], 4, 13, 0)
	p[13] = encodeAt(stale, 13)
	if w := Follow(ms[0], p.read); len(w.Records) != 3 || w.Damaged != nil {
		t.Fatalf("stale record: %d records, damaged %v", len(w.Records), w.Damaged)
	}
	other := Meta{TxID: 6, PageSize: tps, HWM: 64}
	alien := record(&other, 9, 13, 0)
	p[13] = encodeAt(alien, 13)
	if w := Follow(ms[0], p.read); len(w.Records) != 3 || w.DamagedTxID != 9 {
		t.Fatalf("record of another chain: %d records, damaged %v (tx %d)", len(w.Records), w.Damaged, w.DamagedTxID)
	}
	delete(p, 13)

	// One bit flipped anywhere in record 7 ends the walk at record 6, and
	// the walk reports it: through the header (a later record claimed at
	// that page) or through the body (Prev names record 6).
	good := p[11]
	for bit := 0; bit < tps*8; bit++ {
		b := append([]byte(nil), good...)
		b[bit/8] ^= 1 << (bit % 8)
		p[11] = b
		w := Follow(ms[0], p.read)
		if len(w.Records) != 1 {
			t.Fatalf("bit %d: %d records", bit, len(w.Records))
		}
		if w.Damaged == nil {
			t.Fatalf("bit %d flipped: not reported", bit)
		}
	}
	p[11] = good
}

// A walk reads at most maxWalk records, whatever a file holds.
func TestFollowIsBounded(t *testing.T) {
	base := Meta{TxID: 1, PageSize: tps, Version: Version, HWM: 1 << 20, Next: 2}
	p := pages{}
	prev := base
	for i := 0; i < 3*maxWalk; i++ {
		at := page.ID(2 + i)
		r := Meta{TxID: prev.TxID + 1, PageSize: tps, Version: Version, Flags: FlagRecord, HWM: 1 << 20, Next: at + 1, Prev: Link(&prev)}
		r.Chain[0], r.ChainLen = at, 1
		p[at] = encodeAt(r, at)
		prev = r
	}
	if w := Follow(base, p.read); len(w.Records) != maxWalk {
		t.Fatalf("walk read %d records, bound %d", len(w.Records), maxWalk)
	}
}

// A record torn after its fields' sector stays invalid whatever another
// write puts in the missing sector, as for a meta slot.
func TestTornRecordCannotBeCompleted(t *testing.T) {
	_, ms := chain(t)
	own := encodeAt(ms[2], 11)
	later := ms[2]
	later.TxID += 2
	wipe := make([]byte, tps)
	Wipe(wipe)
	for name, src := range map[string][]byte{"zeros": make([]byte, tps), "a wipe": wipe, "a later record": encodeAt(later, 11)} {
		b := append([]byte(nil), own...)
		copy(b[512:], src[512:])
		if _, err := Decode(b, 11); err == nil {
			t.Fatalf("second sector from %s completes the record", name)
		}
	}
}

// Link ignores where a meta is written and its flags, and nothing else.
func TestLink(t *testing.T) {
	_, ms := chain(t)
	r := ms[2]
	s := r
	s.Flags = FlagRecorded
	if Link(&r) != Link(&s) {
		t.Fatal("a slot copy of a record links differently")
	}
	for name, f := range map[string]func(m *Meta){
		"txid": func(m *Meta) { m.TxID++ }, "root": func(m *Meta) { m.Root.Checksum++ },
		"free-space log": func(m *Meta) { m.Freelist.ID++ }, "snapshots": func(m *Meta) { m.Snapshots.TxID++ },
		"hwm": func(m *Meta) { m.HWM++ }, "next": func(m *Meta) { m.Next++ }, "prev": func(m *Meta) { m.Prev++ },
	} {
		c := r
		f(&c)
		if Link(&c) == Link(&r) {
			t.Errorf("%s does not change the link", name)
		}
	}
}
