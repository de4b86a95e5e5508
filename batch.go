package cowfile

import (
	"errors"
	"sync"
	"time"
)

// Batch runs fn in a write transaction shared with other goroutines that
// call Batch at about the same time: up to Options.MaxBatchSize calls, or
// whatever arrived within Options.MaxBatchDelay, commit together with one
// sync. fn may run more than once (if another call in its batch fails, the
// rest are retried one by one), so it must be idempotent. Batch returns
// fn's error, or the commit's.
func (db *DB) Batch(fn func(*Tx) error) error {
	errc := make(chan error, 1)
	db.batchMu.Lock()
	if db.batch == nil || len(db.batch.calls) >= db.opts.MaxBatchSize {
		db.batch = &batch{db: db}
		db.batch.timer = time.AfterFunc(db.opts.MaxBatchDelay, db.batch.trigger)
	}
	b := db.batch
	b.calls = append(b.calls, call{fn: fn, err: errc})
	if len(b.calls) >= db.opts.MaxBatchSize {
		go b.trigger() // full: run now
	}
	db.batchMu.Unlock()
	err := <-errc
	if errors.Is(err, errRetryAlone) {
		err = db.Update(fn)
	}
	return err
}

type call struct {
	fn  func(*Tx) error
	err chan<- error
}

type batch struct {
	db    *DB
	timer *time.Timer
	once  sync.Once
	calls []call
}

// errRetryAlone tells a caller its batch failed because of another call.
var errRetryAlone = errors.New("cowfile: batch call must be retried alone")

// trigger runs the batch once.
func (b *batch) trigger() { b.once.Do(b.run) }

func (b *batch) run() {
	db := b.db
	db.batchMu.Lock()
	b.timer.Stop()
	if db.batch == b {
		db.batch = nil
	}
	db.batchMu.Unlock()
	for len(b.calls) > 0 {
		failed := -1
		err := db.Update(func(tx *Tx) error {
			for i, c := range b.calls {
				if err := safeCall(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			// The failing call learns its error; the rest run again.
			c := b.calls[failed]
			b.calls = append(b.calls[:failed], b.calls[failed+1:]...)
			c.err <- errRetryAlone
			continue
		}
		for _, c := range b.calls {
			c.err <- err
		}
		return
	}
}

// safeCall runs fn, turning a panic into an error so one caller cannot
// take down the others' batch.
func safeCall(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError{p}
		}
	}()
	return fn(tx)
}

type panicError struct{ v any }

func (p panicError) Error() string { return "cowfile: panic in Batch function" }
