package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cowfile/cowfile"
)

func TestPutGetDelete(t *testing.T) {
	path := copyGolden(t)
	want(t, 0, "put", path, "users", "prefs", "lang", "fr")
	if got := want(t, 0, "get", path, "users", "prefs", "lang").stdout; got != "fr\n" {
		t.Fatalf("get after put = %q", got)
	}
	// Escaped and hex arguments reach the same bytes.
	want(t, 0, "put", path, "logs", `k\00\ff`, `v\0a\\`)
	if got := want(t, 0, "get", "--format", "hex", path, "6c6f6773", "6b00ff").stdout; got != "760a5c\n" {
		t.Fatalf("get --format hex = %q", got)
	}
	// A missing bucket is a problem unless --create.
	want(t, 1, "put", path, "new", "deeper", "k", "v")
	want(t, 0, "put", "--create", path, "new", "deeper", "k", "v")
	if got := want(t, 0, "get", path, "new", "deeper", "k").stdout; got != "v\n" {
		t.Fatalf("get in created bucket = %q", got)
	}
	// --stdin takes the value raw.
	val := []byte{0, 1, 2, '\n', 0xff}
	if r := cli(t, val, "put", "--stdin", path, "logs", "blob"); r.code != 0 {
		t.Fatalf("put --stdin: %d %s", r.code, r.stderr)
	}
	if got := want(t, 0, "get", "--format", "raw", path, "logs", "blob").stdout; got != string(val) {
		t.Fatalf("get raw = %q", got)
	}
	want(t, 0, "delete", path, "users", "prefs", "lang")
	want(t, 1, "get", path, "users", "prefs", "lang")
	r := want(t, 1, "delete", path, "users", "prefs", "lang")
	if !strings.Contains(r.stderr, "not found") {
		t.Errorf("delete of a missing key: %q", r.stderr)
	}
	// A key holding a bucket is not deleted as a key.
	want(t, 1, "delete", path, "users", "prefs")
	want(t, 0, "check", path)
	// put never creates a file by accident.
	want(t, 2, "put", filepath.Join(t.TempDir(), "typo.cow"), "b", "k", "v")
}

// Commands that write take the exclusive lock: while another process
// (here: this test) has the file open, they wait --timeout and fail; the
// read-only ones share the lock with other readers.
func TestLocking(t *testing.T) {
	path := copyGolden(t)
	db, err := cowfile.Open(path, &cowfile.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	want(t, 0, "get", path, "logs", "0001")
	want(t, 0, "backup", path, filepath.Join(t.TempDir(), "b.cow"))
	r := want(t, 2, "put", "--timeout", "100ms", path, "logs", "k", "v")
	if !strings.Contains(r.stderr, "lock") {
		t.Errorf("put against a reader: %q", r.stderr)
	}
	db.Close()

	db, err = cowfile.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r = want(t, 2, "backup", "--timeout", "200ms", path, filepath.Join(t.TempDir(), "b2.cow"))
	if !strings.Contains(r.stderr, "lock") || time.Since(start) < 200*time.Millisecond {
		t.Errorf("backup against a writer: %q after %v", r.stderr, time.Since(start))
	}
	// The raw decoders take no lock.
	want(t, 0, "inspect", path)
	db.Close()
}

func TestDumpLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.cow")
	makeDB(t, src, 4096)
	orig := contents(t, src)

	// bytevalue through a file, print through standard input.
	dump := filepath.Join(dir, "src.dump")
	want(t, 0, "dump", "-o", dump, src)
	r := want(t, 0, "load", "--json", filepath.Join(dir, "a.cow"), dump)
	var st loadStats
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	// 5 buckets: bin\00ary, a/b (one name), its c and c's empty bucket, words.
	if st.Sections != 5 || st.Commits != 1 {
		t.Errorf("load stats %+v", st)
	}
	sameContents(t, contents(t, filepath.Join(dir, "a.cow")), orig, false)

	printed := want(t, 0, "dump", "--print", src).stdout
	if !strings.Contains(printed, "database=a\\2fb/c/empty\\20bucket\n") || !strings.Contains(printed, "database=bin\\00ary\n") {
		t.Errorf("bucket paths in the dump are not escaped as documented:\n%s", headerLines(printed))
	}
	if r := cli(t, []byte(printed), "load", "--batch", "1000", filepath.Join(dir, "b.cow")); r.code != 0 {
		t.Fatalf("load from stdin: %d %s", r.code, r.stderr)
	}
	sameContents(t, contents(t, filepath.Join(dir, "b.cow")), orig, false)
	want(t, 0, "check", filepath.Join(dir, "b.cow"))

	// A section without database= goes to --main-bucket.
	main := "VERSION=3\nformat=print\ntype=btree\nmapsize=1048576\nHEADER=END\n k\\00\n v\nDATA=END\n"
	if r := cli(t, []byte(main), "load", "--main-bucket", "root", filepath.Join(dir, "c.cow"), "-"); r.code != 0 {
		t.Fatalf("load main: %s", r.stderr)
	}
	if got := want(t, 0, "get", filepath.Join(dir, "c.cow"), "root", `k\00`).stdout; got != "v\n" {
		t.Errorf("main database loaded as %q", got)
	}
}

