package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cowfile/cowfile"
	"github.com/cowfile/cowfile/inspect"
	"github.com/cowfile/cowfile/meta"
	"github.com/cowfile/cowfile/pager/page"
	"github.com/spf13/cobra"
)

// createNew creates path for writing, refusing to replace a file unless
// force is set.
func createNew(path string, force bool) (*os.File, error) {
	flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s exists (use --force to replace it)", path)
	}
	return f, err
}

// fileSize returns the size of path, 0 if it cannot be read.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

var (
	compactBatch    int64
	compactPageSize int
	compactJSON     bool
)

var compactCmd = &cobra.Command{
	Use:   "compact SRC DST",
	Short: "Copy the live data into a new, dense file",
	Long: `compact copies every bucket, key, value and bucket sequence of SRC into the
new file DST, in key order, so that DST's pages are full and it holds no
free space, then trims DST to its last page. It prints the sizes before
and after and their ratio. SRC is opened read-only, with the shared lock,
and is not modified; one consistent version of it is copied. DST must not
exist. Snapshots are not copied: DST holds the current version only.`,
	Example: `  cowfile compact app.cow app.compact.cow && mv app.compact.cow app.cow`,
	Args:    nargs(2, 2),
	RunE: func(cmd *cobra.Command, args []string) error {
		src, dst := args[0], args[1]
		if compactBatch <= 0 {
			return usagef("--batch must be positive")
		}
		if _, err := os.Stat(dst); err == nil {
			return fmt.Errorf("%s exists; compact writes a new file", dst)
		}
		sdb, err := openDB(src, true)
		if err != nil {
			return err
		}
		defer sdb.Close()
		sst := sdb.Stats()
		ps := compactPageSize
		if ps == 0 {
			ps = sst.PageSize
		}
		// DST is new: a crash leaves a file nobody uses yet, so its commits
		// need not be durable one by one; it is synced once at the end.
		ddb, err := cowfile.Open(dst, &cowfile.Options{PageSize: ps, Durability: cowfile.NoSync, Timeout: lockTimeout})
		if err != nil {
			return err
		}
		c := &copier{dst: ddb, batch: compactBatch, bar: newProgress(-1, "copying keys", false)}
		err = sdb.View(func(tx *cowfile.Tx) error {
			return tx.ForEach(func(name []byte, b *cowfile.Bucket) error {
				return c.bucket(b, [][]byte{name})
			})
		})
		if err == nil {
			err = c.commit()
		}
		c.bar.finish()
		c.rollback()
		if err != nil {
			ddb.Close()
			os.Remove(dst)
			return readError(err)
		}
		dst0 := ddb.Stats()
		if err := ddb.Close(); err != nil {
			return err
		}
		// The engine preallocates; nothing lies past the high-water mark.
		used := int64(dst0.FilePages) * int64(dst0.PageSize)
		if err := truncateSync(dst, used); err != nil {
			return err
		}
		res := compactResult{Src: src, Dst: dst, SrcBytes: fileSize(src), SrcUsed: int64(sst.FilePages) * int64(sst.PageSize),
			DstBytes: fileSize(dst), Keys: c.keys, Buckets: c.buckets}
		if res.SrcBytes > 0 {
			res.Ratio = float64(res.DstBytes) / float64(res.SrcBytes)
		}
		w := cmd.OutOrStdout()
		if compactJSON {
			return writeJSON(w, res)
		}
		t := newTable(w, "FILE", "BYTES", "PAGES IN USE")
		t.row(src, fmt.Sprint(res.SrcBytes), fmt.Sprint(sst.FilePages))
		t.row(dst, fmt.Sprint(res.DstBytes), fmt.Sprint(dst0.FilePages))
		t.flush()
		fmt.Fprintf(w, "copied %d keys in %d buckets; %s is %.1f%% of %s's size\n", c.keys, c.buckets, dst, 100*res.Ratio, src)
		return nil
	},
}

