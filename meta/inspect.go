package meta

import (
	"encoding/binary"

	"github.com/cowfile/cowfile/pager/page"
)

// DecodeUnchecked decodes the fields of the meta page b without verifying
// anything, so that inspection tools can show what a damaged meta says.
// ok is false if b is too short to hold the fields. Use Decode for
// anything that trusts the result.
func DecodeUnchecked(b []byte) (m Meta, ok bool) {
	if len(b) < Size {
		return Meta{}, false
	}
	m, _, _ = fields(b)
	m.TxID = page.GetHeader(b).TxID
	return m, true
}

// fields decodes the fields of the meta page b (at least Size bytes) as
// they stand, but the txid (the header's). The fields of format 4 are read
// only from a meta that says it is of format 4 or later (older metas have
// filler there), the chain and split at most MaxChain; n and split are
// the chain's length and split as stored, for Decode to check.
func fields(b []byte) (m Meta, n, split uint32) {
	m = Meta{
		PageSize:  int(binary.LittleEndian.Uint32(b[offPageSize:])),
		Version:   binary.LittleEndian.Uint32(b[offVersion:]),
		Flags:     binary.LittleEndian.Uint32(b[offFlags:]),
		Root:      page.GetRef(b[offRoot:]),
		Freelist:  page.GetRef(b[offFreelist:]),
		Snapshots: page.GetRef(b[offSnapshots:]),
		HWM:       page.ID(binary.LittleEndian.Uint64(b[offHWM:])),
	}
	if m.Version < 4 {
		return m, 0, 0
	}
	m.Next = page.ID(binary.LittleEndian.Uint64(b[offNext:]))
	m.Prev = binary.LittleEndian.Uint64(b[offPrev:])
	n, split = binary.LittleEndian.Uint32(b[offChainLen:]), binary.LittleEndian.Uint32(b[offSplit:])
	m.ChainLen = int(min(n, MaxChain))
	m.Split = int(min(split, uint32(m.ChainLen)))
	for i := range m.ChainLen {
		m.Chain[i] = page.ID(binary.LittleEndian.Uint64(b[offChain+8*i:]))
	}
	return m, n, split
}
