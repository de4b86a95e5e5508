package fuzz

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/cowfile/cowfile/meta"
)

// The harness checks itself against known answers: a judge that accepted
// anything, or images that did not hold what they claim, would make every
// figure worthless.

func TestOracleRejects(t *testing.T) {
	models := map[int]string{0: "", 1: "one\n", 2: "two\n", 3: "three\n"}
	dump := func(serial int, body string) string {
		return `"_"/` + "\n" + `"_"/"n"="` + string(rune('0'+serial)) + `"` + "\n" + body
	}
	for s := 1; s <= 3; s++ {
		models[s] = dump(s, models[s])
	}
	ms := []foundMeta{{Meta: meta.Meta{TxID: 2}}, {Meta: meta.Meta{TxID: 3}}}
	a := allowance{acked: 2, inflight: 3}
	cases := []struct {
		name  string
		o     obs
		class string
	}{
		{"acknowledged", obs{dump: models[2], txid: 3, metas: ms}, ""},
		{"in flight", obs{dump: models[3], txid: 3, metas: ms}, ""},
		{"older", obs{dump: models[1], txid: 3, metas: ms}, "lost acknowledged commit"},
		{"mixed", obs{dump: dump(3, "one\n"), txid: 3, metas: ms}, "mixed state"},
		{"unknown", obs{dump: dump(7, ""), txid: 3, metas: ms}, "phantom state"},
		{"silent fallback", obs{dump: models[2], txid: 2, metas: ms}, "fallback misreported"},
		{"reported fallback", obs{dump: models[2], txid: 2, metas: ms, fellBack: true}, ""},
		{"silent fallback past a damaged record", obs{dump: models[3], txid: 3, metas: ms, broken: func(uint64) bool { return true }}, "fallback misreported"},
		{"failed open", obs{openErr: os.ErrNotExist, metas: ms}, "failed open"},
		{"check failure", obs{dump: models[3], txid: 3, metas: ms, checkErr: os.ErrInvalid}, "check failure"},
		{"panic", obs{panicked: "boom"}, "panic"},
	}
	for _, c := range cases {
		class, _ := judge(&c.o, a, models, &counters{})
		if class != c.class {
			t.Errorf("%s: judged %q, want %q", c.name, class, c.class)
		}
	}

	// A snapshot call commits without bumping the counter: serial 4 took
	// a snapshot of serial 3 and is told from it by its snapshots only;
	// serial 5 then wrote data.
	snap := snapshotDump("s000004", models[3])
	models[4] = models[3] + snap
	models[5] = dump(5, "five\n") + snap
	ms2 := []foundMeta{{Meta: meta.Meta{TxID: 4}}, {Meta: meta.Meta{TxID: 5}}}
	a2 := allowance{acked: 4, inflight: 5}
	for _, c := range []struct {
		name  string
		o     obs
		class string
	}{
		{"snapshot taken", obs{dump: models[4], txid: 5, metas: ms2}, ""},
		{"snapshot lost", obs{dump: models[3], txid: 5, metas: ms2}, "lost acknowledged commit"},
		{"snapshot content", obs{dump: models[3] + snapshotDump("s000004", models[2]), txid: 5, metas: ms2}, "mixed state"},
		{"snapshot renamed", obs{dump: models[3] + snapshotDump("s000005", models[3]), txid: 5, metas: ms2}, "mixed state"},
		{"extra snapshot", obs{dump: models[4] + snapshotDump("s000009", ""), txid: 5, metas: ms2}, "mixed state"},
		{"restore in flight", obs{dump: models[5], txid: 5, metas: ms2}, ""},
	} {
		class, _ := judge(&c.o, a2, models, &counters{})
		if class != c.class {
			t.Errorf("%s: judged %q, want %q", c.name, class, c.class)
		}
	}
}

// TestImageModel checks the power-loss images against states written out
// by hand: two writes to overlapping sectors and a growth.
func TestImageModel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	fs := newRecFS()
	if err := fs.seed(path, bytes.Repeat([]byte{'d'}, 2*sectorSize)); err != nil {
		t.Fatal(err)
	}
	f, err := fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt(bytes.Repeat([]byte{'a'}, 2*sectorSize), 0)        // sectors 0, 1
	f.Truncate(4 * sectorSize)                                   // grow: sectors 2, 3 zero
	f.WriteAt(bytes.Repeat([]byte{'b'}, sectorSize), sectorSize) // sector 1 again
	st := fs.state(path)
	hs := histories(st)
	if len(hs) != 2 || len(hs[0].vers) != 2 || len(hs[1].vers) != 3 {
		t.Fatalf("histories: %d sectors", len(hs))
	}
	sec := func(c byte) []byte { return bytes.Repeat([]byte{c}, sectorSize) }
	img := func(size int64, choice ...uint8) []byte {
		b, ok := build(st, hs, imageSpec{size: size, choice: choice})
		if !ok {
			t.Fatalf("spec %v does not fit", choice)
		}
		return b
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		got, want []byte
	}{
		{img(2*sectorSize, 0, 0), cat(sec('d'), sec('d'))},
		{img(4*sectorSize, 1, 2), cat(sec('a'), sec('b'), make([]byte, 2*sectorSize))},
		{img(4*sectorSize, 0, 1), cat(sec('d'), sec('a'), make([]byte, 2*sectorSize))},
		{img(2*sectorSize, 1, 0), cat(sec('a'), sec('d'))},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("image %q, want %q", c.got[:8], c.want[:8])
		}
	}
	if real, _ := os.ReadFile(path); !bytes.Equal(real, img(4*sectorSize, 1, 2)) {
		t.Error("the all-kept image differs from the real file")
	}
	specs := enumerate(st, hs, 1024, levelLong, rand.New(rand.NewSource(1)))
	if len(specs) < 10 {
		t.Errorf("only %d images enumerated", len(specs))
	}
	// An unsynced change never becomes durable; a synced one does.
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := fs.state(path); len(st.pend) != 0 || !bytes.Equal(st.dur, img(4*sectorSize, 1, 2)) {
		t.Error("sync did not make the file durable")
	}
}
