package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/cowfile/cowfile"
	"github.com/spf13/cobra"
)

// Options of the key/value commands.
type kvOptions struct {
	json   bool
	format string
}

func (o *kvOptions) register(cmd *cobra.Command, reports bool) {
	if reports {
		cmd.Flags().BoolVar(&o.json, "json", false, "write JSON (keys and values encoded as --format; raw is not allowed)")
	}
	cmd.Flags().StringVar(&o.format, "format", "escaped", "how bucket names, keys and values are written in arguments and output: escaped, hex or raw")
}

func (o *kvOptions) byteFormat() (byteFormat, error) {
	f, err := parseFormat(o.format)
	if err == nil && o.json && f == formatRaw {
		err = usagef("--json needs --format escaped or hex")
	}
	return f, err
}

// decode returns the format and the byte strings args spell in it.
func (o *kvOptions) decode(args []string) (byteFormat, [][]byte, error) {
	f, err := o.byteFormat()
	if err != nil {
		return f, nil, err
	}
	parts, err := decodeArgs(f, args)
	return f, parts, err
}

const formatHelp = `

Bucket names, keys and values, in arguments and in output, are written as
--format says: escaped (the default: printable ASCII as is, a backslash as
\\, any other byte as a backslash and two hex digits, e.g. \00 or \0a),
hex, or raw (bytes as they are; output without a trailing newline for get).`

// bucketsCmd lists buckets.
var bucketsOpts kvOptions

var bucketsCmd = &cobra.Command{
	Use:   "buckets FILE",
	Short: "List every bucket, nested ones by path",
	Long: `buckets lists every bucket of FILE with its number of keys, of nested
buckets, and its sequence. Nested buckets are named by their path: names
joined by '/', where a '/' or '\' inside a name, and any byte outside '!'
to '~', is written as a backslash and two hex digits (a\2fb is one bucket
named "a/b"). It opens the file read-only, with the shared lock.`,
	Example: `  cowfile buckets app.cow
  cowfile buckets --json app.cow`,
	Args: nargs(1, 1),
	RunE: func(cmd *cobra.Command, args []string) error {
		db, err := openDB(args[0], true)
		if err != nil {
			return err
		}
		defer db.Close()
		type row struct {
			Path     string `json:"path"`
			Keys     int    `json:"keys"`
			Buckets  int    `json:"buckets"`
			Sequence uint64 `json:"sequence"`
		}
		rows := []row{}
		var walk func(b *cowfile.Bucket, path [][]byte) error
		walk = func(b *cowfile.Bucket, path [][]byte) error {
			i := len(rows)
			rows = append(rows, row{Path: pathString(path), Sequence: b.Sequence()})
			var nested [][]byte
			err := b.ForEach(func(k, v []byte) error {
				if v == nil {
					nested = append(nested, append([]byte(nil), k...))
				} else {
					rows[i].Keys++
				}
				return nil
			})
			if err != nil {
				return err
			}
			rows[i].Buckets = len(nested)
			for _, n := range nested {
				if err := walk(b.Bucket(n), append(append([][]byte{}, path...), n)); err != nil {
					return err
				}
			}
			return nil
		}
		err = db.View(func(tx *cowfile.Tx) error {
			return tx.ForEach(func(name []byte, b *cowfile.Bucket) error { return walk(b, [][]byte{name}) })
		})
		if err != nil {
			return readError(err)
		}
		w := cmd.OutOrStdout()
		if bucketsOpts.json {
			return writeJSON(w, rows)
		}
		t := newTable(w, "BUCKET", "KEYS", "BUCKETS", "SEQUENCE")
		for _, r := range rows {
			t.row(r.Path, strconv.Itoa(r.Keys), strconv.Itoa(r.Buckets), strconv.FormatUint(r.Sequence, 10))
		}
		t.flush()
		return nil
	},
}

