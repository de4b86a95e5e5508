package fuzz

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cowfile/cowfile"
	"github.com/cowfile/cowfile/meta"
)

// counters are the harness's figures. The ones under "must be zero" are
// failures; every test logs its counters (t.Logf) so the figures in
// docs/RELIABILITY.md can be reproduced.
type counters struct {
	workloads, sessions, crashPoints, images, imagesOpened    atomic.Int64
	faultsInjected, faultRuns, corruptionTrials, hostileFiles atomic.Int64
	fallbacks, noSyncUnopenable, noSyncOlder                  atomic.Int64
	// recordsDroppedQuietly counts corruption trials that damaged a commit
	// record in use so that no trace of it remained (zeroed, lost or
	// misdirected writes) and Open recovered, intact, the commit before
	// it without a report: the limit docs/RELIABILITY.md states.
	recordsDroppedQuietly atomic.Int64

	// must be zero
	lostAcked, mixed, failedOpens, checkFailures, ackAfterFailedSync    atomic.Int64
	undetected, wrongValues, panics, liveViolations, fallbackUnreported atomic.Int64
	stickyBroken, otherFailures                                         atomic.Int64

	// lastProgress is when progress last logged (UnixNano), so long runs
	// report their figures every few minutes and a stopped run still
	// leaves them in its log.
	lastProgress atomic.Int64
}

// progressEvery is how often a long run logs its figures.
const progressEvery = 5 * time.Minute

// progress logs the figures so far, at most every progressEvery, in long
// runs only; label says how far the run got.
func (c *counters) progress(t testing.TB, label string) {
	t.Helper()
	if !longRun() {
		return
	}
	now, last := time.Now().UnixNano(), c.lastProgress.Load()
	if last == 0 {
		c.lastProgress.CompareAndSwap(0, now)
		return
	}
	if time.Duration(now-last) < progressEvery || !c.lastProgress.CompareAndSwap(last, now) {
		return
	}
	t.Logf("progress: %s", label)
	c.log(t)
}

func (c *counters) log(t testing.TB) {
	t.Helper()
	t.Logf("figures: workloads=%d sessions=%d crash_points=%d images=%d images_opened=%d "+
		"io_fault_runs=%d io_faults_injected=%d corruption_trials=%d hostile_files=%d fallbacks=%d nosync_unopenable=%d nosync_older=%d "+
		"records_dropped_quietly=%d",
		c.workloads.Load(), c.sessions.Load(), c.crashPoints.Load(), c.images.Load(), c.imagesOpened.Load(),
		c.faultRuns.Load(), c.faultsInjected.Load(), c.corruptionTrials.Load(), c.hostileFiles.Load(),
		c.fallbacks.Load(), c.noSyncUnopenable.Load(), c.noSyncOlder.Load(), c.recordsDroppedQuietly.Load())
	t.Logf("must be zero: lost_acked=%d mixed_or_phantom=%d failed_opens=%d check_failures=%d "+
		"acks_after_failed_sync=%d undetected_corruptions=%d wrong_values=%d panics=%d live_violations=%d "+
		"fallback_unreported=%d sticky_broken=%d other=%d",
		c.lostAcked.Load(), c.mixed.Load(), c.failedOpens.Load(), c.checkFailures.Load(),
		c.ackAfterFailedSync.Load(), c.undetected.Load(), c.wrongValues.Load(), c.panics.Load(),
		c.liveViolations.Load(), c.fallbackUnreported.Load(), c.stickyBroken.Load(), c.otherFailures.Load())
}

// obs is what opening one image showed.
type obs struct {
	absent   bool
	openErr  error
	fellBack bool
	reason   string
	txid     uint64
	dump     string
	dumpErr  error
	checkErr error
	panicked string
	// From the image itself: which meta slots decode, to know whether the
	// engine had to fall back.
	metas  []foundMeta            // every meta Open can read (decodeMetas)
	broken func(txid uint64) bool // an unreadable slot or a damaged record (decodeMetas)
}

