package cowfile

import (
	"time"

	"github.com/cowfile/cowfile/pager"
)

// Durability says what a successful Commit promises.
type Durability int

const (
	// Sync writes the new pages and the meta, then makes them durable with
	// one fdatasync. A commit whose sync has not returned may be torn by a
	// power loss; Open detects that through the Merkle references and
	// falls back to the previous commit, which was never touched.
	Sync Durability = iota
	// SyncMeta syncs the pages, then writes and syncs the meta: two syncs
	// per commit, as bbolt and LMDB do.
	SyncMeta
	// NoSync never syncs. A process crash loses nothing; a power loss may
	// lose recent commits, and reads of pages that did not reach the disk
	// return an error naming the page, never wrong data.
	NoSync
)

func (d Durability) String() string {
	switch d {
	case Sync:
		return "sync"
	case SyncMeta:
		return "sync-meta"
	case NoSync:
		return "no-sync"
	}
	return "unknown"
}

// Options configure Open. A nil *Options means the defaults.
type Options struct {
	// PageSize applies to new files only: a power of two from 1 KiB to
	// 64 KiB; 0 means 4096. Existing files keep the size they were made with.
	PageSize int
	// ReadOnly opens the file with a shared lock; every write transaction
	// returns ErrDatabaseReadOnly.
	ReadOnly bool
	// Durability of commits; the default is Sync.
	Durability Durability
	// Timeout is how long Open waits for the file lock; 0 waits forever.
	Timeout time.Duration
	// MaxBatchSize and MaxBatchDelay bound how many calls Batch groups into
	// one commit and how long it waits for more; 0 means 1000 and 10ms.
	MaxBatchSize  int
	MaxBatchDelay time.Duration
	// FS replaces the file system (tests inject faults through it).
	FS pager.FS
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.PageSize == 0 {
		r.PageSize = 4096
	}
	if r.MaxBatchSize == 0 {
		r.MaxBatchSize = 1000
	}
	if r.MaxBatchDelay == 0 {
		r.MaxBatchDelay = 10 * time.Millisecond
	}
	return r
}
