package pager

// syncDir is a no-op: windows cannot open a directory for fsync, and NTFS
// journals renames itself.
func syncDir(dir string) error { return nil }
