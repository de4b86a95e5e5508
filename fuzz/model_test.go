package fuzz

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/cowfile/cowfile"
)

// The workload alphabet. Every transaction is one of these operations plus
// a bump of the counter key, so a recovered state names itself. Letters are
// appended, never reordered: replay strings and the FuzzCrash corpus spell
// workloads with them.
//
// The snapshot operations are the DB's own calls (CreateSnapshot,
// DeleteSnapshot, Restore), each of which runs a commit of its own that
// cannot also write a key. Such an op is therefore several commits (steps,
// each with its own serial): the snapshot call, then a transaction that
// only bumps the counter. The state after the snapshot call keeps the
// previous counter (after a restore, the snapshot's); it is told apart by
// its snapshot catalog, which is part of every dump (names and the whole
// content of each snapshot), and the oracle identifies a recovered state
// by its whole dump, not by the counter alone. The bump that follows makes
// the state after a restore distinct from the snapshot's own state again;
// where a restore does reproduce an earlier state exactly (same data, same
// snapshots), the two are one state and either serial names it.
const (
	opPut      = iota // a small put in bucket "b"
	opDel             // delete the smallest key of "b"
	opLarge           // a large value (a multi-page run) under "b"/"big"
	opLarge2          // the same large value under "b"/"big2"
	opMkB             // create bucket "c" with a nested bucket and keys
	opRmB             // delete bucket "c" (or "b")
	opGrowth          // about 72 KiB of values in bucket "g": the file grows
	opReuse           // free a lot (large values, half of "g") and put a little
	opHold            // begin a reader that stays open to the end, then a put
	opSnap            // snapshot the last commit; then a counter bump
	opDelSnap         // delete the oldest snapshot (none: snapshot first); then a bump
	opRestore         // restore the newest snapshot (none: snapshot first); then a bump
	opFragment        // 100 values, then every other one deleted, then three bumps
	nOps
)

var opNames = [nOps]string{"put", "del", "large", "large2", "mkbucket", "rmbucket", "growth", "reuse", "hold",
	"snapshot", "delsnapshot", "restore", "fragment"}

// opLetters spell workloads compactly in messages and replay specs.
const opLetters = "pdLlBRGUHSXVF"

func workloadString(ops []uint8) string {
	var b strings.Builder
	for _, o := range ops {
		b.WriteByte(opLetters[o%nOps])
	}
	return b.String()
}

func parseWorkload(s string) ([]uint8, error) {
	var ops []uint8
	for _, r := range s {
		i := strings.IndexRune(opLetters, r)
		if i < 0 {
			return nil, fmt.Errorf("unknown op %q in workload %q", r, s)
		}
		ops = append(ops, uint8(i))
	}
	return ops, nil
}

// mbucket is the model of a bucket: values and nested buckets. The root
// bucket of a state also holds the state's snapshots.
type mbucket struct {
	vals map[string]string
	subs map[string]*mbucket
	// snaps (root only) are the snapshots by name, each the data of the
	// version it pins. They are never modified once taken, so clones
	// share them.
	snaps map[string]*mbucket
}

func newMBucket() *mbucket {
	return &mbucket{vals: map[string]string{}, subs: map[string]*mbucket{}}
}

func (b *mbucket) clone() *mbucket {
	c := newMBucket()
	for k, v := range b.vals {
		c.vals[k] = v
	}
	for k, s := range b.subs {
		c.subs[k] = s.clone()
	}
	if len(b.snaps) > 0 {
		c.snaps = make(map[string]*mbucket, len(b.snaps))
		for k, s := range b.snaps {
			c.snaps[k] = s
		}
	}
	return c
}

// data returns a deep copy of b's data, without its snapshots.
func (b *mbucket) data() *mbucket {
	c := b.clone()
	c.snaps = nil
	return c
}

// action is one primitive change, applied identically to the model and to
// a transaction.
type action struct {
	kind string // "put", "del", "mkb", "rmb"
	path []string
	key  string
	val  string
}

