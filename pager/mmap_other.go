//go:build !unix && !windows

package pager

import (
	"errors"

	"github.com/edsrzf/mmap-go"
)

const mapPastEOF = false

func mapFile(fd uintptr, name string, length int) (mmap.MMap, error) {
	return nil, errors.New("cowfile: memory mapping is not supported on this platform")
}
