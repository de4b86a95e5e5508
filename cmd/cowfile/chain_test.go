package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cowfile/cowfile"
)

// chainFile writes n commits of one key each under Sync durability, most
// of which write their meta as a commit record only, and copies the file
// before Close (which would write the latest meta to a slot), as a crash
// leaves it. It returns the copy's path and the contents before the last
// commit.
func chainFile(t *testing.T, n int) (string, tree) {
	t.Helper()
	dir := t.TempDir()
	db, err := cowfile.Open(filepath.Join(dir, "live.cow"), &cowfile.Options{PageSize: 1024, Durability: cowfile.Sync})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	path := filepath.Join(dir, "chain.cow")
	var before tree
	for i := range n {
		if i == n-1 {
			b, err := os.ReadFile(db.Path())
			if err != nil {
				t.Fatal(err)
			}
			prev := filepath.Join(dir, "before.cow")
			if err := os.WriteFile(prev, b, 0o600); err != nil {
				t.Fatal(err)
			}
			before = contents(t, prev)
		}
		err := db.Update(func(tx *cowfile.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(fmt.Sprintf("k%03d", i)), []byte("v"))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, before
}

// A file whose latest meta is a commit record: inspect says open uses it,
// lists the chain, classifies the records as live meta pages (no leaks),
// page decodes one; revert drops the last commit and writes a copy the
// engine opens cleanly and writes on.
func TestChainInspectRevert(t *testing.T) {
	path, before := chainFile(t, 20)
	r := want(t, 0, "inspect", path)
	for _, s := range []string{"open: uses commit record at page ", ", reached from meta slot ", ", no fallback", "RECORD", "records     ", "no problems found"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, r.stdout)
		}
	}
	var v struct {
		Open struct {
			Slot     int
			TxID     uint64
			Record   *uint64
			FallBack bool `json:"fallback"`
		}
		Records []recordJSON
		Counts  map[string]int `json:"page_counts"`
	}
	if err := json.Unmarshal([]byte(want(t, 0, "inspect", "--json", path).stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Open.Record == nil || v.Open.TxID != 21 || v.Open.FallBack || len(v.Records) == 0 || v.Records[0].State != "current" ||
		v.Records[0].Page != *v.Open.Record || v.Counts["unreachable"] != 0 || v.Counts["meta"] < 3 {
		t.Fatalf("inspect --json: %+v", v)
	}
	rec := fmt.Sprint(*v.Open.Record)
	r = want(t, 0, "pages", path)
	if !strings.Contains(r.stdout, "commit record of the version walked") || strings.Contains(r.stdout, "leaked") {
		t.Errorf("pages:\n%s", r.stdout)
	}
	r = want(t, 0, "page", path, rec)
	for _, s := range []string{"meta, live, commit record of the version walked", "tx 21, format 4", "(commit record)", "next record", "prev link", "follows tx 20", "commit verifies"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("page %s lacks %q:\n%s", rec, s, r.stdout)
		}
	}
	want(t, 0, "check", path)

	out := filepath.Join(t.TempDir(), "reverted.cow")
	r = want(t, 0, "revert", path, "-o", out)
	if !strings.Contains(r.stdout, "the version of tx 20 (commit record at page") || !strings.Contains(r.stdout, "commit 21 is dropped") {
		t.Errorf("revert: %s", r.stdout)
	}
	want(t, 0, "check", out)
	sameContents(t, contents(t, out), before, true)
	r = want(t, 0, "inspect", out)
	if !strings.Contains(r.stdout, "open: uses slot") || !strings.Contains(r.stdout, "no problems found") {
		t.Errorf("inspect of the reverted copy:\n%s", r.stdout)
	}
	// The engine writes on: the records the copy keeps in use are freed
	// by its meta slot commits, and nothing leaks.
	db, err := cowfile.Open(out, &cowfile.Options{Durability: cowfile.Sync})
	if err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.FellBack {
		t.Fatalf("the reverted copy falls back: %s", st.FallbackReason)
	}
	for i := range 40 {
		err := db.Update(func(tx *cowfile.Tx) error {
			return tx.Bucket([]byte("b")).Put([]byte(fmt.Sprintf("n%03d", i)), []byte("w"))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	want(t, 0, "check", out)
	want(t, 0, "inspect", out)
}

// A flipped byte in the newest commit record: inspect reports open's
// fallback to the record before it, naming the page; revert refuses (open
// already dropped the damaged commit) unless forced.
func TestChainDamagedRecord(t *testing.T) {
	path, _ := chainFile(t, 20)
	var v struct {
		Open struct{ Record *uint64 }
	}
	if err := json.Unmarshal([]byte(want(t, 0, "inspect", "--json", path).stdout), &v); err != nil || v.Open.Record == nil {
		t.Fatalf("inspect --json: %v %+v", err, v)
	}
	at := *v.Open.Record
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	f.ReadAt(b, int64(at)*1024+600)
	b[0] ^= 1
	f.WriteAt(b, int64(at)*1024+600)
	f.Close()

	r := want(t, 1, "inspect", path)
	for _, s := range []string{"open: FALLS BACK to commit record at page", "(tx 20)", fmt.Sprintf("page %d: checksum mismatch", at), "stops at a damaged record"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, r.stdout)
		}
	}
	r = want(t, 1, "page", path, fmt.Sprint(at))
	if !strings.Contains(r.stdout, "damaged: no walk from a meta slot accepts it") {
		t.Errorf("page %d:\n%s", at, r.stdout)
	}
	out := filepath.Join(t.TempDir(), "reverted.cow")
	r = want(t, 1, "revert", path, "-o", out)
	if !strings.Contains(r.stderr, "open already falls back") {
		t.Errorf("revert: %q", r.stderr)
	}
	want(t, 0, "revert", "--force", path, "-o", out)
	want(t, 0, "check", out)
}
