package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cowfile/cowfile"
	"github.com/spf13/cobra"
)

var (
	dumpPrint    bool
	dumpNoNested bool
	dumpOutput   string
)

const dumpNaming = `
Buckets become databases named by their path: names joined by '/', where a
'/' or '\' inside a name, and any byte outside '!' to '~', is written as a
backslash and two hex digits (a\2fb is one bucket named "a/b"). So a cowfile
file becomes an LMDB environment with one named database per bucket, and
back. Bucket sequences are not part of the format and are not carried.`

var dumpCmd = &cobra.Command{
	Use:   "dump FILE [BUCKET...]",
	Short: "Write buckets in the mdb_dump / db_dump text format",
	Long: `dump writes the contents of FILE in the text format of LMDB's mdb_dump and
Berkeley DB's db_dump (VERSION=3, format=bytevalue, type=btree), which
mdb_load, db_load and 'cowfile load' read: one section per bucket, nested
buckets included, parents first. With BUCKET... (a path, one argument per
level, escaped as in 'cowfile get --help') only that bucket and the ones
nested in it are written. --print writes the print format (printable
characters as they are) instead of hex; for LMDB 0.9's mdb_load keep the
default, bytevalue: its print-format reader mishandles backslashes.
` + dumpNaming + `

It opens the file read-only, with the shared lock, and reads one
consistent version.`,
	Example: `  cowfile dump app.cow > app.dump
  cowfile dump app.cow users > users.dump
  mkdir lmdb-dir && cowfile dump app.cow | mdb_load lmdb-dir`,
	Args: nargs(1, -1),
	RunE: func(cmd *cobra.Command, args []string) error {
		path, err := decodeArgs(formatEscaped, args[1:])
		if err != nil {
			return err
		}
		db, err := openDB(args[0], true)
		if err != nil {
			return err
		}
		defer db.Close()
		out := cmd.OutOrStdout()
		var file *os.File
		if dumpOutput != "" && dumpOutput != "-" {
			if file, err = os.Create(dumpOutput); err != nil {
				return err
			}
			defer file.Close()
			out = file
		}
		st := db.Stats()
		// mdb_load sizes the LMDB map from mapsize=: leave room for LMDB's
		// own overhead (half-full pages after random order, its free list).
		mapsize := max(4*int64(st.FilePages)*int64(st.PageSize), 16<<20)
		mapsize = (mapsize + 1<<20 - 1) &^ (1<<20 - 1)
		dw := &dumpWriter{w: bufio.NewWriterSize(out, 1<<20), print: dumpPrint, mapsize: mapsize}
		bar := newProgress(-1, "dumping keys", false)
		err = db.View(func(tx *cowfile.Tx) error {
			if len(path) > 0 {
				b, err := bucketAt(tx, path)
				if err != nil {
					return err
				}
				return dumpBucket(dw, b, path, bar)
			}
			return tx.ForEach(func(name []byte, b *cowfile.Bucket) error {
				return dumpBucket(dw, b, [][]byte{name}, bar)
			})
		})
		bar.finish()
		if err != nil {
			return readError(err)
		}
		if err := dw.w.Flush(); err != nil {
			return err
		}
		if file != nil {
			return file.Close()
		}
		return nil
	},
}

// dumpBucket writes b's section, then those of the buckets nested in it.
func dumpBucket(dw *dumpWriter, b *cowfile.Bucket, path [][]byte, bar *progress) error {
	if err := dw.header(pathString(path)); err != nil {
		return err
	}
	var nested [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if v == nil {
			nested = append(nested, append([]byte(nil), k...))
			return nil
		}
		bar.add(1)
		if err := dw.item(k); err != nil {
			return err
		}
		return dw.item(v)
	})
	if err != nil {
		return err
	}
	if err := dw.end(); err != nil {
		return err
	}
	if dumpNoNested {
		return nil
	}
	for _, name := range nested {
		if err := dumpBucket(dw, b.Bucket(name), append(append([][]byte{}, path...), name), bar); err != nil {
			return err
		}
	}
	return nil
}

var (
	loadMain     string
	loadBatch    int64
	loadPageSize int
	loadJSON     bool
)

