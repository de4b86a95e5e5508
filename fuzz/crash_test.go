package fuzz

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cowfile/cowfile"
)

// longRun reports whether the long (hours) mode is on: COWFILE_LONG=1.
func longRun() bool { return os.Getenv("COWFILE_LONG") != "" }

// longDuration is how long the randomized part of the long mode runs:
// COWFILE_LONG_DURATION (a Go duration), 1h by default.
func longDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("COWFILE_LONG_DURATION")); err == nil {
		return d
	}
	return time.Hour
}

var (
	pageSizes = []int{1024, 4096, 16384}
	modes     = []cowfile.Durability{cowfile.Sync, cowfile.SyncMeta, cowfile.NoSync}
)

// workloadsUpTo lists every sequence of 1..n ops of the alphabet.
func workloadsUpTo(n int) [][]uint8 {
	var out [][]uint8
	var gen func(prefix []uint8)
	gen = func(prefix []uint8) {
		if len(prefix) > 0 {
			out = append(out, append([]uint8(nil), prefix...))
		}
		if len(prefix) == n {
			return
		}
		for o := uint8(0); o < nOps; o++ {
			gen(append(prefix, o))
		}
	}
	gen(nil)
	return out
}

// crashSlice is one part of the exhaustive test: a page size, a durability
// and the workloads to run with them.
type crashSlice struct {
	ps        int
	mode      cowfile.Durability
	workloads [][]uint8
}

// shortSlices is the deterministic slice CI runs (it must stay within a
// minute or so under the race detector): every one-op workload and a
// spread of two- and three-op ones at 1 KiB pages with Sync
// (where the most sectors and pages per commit are at stake), and a spread
// at the other page sizes and durabilities. The strides are primes that
// step through every letter position, so the snapshot ops are in every
// slice.
func shortSlices() []crashSlice {
	one, two, three := workloadsOf(1), workloadsOf(2), workloadsOf(3)
	pick := func(from [][]uint8, every, offset int) [][]uint8 {
		var out [][]uint8
		for i := offset; i < len(from); i += every {
			out = append(out, from[i])
		}
		return out
	}
	return []crashSlice{
		{1024, cowfile.Sync, append(append(one, pick(two, 7, 1)...), pick(three, 419, 5)...)},
		{4096, cowfile.Sync, pick(three, 563, 3)},
		{16384, cowfile.Sync, pick(three, 857, 7)},
		{1024, cowfile.SyncMeta, pick(three, 409, 11)},
		{4096, cowfile.NoSync, pick(three, 443, 13)},
	}
}

// workloadsOf lists every sequence of exactly n ops, in order.
func workloadsOf(n int) [][]uint8 {
	var out [][]uint8
	for _, w := range workloadsUpTo(n) {
		if len(w) == n {
			out = append(out, w)
		}
	}
	return out
}

// longSlices is every workload of up to three ops at every page
// size and durability. COWFILE_MAXOPS (1-3), COWFILE_PS (e.g. "1024,4096")
// and COWFILE_MODES (e.g. "0,2") narrow it; COWFILE_EVERY=n runs only the
// workloads of exactly COWFILE_MAXOPS ops, every n-th of them: a
// deterministic sample of the three-op workloads, which all together take
// about thirteen times as long as every shorter one.
func longSlices() []crashSlice {
	var out []crashSlice
	maxOps := 3
	if n, err := strconv.Atoi(os.Getenv("COWFILE_MAXOPS")); err == nil && n >= 1 && n <= 3 {
		maxOps = n
	}
	all := workloadsUpTo(maxOps)
	if n, err := strconv.Atoi(os.Getenv("COWFILE_EVERY")); err == nil && n >= 1 {
		var sample [][]uint8
		for i, w := range workloadsOf(maxOps) {
			if i%n == 0 {
				sample = append(sample, w)
			}
		}
		all = sample
	}
	for _, ps := range pageSizes {
		if !envListHas("COWFILE_PS", ps) {
			continue
		}
		for _, m := range modes {
			if envListHas("COWFILE_MODES", int(m)) {
				out = append(out, crashSlice{ps, m, all})
			}
		}
	}
	return out
}