// readError turns a corruption met while reading into a problem found.
func readError(err error) error {
	if errors.Is(err, cowfile.ErrCorrupt) {
		return problems("%v", err)
	}
	return err
}

var keysOpts kvOptions

var keysCmd = &cobra.Command{
	Use:   "keys FILE BUCKET...",
	Short: "List the keys of a bucket",
	Long: `keys lists the keys of the bucket at the path BUCKET... (one argument per
level of nesting), one per line, in order. Keys that hold nested buckets
are listed too; --json marks them. It opens the file read-only.` + formatHelp,
	Example: `  cowfile keys app.cow users
  cowfile keys app.cow users prefs
  cowfile keys --format hex app.cow users`,
	Args: nargs(2, -1),
	RunE: func(cmd *cobra.Command, args []string) error {
		bf, path, err := keysOpts.decode(args[1:])
		if err != nil {
			return err
		}
		db, err := openDB(args[0], true)
		if err != nil {
			return err
		}
		defer db.Close()
		type keyJSON struct {
			Key    string `json:"key"`
			Bucket bool   `json:"bucket,omitempty"`
		}
		out := []keyJSON{}
		w := cmd.OutOrStdout()
		err = db.View(func(tx *cowfile.Tx) error {
			b, err := bucketAt(tx, path)
			if err != nil {
				return err
			}
			return b.ForEach(func(k, v []byte) error {
				if keysOpts.json {
					out = append(out, keyJSON{Key: bf.encode(k), Bucket: v == nil})
					return nil
				}
				_, err := fmt.Fprintln(w, bf.encode(k))
				return err
			})
		})
		if err != nil {
			return readError(err)
		}
		if keysOpts.json {
			return writeJSON(w, out)
		}
		return nil
	},
}

var getOpts kvOptions

var getCmd = &cobra.Command{
	Use:   "get FILE BUCKET... KEY",
	Short: "Print the value of a key",
	Long: `get prints the value stored under KEY in the bucket whose path is BUCKET...
A missing key or bucket is a problem found (exit status 1). It opens the
file read-only.` + formatHelp,
	Example: `  cowfile get app.cow users alice
  cowfile get --format raw app.cow blobs logo.png > logo.png
  cowfile get --format hex app.cow idx 00ff`,
	Args: nargs(3, -1),
	RunE: func(cmd *cobra.Command, args []string) error {
		bf, parts, err := getOpts.decode(args[1:])
		if err != nil {
			return err
		}
		path, key := parts[:len(parts)-1], parts[len(parts)-1]
		db, err := openDB(args[0], true)
		if err != nil {
			return err
		}
		defer db.Close()
		var val []byte
		err = db.View(func(tx *cowfile.Tx) error {
			b, err := bucketAt(tx, path)
			if err != nil {
				return err
			}
			if b.Bucket(key) != nil {
				return problems("key %s in bucket %s holds a nested bucket, not a value", escape(key), pathString(path))
			}
			v := b.Get(key)
			if v == nil {
				if err := tx.Err(); err != nil {
					return err
				}
				return problems("key %s not found in bucket %s", escape(key), pathString(path))
			}
			val = bytes.Clone(v)
			return nil
		})
		if err != nil {
			return readError(err)
		}
		w := cmd.OutOrStdout()
		switch {
		case getOpts.json:
			return writeJSON(w, map[string]string{"key": bf.encode(key), "value": bf.encode(val)})
		case bf == formatRaw:
			_, err = w.Write(val)
		default:
			_, err = fmt.Fprintln(w, bf.encode(val))
		}
		return err
	},
}

var (
	putOpts   kvOptions
	putCreate bool
	putStdin  bool
)

