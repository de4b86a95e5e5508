// Package inspect decodes a cowfile file straight from its bytes, for the
// tools that must work when the engine will not: both meta slots, the
// commit records chained after them, and what Open would make of them
// (which meta it would use, whether it would fall back and why), the kind
// and status of every page found by walking from a meta, per-bucket
// statistics, and the decoding of single pages.
//
// It reads the file with ReadAt, never writes, takes no lock, and does not
// go through cowfile.Open, so it works on a file Open refuses. It trusts
// nothing it reads: every reference is bounded by the high-water mark and
// the file's end before it is followed, every page is decoded with bounds
// checks, a page reached twice ends that branch of the walk, and every
// problem is recorded with the page it concerns instead of stopping the
// analysis. Bad input never makes it panic.
//
// It knows the page layouts only through the packages that own them
// (pager/page, meta, btree, freelist). Trees reachable from a meta are
// walked through one seam (Analysis.walkRoots), where the trees of later
// formats, such as a snapshot catalog, are to be added.
package inspect
