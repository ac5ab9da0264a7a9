// Package lockfile serialises devbox's processes with flock(2) on files.
// A lock lives as long as its open file: the kernel drops the lock of a
// process that dies, so a killed devbox never leaves a lock held.
package lockfile

import (
	"fmt"
	"os"
	"syscall"
)

// File is an open lock file.
type File struct {
	f *os.File
}

// Open opens (making it if missing) the lock file at path, unlocked.
func Open(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &File{f: f}, nil
}

// Exclusive waits for the lock alone; Shared waits for it alongside other
// shared holders. Either converts a lock already held.
func (l *File) Exclusive() error { return l.flock(syscall.LOCK_EX) }
func (l *File) Shared() error    { return l.flock(syscall.LOCK_SH) }

// TryExclusive takes the lock alone if no one holds it, without waiting.
func (l *File) TryExclusive() bool { return l.flock(syscall.LOCK_EX|syscall.LOCK_NB) == nil }

func (l *File) flock(how int) error {
	for {
		err := syscall.Flock(int(l.f.Fd()), how)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("lock %s: %w", l.f.Name(), err)
		}
		return nil
	}
}

// Close releases the lock.
func (l *File) Close() { l.f.Close() }

// Lock waits for the lock at path alone and returns its release.
func Lock(path string) (unlock func(), err error) {
	l, err := Open(path)
	if err != nil {
		return nil, err
	}
	if err := l.Exclusive(); err != nil {
		l.Close()
		return nil, err
	}
	return l.Close, nil
}
