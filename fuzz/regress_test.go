package fuzz

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cowfile/cowfile"
	"github.com/cowfile/cowfile/pager/page"
)

// Regression: a commit dropped at recovery came back after a second crash.
//
// Commit T (a large value) is torn by a power loss: its meta landed, one page
// of its value run did not, so Open falls back to T-1. The next commit used
// txid T again and wrote the same value to the same pages, byte for byte. A
// crash after those pages landed but before the new meta left the old meta T
// in its slot with every page it references whole again: Open recovered T,
// a state neither acknowledged nor in flight. The fix: after passing over a
// valid newer meta, the next commit skips past its txid.
func TestRegressionDroppedCommitReturns(t *testing.T) {
	for _, ps := range pageSizes {
		c := &counters{}
		ob := newObserver(t, c)
		r := newCrashRun(t, ob, c, ps, cowfile.Sync, levelShort, nil)
		ops := []uint8{opLarge}
		replay := crashCase{ps: ps, mode: cowfile.Sync, phases: []phase{{ops: ops}}}
		var torn []byte
		var tornPoint int
		var tornSpec string
		r.session(sessionCfg{ops: ops, replay: replay, visit: func(p *point) {
			// Right after the meta write, before the sync: keep every
			// sector but those of the value run's first page.
			if torn != nil || !p.ev.after || p.ev.kind != opWrite || p.ev.off >= int64(2*ps) || filepath.Ext(p.ev.name) != ".cow" {
				return
			}
			vp := valuePage(p.st.cur, ps)
			if vp == 0 {
				t.Fatalf("ps %d: no value run in the file", ps)
			}
			spec := imageSpec{size: p.st.maxSize}
			for _, h := range p.hs {
				keep := uint8(len(h.vers) - 1)
				if h.idx*sectorSize/int64(ps) == int64(vp) {
					keep = 0
				}
				spec.choice = append(spec.choice, keep)
			}
			torn, _ = build(p.st, p.hs, spec)
			tornPoint, tornSpec = p.n, spec.String()
		}})
		if torn == nil {
			t.Fatalf("ps %d: the meta write was never seen", ps)
		}
		o := ob.observe(torn, false, ps)
		if o.openErr != nil || !o.fellBack || serialOf(o.dump) != 0 {
			t.Fatalf("ps %d: the torn image should fall back to the empty state: %v", ps, o)
		}
		// Now the same value under another key, crashed at every point, with
		// every tear (the one that matters keeps exactly the value run).
		rng := rand.New(rand.NewSource(1))
		replay2 := crashCase{ps: ps, mode: cowfile.Sync, phases: []phase{
			{ops: ops, point: tornPoint, image: tornSpec}, {ops: []uint8{opLarge2}}}}
		directed := false
		r.session(sessionCfg{start: torn, startSerial: 0, ops: []uint8{opLarge2}, replay: replay2,
			visit: func(p *point) {
				r.verifyAt(p, rng, replay2, "")
				// The image that brought the dropped commit back: after the
				// page write, only the new value run landed (the bytes the
				// dropped commit had there), nothing else, no new meta.
				if directed || !p.ev.after || p.ev.kind != opWrite || p.ev.off < int64(2*ps) || filepath.Ext(p.ev.name) != ".cow" {
					return
				}
				directed = true
				vp := valuePage(p.st.cur, ps)
				span := int64(page.GetHeader(p.st.cur[int(vp)*ps:]).Span)
				spec := imageSpec{size: p.st.maxSize}
				for _, h := range p.hs {
					var keep uint8
					if pg := h.idx * sectorSize / int64(ps); pg >= int64(vp) && pg < int64(vp)+span {
						keep = uint8(len(h.vers) - 1)
					}
					spec.choice = append(spec.choice, keep)
				}
				r.verifyAt(p, rng, replay2, spec.String())
			}})
		if !directed {
			t.Fatalf("ps %d: the page write of the second commit was never seen", ps)
		}
		if c.mixed.Load() != 0 {
			t.Fatalf("ps %d: the dropped commit came back", ps)
		}
		c.log(t)
	}
}

// valuePage returns the first page of the first large value run in img.
func valuePage(img []byte, ps int) page.ID {
	for id := 2; (id+1)*ps <= len(img); id++ {
		if page.GetHeader(img[id*ps:]).Type == page.TypeValue {
			return page.ID(id)
		}
	}
	return 0
}

