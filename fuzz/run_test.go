package fuzz

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cowfile/cowfile"
	"github.com/cowfile/cowfile/pager/page"
)

// A crash case names one exact crash scenario so that any failure replays:
// the page size and durability, then phases separated by " | ". Each phase
// runs its ops on the file the previous phase's chosen image left (the
// first on a new file); point and image choose the crash point (numbered
// from 1 in the phase) and the power-loss image there.
//
//	ps=1024 mode=0 | ops=pL point=7 image=65536:0:0110 | ops=l point=3 image=...
//
// Run one with COWFILE_REPLAY='<case>' go test -run TestCrashReplay ./fuzz.
type crashCase struct {
	ps     int
	mode   cowfile.Durability
	phases []phase
}

type phase struct {
	ops   []uint8
	point int // 0: every point (exhaustive); else the crash point chosen
	image string
	fault *faultPlan
}

func (c crashCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ps=%d mode=%d", c.ps, c.mode)
	for _, p := range c.phases {
		fmt.Fprintf(&b, " | ops=%s", workloadString(p.ops))
		if p.point > 0 {
			fmt.Fprintf(&b, " point=%d image=%s", p.point, p.image)
		}
		if p.fault != nil {
			fmt.Fprintf(&b, " fault=%s", faultString(p.fault))
		}
	}
	return b.String()
}

var errNames = map[string]error{"EIO": syscall.EIO, "ENOSPC": syscall.ENOSPC, "none": nil}

func errName(err error) string {
	for n, e := range errNames {
		if e == err {
			return n
		}
	}
	return "EIO"
}

// faultString encodes a plan as kind:at:persistent:short:err.
func faultString(p *faultPlan) string {
	pt, sh := "t", "-"
	if p.persistent {
		pt = "p"
	}
	if p.short {
		sh = "s"
	}
	return fmt.Sprintf("%s:%d:%s:%s:%s", p.kind, p.at, pt, sh, errName(p.err))
}

func parseFault(s string) (*faultPlan, error) {
	f := strings.Split(s, ":")
	if len(f) != 5 {
		return nil, fmt.Errorf("bad fault %q", s)
	}
	p := &faultPlan{persistent: f[2] == "p", short: f[3] == "s"}
	for k := opWrite; k <= opSyncDir; k++ {
		if k.String() == f[0] {
			p.kind = k
		}
	}
	var err error
	if p.at, err = strconv.Atoi(f[1]); err != nil || p.kind == 0 {
		return nil, fmt.Errorf("bad fault %q", s)
	}
	e, ok := errNames[f[4]]
	if !ok {
		return nil, fmt.Errorf("bad fault error in %q", s)
	}
	p.err = e
	return p, nil
}

func parseCase(s string) (crashCase, error) {
	var c crashCase
	parts := strings.Split(s, "|")
	for i, part := range parts {
		var ph phase
		for _, field := range strings.Fields(part) {
			k, v, ok := strings.Cut(field, "=")
			if !ok {
				return c, fmt.Errorf("bad field %q", field)
			}
			var err error
			switch k {
			case "ps":
				c.ps, err = strconv.Atoi(v)
			case "mode":
				var m int
				m, err = strconv.Atoi(v)
				c.mode = cowfile.Durability(m)
			case "ops":
				ph.ops, err = parseWorkload(v)
			case "point":
				ph.point, err = strconv.Atoi(v)
			case "image":
				ph.image = v
			case "fault":
				ph.fault, err = parseFault(v)
			default:
				err = fmt.Errorf("unknown field %q", k)
			}
			if err != nil {
				return c, err
			}
		}
		if i > 0 {
			c.phases = append(c.phases, ph)
		}
	}
	if !page.ValidSize(c.ps) || len(c.phases) == 0 {
		return c, fmt.Errorf("bad case %q", s)
	}
	return c, nil
}

// crashRun runs the sessions of one scenario family with one model: the
// serial numbers of commits are unique across its sessions, so a recovered
// state always names exactly one model state.
type crashRun struct {
	t    testing.TB
	ps   int
	mode cowfile.Durability
	lv   level
	ob   *observer
	c    *counters
	dir  string

	models map[int]string
	states map[int]*mbucket
	next   int // next serial

	failures *atomic.Int64 // shared by the runs of one test: only the first few are shown
}

