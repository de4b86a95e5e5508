// Package freelist knows which pages of a file are free, which are freed but
// may still be visible to a reader or snapshot, when those can be reused,
// and how to persist that state at a cost proportional to the pages a
// commit changed. It knows nothing of trees or files: callers tell it what
// they allocate and free, and write and read the runs it builds.
//
// # Model
//
// Pages 0 and 1 are the meta slots and are never allocated. HWM (the
// high-water mark) is the number of pages in use; every page below it is
// exactly one of: reachable (in use, not recorded here), free, or pending.
//
// A page version lives from the transaction that wrote it (born) to the one
// that freed it (freed) and is visible to exactly the versions in
// [born, freed). A pending version becomes free once no retained txid (an
// active reader, a snapshot, and always the latest commit) lies in that
// interval. This is finer than an "oldest reader" rule: pages freed around
// a long-lived reader or snapshot are reused. A version written and freed
// by the same transaction was never committed and is free at once.
//
// # Invariants
//
//   - Free extents and pending entries never overlap, lie in [2, HWM), and
//     free extents are coalesced (no two are adjacent).
//   - Allocate takes the lowest-id run that fits, so the tail of the file
//     empties and can be truncated.
//   - Each write transaction's changes are logged as ordered ops
//     (ALLOC and FREE); Rollback undoes them exactly, and Persist writes
//     them as one sweep run linked to the previous head, together with a
//     segment of the state: the entries of the next page range of a sweep
//     through the state (persist.go). The newest segment of each page plus
//     the ops after it yield the live state, except that nothing is
//     released until the caller calls Release.
//   - Commit cost is O(ops of the transaction), also with a huge free set:
//     a segment holds a constant multiple of the ops, and each commit frees
//     the runs of the previous sweep it supersedes, about as many pages as
//     it writes. No commit rewrites the whole state; open reads about one
//     sweep. A state no larger than the ops is written whole.
//   - Load trusts nothing it reads: counts are checked against the run
//     length before use, the chain must go back in transaction order (so a
//     corrupted cycle ends), and every contradiction is an error wrapping
//     page.ErrCorrupt that names the run.
//
// The byte format of the runs is in docs/FORMAT.md, "Free space".
package freelist
