package benchwork

import (
	"os"
	"syscall"
)

// datasync is fdatasync, as the engines use on linux.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