var loadCmd = &cobra.Command{
	Use:   "load FILE [DUMP]",
	Short: "Load the mdb_dump / db_dump text format into a file",
	Long: `load reads sections in the text format of mdb_dump and db_dump (both the
bytevalue and the print format) from DUMP, or from standard input when
DUMP is missing or "-", and stores every key and value in FILE, creating
the file and the buckets as needed. Existing keys are overwritten.
` + dumpNaming + `
A section without a database= line (LMDB's main database) goes into the
bucket named by --main-bucket. Headers describing the source environment
(mapsize, maxreaders, db_pagesize...) are accepted and ignored; databases
with duplicate keys (dupsort) are refused.

Keys are written in large transactions: one commit every --batch bytes of
keys and values, so an interrupted load leaves a prefix of the input. The
file is opened read-write, with the exclusive lock.`,
	Example: `  cowfile load app.cow app.dump
  mdb_dump -a lmdb-dir | cowfile load app.cow
  cowfile dump old.cow | cowfile load new.cow`,
	Args: nargs(1, 2),
	RunE: func(cmd *cobra.Command, args []string) error {
		mainPath, err := parsePath(loadMain)
		if err != nil {
			return usagef("--main-bucket: %v", err)
		}
		if loadBatch <= 0 {
			return usagef("--batch must be positive")
		}
		in, total := io.Reader(os.Stdin), int64(-1)
		name := "standard input"
		if len(args) == 2 && args[1] != "-" {
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				total = st.Size()
			}
			in, name = f, args[1]
		}
		db, err := cowfile.Open(args[0], &cowfile.Options{PageSize: loadPageSize, Timeout: lockTimeout})
		if err != nil {
			if errors.Is(err, cowfile.ErrCorrupt) {
				return problems("%v", err)
			}
			return err
		}
		defer db.Close()
		bar := newProgress(total, "loading", true)
		cr := &countingReader{r: in, bar: bar}
		st, err := load(db, newDumpReader(cr), mainPath)
		bar.finish()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := db.Close(); err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if loadJSON {
			return writeJSON(w, st)
		}
		fmt.Fprintf(w, "loaded %d keys (%d bytes) in %d sections into %s, %d commits\n",
			st.Keys, st.Bytes, st.Sections, filepath.Base(args[0]), st.Commits)
		return nil
	},
}

type loadStats struct {
	Sections int   `json:"sections"`
	Keys     int64 `json:"keys"`
	Bytes    int64 `json:"bytes"`
	Commits  int   `json:"commits"`
}

// load stores every section of r in db, committing every loadBatch bytes.
func load(db *cowfile.DB, r *dumpReader, mainPath [][]byte) (st loadStats, err error) {
	var tx *cowfile.Tx
	defer func() {
		if tx != nil {
			tx.Rollback()
		}
	}()
	var pending int64
	commit := func() error {
		if tx == nil {
			return nil
		}
		err := tx.Commit()
		tx = nil
		st.Commits++
		pending = 0
		return err
	}
	for {
		sec, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		st.Sections++
		path := mainPath
		if sec.hasDatabase {
			if path, err = parsePath(sec.database); err != nil {
				return st, fmt.Errorf("line %d: database=%s: %v", sec.line, sec.database, err)
			}
		}
		var b *cowfile.Bucket
		for {
			key, ok, err := r.item()
			if err != nil {
				return st, err
			}
			if !ok && b != nil {
				break
			}
			if tx == nil || b == nil {
				if tx == nil {
					if tx, err = db.Begin(true); err != nil {
						return st, err
					}
				}
				if b, err = createPath(tx, path); err != nil {
					return st, fmt.Errorf("line %d: %w", sec.line, err)
				}
			}
			if !ok {
				break // an empty section: its bucket exists now
			}
			val, ok, err := r.item()
			if err != nil {
				return st, err
			}
			if !ok {
				return st, r.errorf("DATA=END after a key without its value")
			}
			if err := b.Put(key, val); err != nil {
				return st, r.errorf("key %s: %v", escape(truncateBytes(key)), err)
			}
			st.Keys++
			st.Bytes += int64(len(key) + len(val))
			if pending += int64(len(key) + len(val)); pending >= loadBatch {
				if err := commit(); err != nil {
					return st, err
				}
				b = nil
			}
		}
	}
	return st, commit()
}

func truncateBytes(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// countingReader advances a progress bar by the bytes read.
type countingReader struct {
	r   io.Reader
	bar *progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bar.add(int64(n))
	return n, err
}

func init() {
	dumpCmd.Flags().BoolVarP(&dumpPrint, "print", "p", false, "write the print format instead of hex (bytevalue)")
	dumpCmd.Flags().BoolVar(&dumpNoNested, "no-nested", false, "leave out nested buckets")
	dumpCmd.Flags().StringVarP(&dumpOutput, "output", "o", "", "write to this file instead of standard output")
	loadCmd.Flags().StringVar(&loadMain, "main-bucket", "main", "bucket for sections without a database= line")
	loadCmd.Flags().Int64Var(&loadBatch, "batch", 64<<20, "commit after this many bytes of keys and values")
	loadCmd.Flags().IntVar(&loadPageSize, "page-size", 0, "page size of a new file (default 4096)")
	loadCmd.Flags().BoolVar(&loadJSON, "json", false, "write the summary as JSON")
	rootCmd.AddCommand(dumpCmd, loadCmd)
}