func (o *obs) String() string {
	var b strings.Builder
	switch {
	case o.panicked != "":
		fmt.Fprintf(&b, "PANIC %s", o.panicked)
	case o.openErr != nil:
		fmt.Fprintf(&b, "open: %v", o.openErr)
	default:
		fmt.Fprintf(&b, "tx %d serial %d fellBack=%v", o.txid, serialOf(o.dump), o.fellBack)
		if o.reason != "" {
			fmt.Fprintf(&b, " (%s)", o.reason)
		}
		if o.dumpErr != nil {
			fmt.Fprintf(&b, "; read: %v", o.dumpErr)
		}
		if o.checkErr != nil {
			fmt.Fprintf(&b, "; check: %v", o.checkErr)
		}
	}
	for _, m := range o.metas {
		fmt.Fprintf(&b, "; %s tx %d (chain from slot %d)", placeOf(&m.Meta), m.TxID, m.slot)
	}
	if o.broken != nil && o.broken(o.txid) {
		fmt.Fprintf(&b, "; a slot or a later record is damaged")
	}
	return b.String()
}

// observer opens images and caches what it saw by the image's hash, so an
// image that many crash points share is opened once.
type observer struct {
	dir   string
	mu    sync.Mutex
	cache map[[2]uint64]*obs
	n     int
	c     *counters
}

func newObserver(t testing.TB, c *counters) *observer {
	return &observer{dir: scratchDir(t), cache: map[[2]uint64]*obs{}, c: c}
}

