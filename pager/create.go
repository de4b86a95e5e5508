package pager

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// create makes a new file at path atomically: the image is written to a
// temporary file beside it, synced, and renamed into place, and the
// directory is synced so the rename survives a crash. The real name thus
// never shows a partial file; a crash leaves at worst a stray temporary.
func create(fsys FS, path string, image func() ([]byte, error)) error {
	img, err := image()
	if err != nil {
		return fmt.Errorf("cowfile: %s: create: %w", path, err)
	}
	if len(img) == 0 {
		return fmt.Errorf("cowfile: %s: create: initial image is empty", path)
	}
	tmp := path + ".tmp-" + randomSuffix()
	if err := writeTemp(fsys, tmp, img); err != nil {
		fsys.Remove(tmp)
		return fmt.Errorf("cowfile: %s: create: %w", path, err)
	}
	// Another process may have created the file meanwhile; rename would
	// silently replace its file, so use that one instead. (The check and
	// the rename are not one step, so this narrows the race rather than
	// closing it; two processes creating one file at the same instant
	// remain unsupported.)
	if g, err := fsys.OpenFile(path, os.O_RDONLY, 0); err == nil {
		g.Close()
		fsys.Remove(tmp)
		return nil
	}
	if err := fsys.Rename(tmp, path); err != nil {
		fsys.Remove(tmp)
		return fmt.Errorf("cowfile: %s: create: %w", path, err)
	}
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("cowfile: %s: create: sync directory: %w", path, err)
	}
	return nil
}

func writeTemp(fsys FS, tmp string, img []byte) error {
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := f.WriteAt(img, 0)
	if err == nil && n != len(img) {
		err = io.ErrShortWrite
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	return f.Close()
}

func randomSuffix() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}
