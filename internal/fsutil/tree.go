package fsutil

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// A tree travels as a tar archive (PAX): directories, regular files and symbolic links, each
// with its permission bits and modification time, names relative to the tree's top ("." is the
// top itself). Pack writes one; Unpack lays one out under a directory.

// Pack writes the tree at src to w as a tar archive, without following symbolic links. Files of
// any other type (devices, sockets, pipes) are an error.
func Pack(w io.Writer, src string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(unixMode(fi.Mode())), ModTime: fi.ModTime(), Format: tar.FormatPAX}
		switch {
		case fi.Mode().IsDir():
			h.Typeflag = tar.TypeDir
		case fi.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: a %v is neither a file, a directory nor a symbolic link", p, fi.Mode().Type())
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("packing %s: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if n, err := io.Copy(tw, io.LimitReader(f, h.Size)); err != nil || n != h.Size {
			return fmt.Errorf("packing %s: %d of %d bytes: %v (did it change meanwhile?)", p, n, h.Size, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// unixMode returns m's permission bits with setuid, setgid and sticky as chmod(2) takes them.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// fileMode is unixMode the other way round.
func fileMode(u int64) fs.FileMode {
	m := fs.FileMode(u) & fs.ModePerm
	if u&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if u&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if u&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// syncTrees makes Unpack flush the file system at its end; the fuzz test turns it off.
var syncTrees = true

// ErrEscape is the error of a tree entry whose name would leave the directory it unpacks into.
var ErrEscape = errors.New("the name leaves the destination")

// Unpack lays out the tar archive read from r under dest (created when missing), as Pack wrote
// it: each file and symbolic link is made under a temporary name beside its place and renamed
// over it, with its mode and modification time; directories get theirs once everything in them
// is in place. All access goes through an os.Root on dest, so no entry, however named and
// whatever symbolic links the tree holds, can touch anything outside dest; a name that would
// (absolute, or with "..") is refused with ErrEscape. Unpack stops at the first error, leaving
// the entries before it in place. It returns how many entries it laid out.
func Unpack(r io.Reader, dest string) (int, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	return UnpackIn(r, root)
}

// UnpackIn is Unpack into the directory of root.
func UnpackIn(r io.Reader, root *os.Root) (int, error) {
	type dirMeta struct {
		name  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMeta
	n := 0
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("reading the tree: %w", err)
		}
		name := path.Clean(h.Name)
		if name != "." && !filepath.IsLocal(name) {
			return n, fmt.Errorf("%q: %w", h.Name, ErrEscape)
		}
		mode := fileMode(h.Mode)
		switch h.Typeflag {
		case tar.TypeDir:
			if name != "." {
				if err := root.MkdirAll(name, 0o700); err != nil {
					return n, fmt.Errorf("creating %s: %w", name, err)
				}
			}
			dirs = append(dirs, dirMeta{name, mode, h.ModTime})
		case tar.TypeReg, tar.TypeSymlink:
			if name == "." {
				return n, fmt.Errorf("%q: the top of a tree must be a directory", h.Name)
			}
			if err := unpackEntry(root, name, h, tr); err != nil {
				return n, err
			}
		default:
			return n, fmt.Errorf("%s: entries of type %q are not taken", name, h.Typeflag)
		}
		n++
	}
	// Deepest first, so setting a directory's time is not undone by work inside it.
	for _, d := range slices.Backward(dirs) {
		if err := root.Chmod(d.name, d.mode); err != nil {
			return n, fmt.Errorf("setting the mode of %s: %w", d.name, err)
		}
		if err := root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
			return n, fmt.Errorf("setting the time of %s: %w", d.name, err)
		}
	}
	// One flush of the whole file system instead of an fsync per file.
	if f, err := root.Open("."); err == nil && syncTrees {
		syncFS(f)
		f.Close()
	}
	return n, nil
}

// unpackEntry makes the file or symbolic link h at name under root, atomically.
func unpackEntry(root *os.Root, name string, h *tar.Header, data io.Reader) error {
	dir, base := path.Split(name)
	if dir != "" {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := dir + "." + base + ".shoal-" + hex.EncodeToString(rnd[:])
	fail := func(what string, err error) error {
		root.Remove(tmp)
		return fmt.Errorf("%s %s: %w", what, name, err)
	}
	if h.Typeflag == tar.TypeSymlink {
		if err := root.Symlink(h.Linkname, tmp); err != nil {
			return fail("linking", err)
		}
		// Chtimes follows links: set the link's own time through its directory.
		d, err := root.Open(path.Clean(dir + "."))
		if err != nil {
			return fail("opening the directory of", err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
		err = unix.UtimesNanoAt(int(d.Fd()), path.Base(tmp), ts, unix.AT_SYMLINK_NOFOLLOW)
		d.Close()
		if err != nil {
			return fail("setting the time of", err)
		}
	} else {
		f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fail("creating", err)
		}
		_, err = io.Copy(f, data)
		if err == nil {
			err = f.Chmod(fileMode(h.Mode))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail("writing", err)
		}
		if err := root.Chtimes(tmp, h.ModTime, h.ModTime); err != nil {
			return fail("setting the time of", err)
		}
	}
	if err := root.Rename(tmp, name); err != nil {
		return fail("renaming into", err)
	}
	return nil
}
