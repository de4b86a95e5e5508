// Package meta encodes, decodes and checks the metas of a cowfile file:
// the two meta slots (pages 0 and 1) and the commit records chained after
// them (format 4), and walks those chains (Follow).
//
// A meta names one committed version of the whole file: its txid, the
// Merkle reference to the root of the bucket catalog, the head of the
// free-space log, the snapshot catalog and the high-water mark; from
// format 4 also the page reserved for the next commit's record, the link
// of the commit it follows and the record pages in use. A commit writes
// its meta as a record at the page its predecessor reserved, in the run of
// its pages, and now and then into slot T%2 as well, never the slot the
// latest version was found from, so nothing a walk needs is touched while
// a commit is in flight. Each meta carries its own xxhash64 checksum over
// the whole page; a torn or rotten meta fails it, and Open uses an older
// one (docs/FORMAT.md, "Opening and recovery").
//
// The package knows nothing of trees or files: it turns bytes into a Meta
// and back.
package meta
