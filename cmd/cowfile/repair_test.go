package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cowfile/cowfile"
	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/inspect"
	"github.com/cowfile/cowfile/pager/page"
)

// lastCommit opens path, applies one more commit that rewrites some words
// and returns the contents before it.
func lastCommit(t *testing.T, path string) tree {
	t.Helper()
	before := contents(t, path)
	db, err := cowfile.Open(path, &cowfile.Options{Durability: cowfile.NoSync})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *cowfile.Tx) error {
		w := tx.Bucket([]byte("words"))
		for i := 0; i < 50; i++ {
			if err := w.Put([]byte(fmt.Sprintf("w%05d", i*1999)), []byte("last commit")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return before
}

// liveLeaf returns a live leaf page of path written by tx txid (0: by any
// tx older than the newest) and the file's page size.
func liveLeaf(t *testing.T, path string, newest bool) (page.ID, int) {
	t.Helper()
	f, err := inspect.Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := f.Analyze(-1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Pages {
		if p.Kind == inspect.KindLeaf && p.Status == inspect.StatusLive && (p.TxID == a.Meta.TxID) == newest {
			return p.ID, f.PageSize()
		}
	}
	t.Fatalf("no live leaf (newest=%v) in %s", newest, path)
	return 0, 0
}

// flip flips one byte in the middle of page id.
func flip(t *testing.T, path string, id page.ID, ps int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off := int64(id)*int64(ps) + int64(ps)/2
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A flipped byte in a leaf of the last commit: open falls back, check
// reports it with the page, inspect and page still work and show it, and
// revert writes a copy that check accepts and that holds the version
// before the damaged commit.
func TestCorruptLastCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db.cow")
	makeDB(t, path, 4096)
	before := lastCommit(t, path)
	id, ps := liveLeaf(t, path, true)
	flip(t, path, id, ps)
	pg := fmt.Sprint(id)

	r := want(t, 1, "check", path)
	if !strings.Contains(r.stdout, "open fell back") || !strings.Contains(r.stdout, "page "+pg+": checksum mismatch") {
		t.Errorf("check does not name page %s:\n%s", pg, r.stdout)
	}
	var cj checkResult
	if err := json.Unmarshal([]byte(want(t, 1, "check", "--json", path).stdout), &cj); err != nil {
		t.Fatal(err)
	}
	if cj.OK || !cj.FellBack || len(cj.Problems) == 0 || cj.Problems[0].Page == nil || fmt.Sprint(*cj.Problems[0].Page) != pg {
		t.Errorf("check --json: %+v", cj)
	}

	r = want(t, 1, "inspect", path)
	for _, s := range []string{"open: FALLS BACK to slot", "page " + pg + ": checksum mismatch", "damaged"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, r.stdout)
		}
	}
	r = want(t, 1, "page", path, pg)
	if !strings.Contains(r.stdout, "MISMATCH") || !strings.Contains(r.stdout, "PROBLEM: checksum mismatch") {
		t.Errorf("page %s:\n%s", pg, r.stdout)
	}
	// The older slot's version is intact, and can be walked on request.
	f, err := inspect.Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	older := f.Metas().Current
	f.Close()
	want(t, 0, "pages", "--meta", fmt.Sprint(older), path)
	want(t, 1, "pages", "--meta", fmt.Sprint(1-older), path)

	out := filepath.Join(dir, "reverted.cow")
	r = want(t, 0, "revert", path, "-o", out)
	if !strings.Contains(r.stdout, "is dropped") {
		t.Errorf("revert: %s", r.stdout)
	}
	want(t, 0, "check", out)
	sameContents(t, contents(t, out), before, true)
	r = want(t, 0, "inspect", out)
	if !strings.Contains(r.stdout, "no fallback") {
		t.Errorf("inspect of the reverted copy:\n%s", r.stdout)
	}
	// The copy is never made in place, and never over an existing file.
	want(t, 2, "revert", path, "-o", out)
}

// A flipped byte in an older leaf: open does not read it (it verifies the
// last commit only), but check does and names the page.
func TestCorruptOlderLeaf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.cow")
	makeDB(t, path, 4096)
	lastCommit(t, path)
	id, ps := liveLeaf(t, path, false)
	flip(t, path, id, ps)
	r := want(t, 1, "check", path)
	if !strings.Contains(r.stdout, fmt.Sprintf("page %d: checksum mismatch", id)) || strings.Contains(r.stdout, "fell back") {
		t.Errorf("check:\n%s", r.stdout)
	}
	r = want(t, 1, "inspect", path)
	if !strings.Contains(r.stdout, fmt.Sprintf("%d ", id)) || !strings.Contains(r.stdout, "no fallback") {
		t.Errorf("inspect:\n%s", r.stdout)
	}
	// Reading through the engine meets the damage and says so.
	r = want(t, 1, "dump", path)
	if !strings.Contains(r.stderr, fmt.Sprintf("page %d: checksum mismatch", id)) {
		t.Errorf("dump of a damaged file: %q", r.stderr)
	}
}

