package fuzz

import (
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"strings"
)

// Trash modes: what a sector that keeps none of its pending writes holds.
const (
	trashNone    = 0 // its durable bytes (a power-safe device)
	trashZero    = 1 // zeros (a device that loses a sector it was writing)
	trashGarbage = 2 // garbage
	nTrash       = 3
)

// sectorHist is the history of one sector touched since the last sync:
// vers[0] is its durable content, vers[k] its content right after the k-th
// pending write that touched it, made by pending entry writer[k].
type sectorHist struct {
	idx    int64
	vers   [][]byte
	writer []int
}

// histories replays st's pending changes over its durable content and
// returns the history of every touched sector, in sector order.
func histories(st *fileState) []sectorHist {
	buf := make([]byte, max(st.maxSize, int64(len(st.dur))))
	copy(buf, st.dur)
	size := int64(len(st.dur))
	byIdx := map[int64]*sectorHist{}
	var order []int64
	sector := func(s int64) []byte {
		out := make([]byte, sectorSize)
		lo := s * sectorSize
		if lo < size {
			copy(out, buf[lo:min(lo+sectorSize, size)])
		}
		return out
	}
	touch := func(s int64, writer int, before []byte) {
		h := byIdx[s]
		if h == nil {
			h = &sectorHist{idx: s, vers: [][]byte{before}, writer: []int{-1}}
			byIdx[s] = h
			order = append(order, s)
		}
		h.vers = append(h.vers, sector(s))
		h.writer = append(h.writer, writer)
	}
	durSector := func(s int64) []byte {
		out := make([]byte, sectorSize)
		lo := s * sectorSize
		if lo < int64(len(st.dur)) {
			copy(out, st.dur[lo:min(lo+sectorSize, int64(len(st.dur)))])
		}
		return out
	}
	for i, p := range st.pend {
		switch p.kind {
		case opWrite:
			end := p.off + int64(len(p.data))
			copy(buf[p.off:end], p.data)
			size = max(size, end)
			for s := p.off / sectorSize; s*sectorSize < end; s++ {
				touch(s, i, durSector(s))
			}
		case opGrow:
			if p.size < size {
				// A shrink zeroes what it cuts off: those sectors change.
				clear(buf[p.size:size])
				old := size
				size = p.size
				for s := p.size / sectorSize; s*sectorSize < old; s++ {
					touch(s, i, durSector(s))
				}
			}
			size = p.size
		}
	}
	out := make([]sectorHist, 0, len(order))
	slices.Sort(order)
	for _, s := range order {
		out = append(out, *byIdx[s])
	}
	return out
}

// imageSpec chooses one power-loss image: the file's size, and for every
// touched sector (in the order of histories) which version it holds.
type imageSpec struct {
	absent bool
	size   int64
	trash  uint8
	choice []uint8
	what   string // how the spec was made (for messages)
	// ordered: the image keeps a prefix of the pending changes in the
	// order they were made (with at most the last one torn). Used by the
	// NoSync oracle, which only promises exact states for such images.
	ordered bool
}

// String encodes the spec so that a failure can be replayed exactly:
// "size:trash:choices" with one base-36 digit per sector, or "absent".
func (s imageSpec) String() string {
	if s.absent {
		return "absent"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%d:", s.size, s.trash)
	for _, c := range s.choice {
		b.WriteString(strconv.FormatInt(int64(c), 36))
	}
	return b.String()
}

func parseImageSpec(str string) (imageSpec, error) {
	if str == "absent" {
		return imageSpec{absent: true}, nil
	}
	parts := strings.SplitN(str, ":", 3)
	if len(parts) != 3 {
		return imageSpec{}, fmt.Errorf("bad image spec %q", str)
	}
	size, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return imageSpec{}, err
	}
	trash, err := strconv.Atoi(parts[1])
	if err != nil || trash < 0 || trash >= nTrash {
		return imageSpec{}, fmt.Errorf("bad trash mode in %q", str)
	}
	s := imageSpec{size: size, trash: uint8(trash)}
	for _, r := range parts[2] {
		c, err := strconv.ParseInt(string(r), 36, 8)
		if err != nil {
			return imageSpec{}, err
		}
		s.choice = append(s.choice, uint8(c))
	}
	return s, nil
}

