package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/cowfile/cowfile"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// nargs checks the number of positional arguments (max < 0: no limit).
func nargs(minN, maxN int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < minN:
			return usagef("%s needs at least %d argument(s), got %d", cmd.Name(), minN, len(args))
		case maxN >= 0 && len(args) > maxN:
			return usagef("%s takes at most %d argument(s), got %d", cmd.Name(), maxN, len(args))
		}
		return nil
	}
}

// Byte formats for keys, values and names on the command line and in
// output.
type byteFormat int

const (
	// formatEscaped writes printable ASCII as is, a backslash as \\ and
	// every other byte as a backslash and two hex digits (\0a): the
	// convention of the db_dump "print" format.
	formatEscaped byteFormat = iota
	formatHex
	formatRaw
)

func parseFormat(s string) (byteFormat, error) {
	switch s {
	case "escaped", "":
		return formatEscaped, nil
	case "hex":
		return formatHex, nil
	case "raw":
		return formatRaw, nil
	}
	return 0, usagef("unknown --format %q (want escaped, hex or raw)", s)
}

func (f byteFormat) encode(b []byte) string {
	switch f {
	case formatHex:
		return hex.EncodeToString(b)
	case formatRaw:
		return string(b)
	}
	return escape(b)
}

func (f byteFormat) decode(s string) ([]byte, error) {
	switch f {
	case formatHex:
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, usagef("%q is not hex: %v", s, err)
		}
		return b, nil
	case formatRaw:
		return []byte(s), nil
	}
	b, err := unescape(s)
	if err != nil {
		return nil, usagef("%q: %v (use \\\\ for a backslash, \\xx for any byte)", s, err)
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// escape is the escaped format of formatEscaped.
func escape(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		switch {
		case c == '\\':
			sb.WriteString(`\\`)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			sb.WriteByte('\\')
			sb.WriteByte(hexDigits[c>>4])
			sb.WriteByte(hexDigits[c&15])
		}
	}
	return sb.String()
}

// unescape reverses escape; it also accepts bytes escape would have left
// as they are in escaped form.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			out = append(out, '\\')
			i++
			continue
		}
		if i+2 >= len(s) {
			return nil, fmt.Errorf("backslash at byte %d is not followed by two hex digits", i)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("backslash at byte %d is not followed by two hex digits", i)
		}
		out = append(out, byte(v))
		i += 2
	}
	return out, nil
}

// Bucket paths are written as names joined by '/'. Within a name, bytes
// from '!' to '~' stand for themselves except '/' and '\'; every other
// byte, and those two, is a backslash and two hex digits. So "a/b" is the
// bucket b inside the bucket a, and a\2fb is one bucket named "a/b". This
// is also the database= name in dumps.
const pathSep = '/'

func escapeName(name []byte) string {
	var sb strings.Builder
	for _, c := range name {
		if c > ' ' && c < 0x7f && c != '\\' && c != pathSep {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('\\')
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&15])
	}
	return sb.String()
}

func pathString(path [][]byte) string {
	parts := make([]string, len(path))
	for i, n := range path {
		parts[i] = escapeName(n)
	}
	return strings.Join(parts, string(pathSep))
}

// parsePath reads a bucket path written by pathString.
func parsePath(s string) ([][]byte, error) {
	if s == "" {
		return nil, errors.New("empty bucket path")
	}
	var path [][]byte
	for _, part := range strings.Split(s, string(pathSep)) {
		if part == "" {
			return nil, fmt.Errorf("bucket path %q has an empty name", s)
		}
		name, err := unescape(part)
		if err != nil {
			return nil, fmt.Errorf("bucket path %q: %v", s, err)
		}
		path = append(path, name)
	}
	return path, nil
}

// table writes aligned columns. Cells must not hold tabs or newlines
// (escaped output never does).
type table struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }

// flush writes the table, without the padding after a row's last cell.
func (t *table) flush() {
	t.tw.Flush()
	for _, line := range strings.SplitAfter(t.buf.String(), "\n") {
		if line != "" {
			io.WriteString(t.w, strings.TrimRight(line, " \n")+"\n")
		}
	}
	t.buf.Reset()
}

// writeJSON writes v indented, the form of every --json output.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func pct(f float64) string {
	if f < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

// fillJSON is a fill fraction for JSON: null when unknown.
func fillJSON(f float64) *float64 {
	if f < 0 {
		return nil
	}
	r := float64(int64(f*1000+0.5)) / 1000
	return &r
}

// progress is a progress bar on stderr, or nothing when stderr is not a
// terminal or --quiet is set. A total below 0 shows a spinner.
type progress struct{ bar *progressbar.ProgressBar }

func newProgress(total int64, desc string, bytes bool) *progress {
	if quiet || !term.IsTerminal(int(os.Stderr.Fd())) {
		return &progress{}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000), // 100ms
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	}
	return &progress{progressbar.NewOptions64(total, opts...)}
}

func (p *progress) add(n int64) {
	if p.bar != nil {
		p.bar.Add64(n)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar.Clear()
	}
}

// openDB opens an existing file through the engine: ReadOnly takes the
// shared lock. A file the engine refuses as corrupt is a problem found
// (exit 1); a missing file or a lock timeout is an error (exit 2).
func openDB(path string, readOnly bool) (*cowfile.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := cowfile.Open(path, &cowfile.Options{ReadOnly: readOnly, Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, cowfile.ErrCorrupt) || errors.Is(err, cowfile.ErrIncompatible) {
			return nil, problems("%v\n(cowfile inspect %s shows what is wrong; cowfile revert may repair a bad last commit)", err, path)
		}
		return nil, err
	}
	return db, nil
}

// bucketAt returns the bucket at path in tx (a problem if missing).
func bucketAt(tx *cowfile.Tx, path [][]byte) (*cowfile.Bucket, error) {
	if len(path) == 0 {
		return nil, usagef("a bucket is required")
	}
	b := tx.Bucket(path[0])
	for i := 1; b != nil && i < len(path); i++ {
		b = b.Bucket(path[i])
	}
	if b == nil {
		if err := tx.Err(); err != nil {
			return nil, problems("%v", err)
		}
		return nil, problems("bucket %s not found", pathString(path))
	}
	return b, nil
}

// decodeArgs decodes positional arguments with format f.
func decodeArgs(f byteFormat, args []string) ([][]byte, error) {
	out := make([][]byte, len(args))
	for i, a := range args {
		b, err := f.decode(a)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
