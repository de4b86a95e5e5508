package fuzz

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cowfile/cowfile"
)

// faultKinds are the I/O errors injected: EIO and ENOSPC on writes, short
// writes with and without an error, failed and partial size changes, a
// failed fdatasync (fsyncgate), and failed renames and directory syncs
// while the file is created.
var faultKinds = []struct {
	name string
	plan faultPlan
}{
	{"write-EIO", faultPlan{kind: opWrite, err: syscall.EIO}},
	{"write-ENOSPC", faultPlan{kind: opWrite, err: syscall.ENOSPC}},
	{"write-short", faultPlan{kind: opWrite, short: true}},
	{"write-short-ENOSPC", faultPlan{kind: opWrite, short: true, err: syscall.ENOSPC}},
	{"truncate-EIO", faultPlan{kind: opGrow, err: syscall.EIO}},
	{"truncate-short-ENOSPC", faultPlan{kind: opGrow, short: true, err: syscall.ENOSPC}},
	{"sync-EIO", faultPlan{kind: opSync, err: syscall.EIO}},
	{"rename-EIO", faultPlan{kind: opRename, err: syscall.EIO}},
	{"syncdir-EIO", faultPlan{kind: opSyncDir, err: syscall.EIO}},
}

// TestIOFaults is SQLite's I/O-error loop: for each workload, fault kind
// and persistence, fail call 1 of that kind, then call 2, 3, … until the
// workload completes without reaching the fault. Each run checks that the
// failed commit returns the error (wrapping ErrWriteFailed and the injected
// error), that the DB refuses every later write and issues no more I/O,
// that readers still see the last acknowledged state, that every
// power-loss image at the failure and the file itself (the page cache, as
// a reopen in the same boot sees it) recover the last acknowledged state
// or the failed one, and that recovery works — also while a persistent
// fault still fails the first commits after the reopen.
func TestIOFaults(t *testing.T) {
	c := &counters{}
	ob := newObserver(t, c)
	failures := new(atomic.Int64)
	t.Cleanup(func() { c.log(t) })
	type slice struct {
		ps        int
		mode      cowfile.Durability
		workloads []string
	}
	slices := []slice{
		{1024, cowfile.Sync, []string{"LBU", "HR"}},
		{4096, cowfile.SyncMeta, []string{"pB"}},
		{1024, cowfile.NoSync, []string{"Lp", "V"}},
	}
	if longRun() {
		// Every workload of up to two ops (one with
		// COWFILE_MAXOPS=1), at the page sizes and durabilities
		// COWFILE_PS and COWFILE_MODES allow.
		slices = nil
		var ws []string
		maxOps := 2
		if n, err := strconv.Atoi(os.Getenv("COWFILE_MAXOPS")); err == nil && n == 1 {
			maxOps = 1
		}
		for _, w := range workloadsUpTo(maxOps) {
			ws = append(ws, workloadString(w))
		}
		for _, ps := range pageSizes {
			for _, m := range modes {
				if envListHas("COWFILE_PS", ps) && envListHas("COWFILE_MODES", int(m)) {
					slices = append(slices, slice{ps, m, ws})
				}
			}
		}
	}
	for _, sl := range slices {
		t.Run(fmt.Sprintf("ps%d-%s", sl.ps, sl.mode), func(t *testing.T) {
			t.Parallel()
			for wi, w := range sl.workloads {
				c.progress(t, fmt.Sprintf("%d of %d workloads done, next %s", wi, len(sl.workloads), w))
				ops, err := parseWorkload(w)
				if err != nil {
					t.Fatal(err)
				}
				for _, fk := range faultKinds {
					for _, persistent := range []bool{false, true} {
						for at := 1; ; at++ {
							plan := fk.plan
							plan.at, plan.persistent = at, persistent
							if !faultRun(t, ob, c, sl.ps, sl.mode, nil, 0, nil, ops, &plan, failures) {
								break
							}
							if at > 200 {
								t.Fatalf("%s: the fault loop does not end", fk.name)
							}
						}
					}
				}
			}
		})
	}
	// Faults during recovery: the first transactions after a crash that
	// fell back, with each fault at every call.
	t.Run("after-crash", func(t *testing.T) {
		t.Parallel()
		for _, ps := range []int{1024} {
			r := newCrashRun(t, ob, c, ps, cowfile.Sync, levelShort, failures)
			ops := []uint8{opLarge, opMkB}
			var img []byte
			var spec string
			var serial, pointN int
			rng := rand.New(rand.NewSource(3))
			r.session(sessionCfg{ops: ops, visit: func(p *point) {
				if img != nil {
					return
				}
				for _, s := range r.verifyAt(p, rng, crashCase{ps: ps, phases: []phase{{ops: ops}}}, "") {
					if b, sr, err := r.imageAt(p, s.String()); err == nil && sr > 0 {
						img, serial, spec, pointN = b, sr, s.String(), p.n
						return
					}
				}
			}})
			if img == nil {
				t.Fatalf("ps %d: no crash image fell back past a newer meta", ps)
			}
			prefix := []phase{{ops: ops, point: pointN, image: spec}}
			for _, fk := range faultKinds[:7] {
				for _, persistent := range []bool{false, true} {
					for at := 1; ; at++ {
						plan := fk.plan
						plan.at, plan.persistent = at, persistent
						if !faultRun(t, ob, c, ps, cowfile.Sync, r, serial, img, []uint8{opLarge2, opRmB}, &plan, failures, prefix...) {
							break
						}
					}
				}
			}
		}
	})
}

