// Package fsutil holds small file system helpers: atomic writes and advisory locks.
package fsutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by TryLock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// TempName returns a hidden name beside path for a temporary file: ".<base>.tmp-<random>".
func TempName(path string) string {
	var b [6]byte
	rand.Read(b[:])
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(b[:]))
}

// WriteFile writes data to path atomically: a temporary file in the same directory, fsync, chmod
// to perm, rename over path, fsync of the directory. On failure path is left as it was.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return replace(path, data, perm, true)
}

// ReplaceFile is WriteFile without the fsyncs: path shows the old content or the new, never a
// mix, but a crash may roll it back. For caches and state a crash may lose: an fsync commits
// whatever else the file system holds unwritten, which on one disk with freshly uploaded agents
// took seconds.
func ReplaceFile(path string, data []byte, perm fs.FileMode) error {
	return replace(path, data, perm, false)
}

// replace writes data to a temporary file beside path and renames it over path, with fsyncs of
// the file and the directory when durable.
func replace(path string, data []byte, perm fs.FileMode, durable bool) error {
	tmp := TempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	if durable {
		SyncDir(filepath.Dir(path))
	}
	return nil
}

// SyncDir fsyncs a directory so a rename in it is durable. Errors are ignored: some file systems
// refuse to fsync directories, and the rename has happened anyway.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Lock is an exclusive advisory lock (flock) on a file, held until Unlock.
type Lock struct {
	f *os.File
}

// TryLock takes an exclusive flock on path, creating the file if needed, without waiting. It
// returns ErrLocked when another open file description holds it.
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// lockPoll is how often WaitLock tries again while another process holds the lock.
const lockPoll = 20 * time.Millisecond

// WaitLock takes an exclusive flock on path like TryLock, waiting while another process holds
// it until ctx ends; then it returns an error that wraps both ErrLocked and ctx's error.
func WaitLock(ctx context.Context, path string) (*Lock, error) {
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		l, err := TryLock(path)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lock %s: %w", path, errors.Join(ErrLocked, ctx.Err()))
		case <-t.C:
		}
	}
}

// Unlock releases the lock and closes its file. It is safe to call more than once.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}

// renameChecked renames oldpath to newpath unless newpath exists.
func renameChecked(oldpath, newpath string) error {
	if _, err := os.Lstat(newpath); err == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
	}
	return os.Rename(oldpath, newpath)
}

// Holds reports whether path names the file whose lock l holds (not another file that has
// since taken its name).
func (l *Lock) Holds(path string) bool {
	if l == nil || l.f == nil {
		return false
	}
	held, err := l.f.Stat()
	if err != nil {
		return false
	}
	named, err := os.Lstat(path)
	return err == nil && os.SameFile(held, named)
}
