// Package pager is cowfile's file layer: it creates, opens, locks, maps,
// writes, grows, truncates and syncs the database file. It knows nothing of
// pages' contents, trees, transactions or meta slots; the page header codec
// lives beneath it in package page.
//
// Reads go through a read-only, shared memory map; every change to the file
// goes through the FS and File interfaces, the narrow seam through which tests
// inject faults and record what was written and synced.
//
// Invariants the pager keeps:
//
//   - One process writes a file at a time: Open takes an exclusive flock
//     (LockFileEx on windows) for a writable pager and a shared one for a
//     read-only pager, and holds it until Close.
//   - A new file appears under its real name complete or not at all: its
//     initial image is written to a temporary file, synced, renamed into
//     place, and the directory is synced.
//   - Nothing past the end of the file is ever touched through the map:
//     Mapping.Bytes checks every range against the size the pager knows
//     (which it raises only after the file has actually grown) and against
//     the mapping's length, and returns an error, never a fault.
//   - A mapping is never unmapped under a reader: mappings are reference
//     counted, the pager holds one reference to the current mapping, and a
//     mapping superseded by growth is unmapped only by its last Release.
//   - Growth rarely remaps: the map reserves address space beyond the file
//     (Options.MinMapSize, at least twice the file) so the file can grow into
//     it; only on windows, where mapping past the end would extend the file,
//     is the map exactly the file's size and redone on every growth.
//   - Errors carry context (file path, offset, length) and wrap the cause, so
//     errors.Is works for ErrTimeout, ErrEmpty, os.ErrNotExist, syscall.EIO and
//     friends. The pager never panics on a bad file or a bad argument.
package pager
