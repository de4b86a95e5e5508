//go:build !linux && !darwin && !freebsd && !openbsd && !netbsd && !dragonfly && !windows

package pager

import "errors"

var errNoLock = errors.New("cowfile: file locking is not supported on this platform")

// tryLock fails: without a lock two writers could corrupt the file, so the
// pager refuses to open rather than run unprotected.
func tryLock(fd uintptr, exclusive bool) (busy bool, err error) { return false, errNoLock }

func unlock(fd uintptr) error { return errNoLock }