const (
	counterBucket = "_"
	counterKey    = "n"
)

// largeValue is the value of opLarge and opLarge2: more than two pages, so
// it lives in a run of its own at every page size, and the same bytes in
// both ops (two transactions may then write identical runs).
func largeValue(ps int) string {
	b := make([]byte, 2*ps+100)
	for i := range b {
		b[i] = byte('a' + i%23)
	}
	return string(b)
}

// actions returns what op does to the model state root in transaction
// serial (the counter value it commits).
func actions(op uint8, root *mbucket, serial, ps int) []action {
	var as []action
	top := func(name string) {
		if root.subs[name] == nil {
			as = append(as, action{kind: "mkb", key: name})
		}
	}
	switch op {
	case opPut, opHold:
		top("b")
		as = append(as, action{kind: "put", path: []string{"b"}, key: fmt.Sprintf("k%d", serial%4), val: fmt.Sprintf("v%d", serial)})
	case opDel:
		if b := root.subs["b"]; b != nil && len(b.vals) > 0 {
			as = append(as, action{kind: "del", path: []string{"b"}, key: sortedKeys(b.vals)[0]})
		} else {
			top("b")
			as = append(as, action{kind: "del", path: []string{"b"}, key: "absent"})
		}
	case opLarge, opLarge2:
		top("b")
		k := "big"
		if op == opLarge2 {
			k = "big2"
		}
		as = append(as, action{kind: "put", path: []string{"b"}, key: k, val: largeValue(ps)})
	case opMkB:
		c := root.subs["c"]
		if c == nil {
			as = append(as, action{kind: "mkb", key: "c"},
				action{kind: "put", path: []string{"c"}, key: "x1", val: "one"})
		}
		if c == nil || c.subs["n"] == nil {
			as = append(as, action{kind: "mkb", path: []string{"c"}, key: "n"})
		}
		as = append(as, action{kind: "put", path: []string{"c", "n"}, key: fmt.Sprintf("y%d", serial), val: fmt.Sprintf("nested %d", serial)})
	case opRmB:
		switch {
		case root.subs["c"] != nil:
			as = append(as, action{kind: "rmb", key: "c"})
		case root.subs["b"] != nil:
			as = append(as, action{kind: "rmb", key: "b"})
		default:
			as = append(as, action{kind: "mkb", key: "c"})
		}
	case opGrowth:
		top("g")
		for i := 0; i < 48; i++ {
			as = append(as, action{kind: "put", path: []string{"g"}, key: fmt.Sprintf("g%02d", i),
				val: strings.Repeat(string(rune('A'+(serial+i)%26)), 1500)})
		}
	case opReuse:
		if b := root.subs["b"]; b != nil {
			for _, k := range []string{"big", "big2"} {
				if _, ok := b.vals[k]; ok {
					as = append(as, action{kind: "del", path: []string{"b"}, key: k})
				}
			}
		}
		if g := root.subs["g"]; g != nil {
			for i, k := range sortedKeys(g.vals) {
				if i%2 == 0 {
					as = append(as, action{kind: "del", path: []string{"g"}, key: k})
				}
			}
		}
		top("r")
		as = append(as, action{kind: "put", path: []string{"r"}, key: fmt.Sprintf("r%d", serial), val: "reused"})
	}
	// The counter: every transaction names the state it makes.
	return append(as, bumpActions(root, serial)...)
}

// bumpActions sets the counter to serial.
func bumpActions(root *mbucket, serial int) []action {
	var as []action
	if root.subs[counterBucket] == nil {
		as = append(as, action{kind: "mkb", key: counterBucket})
	}
	return append(as, action{kind: "put", path: []string{counterBucket}, key: counterKey, val: strconv.Itoa(serial)})
}

// Snapshot calls a step makes.
const (
	snapCreate  = "create"
	snapDelete  = "delete"
	snapRestore = "restore"
)

