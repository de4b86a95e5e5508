package cowfile

import (
	"errors"

	"github.com/cowfile/cowfile/pager"
	"github.com/cowfile/cowfile/pager/page"
)

// Errors returned by cowfile. They are sentinels: match them with
// errors.Is, because they usually arrive wrapped with context (the file,
// the page, what check failed).
var (
	// ErrDatabaseNotOpen is returned when the DB is used after Close.
	ErrDatabaseNotOpen = errors.New("cowfile: database not open")
	// ErrDatabaseReadOnly is returned by writes to a DB opened ReadOnly.
	ErrDatabaseReadOnly = errors.New("cowfile: database is read-only")
	// ErrTimeout is returned by Open when the file lock was not obtained
	// within Options.Timeout.
	ErrTimeout = pager.ErrTimeout
	// ErrIncompatible is returned for a file written in a format version or
	// with a page size this build does not support.
	ErrIncompatible = errors.New("cowfile: incompatible file")
	// ErrCorrupt wraps every corruption found: at open, on a read, by Check.
	// The wrapping error names the page and the check that failed.
	ErrCorrupt = page.ErrCorrupt
	// ErrInvalidOptions is returned by Open for options it cannot honour.
	ErrInvalidOptions = errors.New("cowfile: invalid options")
	// ErrWriteFailed wraps the error of a failed write or sync. After it,
	// the DB refuses every write until it is reopened: the page cache may
	// already have dropped the data that failed to reach the disk.
	ErrWriteFailed = errors.New("cowfile: write failed; reopen the database")

	ErrTxClosed           = errors.New("cowfile: transaction closed")
	ErrTxNotWritable      = errors.New("cowfile: transaction not writable")
	ErrBucketNotFound     = errors.New("cowfile: bucket not found")
	ErrBucketExists       = errors.New("cowfile: bucket already exists")
	ErrBucketNameRequired = errors.New("cowfile: bucket name required")
	// ErrIncompatibleValue is returned when a key holds a bucket where a
	// value was expected, or the other way round.
	ErrIncompatibleValue = errors.New("cowfile: incompatible value")
	ErrKeyRequired       = errors.New("cowfile: key required")
	ErrKeyTooLarge       = errors.New("cowfile: key too large")
	ErrValueTooLarge     = errors.New("cowfile: value too large")
)