var putCmd = &cobra.Command{
	Use:   "put FILE BUCKET... KEY VALUE",
	Short: "Store a value under a key",
	Long: `put stores VALUE under KEY in the bucket at the path BUCKET..., in one
committed transaction. The file must exist; it is opened read-write, with
the exclusive lock, so no other process may have it open. With --create,
missing buckets along the path are created. With --stdin the value is read
from standard input, as raw bytes, and VALUE is omitted.` + formatHelp,
	Example: `  cowfile put app.cow users alice 'hello\0a'
  cowfile put --create app.cow config db timeout 30s
  cowfile put --stdin app.cow blobs logo.png < logo.png`,
	Args: nargs(3, -1),
	RunE: func(cmd *cobra.Command, args []string) error {
		_, parts, err := putOpts.decode(args[1:])
		if err != nil {
			return err
		}
		var val []byte
		if putStdin {
			if val, err = io.ReadAll(os.Stdin); err != nil {
				return err
			}
		} else {
			if len(parts) < 3 {
				return usagef("put needs FILE, at least one BUCKET, KEY and VALUE")
			}
			val, parts = parts[len(parts)-1], parts[:len(parts)-1]
		}
		path, key := parts[:len(parts)-1], parts[len(parts)-1]
		db, err := openDB(args[0], false)
		if err != nil {
			return err
		}
		defer db.Close()
		err = db.Update(func(tx *cowfile.Tx) error {
			var b *cowfile.Bucket
			var err error
			if putCreate {
				b, err = createPath(tx, path)
			} else {
				b, err = bucketAt(tx, path)
			}
			if err != nil {
				return err
			}
			return b.Put(key, val)
		})
		if err != nil {
			return readError(err)
		}
		return db.Close()
	},
}

// createPath returns the bucket at path, creating what is missing.
func createPath(tx *cowfile.Tx, path [][]byte) (*cowfile.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(path[0])
	for i := 1; err == nil && i < len(path); i++ {
		b, err = b.CreateBucketIfNotExists(path[i])
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", pathString(path), err)
	}
	return b, nil
}

var deleteOpts kvOptions

var deleteCmd = &cobra.Command{
	Use:   "delete FILE BUCKET... KEY",
	Short: "Delete a key",
	Long: `delete removes KEY from the bucket at the path BUCKET..., in one committed
transaction. A missing key is a problem found (exit status 1); a key that
holds a nested bucket is refused. The file is opened read-write, with the
exclusive lock.` + formatHelp,
	Example: `  cowfile delete app.cow users alice
  cowfile delete --format hex app.cow idx 00ff`,
	Args: nargs(3, -1),
	RunE: func(cmd *cobra.Command, args []string) error {
		_, parts, err := deleteOpts.decode(args[1:])
		if err != nil {
			return err
		}
		path, key := parts[:len(parts)-1], parts[len(parts)-1]
		db, err := openDB(args[0], false)
		if err != nil {
			return err
		}
		defer db.Close()
		err = db.Update(func(tx *cowfile.Tx) error {
			b, err := bucketAt(tx, path)
			if err != nil {
				return err
			}
			if b.Bucket(key) != nil {
				return problems("key %s in bucket %s holds a nested bucket; it is not deleted", escape(key), pathString(path))
			}
			if b.Get(key) == nil {
				if err := tx.Err(); err != nil {
					return err
				}
				return problems("key %s not found in bucket %s", escape(key), pathString(path))
			}
			return b.Delete(key)
		})
		if err != nil {
			return readError(err)
		}
		return db.Close()
	},
}

func init() {
	bucketsCmd.Flags().BoolVar(&bucketsOpts.json, "json", false, "write JSON")
	keysOpts.register(keysCmd, true)
	getOpts.register(getCmd, true)
	putOpts.register(putCmd, false)
	putCmd.Flags().BoolVar(&putCreate, "create", false, "create missing buckets along the path")
	putCmd.Flags().BoolVar(&putStdin, "stdin", false, "read the value from standard input (raw bytes)")
	deleteOpts.register(deleteCmd, false)
	rootCmd.AddCommand(bucketsCmd, keysCmd, getCmd, putCmd, deleteCmd)
}