// step is one commit of an op: a write transaction applying as, or (snap
// set) one of the DB's snapshot calls on the snapshot name, which commits
// on its own.
type step struct {
	snap string
	name string
	as   []action
}

func (s step) String() string {
	if s.snap != "" {
		return s.snap + " snapshot " + s.name
	}
	return fmt.Sprintf("transaction of %d changes", len(s.as))
}

// snapName names the snapshot a step of serial creates; names sort in the
// order they were created (serials stay far below a million in a run).
func snapName(serial int) string { return fmt.Sprintf("s%06d", serial) }

// stepsOf returns the commits op makes from the model state root; the
// first gets serial, the next serial+1, and so on.
func stepsOf(op uint8, root *mbucket, serial, ps int) []step {
	var out []step
	m := root
	add := func(s step) {
		out = append(out, s)
		m = applyStep(m, s)
	}
	bump := func() { add(step{as: bumpActions(m, serial+len(out))}) }
	// With no snapshot to delete or restore, the op takes one first, so
	// that every op does what its name says even alone.
	ensure := func() {
		if len(m.snaps) == 0 {
			add(step{snap: snapCreate, name: snapName(serial + len(out))})
			bump()
		}
	}
	switch op {
	case opSnap:
		add(step{snap: snapCreate, name: snapName(serial)})
		bump()
	case opDelSnap:
		ensure()
		add(step{snap: snapDelete, name: sortedKeys(m.snaps)[0]})
		bump()
	case opRestore:
		ensure()
		names := sortedKeys(m.snaps)
		add(step{snap: snapRestore, name: names[len(names)-1]})
		// The restore brought the snapshot's counter back; the bump makes
		// the state name a commit of its own again.
		bump()
	case opFragment:
		// 100 values of 600 bytes (at 1 KiB pages each in a page of its
		// own), then every other one deleted: 50 isolated free pages, a
		// free-space state larger than a small commit's segment, so the
		// bumps after it write it as a sweep of several runs, and the last
		// bump's state loads from a base that describes only part of it
		// (at larger pages the values are inline and the state stays
		// small).
		var puts []action
		if m.subs["f"] == nil {
			puts = append(puts, action{kind: "mkb", key: "f"})
		}
		for i := 0; i < 100; i++ {
			puts = append(puts, action{kind: "put", path: []string{"f"}, key: fmt.Sprintf("f%03d", i),
				val: strings.Repeat(string(rune('a'+(serial+i)%26)), 600)})
		}
		add(step{as: append(puts, bumpActions(m, serial)...)})
		var dels []action
		for i := 0; i < 100; i += 2 {
			dels = append(dels, action{kind: "del", path: []string{"f"}, key: fmt.Sprintf("f%03d", i)})
		}
		add(step{as: append(dels, bumpActions(m, serial+1)...)})
		bump()
		bump()
		bump()
	default:
		add(step{as: actions(op, m, serial, ps)})
	}
	return out
}

// applyStep returns the model state after s, leaving root as it was.
func applyStep(root *mbucket, s step) *mbucket {
	next := root.clone()
	switch s.snap {
	case "":
		applyModel(next, s.as)
	case snapCreate:
		// CreateSnapshot pins the latest commit: the state as it is.
		if next.snaps == nil {
			next.snaps = map[string]*mbucket{}
		}
		next.snaps[s.name] = root.data()
	case snapDelete:
		delete(next.snaps, s.name)
	case snapRestore:
		// The data becomes the snapshot's; every snapshot stays.
		snaps := next.snaps
		next = root.snaps[s.name].data()
		next.snaps = snaps
	default:
		panic("model: unknown step " + s.snap)
	}
	return next
}