// TestFuzzCrashCorpusMeaning pins what each committed FuzzCrash input
// decodes to: a regression input must keep replaying the case it was found
// with, whatever the alphabet grows to (see decodeFuzz).
func TestFuzzCrashCorpusMeaning(t *testing.T) {
	want := map[string]string{
		// Bug 4 of docs/RELIABILITY.md: a dropped commit came back through
		// its torn meta (garbage mode).
		"regression-torn-meta-restored": "ps=1024 mode=0 | ops=Udd point=5108 seed=4042620680 trash=2 | ops=dd point=4627 seed=185885944 trash=0",
		// Bug 5 of docs/RELIABILITY.md: a snapshot deleted while a reader
		// that lists it was open had its pages reused under that reader.
		"regression-reader-snapshot-deleted": "ps=1024 mode=0 | ops=BHV point=12609 seed=808464432 trash=0 | ops=HX point=12336 seed=808464432 trash=0",
		// Bug 7 of docs/RELIABILITY.md: the zero wipe of a slot completed
		// the dropped meta it was meant to erase.
		"regression-torn-meta-completed-by-wipe": "ps=4096 mode=1 | ops=ppL point=12849 seed=808464432 trash=2 | ops=p point=12601 seed=825307185 trash=0",
		// The harness protected a reader's free-space log
		// (TestRegressionReaderDoesNotPinFreeSpaceLog).
		"regression-reader-free-space-log": "ps=1024 mode=0 | ops=LBS point=8515 seed=808464433 trash=0 | ops=Hpp point=12336 seed=808464432 trash=0",
		// Bug 9 of docs/RELIABILITY.md: a commit record torn after its
		// fields was completed by the next commit's record, of the same
		// txid at the same page.
		"regression-torn-record-completed": "ps=1024 mode=0 | ops=llR point=12833 seed=4042620680 trash=0 | ops=Rl point=14135 seed=844640312 trash=0",
		// Bug 10 of docs/RELIABILITY.md: the intact record of a dropped
		// commit, one of whose pages was torn, came back when the next
		// commit's torn write supplied the missing sector.
		"regression-dropped-record-completed": "ps=1024 mode=0 | ops=X point=12336 seed=2131243553 trash=2 | ops=S point=14135 seed=959919927 trash=0",
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzCrash")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		w, ok := want[e.Name()]
		if !ok {
			t.Errorf("%s: not pinned here; add what it decodes to", e.Name())
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s: not a one-value corpus file", e.Name())
		}
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		fi, ok := decodeFuzz([]byte(data))
		if got := fi.String(); !ok || got != w {
			t.Errorf("%s decodes to %q, want %q", e.Name(), got, w)
		}
	}
}

// Regression (of the harness): the live assertion protected a reader's
// free-space log. A reader never reads it, and the engine frees each log
// run as if born by the commit before the one that replaces it, so a
// commit may reuse the log pages of a version a reader still holds. Found
// once the log became one checkpoint per small commit: after a fallback,
// a reader held tx 2 while the commits after it rewrote tx 2's checkpoint
// page. The reader's trees stay protected.
func TestRegressionReaderDoesNotPinFreeSpaceLog(t *testing.T) {
	// The case was one image: the engine's writes change with its
	// placement, so every image of "GU" that falls back (within the first
	// few) is continued with "HS", a reader of the fallback version first.
	const prefix = "ps=1024 mode=0 | ops=GU"
	c, err := parseCase(prefix)
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counters{}
	r := newCrashRun(t, newObserver(t, cnt), cnt, c.ps, c.mode, levelShort, nil)
	var cases []string
	rng := rand.New(rand.NewSource(1))
	r.session(sessionCfg{ops: c.phases[0].ops, replay: c, visit: func(p *point) {
		for _, spec := range r.verifyAt(p, rng, c, "") {
			cases = append(cases, fmt.Sprintf("%s point=%d image=%s | ops=HS", prefix, p.n, spec.String()))
		}
	}})
	if len(cases) == 0 {
		t.Fatal("no image of GU falls back")
	}
	for _, cs := range cases[:min(len(cases), 6)] {
		replayCase(t, cs, levelShort)
	}
}