// resumeFrom is COWFILE_FROM: in long runs, how many workloads of each
// slice to skip, so that a stopped run continues where its last progress
// line says it was ("k of N workloads done": COWFILE_FROM=k). Each
// workload runs exactly as it would in the whole run.
func resumeFrom() int {
	n, err := strconv.Atoi(os.Getenv("COWFILE_FROM"))
	if err != nil || n < 0 || !longRun() {
		return 0
	}
	return n
}

// envListHas reports whether the comma-separated list in env holds v (an
// unset variable holds everything).
func envListHas(env string, v int) bool {
	s := os.Getenv(env)
	if s == "" {
		return true
	}
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n == v {
			return true
		}
	}
	return false
}

// TestCrash is the exhaustive crash test: every workload of its slice, at
// every crash point (before and after every write, size change, sync,
// rename and directory sync), every image of the enumeration. From images
// where Open fell back past a valid newer meta, a second phase runs more
// transactions and is crashed at every point again.
func TestCrash(t *testing.T) {
	c := &counters{}
	ob := newObserver(t, c)
	slices, lv := shortSlices(), levelShort
	if longRun() {
		slices, lv = longSlices(), levelLong
	}
	failures := new(atomic.Int64)
	t.Cleanup(func() { c.log(t) }) // after the parallel subtests
	for _, sl := range slices {
		t.Run(fmt.Sprintf("ps%d-%s", sl.ps, sl.mode), func(t *testing.T) {
			t.Parallel()
			from := resumeFrom()
			for wi, ops := range sl.workloads {
				if wi < from {
					continue
				}
				crashWorkload(t, ob, c, sl.ps, sl.mode, lv, ops, wi, failures)
				c.progress(t, fmt.Sprintf("%d of %d workloads done, last %s", wi+1, len(sl.workloads), workloadString(ops)))
				if failures.Load() > 50 {
					t.Fatal("too many failures")
				}
			}
		})
	}
}

// crashWorkload runs one workload with every crash point verified, then
// continues from images that fell back.
func crashWorkload(t testing.TB, ob *observer, c *counters, ps int, mode cowfile.Durability, lv level, ops []uint8, wi int, failures *atomic.Int64) {
	c.workloads.Add(1)
	r := newCrashRun(t, ob, c, ps, mode, lv, failures)
	replay := crashCase{ps: ps, mode: mode, phases: []phase{{ops: ops}}}
	rng := rand.New(rand.NewSource(int64(wi)*1000003 + int64(ps)))
	type seed struct {
		point int
		spec  string
	}
	var seeds []seed
	res := r.session(sessionCfg{ops: ops, replay: replay, visit: func(p *point) {
		if fb := r.verifyAt(p, rng, replay, ""); len(fb) > 0 {
			seeds = append(seeds, seed{p.n, fb[0].String()})
		}
	}})
	r.verifyFinal(res, replay)
	if len(seeds) == 0 {
		return
	}
	// Continue after a recovery that dropped a commit: the next
	// transactions reuse the dropped commit's pages and txid, and a crash
	// among them must still leave only what was acknowledged.
	chosen := []seed{seeds[wi%len(seeds)]}
	if lv.othersKept {
		chosen = seeds
		if len(chosen) > 6 {
			chosen = chosen[:6]
		}
	}
	last := ops[len(ops)-1]
	for _, s := range chosen {
		ops2 := []uint8{(last + 1) % nOps, (last + 2) % nOps}
		r2 := newCrashRun(t, ob, c, ps, mode, lv, failures)
		r2.runCase(crashCase{ps: ps, mode: mode, phases: []phase{
			{ops: ops, point: s.point, image: s.spec},
			{ops: ops2},
		}})
	}
}

// verifyFinal checks the file a session left after Close (the process
// crash image once everything returned): exactly the last acknowledged
// state, or the failed commit's.
func (r *crashRun) verifyFinal(res *sessionResult, replay crashCase) {
	if res.openErr != nil {
		return
	}
	o := r.ob.observe(res.final, false, r.ps)
	r.c.images.Add(1)
	a := allowance{acked: res.acked, inflight: res.inflight}
	if class, msg := judge(o, a, r.models, r.c); class != "" {
		r.fail(class, fmt.Sprintf("after Close: %s\n  observed: %v", msg, o), replay)
	}
}