// applyStepDB makes the snapshot call of s on db.
func applyStepDB(db *cowfile.DB, s step) error {
	switch s.snap {
	case snapCreate:
		return db.CreateSnapshot(s.name)
	case snapDelete:
		return db.DeleteSnapshot(s.name)
	case snapRestore:
		return db.Restore(s.name)
	}
	return fmt.Errorf("unknown step %q", s.snap)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// applyModel applies as to the model root.
func applyModel(root *mbucket, as []action) {
	for _, a := range as {
		b := root
		for _, p := range a.path {
			if b.subs[p] == nil {
				panic(fmt.Sprintf("model: bucket %v missing for %+v", a.path, a.kind+" "+a.key))
			}
			b = b.subs[p]
		}
		switch a.kind {
		case "put":
			b.vals[a.key] = a.val
		case "del":
			delete(b.vals, a.key)
		case "mkb":
			b.subs[a.key] = newMBucket()
		case "rmb":
			delete(b.subs, a.key)
		}
	}
}

// applyTx applies as to a write transaction.
func applyTx(tx *cowfile.Tx, as []action) error {
	for _, a := range as {
		var b *cowfile.Bucket
		for i, p := range a.path {
			if i == 0 {
				b = tx.Bucket([]byte(p))
			} else {
				b = b.Bucket([]byte(p))
			}
			if b == nil {
				return fmt.Errorf("bucket %v missing", a.path[:i+1])
			}
		}
		var err error
		switch {
		case a.kind == "put":
			err = b.Put([]byte(a.key), []byte(a.val))
		case a.kind == "del":
			err = b.Delete([]byte(a.key))
		case a.kind == "mkb" && b == nil:
			_, err = tx.CreateBucket([]byte(a.key))
		case a.kind == "mkb":
			_, err = b.CreateBucket([]byte(a.key))
		case a.kind == "rmb" && b == nil:
			err = tx.DeleteBucket([]byte(a.key))
		case a.kind == "rmb":
			err = b.DeleteBucket([]byte(a.key))
		}
		if err != nil {
			return fmt.Errorf("%s %v/%s: %w", a.kind, a.path, a.key, err)
		}
	}
	return nil
}

// Dumps are the canonical text of a whole state: one line per key, in
// bucket-then-key order, with long values as length and hash. The model
// and the engine each produce one; equal dumps mean equal states.

func dumpValue(v []byte) string {
	if len(v) <= 32 {
		return strconv.Quote(string(v))
	}
	return fmt.Sprintf("<%d bytes %016x>", len(v), xxhash.Sum64(v))
}

// dumpModel is the dump of a model state: its data, then its snapshots
// (snapshotDump).
func dumpModel(root *mbucket) string {
	d := dumpData(root)
	for _, name := range sortedKeys(root.snaps) {
		d += snapshotDump(name, dumpData(root.snaps[name]))
	}
	return d
}

// snapshotDump is the part of a dump for the snapshot name whose data
// dumps as data: a line naming it, then its lines, each prefixed so that
// they are never taken for the current state's (those start with a quote).
func snapshotDump(name, data string) string {
	var b strings.Builder
	prefix := "snapshot " + strconv.Quote(name)
	b.WriteString(prefix + "\n")
	for _, line := range strings.SplitAfter(data, "\n") {
		if line != "" {
			b.WriteString(prefix + " " + line)
		}
	}
	return b.String()
}

func dumpData(root *mbucket) string {
	var b strings.Builder
	var walk func(prefix string, m *mbucket)
	walk = func(prefix string, m *mbucket) {
		keys := sortedKeys(m.vals)
		for k := range m.subs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := m.subs[k]; ok {
				fmt.Fprintf(&b, "%s%q/\n", prefix, k)
				walk(prefix+strconv.Quote(k)+"/", s)
			} else {
				fmt.Fprintf(&b, "%s%q=%s\n", prefix, k, dumpValue([]byte(m.vals[k])))
			}
		}
	}
	walk("", root)
	return b.String()
}

