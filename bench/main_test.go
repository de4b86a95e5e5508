package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuick runs every workload on every engine at smoke sizes, so the
// harness cannot rot. It asserts that the run completes and reports every
// row, never a speed: the figures live in the benchmark's output.
func TestQuick(t *testing.T) {
	dir := t.TempDir()
	var out, log bytes.Buffer
	o := options{quick: true, engines: "cowfile,bbolt,lmdb", dir: dir,
		jsonOut: filepath.Join(dir, "bench.json"), chartOut: filepath.Join(dir, "bench.png"), free: -1}
	if err := run(o, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, want := range []string{"bulk load", "random reads, 2 goroutines", "100 KiB values read",
		"file after random inserts", "free list", "| lmdb |", "| bbolt |", "| cowfile |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	for _, f := range []string{"bench.json", "bench.png"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if strings.Contains(out.String(), "not measured") {
		t.Errorf("a target row was not measured:\n%s", out.String())
	}
}