// faultRun runs ops with plan armed from the Open on (from start, whose
// state is serial startSerial of parent's model, or a new file) and checks
// everything the fault must leave true. It reports whether the fault fired.
func faultRun(t testing.TB, ob *observer, c *counters, ps int, mode cowfile.Durability, parent *crashRun, startSerial int, start []byte, ops []uint8, plan *faultPlan, failures *atomic.Int64, prefix ...phase) bool {
	r := newCrashRun(t, ob, c, ps, mode, levelShort, failures)
	if parent != nil {
		r.models, r.states, r.next = parent.models, parent.states, parent.next
	}
	replay := crashCase{ps: ps, mode: mode, phases: append(append([]phase(nil), prefix...), phase{ops: ops, fault: plan})}
	rng := rand.New(rand.NewSource(int64(plan.at)))
	verified := false
	cfg := sessionCfg{start: start, startSerial: startSerial, ops: ops, plan: plan, replay: replay}
	cfg.visit = func(p *point) {
		// Every image a power loss could leave right after the failed call.
		if !verified && p.ev.after && p.ev.err != nil {
			verified = true
			r.verifyAt(p, rng, replay, "")
		}
	}
	cfg.onFailure = func(db *cowfile.DB, res *sessionResult) {
		if msg := checkCommitError(res.commitErr, plan); msg != "" {
			c.ackAfterFailedSync.Add(1)
			r.fail("failed commit misreported", msg, replay)
		}
		// Sticky: every later write fails, and nothing reaches the file.
		before := res.fs.mutations()
		err := db.Update(func(tx *cowfile.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("after"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		})
		if !errors.Is(err, cowfile.ErrWriteFailed) || res.fs.mutations() != before {
			c.stickyBroken.Add(1)
			r.fail("write after a failure", fmt.Sprintf("Update returned %v, %d more calls reached the file", err, res.fs.mutations()-before), replay)
		}
		// Readers see the last acknowledged state, not the failed one.
		got, err := dumpDB(db)
		if err != nil || got != r.models[res.acked] {
			c.mixed.Add(1)
			r.fail("readers after a failure", fmt.Sprintf("%v\n%s", err, diffDumps(r.models[res.acked], got)), replay)
		}
	}
	res := r.session(cfg)
	fired := plan.fired > 0
	c.faultRuns.Add(1)
	c.faultsInjected.Add(int64(plan.fired))
	switch {
	case !fired:
		if res.openErr != nil || res.commitErr != nil {
			c.otherFailures.Add(1)
			r.fail("failure without a fault", fmt.Sprint(res.openErr, res.commitErr), replay)
		}
		r.verifyFinal(res, replay)
		return false
	case res.openErr != nil:
		// The fault hit the file's creation: Open must have said so,
		// and a later Open must give a usable, empty file.
		if res.commitErr != nil {
			r.t.Fatal("commit after a failed open")
		}
	case res.commitErr == nil && res.closeErr != nil:
		// The fault hit Close's meta slot write: nothing was in flight.
	case res.commitErr == nil:
		// The fault fired but nothing failed: a write or sync error was
		// swallowed (an acknowledged commit that may not be durable).
		c.ackAfterFailedSync.Add(1)
		r.fail("fault swallowed", fmt.Sprintf("the workload completed although %v fired", plan), replay)
		return true
	}
	// The file as the page cache holds it must recover the acknowledged
	// or the failed state.
	o := ob.observe(res.final, res.final == nil, ps)
	c.images.Add(1)
	a := allowance{acked: res.acked, inflight: res.inflight}
	if class, msg := judge(o, a, r.models, c); class != "" {
		r.fail(class, fmt.Sprintf("reopen after %v: %s\n  observed: %v", plan, msg, o), replay)
		return true
	}
	serial := r.stateOf(o.dump)
	img := res.final
	// Recovery while the fault persists: the reopen works (it writes
	// nothing), and the first commit fails again, cleanly.
	if plan.persistent && plan.kind != opRename && plan.kind != opSyncDir && img != nil {
		again := *plan
		again.at, again.fired, again.seen = 1, 0, 0
		res2 := r.session(sessionCfg{start: img, startSerial: serial, ops: []uint8{opPut}, plan: &again, replay: replay,
			onFailure: func(db *cowfile.DB, res *sessionResult) {
				if msg := checkCommitError(res.commitErr, &again); msg != "" {
					c.ackAfterFailedSync.Add(1)
					r.fail("failed commit misreported during recovery", msg, replay)
				}
			}})
		c.faultsInjected.Add(int64(again.fired))
		if res2.openErr != nil {
			c.failedOpens.Add(1)
			r.fail("reopen with a persistent fault", res2.openErr.Error(), replay)
		} else if again.fired > 0 && res2.commitErr == nil {
			c.ackAfterFailedSync.Add(1)
			r.fail("fault swallowed during recovery", fmt.Sprint(&again), replay)
		}
	}
	// Recovery once the fault is gone: more transactions, with every
	// crash point verified, and a clean final state.
	rng2 := rand.New(rand.NewSource(int64(plan.at) + 99))
	r3 := newCrashRun(t, ob, c, ps, mode, levelTiny, failures)
	if longRun() {
		r3.lv = levelShort
	}
	r3.models, r3.states, r3.next = r.models, r.states, r.next
	res3 := r3.session(sessionCfg{start: img, startSerial: serial, ops: []uint8{opPut, opLarge2}, replay: replay,
		visit: func(p *point) { r3.verifyAt(p, rng2, replay, "") }})
	if res3.openErr != nil || res3.commitErr != nil {
		c.failedOpens.Add(1)
		r.fail("recovery after a fault", fmt.Sprint(res3.openErr, res3.commitErr), replay)
	}
	r3.verifyFinal(res3, replay)
	return true
}