// build makes the bytes of the image spec chooses; ok is false for an
// absent file or a spec that does not fit the state.
func build(st *fileState, hs []sectorHist, spec imageSpec) ([]byte, bool) {
	if spec.absent || st.missing || len(spec.choice) != len(hs) {
		return nil, false
	}
	img := make([]byte, max(spec.size, int64(len(st.dur))))
	copy(img, st.dur)
	for j, h := range hs {
		c := int(spec.choice[j])
		if c >= len(h.vers) {
			return nil, false
		}
		lo := h.idx * sectorSize
		if lo >= int64(len(img)) {
			continue
		}
		dst := img[lo:min(lo+sectorSize, int64(len(img)))]
		switch {
		case c > 0:
			copy(dst, h.vers[c])
		case spec.trash == trashZero:
			clear(dst)
		case spec.trash == trashGarbage:
			garbage(dst, uint64(h.idx))
		}
	}
	return img[:spec.size], true
}

// level sizes the enumeration of images at a crash point.
type level struct {
	tearsPerWrite int  // sector boundaries tried per write (0: all)
	othersKept    bool // also tear each write with every other kept; lose single sectors, not pages
	lostPages     int  // pages lost alone, spread over the touched ones (0: all)
	comboLimit    int  // enumerate all per-sector combinations up to this many
	comboSamples  int  // otherwise sample this many
	trashAll      bool // every vector also in the zero and garbage modes
}

var (
	levelShort = level{tearsPerWrite: 4, lostPages: 6, comboLimit: 32, comboSamples: 6}
	levelTiny  = level{tearsPerWrite: 1, lostPages: 2, comboLimit: 4, comboSamples: 1}
	levelLong  = level{tearsPerWrite: 0, othersKept: true, comboLimit: 4096, comboSamples: 256, trashAll: true}
)

