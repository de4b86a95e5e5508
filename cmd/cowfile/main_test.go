package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/cowfile/cowfile"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/cli/")

// bin is the cowfile binary the tests run, built once by TestMain.
var bin string

// repoRoot is the module root: tests run the binary there, so that paths
// in its output (testdata/format-v1.cow) are the same everywhere.
var repoRoot string

const goldenDB = "testdata/format-v1.cow"

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "cowfile-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin = filepath.Join(dir, "cowfile")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the cowfile binary:", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary in the module root with stdin (may be nil).
func cli(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running cowfile %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// want runs the binary and fails unless it exits with code.
func want(t *testing.T, code int, args ...string) result {
	t.Helper()
	r := cli(t, nil, args...)
	if r.code != code {
		t.Fatalf("cowfile %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// golden compares got with testdata/cli/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(repoRoot, "testdata", "cli", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/cowfile -update to create it)", err)
	}
	if string(b) != got {
		t.Errorf("output differs from %s (go test ./cmd/cowfile -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, b)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// unchanged fails the test if the golden database changed while fn ran.
func unchanged(t *testing.T, fn func()) {
	t.Helper()
	path := filepath.Join(repoRoot, goldenDB)
	before := fileHash(t, path)
	fn()
	if fileHash(t, path) != before {
		t.Fatalf("%s was modified", goldenDB)
	}
}

// tree is the whole contents of a file: bucket path -> key -> value, with
// "" mapping bucket paths to their sequence.
type tree map[string]map[string]string

// contents reads every bucket, key and value of the file at path.
func contents(t *testing.T, path string) tree {
	t.Helper()
	db, err := cowfile.Open(path, &cowfile.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := tree{"": {}}
	var walk func(b *cowfile.Bucket, path string) error
	walk = func(b *cowfile.Bucket, path string) error {
		kv := map[string]string{}
		out[path] = kv
		out[""][path] = fmt.Sprint(b.Sequence())
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(b.Bucket(k), path+"/"+fmt.Sprintf("%x", k))
			}
			kv[string(k)] = string(v)
			return nil
		})
	}
	err = db.View(func(tx *cowfile.Tx) error {
		return tx.ForEach(func(name []byte, b *cowfile.Bucket) error { return walk(b, fmt.Sprintf("%x", name)) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameContents compares two trees; sequences only if withSeq.
func sameContents(t *testing.T, got, want tree, withSeq bool) {
	t.Helper()
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if len(got) != len(want) {
		t.Errorf("%d buckets, want %d", len(got)-1, len(want)-1)
	}
	for _, p := range paths {
		if p == "" && !withSeq {
			continue
		}
		g, ok := got[p]
		if !ok {
			t.Errorf("bucket %s missing", p)
			continue
		}
		if len(g) != len(want[p]) {
			t.Errorf("bucket %s: %d keys, want %d", p, len(g), len(want[p]))
		}
		for k, v := range want[p] {
			if gv, ok := g[k]; !ok || gv != v {
				t.Errorf("bucket %s key %x: got %x (present %v), want %x", p, k, gv, ok, v)
				return
			}
		}
	}
}

// makeDB writes a file with nested buckets, binary keys and values (every
// byte value, empty values, a bucket name holding the path separator), a
// large value, sequences, and churn: several commits that delete and
// rewrite, so it has free and pending pages.
func makeDB(t *testing.T, path string, pageSize int) { makeDBWith(t, path, pageSize, '\\') }

// makeDBWith is makeDB with bs in place of every backslash byte (LMDB's
// print format cannot carry backslashes).
func makeDBWith(t *testing.T, path string, pageSize int, bs byte) {
	t.Helper()
	db, err := cowfile.Open(path, &cowfile.Options{PageSize: pageSize, Durability: cowfile.NoSync})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(7))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		r.Read(b)
		for i := range b {
			if b[i] == '\\' {
				b[i] = bs
			}
		}
		return b
	}
	err = db.Update(func(tx *cowfile.Tx) error {
		bin, _ := tx.CreateBucket([]byte("bin\x00ary"))
		for i := 0; i < 256; i++ {
			k := []byte{byte(i), '\n', bs, ' '}
			if k[0] == '\\' {
				k[0] = bs + 1 // keep the 256 keys distinct
			}
			v := []byte{byte(255 - i), 0, '\r', '\n'}
			if v[0] == '\\' {
				v[0] = bs
			}
			bin.Put(k, v)
		}
		bin.Put([]byte("empty"), []byte{})
		bin.Put([]byte("large"), rnd(3*pageSize+100))
		a, _ := tx.CreateBucket([]byte("a/b"))
		a.SetSequence(42)
		c, _ := a.CreateBucket([]byte("c"))
		c.Put([]byte("k"), []byte("v"))
		c.CreateBucket([]byte("empty bucket"))
		w, _ := tx.CreateBucket([]byte("words"))
		for i := 0; i < 2000; i++ {
			w.Put([]byte(fmt.Sprintf("w%05d", r.Intn(100000))), rnd(r.Intn(40)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		err = db.Update(func(tx *cowfile.Tx) error {
			w := tx.Bucket([]byte("words"))
			c := w.Cursor()
			n := 0
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if n++; n%3 == round {
					if err := c.Delete(); err != nil {
						return err
					}
				}
			}
			for i := 0; i < 100; i++ {
				w.Put([]byte(fmt.Sprintf("x%d-%05d", round, i)), rnd(20))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyGolden copies the golden database into a temp dir.
func copyGolden(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, goldenDB))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "g.cow")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
