package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cowfile/cowfile"
	"github.com/spf13/cobra"
)

// The snapshot and diff commands: named, persistent versions of a file.

var snapJSON bool

var snapshotCmd = &cobra.Command{
	Use:   "snapshot create|delete|list|restore FILE [NAME]",
	Short: "Create, delete, list or restore named snapshots",
	Long: `snapshot manages the named snapshots of FILE: persistent versions whose
pages are kept (never reused) until the snapshot is deleted.

  create FILE NAME   pin the latest committed version as NAME
  delete FILE NAME   drop NAME; the pages only it kept become reusable
  list FILE          every snapshot: name, txid, creation time, and the
                     pages only it keeps alive (what deleting it frees)
  restore FILE NAME  make NAME's state the current state, as one new
                     commit; every snapshot stays as it was

create, delete and restore take the exclusive lock; list the shared one.
Names starting with '@' are the automatic versions kept by the
KeepVersions option.`,
	Example: `  cowfile snapshot create app.cow before-migration
  cowfile snapshot list app.cow
  cowfile snapshot restore app.cow before-migration
  cowfile snapshot delete app.cow before-migration`,
	Args: nargs(2, 3),
	RunE: func(cmd *cobra.Command, args []string) error {
		op, path := args[0], args[1]
		needName := op != "list"
		if needName != (len(args) == 3) {
			return usagef("snapshot %s takes FILE%s", op, map[bool]string{true: " NAME", false: ""}[needName])
		}
		switch op {
		case "list":
			db, err := openDB(path, true)
			if err != nil {
				return err
			}
			defer db.Close()
			list, err := db.Snapshots()
			if err != nil {
				return readError(err)
			}
			return printSnapshots(cmd.OutOrStdout(), list, snapJSON)
		case "create", "delete", "restore":
		default:
			return usagef("unknown snapshot operation %q (want create, delete, list or restore)", op)
		}
		db, err := openDB(path, false)
		if err != nil {
			return err
		}
		defer db.Close()
		name := args[2]
		switch op {
		case "create":
			err = db.CreateSnapshot(name)
		case "delete":
			err = db.DeleteSnapshot(name)
		case "restore":
			err = db.Restore(name)
		}
		if errors.Is(err, cowfile.ErrSnapshotNotFound) || errors.Is(err, cowfile.ErrSnapshotExists) {
			return problems("%v", err)
		}
		if err != nil {
			return readError(err)
		}
		if !snapJSON {
			fmt.Fprintf(cmd.OutOrStdout(), "%s: snapshot %s %sd at tx %d\n", path, name, strings.TrimSuffix(op, "e"), db.Stats().TxID)
		}
		return nil
	},
}

type snapshotJSON struct {
	Name    string    `json:"name"`
	TxID    uint64    `json:"txid"`
	Created time.Time `json:"created"`
	Pages   int       `json:"pages"`
}

func toSnapshotsJSON(list []cowfile.SnapshotInfo) []snapshotJSON {
	out := []snapshotJSON{}
	for _, s := range list {
		out = append(out, snapshotJSON{s.Name, s.TxID, s.Created.UTC(), s.Pages})
	}
	return out
}

func printSnapshots(w io.Writer, list []cowfile.SnapshotInfo, asJSON bool) error {
	if asJSON {
		return writeJSON(w, toSnapshotsJSON(list))
	}
	t := newTable(w, "SNAPSHOT", "TXID", "CREATED", "OWN PAGES")
	for _, s := range list {
		t.row(escape([]byte(s.Name)), fmt.Sprint(s.TxID), s.Created.UTC().Format(time.RFC3339), fmt.Sprint(s.Pages))
	}
	t.flush()
	return nil
}

var diffOpts kvOptions

