package cowfile

import (
	"time"

	"github.com/cowfile/cowfile/btree"
	"github.com/cowfile/cowfile/meta"

	"github.com/cowfile/cowfile/pager"
)

// Durability says what a successful Commit promises.
type Durability int

const (
	// Sync writes the new pages and the meta, then makes them durable with
	// one fdatasync. A commit whose sync has not returned may be torn by a
	// power loss; Open detects that through the Merkle references and
	// falls back to the previous commit, which was never touched. Most
	// commits write their meta as a commit record in the same run as their
	// pages (one contiguous write), at a page the previous commit reserved;
	// every MaxChain commits one writes a meta slot (see Options.MaxChain).
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
	// KeepVersions keeps the last N commits readable as automatic
	// snapshots named "@<txid>" (see ViewSnapshot, Diff); 0 keeps none.
	// Their pages are reclaimed by the same lifespan rule as any snapshot's.
	KeepVersions int
	// MmapSize is the address space reserved for the file's map; the file
	// grows inside it without remapping. 0 means 1 GiB (at least twice the
	// file). Growth past it maps a larger region; readers keep the old one
	// until they end, so growth never waits for readers.
	MmapSize int64
	// MaxChain bounds, under Sync, how many commits in a row write their
	// meta only as a commit record in the run of their pages, before one
	// also writes it to a meta slot (docs/FORMAT.md, "Commit records"):
	// MaxChain, or one more when that would make the slot commit write the
	// slot it must keep (slot commits alternate slots, so they are an odd
	// number of txids apart). Commits that free many pages write a slot
	// sooner. Open reads at most about twice that many records. 0 means
	// the most, 14; a negative value writes every commit's meta to a slot
	// only, a second region for each commit's one sync (the format 3
	// commit).
	MaxChain int
	// FS replaces the file system (tests inject faults through it).
	FS pager.FS
}

// maxChain is the most Options.MaxChain can be: the records in use, those
// since the older meta slot, must fit meta.MaxChain (with one more when a
// slot commit waits a commit for its slot's turn).
const maxChain = meta.MaxChain/2 - 2

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
	if r.MaxChain == 0 || r.MaxChain > maxChain {
		r.MaxChain = maxChain
	}
	return r
}

// MaxKeySize returns the longest key a file of the given page size takes:
// 1992 bytes at the default 4096 (about half a page less 40 bytes).
func MaxKeySize(pageSize int) int { return btree.MaxKeySize(pageSize) }

// MaxValueSize is the largest value: values that do not fit inline live in
// runs of contiguous pages.
const MaxValueSize = btree.MaxValueSize
