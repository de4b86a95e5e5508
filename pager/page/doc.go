// Package page is the one codec for the header that starts every page of a
// cowfile file, the one checksum helper, and the reference type that parents
// use to point at children. Everything that reads pages (meta, freelist,
// btree) goes through it; nothing else of the file layer is visible here.
//
// Layout of the 32-byte header (all integers little-endian):
//
//	0  checksum u64  xxhash64 of the whole run except these 8 bytes
//	8  id       u64  the page's own id (a page that claims another id is corrupt)
//	16 txid     u64  the transaction that wrote it
//	24 type     u8
//	25 flags    u8
//	26 count    u16  items (meaning depends on type)
//	28 span     u32  pages in this run (1 unless a multi-page run)
package page
