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
	h := page.GetHeader(b)
	return Meta{
		TxID:      h.TxID,
		PageSize:  int(binary.LittleEndian.Uint32(b[offPageSize:])),
		Version:   binary.LittleEndian.Uint32(b[offVersion:]),
		Flags:     binary.LittleEndian.Uint32(b[offFlags:]),
		Root:      page.GetRef(b[offRoot:]),
		Freelist:  page.GetRef(b[offFreelist:]),
		Snapshots: page.GetRef(b[offSnapshots:]),
		HWM:       page.ID(binary.LittleEndian.Uint64(b[offHWM:])),
	}, true
}
