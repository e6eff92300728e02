package client

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/shoal-sh/shoal/internal/fsutil"
)

// localName reports whether name is safe as one path element under a directory.
func localName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00") && filepath.IsLocal(name)
}

// Saver writes files arriving from hosts in chunks into DestDir/<host>/<base name
// of Src>. Everything goes through an os.Root on DestDir, so no host or file name
// (nor a symlink placed inside DestDir) makes it write outside DestDir. A host's
// file is written to a temporary name and renamed into place by End only when the
// transfer succeeded. Saver is safe for concurrent use.
type Saver struct {
	dir  string
	base string
	root *os.Root
	tree bool // each host's bytes are a tar archive of a tree, laid out at End

	mu    sync.Mutex // protects the following
	files map[string]*os.File
	errs  map[string]error
	n     map[string]int64
	made  map[string]bool // host directories this Saver created
}

// NewSaver creates destDir if needed and returns a Saver for src's base name; with tree, each
// host's bytes are a tar archive (fsutil.Pack) that End lays out at destDir/<host>/<base>.
func NewSaver(destDir, src string, tree bool) (*Saver, error) {
	base := path.Base(src)
	if src == "" || !localName(base) {
		return nil, fmt.Errorf("get: %q does not name a file", src)
	}
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	return &Saver{dir: destDir, base: base, root: root, tree: tree, files: map[string]*os.File{},
		errs: map[string]error{}, n: map[string]int64{}, made: map[string]bool{}}, nil
}

func (s *Saver) tmp(host string) string { return host + "/." + s.base + ".shoal-tmp" }

// Write appends data to host's file. After an error every later Write and the
// End of host return it.
func (s *Saver) Write(host string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.errs[host]; err != nil {
		return err
	}
	f := s.files[host]
	if f == nil {
		var err error
		if f, err = s.open(host); err != nil {
			s.errs[host] = err
			return err
		}
		s.files[host] = f
	}
	m, err := f.Write(data)
	s.n[host] += int64(m)
	if err != nil {
		err = fmt.Errorf("writing %s: %w", filepath.Join(s.dir, host, s.base), err)
		s.errs[host] = err
	}
	return err
}

func (s *Saver) open(host string) (*os.File, error) {
	if !localName(host) {
		return nil, fmt.Errorf("host name %q cannot be a directory name", host)
	}
	if _, err := s.root.Lstat(host); errors.Is(err, fs.ErrNotExist) {
		s.made[host] = true
	}
	if err := s.root.MkdirAll(host, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", host, err)
	}
	f, err := s.root.OpenFile(s.tmp(host), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Join(s.dir, host, s.base), err)
	}
	return f, nil
}

// End finishes host's file: when ok it gets mode (0: 0644) and its final name,
// which End returns with the bytes written; otherwise the partial file is removed.
func (s *Saver) End(host string, mode fs.FileMode, ok bool) (string, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err, n := s.files[host], s.errs[host], s.n[host]
	delete(s.files, host)
	s.errs[host] = errors.New("the file was already finished")
	if ok && err == nil && f == nil {
		// An empty file: nothing was written yet.
		f, err = s.open(host)
	}
	final := host + "/" + s.base
	if s.tree && ok && err == nil {
		err = s.unpackLocked(f, final)
	}
	if f != nil {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if s.tree && ok && err == nil {
		s.root.Remove(s.tmp(host))
		return filepath.Join(s.dir, final), n, nil
	}
	if !ok || err != nil {
		if f != nil {
			s.root.Remove(s.tmp(host))
			s.unmakeLocked(host)
		}
		return "", n, err
	}
	if mode == 0 {
		mode = 0o644
	}
	if err := s.root.Chmod(s.tmp(host), mode.Perm()); err != nil {
		s.root.Remove(s.tmp(host))
		return "", n, fmt.Errorf("setting mode of %s: %w", final, err)
	}
	if err := s.root.Rename(s.tmp(host), final); err != nil {
		s.root.Remove(s.tmp(host))
		return "", n, fmt.Errorf("renaming into %s: %w", final, err)
	}
	return filepath.Join(s.dir, final), n, nil
}

// unpackLocked lays out the tree archive spooled in f at final.
func (s *Saver) unpackLocked(f *os.File, final string) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := s.root.MkdirAll(final, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", final, err)
	}
	sub, err := s.root.OpenRoot(final)
	if err != nil {
		return err
	}
	defer sub.Close()
	if _, err := fsutil.UnpackIn(f, sub); err != nil {
		return fmt.Errorf("laying out %s: %w", filepath.Join(s.dir, final), err)
	}
	return nil
}

// unmakeLocked removes host's directory when this Saver made it and it is empty, so a
// failed get leaves nothing behind.
func (s *Saver) unmakeLocked(host string) {
	if s.made[host] {
		s.root.Remove(host)
		delete(s.made, host)
	}
}

// Close removes the partial files of hosts that did not end and closes the root.
func (s *Saver) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for host, f := range s.files {
		f.Close()
		s.root.Remove(s.tmp(host))
		s.unmakeLocked(host)
	}
	s.files = map[string]*os.File{}
	return s.root.Close()
}
