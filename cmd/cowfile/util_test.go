package main

import (
	"bytes"
	"testing"
)

// The escaped format and bucket path names, both ways.
func TestEscaping(t *testing.T) {
	for _, tc := range []struct {
		in            []byte
		escaped, name string
	}{
		{[]byte("plain"), "plain", "plain"},
		{[]byte("a b"), "a b", `a\20b`},
		{[]byte("a/b"), "a/b", `a\2fb`},
		{[]byte(`back\slash`), `back\\slash`, `back\5cslash`},
		{[]byte{0, '\n', 0x7f, 0xff}, `\00\0a\7f\ff`, `\00\0a\7f\ff`},
		{[]byte{}, "", ""},
	} {
		if got := escape(tc.in); got != tc.escaped {
			t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.escaped)
		}
		if got, err := unescape(tc.escaped); err != nil || !bytes.Equal(got, tc.in) {
			t.Errorf("unescape(%q) = %q, %v", tc.escaped, got, err)
		}
		if got := escapeName(tc.in); got != tc.name {
			t.Errorf("escapeName(%q) = %q, want %q", tc.in, got, tc.name)
		}
		if got := unescapePrint([]byte(tc.escaped)); !bytes.Equal(got, tc.in) {
			t.Errorf("unescapePrint(%q) = %q", tc.escaped, got)
		}
	}
	for _, bad := range []string{`\`, `\x`, `\0`, `\zz`, `a\`} {
		if _, err := unescape(bad); err == nil {
			t.Errorf("unescape(%q): no error", bad)
		}
	}
	// LMDB's mdb_dump -p writes a backslash unescaped.
	if got := unescapePrint([]byte(`a\ b\`)); string(got) != `a\ b\` {
		t.Errorf("unescapePrint of lone backslashes = %q", got)
	}
	path, err := parsePath(`a\2fb/c/\00`)
	if err != nil || len(path) != 3 || string(path[0]) != "a/b" || string(path[2]) != "\x00" {
		t.Errorf("parsePath = %q, %v", path, err)
	}
	if pathString(path) != `a\2fb/c/\00` {
		t.Errorf("pathString = %q", pathString(path))
	}
	for _, bad := range []string{"", "a//b", "/a", `a\zz`} {
		if _, err := parsePath(bad); err == nil {
			t.Errorf("parsePath(%q): no error", bad)
		}
	}
}
