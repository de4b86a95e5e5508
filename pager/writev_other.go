//go:build !linux

package pager

// WritevAt writes bufs one WriteAt at a time; only linux gets pwritev.
func (o *osFile) WritevAt(bufs [][]byte, off int64) (int, error) {
	return writevLoop(o.f, bufs, off)
}