// TestCrashReplay replays one case printed by a failure:
// COWFILE_REPLAY='ps=1024 mode=0 | ops=... point=N image=...'.
func TestCrashReplay(t *testing.T) {
	s := os.Getenv("COWFILE_REPLAY")
	if s == "" {
		t.Skip("set COWFILE_REPLAY to a case printed by a failure")
	}
	replayCase(t, s, levelLong)
}

// replayCase runs the crash case spec (as printed by a failure) at level.
func replayCase(t *testing.T, spec string, lv level) {
	c, err := parseCase(spec)
	if err != nil {
		t.Fatal(err)
	}
	cnt := &counters{}
	r := newCrashRun(t, newObserver(t, cnt), cnt, c.ps, c.mode, lv, nil)
	r.runCase(c)
	cnt.log(t)
}

// fuzzCase decodes a FuzzCrash input: page size, durability, up to three
// ops, a crash point selector and an image seed, then optionally the same
// again for a second phase that continues from the chosen image.
type fuzzInput struct {
	ps   int
	mode cowfile.Durability
	ph   [2]struct {
		ops   []uint8
		point uint16
		seed  uint32
		trash uint8
	}
	phases int
}

// String spells a decoded input, so that what a corpus entry means can be
// pinned (TestFuzzCrashCorpusMeaning).
func (fi fuzzInput) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ps=%d mode=%d", fi.ps, fi.mode)
	for i := 0; i < fi.phases; i++ {
		ph := fi.ph[i]
		fmt.Fprintf(&b, " | ops=%s point=%d seed=%d trash=%d", workloadString(ph.ops), ph.point, ph.seed, ph.trash)
	}
	return b.String()
}

// decodeFuzz decodes an input. An op byte means op byte%nOps: appending
// letters to the alphabet changes what the larger bytes mean, so committed
// inputs spell their ops with bytes below the alphabet's size, which keep
// their meaning as it grows (TestFuzzCrashCorpusMeaning pins them).
func decodeFuzz(b []byte) (fi fuzzInput, ok bool) {
	next := func() (byte, bool) {
		if len(b) == 0 {
			return 0, false
		}
		c := b[0]
		b = b[1:]
		return c, true
	}
	c0, ok0 := next()
	c1, ok1 := next()
	if !ok0 || !ok1 {
		return fi, false
	}
	fi.ps = pageSizes[int(c0)%len(pageSizes)]
	fi.mode = modes[int(c1)%len(modes)]
	for i := 0; i < 2; i++ {
		n, ok := next()
		if !ok {
			break
		}
		ph := &fi.ph[i]
		for j := 0; j < 1+int(n)%3; j++ {
			o, ok := next()
			if !ok {
				return fi, fi.phases > 0
			}
			ph.ops = append(ph.ops, o%nOps)
		}
		if len(b) < 7 {
			return fi, fi.phases > 0
		}
		ph.point = binary.LittleEndian.Uint16(b)
		ph.seed = binary.LittleEndian.Uint32(b[2:])
		ph.trash = b[6] % nTrash
		b = b[7:]
		fi.phases++
	}
	return fi, fi.phases > 0
}

// randomSpec draws an image at p: a random size among the possible ones and
// a random version for every sector.
func randomSpec(p *point, seed uint32, trash uint8) imageSpec {
	rng := rand.New(rand.NewSource(int64(seed)))
	if p.st.missing {
		return imageSpec{absent: true}
	}
	if p.st.absentToo && rng.Intn(2) == 0 {
		return imageSpec{absent: true}
	}
	sizes := sizeChoices(p.st)
	s := imageSpec{size: sizes[rng.Intn(len(sizes))], trash: trash, what: "random"}
	for _, h := range p.hs {
		s.choice = append(s.choice, uint8(rng.Intn(len(h.vers))))
	}
	return s
}

