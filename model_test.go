package cowfile

import (
	"bytes"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"testing"
)

// mbucket is the model of a bucket: plain maps, copied on commit.
type mbucket struct {
	kv  map[string]string
	sub map[string]*mbucket
	seq uint64
}

func newMBucket() *mbucket { return &mbucket{kv: map[string]string{}, sub: map[string]*mbucket{}} }

func (m *mbucket) clone() *mbucket {
	c := newMBucket()
	c.seq = m.seq
	for k, v := range m.kv {
		c.kv[k] = v
	}
	for k, s := range m.sub {
		c.sub[k] = s.clone()
	}
	return c
}

// compareBucket checks b against the model, forwards, backwards, by Get and
// by Seek, recursively.
func compareBucket(t *testing.T, path string, b *Bucket, m *mbucket) {
	t.Helper()
	var keys []string
	for k := range m.kv {
		keys = append(keys, k)
	}
	for k := range m.sub {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c := b.Cursor()
	i := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if i >= len(keys) || string(k) != keys[i] {
			t.Fatalf("%s: forward key %d = %q, want %q", path, i, k, keys[min(i, len(keys)-1)])
		}
		if want, ok := m.kv[keys[i]]; ok && string(v) != want {
			t.Fatalf("%s: value of %q differs (len %d, want %d)", path, k, len(v), len(want))
		} else if !ok && v != nil {
			t.Fatalf("%s: bucket %q has a value", path, k)
		}
		i++
	}
	if i != len(keys) {
		t.Fatalf("%s: forward walk saw %d keys, want %d", path, i, len(keys))
	}
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		i--
		if string(k) != keys[i] {
			t.Fatalf("%s: backward key %d = %q, want %q", path, i, k, keys[i])
		}
	}
	if i != 0 {
		t.Fatalf("%s: backward walk ended at %d", path, i)
	}
	for k, v := range m.kv {
		if got := b.Get([]byte(k)); !bytes.Equal(got, []byte(v)) || got == nil {
			t.Fatalf("%s: Get(%q) differs", path, k)
		}
	}
	if b.Sequence() != m.seq {
		t.Fatalf("%s: sequence %d, want %d", path, b.Sequence(), m.seq)
	}
	for name, sm := range m.sub {
		sb := b.Bucket([]byte(name))
		if sb == nil {
			t.Fatalf("%s: missing bucket %q", path, name)
		}
		compareBucket(t, path+"/"+name, sb, sm)
	}
}

func compareDB(t *testing.T, db *DB, root *mbucket) {
	t.Helper()
	err := db.View(func(tx *Tx) error {
		n := 0
		tx.ForEach(func(name []byte, b *Bucket) error { n++; return nil })
		if n != len(root.sub) {
			t.Fatalf("%d top-level buckets, want %d", n, len(root.sub))
		}
		for name, m := range root.sub {
			b := tx.Bucket([]byte(name))
			if b == nil {
				t.Fatalf("missing bucket %q", name)
			}
			compareBucket(t, name, b, m)
		}
		return tx.Check()
	})
	if err != nil {
		t.Fatalf("view/check: %v", err)
	}
}

type modelRun struct {
	t  *testing.T
	r  *rand.Rand
	ps int
}

func (mr *modelRun) key() string {
	k := fmt.Sprintf("k%04d", mr.r.Intn(300))
	if mr.r.Intn(20) == 0 {
		k += string(bytes.Repeat([]byte{'l'}, mr.r.Intn(mr.ps/4)))
	}
	return k
}

func (mr *modelRun) value() string {
	n := mr.r.Intn(60)
	switch mr.r.Intn(30) {
	case 0:
		n = mr.ps + mr.r.Intn(4*mr.ps) // a large value with its own run
	case 1:
		n = 0
	}
	v := make([]byte, n)
	mr.r.Read(v)
	return string(v)
}

// pick descends from tx's root to a random existing bucket, returning it
// and its model; nil if there are no buckets.
func (mr *modelRun) pick(tx *Tx, m *mbucket) (*Bucket, *mbucket) {
	if len(m.sub) == 0 {
		return nil, nil
	}
	names := sortedNames(m.sub)
	name := names[mr.r.Intn(len(names))]
	b, mb := tx.Bucket([]byte(name)), m.sub[name]
	for len(mb.sub) > 0 && mr.r.Intn(2) == 0 {
		names := sortedNames(mb.sub)
		name := names[mr.r.Intn(len(names))]
		b, mb = b.Bucket([]byte(name)), mb.sub[name]
	}
	return b, mb
}