// Both metas destroyed: open refuses the file; the raw commands still
// decode it and say why.
func TestBothMetasBad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.cow")
	makeDB(t, path, 4096)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 2*4096), 0)
	f.Close()

	r := want(t, 1, "check", path)
	if !strings.Contains(r.stdout, "no usable meta") {
		t.Errorf("check:\n%s", r.stdout)
	}
	r = want(t, 1, "inspect", path)
	if !strings.Contains(r.stdout, "open: refuses the file") || !strings.Contains(r.stdout, "page size from default") {
		t.Errorf("inspect:\n%s", r.stdout)
	}
	r = want(t, 1, "pages", "--page-size", "4096", path)
	if !strings.Contains(r.stdout, "leaf") {
		t.Errorf("pages:\n%s", r.stdout)
	}
	r = want(t, 1, "page", path, "0", "2")
	if !strings.Contains(r.stdout, "bad magic") {
		t.Errorf("page 0:\n%s", r.stdout)
	}
	want(t, 1, "revert", path, "-o", path+".out")
	want(t, 0, "map", path, "-o", path+".png")
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.cow"), filepath.Join(dir, "dst.cow")
	makeDB(t, src, 4096)
	r := want(t, 0, "compact", src, dst)
	if !strings.Contains(r.stdout, "% of "+src) || !strings.Contains(r.stdout, "BYTES") {
		t.Errorf("compact:\n%s", r.stdout)
	}
	want(t, 0, "check", dst)
	sameContents(t, contents(t, dst), contents(t, src), true)
	ss, _ := os.Stat(src)
	ds, _ := os.Stat(dst)
	if ds.Size() >= ss.Size() {
		t.Errorf("compacted file is %d bytes, source %d", ds.Size(), ss.Size())
	}
	// Copied in key order, the pages are nearly full, and nothing is free.
	f, err := inspect.Open(dst, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := f.Analyze(-1)
	if err != nil {
		t.Fatal(err)
	}
	var leaves, used int
	for id, p := range a.Pages {
		if p.Kind == inspect.KindLeaf && p.Bucket >= 0 && string(a.Buckets[p.Bucket].Name) == "words" {
			leaves++
			used += p.Used
		}
		// The copy is written whole in the current format: heads on
		// every tree page.
		if p.Kind == inspect.KindLeaf || p.Kind == inspect.KindBranch {
			b, err := f.ReadPages(page.ID(id), 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, ok := btree.Heads(b); !ok {
				t.Errorf("page %d of the compacted file has no heads", id)
			}
		}
	}
	// Compact spreads the words evenly over as few leaves as hold them:
	// one leaf fewer would be more than 95% full.
	if fill := float64(used) / float64((leaves-1)*4096); leaves < 2 || fill < 0.95 {
		t.Errorf("words: %d leaves holding %d bytes: %.2f of one leaf fewer", leaves, used, fill)
	}
	if uint64(ds.Size()) != uint64(a.Meta.HWM)*4096 {
		t.Errorf("compacted file is %d bytes, %d pages in use", ds.Size(), a.Meta.HWM)
	}
	var res compactResult
	if err := json.Unmarshal([]byte(want(t, 0, "compact", "--json", src, dst+"2").stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.DstBytes != ds.Size() || res.SrcBytes != ss.Size() || res.Keys == 0 {
		t.Errorf("compact --json: %+v", res)
	}
	want(t, 2, "compact", src, dst) // never over an existing file
}

func TestBackup(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src.cow"), filepath.Join(dir, "b.cow")
	makeDB(t, src, 4096)
	r := want(t, 0, "backup", src, dst)
	if !strings.Contains(r.stdout, "backed up tx") {
		t.Errorf("backup: %s", r.stdout)
	}
	want(t, 0, "check", dst)
	sameContents(t, contents(t, dst), contents(t, src), true)
	stream := want(t, 0, "backup", src, "-").stdout
	file, _ := os.ReadFile(dst)
	if !bytes.Equal([]byte(stream), file) {
		t.Errorf("backup to stdout differs from backup to a file (%d vs %d bytes)", len(stream), len(file))
	}
	want(t, 2, "backup", src, dst)
	want(t, 0, "backup", "--force", src, dst)
	if m, _ := filepath.Glob(dst + ".tmp-*"); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestMap(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.cow")
	makeDB(t, src, 4096)
	out := filepath.Join(dir, "m.png")
	var res struct {
		Pages  int            `json:"pages"`
		Counts map[string]int `json:"counts"`
		Width  int            `json:"width"`
	}
	if err := json.Unmarshal([]byte(want(t, 0, "map", "--json", src, "-o", out).stdout), &res); err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, n := range res.Counts {
		sum += n
	}
	if sum != res.Pages || res.Counts["meta"] != 2 || res.Counts["leaf"] == 0 {
		t.Errorf("map counts %+v", res)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != res.Width {
		t.Errorf("png is %d wide, json says %d", img.Bounds().Dx(), res.Width)
	}
	// The first cell is page 0, a meta page, and is drawn in its colour.
	const margin, lineH = 12, (glyphH+descender)*2 + 6
	x, y := margin+1+2, margin+3*lineH+4+1+2
	if got := img.At(x, y); fmt.Sprint(got) != fmt.Sprint(classInfo[clsMeta].color) {
		t.Errorf("cell of page 0 at (%d,%d) is %v, want the meta colour %v", x, y, got, classInfo[clsMeta].color)
	}
	// Aggregated: several pages per cell.
	if r := want(t, 0, "map", "--max-cells", "16", src, "-o", out); !strings.Contains(r.stdout, "per cell") {
		t.Errorf("map --max-cells: %s", r.stdout)
	}
}
