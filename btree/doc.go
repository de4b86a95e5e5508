// Package btree is cowfile's copy-on-write B+tree over an abstract page
// store: search, insert, delete, split, merge, cursors, walks, and the
// byte encoding of branch and leaf pages.
//
// It reaches pages only through Store (read a run by reference, allocate,
// free, queue a written run), so it is tested over an in-memory store and
// reused for every tree in a file: the bucket catalog, every bucket, and
// nested buckets (a leaf element of kind Bucket holds the root reference of
// another tree).
//
// Invariants:
//   - A committed page is never modified. A write transaction materializes
//     the pages it changes, and their ancestors, as in-memory nodes; the old
//     pages are freed (as versions born at the txid that wrote them) at that
//     moment. Nodes are split, merged and written to freshly allocated pages
//     only at Spill, bottom-up, so every parent's reference carries its
//     child's final page id, checksum and txid (a Merkle tree).
//   - In a spilled tree, every branch element's key is the first key of the
//     child it points to; keys strictly increase across the whole tree; all
//     leaves are at the same depth.
//   - Every element fits in half a page body, so any two branch elements
//     (with their heads) fit on one page: keys are limited to MaxKeySize,
//     and values too large to sit inline live in their own multi-page run,
//     referenced from the leaf.
//   - Every page written holds heads: the page's common key prefix length
//     and, per element, the next bytes of its key, which the searches
//     compare before any key (docs/FORMAT.md, "Heads"). Pages of older
//     formats have none and are searched by their keys.
//   - Pages read from a store are structurally validated (Validate) before
//     any offset in them is followed, so a hostile page yields an error
//     wrapping page.ErrCorrupt, never a panic or an endless loop (descent is
//     bounded by MaxDepth).
package btree
