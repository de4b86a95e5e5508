package pager

import "golang.org/x/sys/windows"

// Windows locks are mandatory: a locked byte cannot be read through another
// handle. So the lock is taken on the last possible byte of the file, which
// no page will ever occupy.
const lockOffset = ^uint32(0)

// tryLock makes one non-blocking attempt at LockFileEx: exclusive or shared.
func tryLock(fd uintptr, exclusive bool) (busy bool, err error) {
	flags := uint32(windows.LOCKFILE_FAIL_IMMEDIATELY)
	if exclusive {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	ol := &windows.Overlapped{Offset: lockOffset, OffsetHigh: lockOffset}
	err = windows.LockFileEx(windows.Handle(fd), flags, 0, 1, 0, ol)
	if err == windows.ERROR_LOCK_VIOLATION || err == windows.ERROR_IO_PENDING {
		return true, nil
	}
	return false, err
}

func unlock(fd uintptr) error {
	ol := &windows.Overlapped{Offset: lockOffset, OffsetHigh: lockOffset}
	return windows.UnlockFileEx(windows.Handle(fd), 0, 1, 0, ol)
}