// dumpDB reads the latest version of db completely: its data (dumpTx),
// then every snapshot Snapshots lists, read through ViewSnapshot.
func dumpDB(db *cowfile.DB) (string, error) {
	var d string
	if err := db.View(func(tx *cowfile.Tx) error {
		var err error
		d, err = dumpTx(tx)
		return err
	}); err != nil {
		return d, err
	}
	infos, err := db.Snapshots()
	if err != nil {
		return d, fmt.Errorf("listing snapshots: %w", err)
	}
	names := make([]string, 0, len(infos))
	for _, in := range infos {
		names = append(names, in.Name)
	}
	sort.Strings(names)
	for i, name := range names {
		if i > 0 && names[i-1] == name {
			return d, fmt.Errorf("snapshot %q listed twice", name)
		}
		var sd string
		if err := db.ViewSnapshot(name, func(tx *cowfile.Tx) error {
			var err error
			sd, err = dumpTx(tx)
			return err
		}); err != nil {
			return d, fmt.Errorf("snapshot %q: %w", name, err)
		}
		d += snapshotDump(name, sd)
	}
	return d, nil
}

// dumpTx reads everything tx sees, with cursors, ForEach and Get, and
// returns the dump. Every value a cursor returns must also come back from
// Get; a read that meets corruption makes the dump fail.
func dumpTx(tx *cowfile.Tx) (string, error) {
	var b strings.Builder
	var walk func(prefix string, bk *cowfile.Bucket, depth int) error
	walk = func(prefix string, bk *cowfile.Bucket, depth int) error {
		if depth > 64 {
			return errors.New("buckets nested too deep")
		}
		c := bk.Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n > 1<<20 {
				return errors.New("bucket does not end")
			}
			if v == nil {
				sub := bk.Bucket(k)
				if sub == nil {
					if err := tx.Err(); err != nil {
						return err
					}
					return fmt.Errorf("cursor gave bucket %q, Bucket gives nil", k)
				}
				fmt.Fprintf(&b, "%s%q/\n", prefix, k)
				if err := walk(prefix+strconv.Quote(string(k))+"/", sub, depth+1); err != nil {
					return err
				}
				continue
			}
			if g := bk.Get(k); !bytes.Equal(g, v) {
				if err := tx.Err(); err != nil {
					return err
				}
				return fmt.Errorf("key %q: cursor and Get disagree", k)
			}
			fmt.Fprintf(&b, "%s%q=%s\n", prefix, k, dumpValue(v))
		}
		return tx.Err()
	}
	n := 0
	err := tx.ForEach(func(name []byte, bk *cowfile.Bucket) error {
		if n++; n > 1<<20 {
			return errors.New("catalog does not end")
		}
		if bk == nil {
			if err := tx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("bucket %q listed but not found", name)
		}
		fmt.Fprintf(&b, "%q/\n", name)
		return walk(strconv.Quote(string(name))+"/", bk, 1)
	})
	if err == nil {
		err = tx.Err()
	}
	return b.String(), err
}

// serialOf returns the counter a dump names (0 when the state has no data),
// or -1. It is the serial of the commit that last wrote the data, which a
// snapshot call's commit does not: the oracle identifies states by their
// whole dump (matchSerial), the counter only helps to describe them.
func serialOf(dump string) int {
	prefix := strconv.Quote(counterBucket) + "/" + strconv.Quote(counterKey) + "="
	data := false
	for _, line := range strings.Split(dump, "\n") {
		if s, ok := strings.CutPrefix(line, prefix); ok {
			v, err := strconv.Unquote(s)
			if err != nil {
				return -1
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return -1
			}
			return n
		}
		if line != "" && !strings.HasPrefix(line, "snapshot ") {
			data = true
		}
	}
	if !data {
		return 0
	}
	return -1
}

// matchSerial returns the serial whose model dump is exactly dump, among
// those ok accepts (nil: any); the highest when several are (a restore can
// reproduce an earlier state exactly). It returns -1 if there is none.
func matchSerial(models map[int]string, dump string, ok func(int) bool) int {
	best := -1
	for s, m := range models {
		if s > best && m == dump && (ok == nil || ok(s)) {
			best = s
		}
	}
	return best
}
