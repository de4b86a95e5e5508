package pager

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync flushes the file down to stable storage. On darwin fsync only
// hands data to the drive, whose cache may lose it on power failure;
// F_FULLFSYNC asks the drive to flush too. Some file systems (network ones,
// for instance) reject F_FULLFSYNC; fsync is the best they offer.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		_, serr = unix.FcntlInt(fd, unix.F_FULLFSYNC, 0)
		if serr != nil {
			serr = unix.Fsync(int(fd))
		}
	})
	if serr == nil {
		serr = cerr
	}
	if serr != nil {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: serr}
	}
	return nil
}
