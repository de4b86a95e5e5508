// Package benchwork is the workload side of cowfile's benchmarks: the
// engine interface every store is measured through, the key and value
// generators, the workloads, the runner that interleaves engines, and the
// report (table and JSON).
//
// It has no dependencies outside the standard library and cowfile itself,
// so both the `cowfile bench` command and the comparison harness in bench/
// (its own module, which adds bbolt and LMDB) use the same code, and a
// figure printed by one means the same as a figure printed by the other.
package benchwork

// Engine opens stores of one kind.
type Engine interface {
	// Name is the engine's short name ("cowfile", "bbolt", "lmdb").
	Name() string
	// Create makes a new, empty store at path with the engine's default
	// durable settings (one sync per commit or more; never a no-sync mode).
	Create(path string) (Store, error)
}

// Store is one open store. Keys and values handed to Writer.Put must stay
// unchanged until the transaction ends (bbolt keeps references to them).
type Store interface {
	// Update runs fn in a write transaction and commits it durably.
	Update(fn func(Writer) error) error
	// View runs fn in a read transaction.
	View(fn func(Reader) error) error
	// Size is the size in bytes of the store's data file(s) on disk.
	Size() (int64, error)
	Close() error
}

// Writer is the write side of a transaction.
type Writer interface {
	Put(key, value []byte) error
	Delete(key []byte) error
}

// Reader is the read side of a transaction. Values may point into the
// store's map and are valid until the transaction ends.
type Reader interface {
	Get(key []byte) []byte
	Cursor() Cursor
}

// Cursor walks keys in order; a nil key means the end.
type Cursor interface {
	First() (key, value []byte)
	Seek(key []byte) (key2, value []byte)
	Next() (key, value []byte)
}