// sessionSeq names the files of sessions uniquely.
var sessionSeq atomic.Int64

const maxShownFailures = 5

// newCrashRun starts a run. Serials start at 1 in every run, so a case
// replays to the same bytes.
func newCrashRun(t testing.TB, ob *observer, c *counters, ps int, mode cowfile.Durability, lv level, failures *atomic.Int64) *crashRun {
	if failures == nil {
		failures = new(atomic.Int64)
	}
	return &crashRun{t: t, ps: ps, mode: mode, lv: lv, ob: ob, c: c, dir: ob.dir,
		models: map[int]string{0: ""}, states: map[int]*mbucket{0: newMBucket()}, next: 1, failures: failures}
}

// fail reports one failure with the case that replays it.
func (r *crashRun) fail(class, msg string, replay crashCase) {
	n := r.failures.Add(1)
	if n > maxShownFailures {
		if n == maxShownFailures+1 {
			r.t.Errorf("more failures not shown")
		} else {
			r.t.Fail()
		}
		return
	}
	r.t.Errorf("%s: %s\n  replay: COWFILE_REPLAY='%s' go test -run TestCrashReplay ./fuzz", class, msg, replay)
}

// point is one crash point of a session.
type point struct {
	n     int
	ev    event
	st    *fileState
	hs    []sectorHist
	allow allowance
}

type sessionCfg struct {
	start       []byte // nil: a new file
	startSerial int
	ops         []uint8
	plan        *faultPlan
	// visit is called at every crash point (before and after every
	// mutating call), from inside the engine's call.
	visit func(p *point)
	// onFailure is called when a commit failed, with the DB still open.
	onFailure func(db *cowfile.DB, res *sessionResult)
	replay    crashCase // the case up to and including this session's phase
}

type sessionResult struct {
	acked, inflight int
	openErr         error
	commitErr       error
	failedAt        int   // serial whose commit failed
	closeErr        error // Close failed: an injected fault hit the meta slot it writes
	final           []byte
	path            string
	fs              *recFS
	points          int
	durable         int
	serials         map[int]bool
}

// harnessMaxChain is the Options.MaxChain of the sessions: two commits
// that write only a commit record between commits that write a meta slot
// too, so that workloads of a few commits pass through every kind of
// commit — slot only, record only, both — and free records at slot
// commits (the default, 14, would rarely reach one).
const harnessMaxChain = 2

