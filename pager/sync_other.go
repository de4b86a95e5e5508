//go:build !linux && !darwin

package pager

import "os"

// datasync flushes the file with the platform's full sync: fsync on unix,
// FlushFileBuffers on windows.
func datasync(f *os.File) error { return f.Sync() }
