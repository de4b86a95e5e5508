//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package pager

import "golang.org/x/sys/unix"

// tryLock makes one non-blocking attempt at a flock: exclusive or shared.
// busy reports that another holder has a conflicting lock. flock locks
// belong to the open file description, so two Opens of one file in one
// process conflict just as two processes do.
func tryLock(fd uintptr, exclusive bool) (busy bool, err error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(fd), how|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.EWOULDBLOCK {
		return true, nil
	}
	return false, err
}

func unlock(fd uintptr) error {
	return unix.Flock(int(fd), unix.LOCK_UN)
}