// fuzzCrash runs one decoded input: phase 1 to its chosen point, where a
// random image and the short enumeration are verified; then phase 2, if
// any, continues from the random image.
func fuzzCrash(t testing.TB, ob *observer, c *counters, fi fuzzInput, failures *atomic.Int64) {
	r := newCrashRun(t, ob, c, fi.ps, fi.mode, levelShort, failures)
	c.workloads.Add(1)
	var start []byte
	startSerial := 0
	var phases []phase
	for i := 0; i < fi.phases; i++ {
		in := fi.ph[i]
		// Count the points first, to choose one (sessions are deterministic).
		base := r.next
		count := r.session(sessionCfg{start: start, startSerial: startSerial, ops: in.ops,
			replay: crashCase{ps: fi.ps, mode: fi.mode, phases: append(phases, phase{ops: in.ops})}}).points
		if count == 0 {
			return
		}
		target := 1 + int(in.point)%count
		var cont []byte
		contSerial, contOK := 0, false
		cur := append(append([]phase(nil), phases...), phase{ops: in.ops})
		replay := crashCase{ps: fi.ps, mode: fi.mode, phases: cur}
		// The serials of a rerun differ from the counting run's; a new
		// run keeps them starting where the replay will.
		r2 := newCrashRun(t, ob, c, fi.ps, fi.mode, levelShort, failures)
		r2.models, r2.states, r2.next = r.models, r.states, base
		r2.session(sessionCfg{start: start, startSerial: startSerial, ops: in.ops, replay: replay, visit: func(p *point) {
			if p.n != target {
				return
			}
			spec := randomSpec(p, in.seed, in.trash)
			r2.verifyAt(p, rand.New(rand.NewSource(int64(in.seed))), replay, spec.String())
			r2.verifyAt(p, rand.New(rand.NewSource(int64(in.seed))), replay, "")
			if img, serial, err := r2.imageAt(p, spec.String()); err == nil {
				cont, contSerial, contOK = img, serial, true
				cur[len(cur)-1].point, cur[len(cur)-1].image = p.n, spec.String()
			}
		}})
		if !contOK {
			return
		}
		r = r2
		phases = cur
		start, startSerial = cont, contSerial
	}
}

// FuzzCrash: the input decodes to a workload, a crash point, a power-loss
// image and a durability, and optionally a second phase that continues
// from that image. Every failure prints the case that replays it.
func FuzzCrash(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 2, 5, 0, 7, 0, 0, 0, 0, 0, 3, 1, 0, 0, 9, 0, 0, 0})
	f.Add([]byte{1, 1, 2, 0, 6, 8, 11, 0, 1, 2, 3, 4, 2})
	f.Add([]byte{2, 2, 2, 4, 5, 7, 3, 0, 5, 6, 7, 8, 1, 1, 3, 2, 0, 4, 4, 4, 4, 0})
	f.Add([]byte{0, 0, 0, 2, 9, 0, 1, 0, 0, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0})
	// Snapshot ops: snapshot, large, restore, then a snapshot deleted; and
	// growth, then a snapshot deleted (NoSync, 4 KiB pages).
	f.Add([]byte{0, 0, 2, opSnap, opLarge, opRestore, 40, 0, 1, 0, 0, 0, 2, 0, opDelSnap, 9, 0, 2, 0, 0, 0, 1})
	f.Add([]byte{1, 2, 1, opGrowth, opDelSnap, 77, 1, 9, 9, 9, 9, 0})
	c := &counters{}
	ob := newObserver(f, c)
	f.Fuzz(func(t *testing.T, data []byte) {
		fi, ok := decodeFuzz(data)
		if !ok {
			t.Skip()
		}
		fuzzCrash(t, ob, c, fi, nil)
	})
}

// TestCrashRandom is the randomized long run: random FuzzCrash inputs from
// a seeded generator until COWFILE_LONG_DURATION has passed. Only with
// COWFILE_LONG=1; its seed is COWFILE_SEED (default: the time), printed.
func TestCrashRandom(t *testing.T) {
	if !longRun() {
		t.Skip("long mode only (COWFILE_LONG=1)")
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("COWFILE_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("COWFILE_SEED=%d", seed)
	rng := rand.New(rand.NewSource(seed))
	c := &counters{}
	ob := newObserver(t, c)
	failures := new(atomic.Int64)
	deadline := time.Now().Add(longDuration())
	n := 0
	for time.Now().Before(deadline) && failures.Load() == 0 {
		data := make([]byte, 4+rng.Intn(24))
		rng.Read(data)
		fi, ok := decodeFuzz(data)
		if !ok {
			continue
		}
		n++
		fuzzCrash(t, ob, c, fi, failures)
		if failures.Load() > 0 {
			t.Logf("failing input (add to fuzz/testdata/fuzz/FuzzCrash): %q", data)
		}
	}
	t.Logf("random cases: %d", n)
	c.log(t)
}