// enumerate lists the images to verify at a crash point: all pending
// changes dropped and all kept (at every size the changes reached), every
// prefix of them, each write dropped, each write torn at sector boundaries,
// each page (long level: each sector) lost alone, every per-sector
// combination (or a sample), and the zero and garbage variants.
func enumerate(st *fileState, hs []sectorHist, ps int, lv level, rng *rand.Rand) []imageSpec {
	if st.missing {
		return []imageSpec{{absent: true, what: "no file", ordered: true}}
	}
	var specs []imageSpec
	if st.absentToo {
		specs = append(specs, imageSpec{absent: true, what: "rename lost", ordered: true})
	}
	nw := len(st.pend)
	// vector gives each sector its newest version made by a write that
	// keep accepts (keep sees the sector's index in hs and the writer).
	vector := func(keep func(j, writer int) bool) []uint8 {
		v := make([]uint8, len(hs))
		for j, h := range hs {
			for k := len(h.vers) - 1; k >= 1; k-- {
				if keep(j, h.writer[k]) {
					v[j] = uint8(k)
					break
				}
			}
		}
		return v
	}
	sizes := sizeChoices(st)
	maxSize := st.maxSize
	sizeAfter := func(i int) int64 { // size once pending[0..i) are applied
		if i == 0 {
			return int64(len(st.dur))
		}
		return st.pend[i-1].size
	}
	add := func(v []uint8, what string, ordered bool, size int64) {
		specs = append(specs, imageSpec{size: size, choice: v, what: what, ordered: ordered})
	}
	all := func(v []uint8, what string, ordered bool) {
		for _, s := range sizes {
			add(v, fmt.Sprintf("%s, size %d", what, s), ordered && s == sizes[len(sizes)-1], s)
		}
	}
	// All dropped, all kept (the process-crash image among them).
	all(vector(func(int, int) bool { return false }), "all dropped", false)
	add(vector(func(int, int) bool { return false }), "all dropped", true, int64(len(st.dur)))
	all(vector(func(int, int) bool { return true }), "all kept", true)
	// Crash between changes: a prefix kept, in order.
	for i := 1; i < nw; i++ {
		add(vector(func(_, w int) bool { return w < i }), fmt.Sprintf("first %d kept", i), true, sizeAfter(i))
	}
	// Each write dropped, the others kept.
	for i := 0; i < nw; i++ {
		if st.pend[i].kind == opWrite {
			add(vector(func(_, w int) bool { return w != i }), fmt.Sprintf("write %d dropped", i), false, maxSize)
		}
	}
	// Each write torn at sector boundaries: its first b sectors kept.
	for i := 0; i < nw; i++ {
		p := st.pend[i]
		if p.kind != opWrite {
			continue
		}
		first := p.off / sectorSize
		nsec := (p.off+int64(len(p.data))+sectorSize-1)/sectorSize - first
		for _, b := range boundaries(nsec, lv.tearsPerWrite) {
			torn := func(j, w int) bool {
				return w < i || (w == i && hs[j].idx < first+b)
			}
			add(vector(torn), fmt.Sprintf("write %d torn after %d sectors", i, b), true, max(sizeAfter(i), min(p.size, (first+b)*sectorSize)))
			if lv.othersKept {
				add(vector(func(j, w int) bool { return w != i || hs[j].idx < first+b }), fmt.Sprintf("write %d torn after %d sectors, others kept", i, b), false, maxSize)
			}
		}
	}
	// Each page (or, in the long level, each sector) lost alone while
	// everything else landed: a commit that is whole but for one page.
	unit := int64(1)
	if !lv.othersKept {
		unit = int64(ps) / sectorSize
	}
	var groups []int64
	for _, h := range hs {
		if g := h.idx / unit; len(groups) == 0 || groups[len(groups)-1] != g {
			groups = append(groups, g)
		}
	}
	if lv.lostPages > 0 && len(groups) > lv.lostPages {
		var spread []int64
		for _, b := range boundaries(int64(len(groups))+1, lv.lostPages) {
			spread = append(spread, groups[b-1])
		}
		groups = spread
	}
	for _, g := range groups {
		add(vector(func(j, _ int) bool { return hs[j].idx/unit != g }), fmt.Sprintf("sectors [%d,%d) lost", g*unit, (g+1)*unit), false, maxSize)
	}
	// Per-sector combinations.
	total := 1
	for _, h := range hs {
		if total *= len(h.vers); total > lv.comboLimit {
			break
		}
	}
	if len(hs) > 0 && total <= lv.comboLimit {
		v := make([]uint8, len(hs))
		for {
			add(clone(v), "combination", false, maxSize)
			j := 0
			for ; j < len(hs); j++ {
				if v[j]++; int(v[j]) < len(hs[j].vers) {
					break
				}
				v[j] = 0
			}
			if j == len(hs) {
				break
			}
		}
	} else if len(hs) > 0 {
		for n := 0; n < lv.comboSamples; n++ {
			v := make([]uint8, len(hs))
			for j, h := range hs {
				v[j] = uint8(rng.Intn(len(h.vers)))
			}
			add(v, "sampled combination", false, sizes[rng.Intn(len(sizes))])
		}
	}
	// Trash modes: sectors that keep no pending write hold zeros or
	// garbage. Always for the dropped and torn images; for all with trashAll.
	n := len(specs)
	for i := 0; i < n; i++ {
		s := specs[i]
		if s.absent || (!lv.trashAll && !strings.Contains(s.what, "dropped") && !strings.Contains(s.what, "torn")) {
			continue
		}
		for t := uint8(1); t < nTrash; t++ {
			c := s
			c.trash, c.ordered = t, false
			c.what = fmt.Sprintf("%s, trash %d", s.what, t)
			specs = append(specs, c)
		}
	}
	return specs
}

// sizeChoices lists the file sizes a power loss may leave: the durable
// size, every size the pending changes produced, and the largest.
func sizeChoices(st *fileState) []int64 {
	seen := map[int64]bool{}
	var out []int64
	addSize := func(s int64) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	addSize(int64(len(st.dur)))
	for _, p := range st.pend {
		addSize(p.size)
	}
	addSize(st.maxSize)
	// Keep the largest last (the "all kept" image at that size is the
	// process-crash image).
	for i, s := range out {
		if s == st.maxSize {
			out = append(append(out[:i:i], out[i+1:]...), s)
			break
		}
	}
	return out
}

// boundaries returns the tear points 1..n-1 of an n-sector write, all of
// them or about limit spread evenly (always including the first and last).
func boundaries(n int64, limit int) []int64 {
	var out []int64
	if n < 2 {
		return nil
	}
	if limit <= 0 || n-1 <= int64(limit) {
		for b := int64(1); b < n; b++ {
			out = append(out, b)
		}
		return out
	}
	step := float64(n-2) / float64(limit-1)
	last := int64(0)
	for i := 0; i < limit; i++ {
		b := 1 + int64(float64(i)*step+0.5)
		if b > last && b < n {
			out = append(out, b)
			last = b
		}
	}
	return out
}

// garbage fills b with bytes that depend only on seed (splitmix64).
func garbage(b []byte, seed uint64) {
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := 0; i < len(b); i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(z >> (8 * j))
		}
	}
}
