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
// a bump of the counter key, so a recovered state names itself.
const (
	opPut    = iota // a small put in bucket "b"
	opDel           // delete the smallest key of "b"
	opLarge         // a large value (a multi-page run) under "b"/"big"
	opLarge2        // the same large value under "b"/"big2"
	opMkB           // create bucket "c" with a nested bucket and keys
	opRmB           // delete bucket "c" (or "b")
	opGrowth        // about 72 KiB of values in bucket "g": the file grows
	opReuse         // free a lot (large values, half of "g") and put a little
	opHold          // begin a reader that stays open to the end, then a put
	nOps
)

var opNames = [nOps]string{"put", "del", "large", "large2", "mkbucket", "rmbucket", "growth", "reuse", "hold"}

// opLetters spell workloads compactly in messages and replay specs.
const opLetters = "pdLlBRGUH"

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

// mbucket is the model of a bucket: values and nested buckets.
type mbucket struct {
	vals map[string]string
	subs map[string]*mbucket
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
	top(counterBucket)
	as = append(as, action{kind: "put", path: []string{counterBucket}, key: counterKey, val: strconv.Itoa(serial)})
	return as
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

func dumpModel(root *mbucket) string {
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

// serialOf returns the counter a dump names (0 for the empty state), or -1.
func serialOf(dump string) int {
	prefix := strconv.Quote(counterBucket) + "/" + strconv.Quote(counterKey) + "="
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
	}
	if dump == "" {
		return 0
	}
	return -1
}
