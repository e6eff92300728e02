package fsutil

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// PrivateError says a file or directory shoal must trust is not this user's alone: another
// user owns it, or group or others may write it.
type PrivateError struct {
	Path  string
	Owner int         // the owner's uid
	Mode  fs.FileMode // its mode
	What  string      // what it is to shoal, e.g. "the shoal daemon's socket directory"
}

func (e *PrivateError) Error() string {
	me := os.Getuid()
	if e.Mode&fs.ModeSymlink != 0 {
		return fmt.Sprintf("refusing %s %s: it is a symbolic link", e.What, e.Path)
	}
	if e.Owner != me {
		return fmt.Sprintf("refusing %s %s: it belongs to uid %d, not to you (uid %d); remove it or set XDG_RUNTIME_DIR "+
			"and XDG_STATE_HOME to directories of your own", e.What, e.Path, e.Owner, me)
	}
	return fmt.Sprintf("refusing %s %s: its mode %v lets group or others write it; chmod go-w it", e.What, e.Path, e.Mode)
}

// CheckPrivate returns a *PrivateError when path (a symlink is not followed) belongs to
// another user than this process's or may be written by group or others. what names path
// for the message. A missing path is fs.ErrNotExist.
func CheckPrivate(path, what string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("checking %s: %w", what, err)
	}
	return checkPrivate(path, what, st)
}

// CheckPrivateFile is CheckPrivate for an open file, named path in the message.
func CheckPrivateFile(f *os.File, path, what string) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("checking %s %s: %w", what, path, err)
	}
	return checkPrivate(path, what, st)
}

func checkPrivate(path, what string, st fs.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(sys.Uid) != os.Getuid() || st.Mode()&0o022 != 0 || st.Mode()&fs.ModeSymlink != 0 {
		return &PrivateError{Path: path, Owner: int(sys.Uid), Mode: st.Mode(), What: what}
	}
	return nil
}

// CheckPrivate returns a *PrivateError when the file l locks belongs to another user or
// may be written by group or others; path names it in the message.
func (l *Lock) CheckPrivate(path string) error {
	return CheckPrivateFile(l.f, path, "the lock file")
}