func sortedNames(m map[string]*mbucket) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// step applies one random operation to tx and to the model.
func (mr *modelRun) step(tx *Tx, m *mbucket) {
	t, r := mr.t, mr.r
	b, mb := mr.pick(tx, m)
	op := r.Intn(100)
	switch {
	case b == nil || op < 5:
		name := fmt.Sprintf("b%d", r.Intn(6))
		var err error
		if b == nil || r.Intn(2) == 0 {
			_, err = tx.CreateBucketIfNotExists([]byte(name))
			if _, ok := m.sub[name]; !ok {
				m.sub[name] = newMBucket()
			}
		} else {
			if _, isKey := mb.kv[name]; isKey {
				return
			}
			_, err = b.CreateBucketIfNotExists([]byte(name))
			if _, ok := mb.sub[name]; !ok {
				mb.sub[name] = newMBucket()
			}
		}
		if err != nil {
			t.Fatalf("create bucket: %v", err)
		}
	case op < 8:
		names := sortedNames(mb.sub)
		if len(names) == 0 {
			return
		}
		name := names[r.Intn(len(names))]
		if err := b.DeleteBucket([]byte(name)); err != nil {
			t.Fatalf("delete bucket: %v", err)
		}
		delete(mb.sub, name)
	case op < 60:
		k, v := mr.key(), mr.value()
		if _, isBucket := mb.sub[k]; isBucket {
			return
		}
		if err := b.Put([]byte(k), []byte(v)); err != nil {
			t.Fatalf("put: %v", err)
		}
		mb.kv[k] = v
	case op < 80:
		k := mr.key()
		if _, isBucket := mb.sub[k]; isBucket {
			return
		}
		if err := b.Delete([]byte(k)); err != nil {
			t.Fatalf("delete: %v", err)
		}
		delete(mb.kv, k)
	case op < 85:
		// delete a stretch through a cursor
		c := b.Cursor()
		k, v := c.Seek([]byte(mr.key()))
		for i := 0; i < 20 && k != nil; i++ {
			if v != nil {
				if err := c.Delete(); err != nil {
					t.Fatalf("cursor delete: %v", err)
				}
				delete(mb.kv, string(k))
			}
			k, v = c.Next()
		}
	case op < 90:
		s, err := b.NextSequence()
		if err != nil {
			t.Fatal(err)
		}
		mb.seq++
		if s != mb.seq {
			t.Fatalf("NextSequence = %d, want %d", s, mb.seq)
		}
	default:
		compareBucket(t, "picked", b, mb)
	}
}

func TestModel(t *testing.T) {
	seeds := 3
	if testing.Short() {
		seeds = 1
	}
	for _, ps := range []int{1024, 4096} {
		for seed := 1; seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("ps%d/seed%d", ps, seed), func(t *testing.T) {
				mr := &modelRun{t: t, r: rand.New(rand.NewSource(int64(seed))), ps: ps}
				path := filepath.Join(t.TempDir(), "model.cow")
				opts := &Options{PageSize: ps, Durability: NoSync}
				db, err := Open(path, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { db.Close() }()
				committed := newMBucket()
				for txn := 0; txn < 150; txn++ {
					work := committed.clone()
					tx, err := db.Begin(true)
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < 1+mr.r.Intn(40); i++ {
						mr.step(tx, work)
					}
					if mr.r.Intn(6) == 0 {
						if err := tx.Rollback(); err != nil {
							t.Fatal(err)
						}
					} else {
						if err := tx.Commit(); err != nil {
							t.Fatalf("commit %d: %v", txn, err)
						}
						committed = work
					}
					if mr.r.Intn(15) == 0 {
						if err := db.Close(); err != nil {
							t.Fatal(err)
						}
						if db, err = Open(path, opts); err != nil {
							t.Fatalf("reopen: %v", err)
						}
						if st := db.Stats(); st.FellBack {
							t.Fatalf("reopen fell back: %s", st.FallbackReason)
						}
					}
					compareDB(t, db, committed)
				}
			})
		}
	}
}