// scratchDir returns a temporary directory, in memory (/dev/shm) where
// there is one: the harness writes and syncs hundreds of thousands of
// small files, and what it proves does not depend on a real disk.
func scratchDir(t testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "cowfile-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// observe opens img (nil and absent: no file at all) with page size ps for
// new files, reads everything, runs Check and closes it.
func (ob *observer) observe(img []byte, absent bool, ps int) *obs {
	key := [2]uint64{xxhash.Sum64(img), uint64(len(img))<<8 | uint64(ps>>10)}
	if absent {
		key = [2]uint64{0, uint64(ps)}
	}
	ob.mu.Lock()
	if o := ob.cache[key]; o != nil {
		ob.mu.Unlock()
		return o
	}
	ob.n++
	path := filepath.Join(ob.dir, fmt.Sprintf("img%d.cow", ob.n))
	ob.mu.Unlock()
	ob.c.imagesOpened.Add(1)
	o := openImage(path, img, absent, ps)
	os.Remove(path)
	ob.mu.Lock()
	if len(ob.cache) > 200000 { // bound the memory of long runs
		clear(ob.cache)
	}
	ob.cache[key] = o
	ob.mu.Unlock()
	return o
}

// openImage is the oracle's probe of one image.
func openImage(path string, img []byte, absent bool, ps int) (o *obs) {
	o = &obs{absent: absent}
	defer func() {
		if p := recover(); p != nil {
			o.panicked = fmt.Sprintf("%v\n%s", p, debug.Stack())
		}
	}()
	if !absent {
		if err := os.WriteFile(path, img, 0o600); err != nil {
			o.openErr = err
			return o
		}
		o.metas, o.broken = decodeMetas(img, ps)
	}
	db, err := cowfile.Open(path, &cowfile.Options{PageSize: ps})
	if err != nil {
		o.openErr = err
		return o
	}
	defer db.Close()
	st := db.Stats()
	o.fellBack, o.reason, o.txid = st.FellBack, st.FallbackReason, st.TxID
	if absent {
		o.metas, o.broken = decodeMetas(readAll(path), ps)
	}
	o.dump, o.dumpErr = dumpDB(db)
	o.checkErr = db.View(func(tx *cowfile.Tx) error { return tx.Check() })
	return o
}

func readAll(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// wantFallback says whether opening an image whose metas are ms and that
// recovered version txid must report a fallback: a valid newer meta was
// passed over, a slot did not decode or a walk stopped at the damaged
// record of a later commit (broken).
func wantFallback(ms []foundMeta, broken func(uint64) bool, txid uint64) bool {
	for _, m := range ms {
		if uint64(m.TxID) > txid {
			return true
		}
	}
	return broken != nil && broken(txid)
}

// placeOf names where a meta lies.
func placeOf(m *meta.Meta) string {
	if m.IsRecord() {
		return fmt.Sprintf("record at page %d", m.Page())
	}
	return fmt.Sprintf("slot %d", m.Page())
}

// allowance says which recovered states an image may show.
type allowance struct {
	acked    int // the last acknowledged commit's serial
	inflight int // the commit in flight (== acked when none)
	// noSync: any serial in [durable, inflight] is allowed, and for images
	// that are not ordered prefixes a failed open or a read error that
	// wraps ErrCorrupt is allowed (NoSync promises no more).
	noSync  bool
	durable int
	ordered bool
	serials map[int]bool // NoSync: the serials committed or attempted since durable
}

func (a allowance) String() string {
	if a.noSync {
		return fmt.Sprintf("any of serials %d..%d (NoSync)", a.durable, a.inflight)
	}
	if a.acked == a.inflight {
		return fmt.Sprintf("serial %d", a.acked)
	}
	return fmt.Sprintf("serial %d (acknowledged) or %d (in flight)", a.acked, a.inflight)
}

func (a allowance) allows(serial int) bool {
	if a.noSync {
		return serial == a.durable || a.serials[serial]
	}
	return serial == a.acked || serial == a.inflight
}

// judge compares an observation with the allowance and the model dumps.
// It returns "" when the image is acceptable, else the failure's class and
// a message; c is charged accordingly.
func judge(o *obs, a allowance, models map[int]string, c *counters) (class, msg string) {
	lenient := a.noSync && !a.ordered
	corrupt := func(err error) bool { return errors.Is(err, cowfile.ErrCorrupt) }
	switch {
	case o.panicked != "":
		c.panics.Add(1)
		return "panic", o.panicked
	case o.openErr != nil && lenient && corrupt(o.openErr):
		c.noSyncUnopenable.Add(1)
		return "", ""
	case o.openErr != nil:
		c.failedOpens.Add(1)
		return "failed open", o.openErr.Error()
	}
	if o.fellBack {
		c.fallbacks.Add(1)
	}
	if want := wantFallback(o.metas, o.broken, o.txid); want != o.fellBack && !o.absent {
		c.fallbackUnreported.Add(1)
		return "fallback misreported", fmt.Sprintf("Stats().FellBack=%v, the image's metas say %v", o.fellBack, want)
	}
	// readFailure judges an error met reading the image: with reordered
	// NoSync writes a refusal wrapping ErrCorrupt is allowed.
	readFailure := func(class string, err error) (string, string) {
		if lenient && corrupt(err) {
			c.noSyncUnopenable.Add(1)
			return "", ""
		}
		c.checkFailures.Add(1)
		return class, err.Error()
	}
	if o.dumpErr != nil {
		return readFailure("read failure", o.dumpErr)
	}
	// The state is identified by its whole dump (data and snapshots); the
	// counter only names the commit that last wrote data.
	if match := matchSerial(models, o.dump, a.allows); match < 0 {
		serial := serialOf(o.dump)
		older := -1
		if lenient {
			older = matchSerial(models, o.dump, func(s int) bool { return s <= a.inflight })
		}
		exact := matchSerial(models, o.dump, nil)
		want, known := models[serial]
		switch {
		case older >= 0:
			// NoSync, writes reordered: later commits may have reused the
			// pages of the newest durable one, so an older commit can be
			// all that verifies. Exactly that commit's state is fine.
			c.noSyncOlder.Add(1)
		case exact >= 0 && exact < a.acked && !a.noSync:
			c.lostAcked.Add(1)
			return "lost acknowledged commit", fmt.Sprintf("recovered serial %d, want %v", exact, a)
		case exact >= 0:
			c.mixed.Add(1)
			return "phantom state", fmt.Sprintf("recovered serial %d, want %v", exact, a)
		case !known:
			c.mixed.Add(1)
			return "phantom state", fmt.Sprintf("recovered counter %d, want %v", serial, a)
		case serial < a.acked && !a.noSync && serial != serialOf(models[a.acked]):
			c.lostAcked.Add(1)
			return "lost acknowledged commit", fmt.Sprintf("recovered counter %d, want %v; content:\n%s", serial, a, diffDumps(want, o.dump))
		default:
			// Compare with the allowed state the counter points to, if
			// any (a snapshot call's commit keeps the counter).
			for _, s := range []int{a.inflight, a.acked} {
				if serialOf(models[s]) == serial {
					want = models[s]
				}
			}
			c.mixed.Add(1)
			return "mixed state", fmt.Sprintf("counter %d: the content differs from the model:\n%s", serial, diffDumps(want, o.dump))
		}
	}
	if o.checkErr != nil {
		return readFailure("check failure", o.checkErr)
	}
	return "", ""
}

// diffDumps shows the first lines where two dumps differ.
func diffDumps(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 6; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "  line %d: want %s\n          got  %s\n", i, wl, gl)
			shown++
		}
	}
	return b.String()
}