type compactResult struct {
	Src      string  `json:"src"`
	Dst      string  `json:"dst"`
	SrcBytes int64   `json:"src_bytes"`
	SrcUsed  int64   `json:"src_used_bytes"`
	DstBytes int64   `json:"dst_bytes"`
	Ratio    float64 `json:"ratio"`
	Keys     int64   `json:"keys"`
	Buckets  int     `json:"buckets"`
}

// copier writes buckets into dst in transactions of about batch bytes.
type copier struct {
	dst     *cowfile.DB
	batch   int64
	bar     *progress
	tx      *cowfile.Tx
	pending int64
	keys    int64
	buckets int
}

func (c *copier) commit() error {
	if c.tx == nil {
		return nil
	}
	err := c.tx.Commit()
	c.tx, c.pending = nil, 0
	return err
}

func (c *copier) rollback() {
	if c.tx != nil {
		c.tx.Rollback()
		c.tx = nil
	}
}

// target returns the destination bucket at path in the current
// transaction, beginning one if needed.
func (c *copier) target(path [][]byte) (*cowfile.Bucket, error) {
	if c.tx == nil {
		tx, err := c.dst.Begin(true)
		if err != nil {
			return nil, err
		}
		c.tx = tx
	}
	return createPath(c.tx, path)
}

// bucket copies b, then the buckets nested in it, to path.
func (c *copier) bucket(b *cowfile.Bucket, path [][]byte) error {
	c.buckets++
	d, err := c.target(path)
	if err != nil {
		return err
	}
	if err := d.SetSequence(b.Sequence()); err != nil {
		return err
	}
	var nested [][]byte
	err = b.ForEach(func(k, v []byte) error {
		if v == nil {
			nested = append(nested, append([]byte(nil), k...))
			return nil
		}
		if d == nil {
			var err error
			if d, err = c.target(path); err != nil {
				return err
			}
		}
		if err := d.Put(k, v); err != nil {
			return fmt.Errorf("bucket %s, key %s: %w", pathString(path), escape(truncateBytes(k)), err)
		}
		c.keys++
		c.bar.add(1)
		if c.pending += int64(len(k) + len(v)); c.pending >= c.batch {
			d = nil
			return c.commit()
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range nested {
		if err := c.bucket(b.Bucket(name), append(append([][]byte{}, path...), name)); err != nil {
			return err
		}
	}
	return nil
}

var (
	backupForce bool
	backupJSON  bool
)

var backupCmd = &cobra.Command{
	Use:   "backup FILE DST",
	Short: "Write a consistent copy of the current version",
	Long: `backup writes a consistent copy of FILE's current version to DST (or to
standard output when DST is "-") through a read transaction (Tx.WriteTo):
a complete cowfile file whose two metas both describe that version.

Locking: backup opens FILE read-only and takes the shared lock, like every
read-only command. Other readers (other backups, dump, check) run at the
same time. A process that has FILE open read-write holds the exclusive
lock, and backup waits for it up to --timeout, then fails. To back up a
file that a running program keeps open, have the program call Tx.WriteTo
itself: inside one process, a read transaction never blocks the writer,
so that backup is hot.

DST is written under a temporary name, synced, then renamed, so a failed
backup never leaves a partial file under DST. An existing DST is only
replaced with --force.`,
	Example: `  cowfile backup app.cow app.backup.cow
  cowfile backup app.cow - | gzip > app.cow.gz`,
	Args: nargs(2, 2),
	RunE: func(cmd *cobra.Command, args []string) error {
		src, dst := args[0], args[1]
		if dst != "-" && !backupForce {
			if _, err := os.Stat(dst); err == nil {
				return fmt.Errorf("%s exists (use --force to replace it)", dst)
			}
		}
		db, err := openDB(src, true)
		if err != nil {
			return err
		}
		defer db.Close()
		st := db.Stats()
		var out io.Writer = cmd.OutOrStdout()
		var tmp *os.File
		if dst != "-" {
			if tmp, err = os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp-*"); err != nil {
				return err
			}
			defer func() {
				if tmp != nil {
					tmp.Close()
					os.Remove(tmp.Name())
				}
			}()
			out = tmp
		}
		bar := newProgress(int64(st.FilePages)*int64(st.PageSize), "backing up", true)
		bw := bufio.NewWriterSize(&countingWriter{w: out, bar: bar}, 1<<20)
		var n int64
		var txid uint64
		err = db.View(func(tx *cowfile.Tx) error {
			txid = tx.ID()
			var err error
			n, err = tx.WriteTo(bw)
			return err
		})
		if err == nil {
			err = bw.Flush()
		}
		bar.finish()
		if err != nil {
			return readError(err)
		}
		if tmp != nil {
			if err := tmp.Sync(); err != nil {
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), dst); err != nil {
				return err
			}
			tmp = nil
			syncDir(filepath.Dir(dst))
		}
		if dst == "-" {
			return nil
		}
		w := cmd.OutOrStdout()
		if backupJSON {
			return writeJSON(w, map[string]any{"src": src, "dst": dst, "txid": txid, "bytes": n})
		}
		fmt.Fprintf(w, "backed up tx %d of %s to %s: %d bytes\n", txid, src, dst, n)
		return nil
	},
}

// syncDir makes a rename durable where the platform allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // not supported on every platform; the rename is still done
		d.Close()
	}
}