// session runs ops on one machine boot: open (creating the file, or from
// start), commit each op, close. It checks the live assertions as it goes.
func (r *crashRun) session(cfg sessionCfg) *sessionResult {
	r.c.sessions.Add(1)
	path := filepath.Join(r.dir, fmt.Sprintf("s%d.cow", sessionSeq.Add(1)))
	defer removeMatching(path)
	fs := newRecFS()
	res := &sessionResult{acked: cfg.startSerial, inflight: cfg.startSerial, durable: cfg.startSerial,
		path: path, fs: fs, serials: map[int]bool{}}
	if cfg.start != nil {
		if err := fs.seed(path, cfg.start); err != nil {
			r.t.Fatal(err)
		}
	}
	model := r.states[cfg.startSerial]
	fs.hook = func(ev event) {
		res.points++
		r.c.crashPoints.Add(1)
		if cfg.visit == nil {
			return
		}
		st := fs.state(path)
		serials := map[int]bool{}
		for s := range res.serials {
			serials[s] = true
		}
		cfg.visit(&point{n: res.points, ev: ev, st: st, hs: histories(st), allow: allowance{
			acked: res.acked, inflight: res.inflight, noSync: r.mode == cowfile.NoSync,
			durable: res.durable, serials: serials}})
	}
	// The live assertion: no write touches a page that the last
	// acknowledged version or a held reader's version reaches.
	var forbidden map[page.ID]string
	// protect marks what version txid needs: for the latest acknowledged
	// version (latest), everything Open reads — its trees, its free-space
	// log and its meta slot; for a reader, its trees only: a reader never
	// reads the free-space log, whose runs the engine frees as if born by
	// the commit before the one that replaces them (docs/DECISIONS.md).
	protect := func(txid uint64, who string, into map[page.ID]string, latest bool) {
		cur := fs.current(path)
		found := findMeta(cur, r.ps, txid)
		if found == nil {
			r.fail("harness", fmt.Sprintf("meta of tx %d not found after it was acknowledged", txid), cfg.replay)
			return
		}
		m := &found.Meta
		if !latest {
			trees := *m
			trees.Freelist = page.Ref{}
			m = &trees
		}
		set, err := reach(cur, r.ps, m)
		if err != nil {
			r.c.otherFailures.Add(1)
			r.fail("unreadable acknowledged version", fmt.Sprintf("tx %d: %v", txid, err), cfg.replay)
		}
		for id := range set {
			into[id] = who
		}
		if latest {
			// Open reads the meta slot the version's chain starts from and
			// the commit records in use (the last one the version's own
			// meta); the next commit writes the other slot or the page the
			// version reserved. A reader needs no meta page (it holds its
			// meta in memory).
			into[page.ID(found.slot)] = who + " (its meta slot)"
			for _, id := range m.ChainPages() {
				into[id] = who + " (a commit record in use)"
			}
		}
	}
	fs.guard = func(name string, off, n int64) string {
		if name != path || forbidden == nil {
			return ""
		}
		for id := page.ID(off / int64(r.ps)); int64(id)*int64(r.ps) < off+n; id++ {
			if who, ok := forbidden[id]; ok {
				return fmt.Sprintf("writes page %d, which %s reaches", id, who)
			}
		}
		return ""
	}
	fs.arm(cfg.plan)
	db, err := cowfile.Open(path, &cowfile.Options{PageSize: r.ps, Durability: r.mode, FS: fs, MaxChain: harnessMaxChain})
	if err != nil {
		res.openErr = err
		fs.hook = nil
		res.final = fs.current(path)
		return res
	}
	ackedTx := db.Stats().TxID
	forbidden = map[page.ID]string{}
	protect(ackedTx, fmt.Sprintf("the acknowledged tx %d", ackedTx), forbidden, true)
	type reader struct {
		tx     *cowfile.Tx
		serial int
		pages  map[page.ID]string
	}
	var readers []reader
	rebuild := func() {
		f := map[page.ID]string{}
		protect(ackedTx, fmt.Sprintf("the acknowledged tx %d", ackedTx), f, true)
		for _, rd := range readers {
			for id, who := range rd.pages {
				f[id] = who
			}
		}
		forbidden = f
	}
ops:
	for _, op := range cfg.ops {
		if op == opHold {
			rtx, err := db.Begin(false)
			if err != nil {
				r.c.otherFailures.Add(1)
				r.fail("begin reader", err.Error(), cfg.replay)
				break
			}
			rd := reader{tx: rtx, serial: res.acked, pages: map[page.ID]string{}}
			protect(rtx.ID(), fmt.Sprintf("a reader of tx %d", rtx.ID()), rd.pages, false)
			readers = append(readers, rd)
			rebuild()
		}
		for _, st := range stepsOf(op, model, r.next, r.ps) {
			serial := r.next
			r.next++
			next := applyStep(model, st)
			r.models[serial], r.states[serial] = dumpModel(next), next
			var txid uint64
			var err error
			if st.snap == "" {
				tx, berr := db.Begin(true)
				if berr != nil {
					res.commitErr = berr
					break ops
				}
				if aerr := applyTx(tx, st.as); aerr != nil {
					tx.Rollback()
					r.c.otherFailures.Add(1)
					r.fail("workload", aerr.Error(), cfg.replay)
					break ops
				}
				txid = tx.ID()
				res.inflight = serial
				res.serials[serial] = true
				err = tx.Commit()
			} else {
				// The snapshot call commits on its own.
				res.inflight = serial
				res.serials[serial] = true
				err = applyStepDB(db, st)
				if errors.Is(err, cowfile.ErrSnapshotNotFound) || errors.Is(err, cowfile.ErrSnapshotExists) {
					r.c.otherFailures.Add(1)
					r.fail("workload", fmt.Sprintf("%v: %v", st, err), cfg.replay)
					break ops
				}
				txid = db.Stats().TxID
			}
			if err != nil {
				res.commitErr, res.failedAt = err, serial
				// Without an injected fault no commit may fail (NoSync
				// may continue from an image that only reads cleanly,
				// whose free space can be corrupt).
				if cfg.plan == nil && !(r.mode == cowfile.NoSync && errors.Is(err, cowfile.ErrCorrupt)) {
					r.c.otherFailures.Add(1)
					r.fail("commit failed without a fault", fmt.Sprintf("serial %d (%v): %v", serial, st, err), cfg.replay)
				}
				if cfg.onFailure != nil {
					cfg.onFailure(db, res)
				}
				break ops
			}
			if r.mode != cowfile.NoSync && fs.pendingCount(path) != 0 {
				r.c.ackAfterFailedSync.Add(1)
				r.fail("acknowledged before sync", fmt.Sprintf("Commit of serial %d returned nil with %d changes not synced", serial, fs.pendingCount(path)), cfg.replay)
			}
			res.acked, model, ackedTx = serial, next, txid
			if r.mode != cowfile.NoSync {
				res.durable = serial
				res.serials = map[int]bool{}
			}
			rebuild()
		}
	}
	// Readers saw their version all along, whatever was committed since.
	for _, rd := range readers {
		got, err := dumpTx(rd.tx)
		if want := dumpData(r.states[rd.serial]); err != nil || got != want {
			r.c.mixed.Add(1)
			r.fail("reader isolation", fmt.Sprintf("reader of serial %d: %v\n%s", rd.serial, err, diffDumps(want, got)), cfg.replay)
		}
		rd.tx.Rollback()
	}
	fired := 0
	if cfg.plan != nil {
		fired = cfg.plan.fired
	}
	if err := db.Close(); err != nil {
		// Close writes the latest version's meta to a slot when only a
		// commit record holds it; an injected fault may fail that write,
		// which must say so and leave the acknowledged state.
		if cfg.plan == nil || cfg.plan.fired == fired || res.commitErr != nil {
			r.c.otherFailures.Add(1)
			r.fail("close", err.Error(), cfg.replay)
		} else if msg := checkCommitError(err, cfg.plan); msg != "" {
			r.c.ackAfterFailedSync.Add(1)
			r.fail("failed close misreported", msg, cfg.replay)
		}
		res.closeErr = err
	}
	fs.hook = nil
	for _, v := range fs.violations {
		r.c.liveViolations.Add(1)
		r.fail("live assertion", v, cfg.replay)
	}
	res.final = fs.current(path)
	if real, err := os.ReadFile(path); err != nil || !bytes.Equal(real, res.final) {
		r.t.Fatalf("harness: the recorded file differs from the real one (%v)", err)
	}
	return res
}

