// Package meta encodes, decodes and checks the two meta slots (pages 0 and
// 1) of a cowfile file and picks the newest valid one.
//
// A meta names one committed version of the whole file: its txid, the
// Merkle reference to the root of the bucket catalog, the head of the
// free-space log, the snapshot catalog and the high-water mark. Commit T
// writes its meta into slot T%2, so the meta of commit T-1 is never touched
// while T is in flight. Each meta carries its own xxhash64 checksum over the
// whole page; a torn or rotten meta fails it and the other slot is used.
//
// The package knows nothing of trees or files: it turns bytes into a Meta
// and back.
package meta
