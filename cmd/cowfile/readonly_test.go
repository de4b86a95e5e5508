package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// Every command has help with an example, and exits 0 for it.
func TestHelp(t *testing.T) {
	r := want(t, 0, "--help")
	for _, c := range rootCmd.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		if !strings.Contains(r.stdout, c.Name()) {
			t.Errorf("root help does not list %s", c.Name())
		}
		h := want(t, 0, c.Name(), "--help")
		if !strings.Contains(h.stdout, "Examples:") || !strings.Contains(h.stdout, "cowfile "+c.Name()) {
			t.Errorf("%s --help has no example:\n%s", c.Name(), h.stdout)
		}
	}
}

// Usage and I/O errors exit 2, with a message on stderr.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"inspect"},
		{"inspect", goldenDB, "extra"},
		{"inspect", "--no-such-flag", goldenDB},
		{"inspect", "no/such/file.cow"},
		{"check", "no/such/file.cow"},
		{"get", goldenDB, "users"},
		{"keys", "--format", "octal", goldenDB, "users"},
		{"get", "--format", "hex", goldenDB, "zz", "00"},
		{"get", goldenDB, "users", `bad\escape`},
		{"page", goldenDB, "notanumber"},
		{"page", goldenDB, "9999"},
		{"revert", goldenDB},
		{"map", goldenDB},
		{"pages", "--status", "sleepy", goldenDB},
	} {
		r := cli(t, nil, args...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("cowfile %s: exit %d, stderr %q; want exit 2 and a message", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

func TestInspectGolden(t *testing.T) {
	unchanged(t, func() {
		r := want(t, 0, "inspect", goldenDB)
		golden(t, "inspect.golden", r.stdout)
		r = want(t, 0, "inspect", "--json", goldenDB)
		golden(t, "inspect.json.golden", r.stdout)
		var v struct {
			Open struct {
				Slot     int
				FallBack bool `json:"fallback"`
			}
			Catalog struct {
				Buckets []struct {
					Path string
					Keys int
				}
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatal(err)
		}
		// The golden script's last commit (tx 5) is in slot 1; users holds
		// 300 - 100 deleted + 14 rewritten... as the script wrote it.
		if v.Open.Slot != 1 || v.Open.FallBack || len(v.Catalog.Buckets) != 2 || v.Catalog.Buckets[1].Path != "users" {
			t.Errorf("inspect --json: %+v", v)
		}
	})
}

// The README's "run it" command, exactly.
func TestGoRunInspect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with go run")
	}
	unchanged(t, func() {
		cmd := exec.Command("go", "run", "./cmd/cowfile", "inspect", goldenDB)
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "open: uses slot 1 (tx 5), no fallback") {
			t.Fatalf("go run ./cmd/cowfile inspect %s: %v\n%s", goldenDB, err, out)
		}
	})
}

func TestPagesGolden(t *testing.T) {
	unchanged(t, func() {
		golden(t, "pages.golden", want(t, 0, "pages", goldenDB).stdout)
		golden(t, "pages-pending.golden", want(t, 0, "pages", "--status", "pending,free", goldenDB).stdout)
		var rows []pageJSON
		if err := json.Unmarshal([]byte(want(t, 0, "pages", "--json", goldenDB).stdout), &rows); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 62 || rows[27].Kind != "value" || rows[27].Span != 5 || rows[28].Run != 27 || rows[35].Kind != "branch" {
			t.Errorf("pages --json: %d rows, 27=%+v 28=%+v 35=%+v", len(rows), rows[27], rows[28], rows[35])
		}
	})
}

func TestPageGolden(t *testing.T) {
	unchanged(t, func() {
		// Both metas, the users branch, a leaf with a nested bucket, a
		// large value's run and a later page of it, the free-space log.
		golden(t, "page.golden", want(t, 0, "page", goldenDB, "0", "1", "35", "33", "32", "27", "28", "60").stdout)
		golden(t, "page-hex.golden", want(t, 0, "page", "--hex", "--format", "hex", goldenDB, "26").stdout)
		golden(t, "page.json.golden", want(t, 0, "page", "--json", goldenDB, "26", "58").stdout)
	})
}

func TestBucketsKeysGet(t *testing.T) {
	unchanged(t, func() {
		golden(t, "buckets.golden", want(t, 0, "buckets", goldenDB).stdout)
		golden(t, "buckets.json.golden", want(t, 0, "buckets", "--json", goldenDB).stdout)
		golden(t, "keys.golden", want(t, 0, "keys", goldenDB, "users", "prefs").stdout)
		golden(t, "keys.json.golden", want(t, 0, "keys", "--json", goldenDB, "users", "prefs").stdout)

		if got := want(t, 0, "get", goldenDB, "users", "prefs", "theme").stdout; got != "dark\n" {
			t.Errorf("get theme = %q", got)
		}
		if got := want(t, 0, "get", "--format", "raw", goldenDB, "logs", "0001").stdout; got != "started" {
			t.Errorf("get --format raw = %q", got)
		}
		if got := want(t, 0, "get", "--format", "hex", goldenDB, "6c6f6773", "30303031").stdout; got != "73746172746564\n" {
			t.Errorf("get --format hex = %q", got)
		}
		// user0001 was rewritten with 10 random bytes in the last commit.
		if got := want(t, 0, "get", goldenDB, "users", "user0001").stdout; got != "k\\03z\\f6\\03\\c6\\01&~\\80\n" {
			t.Errorf("get user0001 = %q", got)
		}
		if got := want(t, 0, "get", "--json", goldenDB, "users", "prefs", "theme").stdout; !strings.Contains(got, `"value": "dark"`) {
			t.Errorf("get --json = %q", got)
		}
		// Missing keys and buckets are problems found: exit 1.
		r := want(t, 1, "get", goldenDB, "users", "prefs", "nope")
		if !strings.Contains(r.stderr, "key nope not found in bucket users/prefs") {
			t.Errorf("stderr %q", r.stderr)
		}
		want(t, 1, "get", goldenDB, "nobucket", "k")
		want(t, 1, "keys", goldenDB, "users", "nobucket")
		r = want(t, 1, "get", goldenDB, "users", "prefs")
		if !strings.Contains(r.stderr, "nested bucket") {
			t.Errorf("get on a bucket: %q", r.stderr)
		}
	})
}

func TestCheckGolden(t *testing.T) {
	unchanged(t, func() {
		golden(t, "check.golden", want(t, 0, "check", goldenDB).stdout)
		golden(t, "check.json.golden", want(t, 0, "check", "--json", goldenDB).stdout)
	})
}

func TestDumpGolden(t *testing.T) {
	unchanged(t, func() {
		golden(t, "dump.golden", want(t, 0, "dump", goldenDB).stdout)
		golden(t, "dump-print-prefs.golden", want(t, 0, "dump", "--print", goldenDB, "users", "prefs").stdout)
		r := want(t, 0, "dump", "--no-nested", goldenDB, "users")
		if strings.Count(r.stdout, "HEADER=END") != 1 {
			t.Errorf("dump --no-nested users wrote %d sections", strings.Count(r.stdout, "HEADER=END"))
		}
	})
}