var diffCmd = &cobra.Command{
	Use:   "diff FILE A B",
	Short: "List every difference between two versions",
	Long: `diff lists every difference between versions A and B of FILE, in bucket,
then key order. A and B are snapshot names (including the automatic '@txid'
versions of the KeepVersions option) or 'current'. One line per change:

  + BUCKET KEY VALUE        added in B
  - BUCKET KEY VALUE        deleted in B
  ~ BUCKET KEY OLD NEW      changed
  + BUCKET/                 bucket created (its keys follow as added)
  - BUCKET/                 bucket deleted (its keys follow as deleted)

BUCKET is the bucket's path as in dump; keys and values are written as
--format says. The cost is proportional to the pages that differ: subtrees
that are the same in both versions are never read. It opens the file
read-only.` + formatHelp,
	Example: `  cowfile diff app.cow before-migration current
  cowfile diff --json app.cow @1200 @1300`,
	Args: nargs(3, 3),
	RunE: func(cmd *cobra.Command, args []string) error {
		bf, err := diffOpts.byteFormat()
		if err != nil {
			return err
		}
		db, err := openDB(args[0], true)
		if err != nil {
			return err
		}
		defer db.Close()
		type changeJSON struct {
			Op     string `json:"op"`
			Bucket string `json:"bucket"`
			Key    string `json:"key,omitempty"`
			Old    string `json:"old,omitempty"`
			New    string `json:"new,omitempty"`
		}
		out := []changeJSON{}
		w := cmd.OutOrStdout()
		err = viewVersion(db, args[1], func(a *cowfile.Tx) error {
			return viewVersion(db, args[2], func(b *cowfile.Tx) error {
				return cowfile.Diff(a, b, func(c cowfile.Change) error {
					op := "~"
					switch {
					case c.Old == nil:
						op = "+"
					case c.New == nil:
						op = "-"
					}
					bucket := pathString(c.Bucket)
					if diffOpts.json {
						j := changeJSON{Op: op, Bucket: bucket}
						if c.Key != nil {
							j.Key = bf.encode(c.Key)
							if c.Old != nil {
								j.Old = bf.encode(c.Old)
							}
							if c.New != nil {
								j.New = bf.encode(c.New)
							}
						}
						out = append(out, j)
						return nil
					}
					var err error
					switch {
					case c.Key == nil:
						_, err = fmt.Fprintf(w, "%s %s/\n", op, bucket)
					case op == "~":
						_, err = fmt.Fprintf(w, "~ %s %s %s %s\n", bucket, bf.encode(c.Key), bf.encode(c.Old), bf.encode(c.New))
					case op == "+":
						_, err = fmt.Fprintf(w, "+ %s %s %s\n", bucket, bf.encode(c.Key), bf.encode(c.New))
					default:
						_, err = fmt.Fprintf(w, "- %s %s %s\n", bucket, bf.encode(c.Key), bf.encode(c.Old))
					}
					return err
				})
			})
		})
		if errors.Is(err, cowfile.ErrSnapshotNotFound) {
			return problems("%v", err)
		}
		if err != nil {
			return readError(err)
		}
		if diffOpts.json {
			return writeJSON(w, out)
		}
		return nil
	},
}

// viewVersion runs fn on version name: "current" or a snapshot.
func viewVersion(db *cowfile.DB, name string, fn func(*cowfile.Tx) error) error {
	if name == "current" {
		return db.View(fn)
	}
	return db.ViewSnapshot(name, fn)
}

func init() {
	snapshotCmd.Flags().BoolVar(&snapJSON, "json", false, "write JSON")
	diffOpts.register(diffCmd, true)
	rootCmd.AddCommand(snapshotCmd, diffCmd)
}

// inspectSnapshots lists the snapshots and the pages each pins, for
// inspect. It needs the engine (and the shared lock); if the file does not
// open, it says why instead.
func inspectSnapshots(w io.Writer, path string) {
	fmt.Fprintln(w)
	list, err := listSnapshots(path)
	if err != nil {
		fmt.Fprintf(w, "snapshots: not listed: %v\n", err)
		return
	}
	printSnapshots(w, list, false)
}

// listSnapshots lists the snapshots of the file at path through the engine
// (names and page counts are not in the raw decoder's reach), read-only.
func listSnapshots(path string) ([]cowfile.SnapshotInfo, error) {
	db, err := cowfile.Open(path, &cowfile.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Snapshots()
}
