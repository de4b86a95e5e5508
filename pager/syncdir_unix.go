//go:build !windows

package pager

import "os"

// syncDir fsyncs a directory, which makes the creation, rename or removal
// of its entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	if cerr := d.Close(); serr == nil {
		serr = cerr
	}
	return serr
}
