package fuzz

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/cowfile/cowfile"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
)

// baseFile is a closed database file built for corruption trials, with
// the model state of its last two commits and the file after every commit.
type baseFile struct {
	ps          int
	img         []byte
	history     [][]byte // the file after each commit, oldest first
	final, prev string   // model dumps of the last commit and the one before
	runs        map[page.ID]page.ID
	free        []page.ID // pages below the HWM that the last version does not reach
	txid        uint64
	// dumpAt holds the model dump of each version the file holds, by
	// txid (Close may write the last version's meta to a slot under the
	// next txid); floor is the txid of the commit before the last one.
	// records maps the commit records in use to their commits' txids,
	// logRuns the free-space log's runs to the txids that wrote them.
	dumpAt  map[uint64]string
	floor   uint64
	records map[page.ID]uint64
	logRuns map[page.ID]uint64
}

// manyKeys fills bucket "t" with n small keys, enough for a multi-level
// tree at small page sizes.
func manyKeys(n int) []action {
	as := []action{{kind: "mkb", key: "t"}}
	for i := 0; i < n; i++ {
		as = append(as, action{kind: "put", path: []string{"t"}, key: fmt.Sprintf("key%05d", i), val: fmt.Sprintf("value %d", i*i)})
	}
	return as
}

// buildBase commits a mix of everything (nested buckets, large values, a
// multi-level tree, deletes that leave free pages) and closes the file.
// With open, the file is taken as it is before Close — as a crash leaves
// it, its last commits held by commit records only — and closed after.
func buildBase(t testing.TB, ps int, open bool) *baseFile {
	dir := scratchDir(t)
	path := filepath.Join(dir, "base.cow")
	db, err := cowfile.Open(path, &cowfile.Options{PageSize: ps})
	if err != nil {
		t.Fatal(err)
	}
	bf := &baseFile{ps: ps}
	root := newMBucket()
	var dumps []string
	steps := [][]action{manyKeys(12 * ps / 64)}
	for i, op := range []uint8{opGrowth, opLarge, opMkB, opPut, opReuse, opLarge2, opDel, opPut, opMkB} {
		steps = append(steps, actions(op, root, i+1, ps))
		applyModel(root, steps[len(steps)-1])
	}
	root = newMBucket()
	bf.dumpAt, bf.records, bf.logRuns = map[uint64]string{}, map[page.ID]uint64{}, map[page.ID]uint64{}
	var txids []uint64
	for _, as := range steps {
		if err := db.Update(func(tx *cowfile.Tx) error { return applyTx(tx, as) }); err != nil {
			t.Fatal(err)
		}
		applyModel(root, as)
		dumps = append(dumps, dumpModel(root))
		txids = append(txids, db.Stats().TxID)
		bf.dumpAt[txids[len(txids)-1]] = dumps[len(dumps)-1]
		bf.history = append(bf.history, readAll(path))
	}
	if open {
		bf.img = readAll(path)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !open {
		bf.img = readAll(path)
	}
	bf.final, bf.prev = dumps[len(dumps)-1], dumps[len(dumps)-2]
	bf.floor = txids[len(txids)-2]
	metas, _ := decodeMetas(bf.img, ps)
	for _, m := range metas {
		bf.txid = max(bf.txid, uint64(m.TxID))
	}
	bf.dumpAt[bf.txid] = bf.final // Close's copy of the last version's meta
	m := findMeta(bf.img, ps, bf.txid)
	if m == nil {
		t.Fatalf("base file: meta of tx %d missing", bf.txid)
	}
	if bf.runs, err = reachRuns(bf.img, ps, &m.Meta); err != nil {
		t.Fatal(err)
	}
	for id, first := range bf.runs {
		if h := page.GetHeader(bf.img[int(id)*ps:]); id == first && h.Type >= page.TypeFreeDelta && h.Type <= page.TypeFreeSweep {
			bf.logRuns[id] = uint64(h.TxID)
		}
	}
	for _, id := range m.ChainPages() {
		r, err := meta.Decode(bf.img[int(id)*ps:int(id+1)*ps], id)
		if err != nil {
			t.Fatalf("base file: commit record at page %d: %v", id, err)
		}
		bf.runs[id], bf.records[id] = id, uint64(r.TxID)
	}
	for id := page.ID(2); id < m.HWM; id++ {
		if _, ok := bf.runs[id]; !ok {
			bf.free = append(bf.free, id)
		}
	}
	return bf
}

// reachable returns the reachable pages in order.
func (bf *baseFile) reachable() []page.ID { return sortedIDs(bf.runs) }

// names reports whether err wraps ErrCorrupt and names page id.
func names(err error, id page.ID) bool {
	if err == nil || !errors.Is(err, cowfile.ErrCorrupt) {
		return false
	}
	return regexp.MustCompile(fmt.Sprintf(`\bpage %d\b`, id)).MatchString(err.Error())
}

// judgeCorrupt decides a trial that damaged page (or run) id: the damage
// must be reported — Open fails naming it, or Open falls back and says
// why naming it, or reads and Check report it naming it — and no read may
// return a wrong value.
func judgeCorrupt(o *obs, id page.ID, bf *baseFile) (class, msg string) {
	switch {
	case o.panicked != "":
		return "panic", o.panicked
	case o.openErr != nil:
		if names(o.openErr, id) {
			return "", ""
		}
		return "open error does not name the page", o.openErr.Error()
	}
	// Damage to a meta or a tree page may cost the last commit; damage to
	// a commit record in use, or to a run of the free-space log (which
	// every version since the one that wrote it loads at open), the
	// commits from its own on.
	floor := bf.floor
	if t, ok := bf.records[id]; ok {
		floor = min(floor, t-1)
	}
	if t, ok := bf.logRuns[id]; ok {
		floor = min(floor, t-1)
	}
	want, ok := bf.dumpAt[o.txid]
	if !ok || o.txid < floor {
		return "wrong version", fmt.Sprintf("opened tx %d; the file holds tx %d, and may fall back to tx %d", o.txid, bf.txid, floor)
	}
	detected := false
	if o.fellBack {
		if !regexp.MustCompile(fmt.Sprintf(`\bpage %d\b`, id)).MatchString(o.reason) {
			return "fallback does not name the page", o.reason
		}
		detected = true
	}
	if o.dumpErr == nil && o.dump != want {
		return "wrong values", diffDumps(want, o.dump)
	}
	if o.dumpErr != nil {
		if !names(o.dumpErr, id) {
			return "read error does not name the page", o.dumpErr.Error()
		}
		detected = true
	}
	if o.checkErr != nil {
		if !names(o.checkErr, id) {
			return "Check does not name the page", o.checkErr.Error()
		}
		detected = true
	}
	if !detected {
		if _, ok := bf.records[id]; ok && o.txid < bf.txid && o.dumpErr == nil && o.checkErr == nil {
			// The walk ended at the record before, which it could not
			// tell from the end of the chain; that version is intact.
			return "record dropped quietly", ""
		}
		return "undetected", "opened, read and checked without a word"
	}
	return "", ""
}

// corruption is one trial: a damaged copy of the base file and the page
// (first page of the run) the damage is in.
type corruption struct {
	what  string
	id    page.ID
	apply func(b []byte) // damages a copy of the base file
}

// image returns the damaged copy, or nil if the damage changes nothing
// (zeroing zeros), which is no trial.
func (c corruption) image(bf *baseFile) []byte {
	b := clone(bf.img)
	c.apply(b)
	if string(b) == string(bf.img) {
		return nil
	}
	return b
}

// corruptions lists the trials for bf. Short: a sample of meta bits and a
// few of each kind per reachable page; long: every meta bit and more.
func corruptions(bf *baseFile, long bool, rng *rand.Rand) []corruption {
	ps := bf.ps
	var out []corruption
	mutate := func(what string, id page.ID, f func(b []byte)) {
		out = append(out, corruption{what, id, f})
	}
	// Every bit (long) or a sample (short) of both metas.
	for slot := 0; slot < 2; slot++ {
		for bit := 0; bit < ps*8; bit++ {
			if !long && !(bit < 1100 && bit%7 == slot) && rng.Intn(ps*8) >= 24 {
				continue
			}
			mutate(fmt.Sprintf("meta %d bit %d flipped", slot, bit), page.ID(slot), func(b []byte) {
				b[slot*ps+bit/8] ^= 1 << (bit % 8)
			})
		}
	}
	reach := bf.reachable()
	flips, sectors := 1, 1
	if long {
		flips, sectors = 16, ps/sectorSize
	}
	for _, p := range reach {
		run := bf.runs[p]
		off := int(p) * ps
		for i := 0; i < flips; i++ {
			bit := rng.Intn(ps * 8)
			mutate(fmt.Sprintf("page %d bit %d flipped", p, bit), run, func(b []byte) { b[off+bit/8] ^= 1 << (bit % 8) })
		}
		for i := 0; i < sectors; i++ {
			s := i
			if !long {
				s = rng.Intn(ps / sectorSize)
			}
			mutate(fmt.Sprintf("page %d sector %d zeroed", p, s), run, func(b []byte) { clear(b[off+s*sectorSize : off+(s+1)*sectorSize]) })
		}
		mutate(fmt.Sprintf("page %d zeroed", p), run, func(b []byte) { clear(b[off : off+ps]) })
		// A misdirected write: another reachable page's bytes land here.
		q := reach[rng.Intn(len(reach))]
		if q != p {
			mutate(fmt.Sprintf("page %d copied over page %d", q, p), run, func(b []byte) {
				copy(b[off:off+ps], bf.img[int(q)*ps:int(q+1)*ps])
			})
		}
		// A lost write: an older, self-consistent version of the page.
		for h := len(bf.history) - 2; h >= 0; h-- {
			old := bf.history[h]
			if len(old) < off+ps {
				continue
			}
			o := old[off : off+ps]
			hd := page.GetHeader(o)
			if hd.ID == p && hd.Span == 1 && page.VerifySum(o, p) == nil && string(o) != string(bf.img[off:off+ps]) {
				mutate(fmt.Sprintf("page %d: version of tx %d put back", p, hd.TxID), run, func(b []byte) { copy(b[off:off+ps], o) })
				break
			}
		}
	}
	return out
}

// TestCorruption damages closed files in every way a disk can, and checks
// that Open, a full read and Check report it naming the page, with no
// panic and no wrong value; damage to pages nothing reaches must change
// nothing.
func TestCorruption(t *testing.T) {
	c := &counters{}
	t.Cleanup(func() { c.log(t) })
	long := longRun()
	sizes := []int{1024, 4096}
	if long {
		sizes = nil
		for _, ps := range pageSizes {
			if envListHas("COWFILE_PS", ps) {
				sizes = append(sizes, ps)
			}
		}
	}
	type base struct {
		ps   int
		open bool
	}
	var bases []base
	for _, ps := range sizes {
		bases = append(bases, base{ps, false}, base{ps, true})
	}
	for _, b := range bases {
		ps := b.ps
		name := fmt.Sprintf("ps%d", ps)
		if b.open {
			name += "-unclosed"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bf := buildBase(t, ps, b.open)
			dir := scratchDir(t)
			rng := rand.New(rand.NewSource(int64(ps)))
			trials := corruptions(bf, long, rng)
			if !long && ps > 1024 {
				rng.Shuffle(len(trials), func(i, j int) { trials[i], trials[j] = trials[j], trials[i] })
				trials = trials[:min(len(trials), 150)]
			}
			shown, n := 0, 0
			for i, tr := range trials {
				img := tr.image(bf)
				if img == nil {
					continue
				}
				c.corruptionTrials.Add(1)
				n++
				o := openImage(filepath.Join(dir, fmt.Sprintf("c%d.cow", i)), img, false, ps)
				os.Remove(filepath.Join(dir, fmt.Sprintf("c%d.cow", i)))
				class, msg := judgeCorrupt(o, tr.id, bf)
				switch class {
				case "":
					continue
				case "record dropped quietly":
					c.recordsDroppedQuietly.Add(1)
					continue
				case "panic":
					c.panics.Add(1)
				case "wrong values":
					c.wrongValues.Add(1)
				default:
					c.undetected.Add(1)
				}
				if shown++; shown <= 8 {
					t.Errorf("%s (page %d): %s: %s", tr.what, tr.id, class, msg)
				} else {
					t.Fail()
				}
			}
			// Controls: damage to free pages must go unnoticed and harmless.
			for i, p := range bf.free {
				if i >= 8 && !long {
					break
				}
				b := clone(bf.img)
				b[int(p)*ps+rng.Intn(ps)] ^= 0x5a
				o := openImage(filepath.Join(dir, "free.cow"), b, false, ps)
				os.Remove(filepath.Join(dir, "free.cow"))
				if o.panicked != "" || o.openErr != nil || o.fellBack || o.dumpErr != nil || o.checkErr != nil || o.dump != bf.final {
					c.otherFailures.Add(1)
					t.Errorf("damage to free page %d was not harmless: %v", p, o)
				}
			}
			t.Logf("ps %d: %d trials on %d reachable and %d free pages", ps, n, len(bf.runs), len(bf.free))
		})
	}
}
