package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
)

// The text format of LMDB's mdb_dump and Berkeley DB's db_dump, which
// mdb_load and db_load read: per database, a header of key=value lines
// ending in HEADER=END, then one line per key and one per value, each
// starting with a space, then DATA=END. In "bytevalue" format the bytes
// are hex; in "print" format printable characters stand for themselves, a
// backslash is \\ and any other byte is a backslash and two hex digits.
//
// LMDB 0.9's tools get backslashes wrong in the print format (mdb_dump -p
// does not double them; mdb_load misreads \\ after an escape), so for
// exchanges with them the bytevalue format, the default, is the one to use.

// dumpWriter writes sections.
type dumpWriter struct {
	w       *bufio.Writer
	print   bool
	mapsize int64
	hexbuf  []byte
}

func (d *dumpWriter) header(database string) error {
	format := "bytevalue"
	if d.print {
		format = "print"
	}
	fmt.Fprintf(d.w, "VERSION=3\nformat=%s\n", format)
	if database != "" {
		fmt.Fprintf(d.w, "database=%s\n", database)
	}
	fmt.Fprintf(d.w, "type=btree\n")
	if d.mapsize > 0 {
		fmt.Fprintf(d.w, "mapsize=%d\n", d.mapsize)
	}
	_, err := d.w.WriteString("HEADER=END\n")
	return err
}

func (d *dumpWriter) item(b []byte) error {
	d.w.WriteByte(' ')
	if d.print {
		d.w.WriteString(escape(b))
	} else {
		if n := hex.EncodedLen(len(b)); cap(d.hexbuf) < n {
			d.hexbuf = make([]byte, n)
		}
		d.hexbuf = d.hexbuf[:hex.EncodedLen(len(b))]
		hex.Encode(d.hexbuf, b)
		d.w.Write(d.hexbuf)
	}
	return d.w.WriteByte('\n')
}

func (d *dumpWriter) end() error {
	_, err := d.w.WriteString("DATA=END\n")
	return err
}

// dumpSection is one database as read by dumpReader.
type dumpSection struct {
	database    string // "" when the header has no database= line
	hasDatabase bool
	print       bool
	line        int // where the header starts
}

// dumpReader reads sections and their items.
type dumpReader struct {
	r    *bufio.Reader
	line int
	sec  *dumpSection
}

func newDumpReader(r io.Reader) *dumpReader {
	return &dumpReader{r: bufio.NewReaderSize(r, 1<<20)}
}

func (d *dumpReader) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", d.line, fmt.Sprintf(format, args...))
}

// readLine returns the next line without its line end; io.EOF at the end.
func (d *dumpReader) readLine() ([]byte, error) {
	b, err := d.r.ReadBytes('\n')
	if err == io.EOF && len(b) > 0 {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	d.line++
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r")), nil
}

// next reads the header of the next section; io.EOF when there is none.
func (d *dumpReader) next() (*dumpSection, error) {
	var sec *dumpSection
	for {
		l, err := d.readLine()
		if err == io.EOF {
			if sec != nil {
				return nil, d.errorf("input ends inside a header (no HEADER=END)")
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if sec == nil {
			if len(bytes.TrimSpace(l)) == 0 {
				continue // blank lines between sections
			}
			sec = &dumpSection{line: d.line}
		}
		if string(l) == "HEADER=END" {
			d.sec = sec
			return sec, nil
		}
		k, v, ok := bytes.Cut(l, []byte("="))
		if !ok {
			return nil, d.errorf("expected key=value in the header, got %q", truncate(l))
		}
		switch val := string(v); string(k) {
		case "VERSION":
			if val != "3" {
				return nil, d.errorf("VERSION=%s: only version 3 is supported", val)
			}
		case "format":
			switch val {
			case "bytevalue":
			case "print":
				sec.print = true
			default:
				return nil, d.errorf("format=%s: want bytevalue or print", val)
			}
		case "type":
			if val != "btree" {
				return nil, d.errorf("type=%s: only btree databases can be loaded", val)
			}
		case "database", "subdatabase":
			sec.database, sec.hasDatabase = val, true
		case "duplicates", "dupsort":
			if val != "0" {
				return nil, d.errorf("%s=%s: cowfile keys are unique; a database with duplicate keys cannot be loaded", k, val)
			}
		default:
			// mapsize, maxreaders, db_pagesize, integerkey, reversekey...
			// describe the source environment: nothing to do here.
		}
	}
}

// item reads the next key or value of the current section; ok is false
// at DATA=END.
func (d *dumpReader) item() (b []byte, ok bool, err error) {
	l, err := d.readLine()
	if err == io.EOF {
		return nil, false, d.errorf("input ends inside the data of the section at line %d (no DATA=END)", d.sec.line)
	}
	if err != nil {
		return nil, false, err
	}
	if string(l) == "DATA=END" {
		return nil, false, nil
	}
	if len(l) == 0 || l[0] != ' ' {
		return nil, false, d.errorf("data lines must start with a space, got %q", truncate(l))
	}
	l = l[1:]
	if d.sec.print {
		b = unescapePrint(l)
	} else {
		b = make([]byte, hex.DecodedLen(len(l)))
		_, err = hex.Decode(b, l)
	}
	if err != nil {
		return nil, false, d.errorf("%v", err)
	}
	return b, true, nil
}

// unescapePrint decodes a print-format line: \\ is a backslash and a
// backslash with two hex digits is that byte. LMDB's mdb_dump -p (0.9)
// writes a backslash as it is, so a backslash followed by anything else
// is taken as itself. (Such a dump is ambiguous where a backslash is
// followed by two hex digits; the bytevalue format never is.)
func unescapePrint(l []byte) []byte {
	out := make([]byte, 0, len(l))
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c != '\\':
		case i+1 < len(l) && l[i+1] == '\\':
			i++
		case i+2 < len(l) && isHex(l[i+1]) && isHex(l[i+2]):
			c = unhex(l[i+1])<<4 | unhex(l[i+2])
			i += 2
		}
		out = append(out, c)
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
