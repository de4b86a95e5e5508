package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cowfile/cowfile"
)

func TestSnapshotAndDiff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snap.cow")
	db, err := cowfile.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	want(t, 0, "put", "--create", path, "users", "alice", "1")
	want(t, 0, "put", path, "users", "bob", "2")
	want(t, 0, "snapshot", "create", path, "s1")
	if r := cli(t, nil, "snapshot", "create", path, "s1"); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("duplicate create: %d %q", r.code, r.stderr)
	}
	want(t, 0, "put", path, "users", "alice", "one")
	want(t, 0, "delete", path, "users", "bob")
	want(t, 0, "put", "--create", path, "logs", "l1", "x")

	r := want(t, 0, "diff", path, "s1", "current")
	wantDiff := "~ users alice 1 one\n- users bob 2\n+ logs/\n+ logs l1 x\n"
	if sortLines(r.stdout) != sortLines(wantDiff) {
		t.Fatalf("diff:\n%s\nwant:\n%s", r.stdout, wantDiff)
	}
	r = want(t, 0, "diff", "--json", path, "current", "s1")
	var changes []map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &changes); err != nil || len(changes) != 4 {
		t.Fatalf("diff --json: %v %s", err, r.stdout)
	}

	r = want(t, 0, "snapshot", "list", path)
	if !strings.Contains(r.stdout, "s1") || !strings.Contains(r.stdout, "OWN PAGES") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	var list []snapshotJSON
	r = want(t, 0, "snapshot", "list", "--json", path)
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].Name != "s1" || list[0].Pages == 0 {
		t.Fatalf("list --json: %v %s", err, r.stdout)
	}

	if r := want(t, 0, "inspect", path); !strings.Contains(r.stdout, "SNAPSHOT") || !strings.Contains(r.stdout, "s1") {
		t.Fatalf("inspect does not list the snapshot:\n%s", r.stdout)
	}
	var insp struct {
		Snapshots []snapshotJSON `json:"snapshots"`
	}
	r = want(t, 0, "inspect", "--json", path)
	if err := json.Unmarshal([]byte(r.stdout), &insp); err != nil || len(insp.Snapshots) != 1 || insp.Snapshots[0] != list[0] {
		t.Fatalf("inspect --json lists %+v, want %+v (%v)", insp.Snapshots, list, err)
	}
	want(t, 0, "snapshot", "restore", path, "s1")
	if r := want(t, 0, "get", path, "users", "alice"); strings.TrimSpace(r.stdout) != "1" {
		t.Fatalf("after restore: %q", r.stdout)
	}
	if r := want(t, 0, "diff", path, "s1", "current"); r.stdout != "" {
		t.Fatalf("diff after restore: %q", r.stdout)
	}
	want(t, 0, "check", path)
	want(t, 0, "snapshot", "delete", path, "s1")
	want(t, 1, "snapshot", "delete", path, "s1")
	want(t, 1, "diff", path, "s1", "current")
	want(t, 2, "snapshot", "frobnicate", path, "x")
	want(t, 0, "check", path)
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		for j := i + 1; j < len(lines); j++ {
			if lines[j] < lines[i] {
				lines[i], lines[j] = lines[j], lines[i]
			}
		}
	}
	return strings.Join(lines, "\n")
}
