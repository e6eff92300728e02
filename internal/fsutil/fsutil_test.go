package fsutil

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	if string(b) != "two" || st.Mode().Perm() != 0o640 {
		t.Fatalf("got %q %v; want \"two\" 0640", b, st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("got %d entries; want only the file (no temporaries left)", len(ents))
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

func TestTryLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l1, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: got %v; want ErrLocked", err)
	}
	l1.Unlock()
	l1.Unlock()
	l2, err := TryLock(p)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
}

func TestWaitLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	held, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*lockPoll)
	defer cancel()
	if _, err := WaitLock(ctx, p); !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock held elsewhere: got %v; want ErrLocked and the deadline", err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := WaitLock(context.Background(), p)
		if err == nil {
			l.Unlock()
		}
		got <- err
	}()
	time.Sleep(2 * lockPoll) // the waiter is polling a held lock now
	held.Unlock()
	if err := <-got; err != nil {
		t.Fatalf("lock released while waiting: got %v; want it taken", err)
	}
}

func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for _, d := range []string{a, b} {
		if err := os.MkdirAll(filepath.Join(d, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := RenameNoReplace(a, b); !errors.Is(err, fs.ErrExist) {
		t.Errorf("renaming onto an existing directory: %v; want ErrExist", err)
	}
	if err := RenameNoReplace(a, c); err != nil {
		t.Errorf("renaming to a free name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c, "x")); err != nil {
		t.Errorf("after the rename: %v", err)
	}
}

func TestLockHolds(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if !l.Holds(p) {
		t.Errorf("Holds(%s) = false for the locked file", p)
	}
	if err := os.Rename(p, p+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if l.Holds(p) {
		t.Errorf("Holds(%s) = true for another file under the locked file's name", p)
	}
	if !l.Holds(p + ".old") {
		t.Errorf("Holds = false for the locked file under its new name")
	}
}

func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "mine")
	open := filepath.Join(dir, "open")
	link := filepath.Join(dir, "link")
	os.WriteFile(mine, nil, 0o600)
	os.WriteFile(open, nil, 0o600)
	os.Chmod(open, 0o666)
	os.Symlink(mine, link)
	if err := CheckPrivate(mine, "a file"); err != nil {
		t.Errorf("private file: %v", err)
	}
	for _, p := range []string{open, link} {
		var pe *PrivateError
		if err := CheckPrivate(p, "a file"); !errors.As(err, &pe) || !strings.Contains(err.Error(), p) {
			t.Errorf("CheckPrivate(%s) = %v; want a *PrivateError naming it", p, err)
		}
	}
	if err := CheckPrivate(filepath.Join(dir, "none"), "a file"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v; want fs.ErrNotExist", err)
	}
}