// removeMatching deletes path and the temporary files of its creation.
func removeMatching(path string) {
	os.Remove(path)
	if m, _ := filepath.Glob(path + ".tmp-*"); m != nil {
		for _, f := range m {
			os.Remove(f)
		}
	}
}

// verifyAt checks every image enumerated at p; it returns the images it
// checked whose recovery fell back past a valid newer meta (the most
// interesting place to continue from).
func (r *crashRun) verifyAt(p *point, rng *rand.Rand, replay crashCase, onlyImage string) (fallbacks []imageSpec) {
	var specs []imageSpec
	if onlyImage != "" {
		s, err := parseImageSpec(onlyImage)
		if err != nil {
			r.t.Fatal(err)
		}
		specs = []imageSpec{s}
	} else {
		specs = enumerate(p.st, p.hs, r.ps, r.lv, rng)
	}
	for _, spec := range specs {
		o := r.observeSpec(p, spec)
		if o == nil {
			if onlyImage != "" {
				r.t.Errorf("image %q does not fit crash point %d (%v): the engine no longer writes what the case was made from", onlyImage, p.n, p.ev)
			}
			continue
		}
		r.c.images.Add(1)
		a := p.allow
		a.ordered = spec.ordered
		if class, msg := judge(o, a, r.models, r.c); class != "" {
			rc := replay
			last := &rc.phases[len(rc.phases)-1]
			last.point, last.image = p.n, spec.String()
			r.fail(class, fmt.Sprintf("at crash point %d (%v), image %q (%s): %s\n  observed: %v", p.n, p.ev, spec.String(), spec.what, msg, o), rc)
			continue
		}
		if o.fellBack && o.openErr == nil && o.dumpErr == nil {
			for _, m := range o.metas {
				if uint64(m.TxID) > o.txid {
					fallbacks = append(fallbacks, spec)
					break
				}
			}
		}
	}
	return fallbacks
}