func headerLines(dump string) string {
	var out []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "database=") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ in, msg string }{
		{"VERSION=2\nHEADER=END\nDATA=END\n", "line 1: VERSION=2"},
		{"VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\nDATA=END\n", "line 3: type=hash"},
		{"VERSION=3\ndupsort=1\nHEADER=END\nDATA=END\n", "duplicate keys"},
		{"VERSION=3\nHEADER=END\n 6b\n zz\nDATA=END\n", "line 4"},
		{"VERSION=3\nHEADER=END\nnospace\n", "line 3: data lines must start with a space"},
		{"VERSION=3\nHEADER=END\n 6b\n", "no DATA=END"},
		{"VERSION=3\nHEADER=END\n 6b\nDATA=END\n", "without its value"},
		{"VERSION=3\nHEADER=END\n \n 76\nDATA=END\n", "key required"},
		{"VERSION=3\ndatabase=a//b\nHEADER=END\nDATA=END\n", "empty name"},
		{"VERSION=3\n", "no HEADER=END"},
	} {
		r := cli(t, []byte(tc.in), "load", filepath.Join(dir, "x.cow"))
		if r.code != 2 || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("load %q: exit %d, stderr %q; want 2 and %q", tc.in, r.code, r.stderr, tc.msg)
		}
	}
}

// The interoperability test with the real LMDB tools: cowfile dump ->
// mdb_load -> mdb_dump -> cowfile load gives the same contents, binary
// keys and values, empty values and nested and empty buckets included.
func TestLMDBInterop(t *testing.T) {
	for _, tool := range []string{"mdb_load", "mdb_dump"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing; CI must install lmdb-utils (.ci/run does)", tool)
			}
			t.Skipf("%s not installed (apt-get install lmdb-utils); skipping the LMDB interoperability test", tool)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.cow")
	makeDB(t, src, 4096)
	orig := contents(t, src)

	dump := filepath.Join(dir, "cow.dump")
	want(t, 0, "dump", "-o", dump, src)
	env := filepath.Join(dir, "env")
	if err := os.Mkdir(env, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) []byte {
		t.Helper()
		var out, errb bytes.Buffer
		c := exec.Command(name, args...)
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, errb.String())
		}
		return out.Bytes()
	}
	run("mdb_load", "-f", dump, env)
	fromLMDB := run("mdb_dump", "-a", env)
	if n := bytes.Count(fromLMDB, []byte("HEADER=END")); n != 5 {
		t.Fatalf("mdb_dump -a wrote %d databases, want 5", n)
	}
	r := cli(t, fromLMDB, "load", filepath.Join(dir, "back.cow"))
	if r.code != 0 {
		t.Fatalf("cowfile load of mdb_dump output: %s", r.stderr)
	}
	sameContents(t, contents(t, filepath.Join(dir, "back.cow")), orig, false)

	// mdb_dump's print format loads too. LMDB 0.9 writes backslashes in
	// it unescaped, which is ambiguous, so this file has none.
	src2 := filepath.Join(dir, "src2.cow")
	makeDBWith(t, src2, 4096, '|')
	orig2 := contents(t, src2)
	env2 := filepath.Join(dir, "env2")
	if err := os.Mkdir(env2, 0o755); err != nil {
		t.Fatal(err)
	}
	run("mdb_load", "-f", dumpOf(t, dir, src2), env2)
	printed := run("mdb_dump", "-a", "-p", env2)
	if r := cli(t, printed, "load", filepath.Join(dir, "back2.cow")); r.code != 0 {
		t.Fatalf("cowfile load of mdb_dump -p output: %s", r.stderr)
	}
	sameContents(t, contents(t, filepath.Join(dir, "back2.cow")), orig2, false)
}

func dumpOf(t *testing.T, dir, src string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(src)+".dump")
	want(t, 0, "dump", "-o", out, src)
	return out
}
