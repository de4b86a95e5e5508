// Package fuzz holds cowfile's crash-recovery, I/O-fault and corruption
// harnesses and its fuzz targets. It is test code only: everything lives in
// the package's _test.go files; this file exists to name the package and
// say what it proves.
//
// The harness drives the engine through pager.FS with a file system that
// applies every write to the real file at once (so the engine runs as it
// would in production) and records, since each file's last successful
// sync, every write with the bytes it replaced, every size change, and the
// durable image. From that record it builds the images a power loss could
// leave (each 512-byte sector touched since the sync holds its durable
// bytes or its bytes after any one of the pending writes; the size is
// anywhere between the durable size and the largest size reached), opens
// each one, and compares the whole content with an independent model:
// it must be exactly the last acknowledged commit or the commit in flight.
//
// docs/TESTING.md says how to run each harness, short and long;
// docs/RELIABILITY.md holds the figures of the last long run.
package fuzz