// observeSpec builds and opens one image of p.
func (r *crashRun) observeSpec(p *point, spec imageSpec) *obs {
	if spec.absent || p.st.missing {
		return r.ob.observe(nil, true, r.ps)
	}
	img, ok := build(p.st, p.hs, spec)
	if !ok {
		return nil
	}
	return r.ob.observe(img, false, r.ps)
}

// imageAt builds the image spec names at p and the serial it recovers.
func (r *crashRun) imageAt(p *point, specStr string) ([]byte, int, error) {
	spec, err := parseImageSpec(specStr)
	if err != nil {
		return nil, 0, err
	}
	o := r.observeSpec(p, spec)
	if o == nil {
		return nil, 0, fmt.Errorf("image %q does not fit crash point %d", specStr, p.n)
	}
	if o.openErr != nil || o.dumpErr != nil {
		return nil, 0, fmt.Errorf("image %q at point %d does not open: %v", specStr, p.n, o)
	}
	serial := r.stateOf(o.dump)
	if spec.absent || p.st.missing {
		return nil, serial, nil
	}
	img, _ := build(p.st, p.hs, spec)
	return img, serial, nil
}

// stateOf returns the serial of the model state a recovered dump is (see
// matchSerial), or, if none is exactly, the counter it names.
func (r *crashRun) stateOf(dump string) int {
	if s := matchSerial(r.models, dump, nil); s >= 0 {
		return s
	}
	return serialOf(dump)
}

// runCase runs c: every phase but the last continues from its chosen
// image; the last verifies its chosen point and image, or every point and
// image when it names none.
func (r *crashRun) runCase(c crashCase) {
	var start []byte
	startSerial := 0
	for i, ph := range c.phases {
		prefix := crashCase{ps: c.ps, mode: c.mode, phases: c.phases[:i+1]}
		last := i == len(c.phases)-1
		var cont []byte
		contSerial, found := -1, false
		cfg := sessionCfg{start: start, startSerial: startSerial, ops: ph.ops, plan: ph.fault, replay: prefix}
		rng := rand.New(rand.NewSource(int64(len(c.String()))))
		cfg.visit = func(p *point) {
			switch {
			case last && ph.point == 0:
				r.verifyAt(p, rng, prefix, "")
			case p.n != ph.point:
			case last:
				r.verifyAt(p, rng, prefix, ph.image)
				found = true
			default:
				img, serial, err := r.imageAt(p, ph.image)
				if err != nil {
					r.t.Fatalf("phase %d: %v", i+1, err)
				}
				cont, contSerial, found = img, serial, true
			}
		}
		r.session(cfg)
		if ph.point > 0 && !found {
			r.t.Fatalf("phase %d has no crash point %d", i+1, ph.point)
		}
		if last {
			return
		}
		if cont == nil && contSerial != 0 {
			r.t.Fatalf("phase %d: no image", i+1)
		}
		start, startSerial = cont, contSerial
	}
}

// checkCommitError checks the error of a commit that met an injected
// fault: it wraps ErrWriteFailed and the injected error.
func checkCommitError(err error, plan *faultPlan) string {
	if !errors.Is(err, cowfile.ErrWriteFailed) {
		return fmt.Sprintf("commit error %v does not wrap ErrWriteFailed", err)
	}
	want := plan.err
	if want == nil {
		if plan.kind == opWrite {
			want = io.ErrShortWrite
		} else {
			return ""
		}
	}
	if !errors.Is(err, want) {
		return fmt.Sprintf("commit error %v does not wrap the injected %v", err, want)
	}
	return ""
}