type countingWriter struct {
	w   io.Writer
	bar *progress
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.bar.add(int64(n))
	return n, err
}

var (
	revertOut   string
	revertForce bool
	revertJSON  bool
)

var revertCmd = &cobra.Command{
	Use:   "revert FILE -o OUT",
	Short: "Write a copy whose current version is the one before the newest commit",
	Long: `revert repairs a bad last commit: it writes a copy of FILE to OUT in which
the version before the newest commit is current, and the newest commit is
gone. FILE itself is never modified. The newest commit is the newest meta
open finds: a meta slot's, or a commit record chained after one (under
sync durability most commits write their meta as a record beside their
pages); the version before it is the older meta slot's, or the record
before it.

The copy's metas are re-stamped: the older version's meta is written into
both meta slots, as txid T+1 and T (T is the newest txid), so it is the
newest, and replaces the meta of commit T; both describe the older
version, so nothing can fall back to the dropped commit. The pages commit
T wrote, its record too, are free in the older version and are reused by
later commits. The commit records the older version keeps in use stay in
use until the copy's meta slot commits free them.

Use it when the last commit is damaged (check reports that open fell back,
or the newest meta's commit does not verify) or was a mistake. revert
refuses when there is no older version, when the older version's own
commit does not verify, or when open already falls back past a damaged
meta or record (reverting would drop the intact commit open uses as
well); --force writes the copy anyway in the last two cases. It decodes
the file directly and takes no lock: do not run it on a file a process is
writing.`,
	Example: `  cowfile revert app.cow -o app.reverted.cow && cowfile check app.reverted.cow`,
	Args:    nargs(1, 1),
	RunE: func(cmd *cobra.Command, args []string) error {
		src := args[0]
		if revertOut == "" {
			return usagef("revert needs -o OUT: it never changes FILE in place")
		}
		f, err := inspect.Open(src, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		ms := f.Metas()
		// Each commit once, newest first: the order open tries them in.
		var cands []*inspect.Candidate
		for i := range ms.Candidates {
			if c := &ms.Candidates[i]; !c.Duplicate {
				cands = append(cands, c)
			}
		}
		if len(cands) == 0 {
			return problems("%s: neither meta slot is valid; there is no version to revert to", src)
		}
		n := cands[0]
		if len(cands) < 2 {
			for i, s := range ms.Slots {
				if !s.Valid() {
					return problems("%s: the older meta (slot %d) is invalid: %v; open already uses %s (tx %d)", src, i, s.Err, n.Where(), n.Meta.TxID)
				}
			}
			return problems("%s: no version older than tx %d to revert to", src, n.Meta.TxID)
		}
		o := cands[1]
		if !o.Tried {
			o.VerifyErr = f.Verify(o.Meta)
			o.Verified = o.VerifyErr == nil
		}
		switch {
		case ms.Used == 0 && ms.FallBack && !revertForce:
			return problems("%s: open already falls back (%s) and uses the newest commit that verifies, %s (tx %d); revert would drop it too (--force writes the copy anyway)",
				src, ms.Reason, n.Where(), n.Meta.TxID)
		case !o.Verified && !revertForce:
			return problems("%s: the older version (%s, tx %d) does not verify either: %v (--force writes the copy anyway)", src, o.Where(), o.Meta.TxID, o.VerifyErr)
		}
		ps := f.PageSize()
		keep, drop := o.Meta, n.Meta.TxID
		if err := copyFile(src, revertOut, revertForce); err != nil {
			return err
		}
		out, err := os.OpenFile(revertOut, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		buf := make([]byte, ps)
		for _, t := range []page.TxID{drop + 1, drop} {
			// In a slot, as WriteTo writes a copy: not a commit record (nor
			// one naming its own record, which the copy's txids no longer
			// match); it keeps the records in use, the split and the page
			// reserved for the next record. Its new txid changes its link,
			// so no walk from the copy's slots accepts the record of the
			// dropped commit (or of any later one): none follows it.
			m := keep
			m.TxID, m.Flags, m.Version = t, 0, meta.Version
			m.Encode(buf)
			if _, err := out.WriteAt(buf, int64(meta.Slot(t))*int64(ps)); err != nil {
				out.Close()
				return err
			}
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		// Confirm what open will make of the copy.
		cf, err := inspect.Open(revertOut, 0)
		if err != nil {
			return err
		}
		defer cf.Close()
		cms := cf.Metas()
		w := cmd.OutOrStdout()
		res := map[string]any{"src": src, "out": revertOut, "dropped_txid": drop, "kept_txid": keep.TxID,
			"new_txid": drop + 1, "kept_meta_page": keep.Page(), "kept_record": keep.IsRecord(),
			"opens_cleanly": cms.Current >= 0 && !cms.FallBack}
		if revertJSON {
			if err := writeJSON(w, res); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(w, "wrote %s: the version of tx %d (%s of %s) is current, as tx %d; commit %d is dropped\n",
				revertOut, keep.TxID, o.Where(), src, drop+1, drop)
		}
		if cms.Current < 0 || cms.FallBack {
			return problems("%s does not open cleanly: %s", revertOut, cms.Reason)
		}
		return nil
	},
}

// truncateSync cuts path to size bytes and syncs it.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyFile copies src to a new file dst and syncs it.
func copyFile(src, dst string, force bool) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := createNew(dst, force)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func init() {
	compactCmd.Flags().Int64Var(&compactBatch, "batch", 64<<20, "commit after this many bytes of keys and values")
	compactCmd.Flags().IntVar(&compactPageSize, "page-size", 0, "page size of DST (default: SRC's)")
	compactCmd.Flags().BoolVar(&compactJSON, "json", false, "write JSON")
	backupCmd.Flags().BoolVar(&backupForce, "force", false, "replace an existing DST")
	backupCmd.Flags().BoolVar(&backupJSON, "json", false, "write JSON")
	revertCmd.Flags().StringVarP(&revertOut, "output", "o", "", "the copy to write (required)")
	revertCmd.Flags().BoolVar(&revertForce, "force", false, "replace an existing OUT; revert even if the older version does not verify")
	revertCmd.Flags().BoolVar(&revertJSON, "json", false, "write JSON")
	rootCmd.AddCommand(compactCmd, backupCmd, revertCmd)
}
