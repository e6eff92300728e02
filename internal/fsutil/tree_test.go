package fsutil

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// listing describes every entry under dir as find -printf '%P %m %s %T@ %l' would, mtimes
// to the second (a directory's size is left out: it depends on the file system).
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		link, _ := os.Readlink(p)
		size := fi.Size()
		if fi.IsDir() {
			size = 0
		}
		out = append(out, fmt.Sprintf("%s %o %d %d %s", rel, fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky), size, fi.ModTime().Unix(), link))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPackUnpack(t *testing.T) {
	src := t.TempDir()
	old := time.Date(2020, 3, 4, 5, 6, 7, 0, time.UTC)
	mk := func(rel, data string, mode fs.FileMode) {
		p := filepath.Join(src, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chtimes(p, old, old)
	}
	mk("a.txt", "hello\n", 0o640)
	mk("bin/run", "#!/bin/sh\n", 0o755)
	mk("deep/er/still/f", strings.Repeat("x", 100000), 0o600)
	os.Mkdir(filepath.Join(src, "empty"), 0o750)
	os.Symlink("../a.txt", filepath.Join(src, "bin/link"))
	os.Symlink("/etc/passwd", filepath.Join(src, "abs"))
	os.Chmod(filepath.Join(src, "deep"), 0o2755)
	for _, d := range []string{"empty", "bin", "deep/er/still", "deep/er", "deep", "."} {
		os.Chtimes(filepath.Join(src, d), old, old)
	}
	var b bytes.Buffer
	if err := Pack(&b, src); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "to", "tree")
	n, err := Unpack(bytes.NewReader(b.Bytes()), dest)
	if err != nil {
		t.Fatal(err)
	}
	got, want := listing(t, dest), listing(t, src)
	if !slices.Equal(got, want) || n != len(want) {
		t.Errorf("unpacked %d entries:\n%s\nwant %d:\n%s", n, strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	// Unpacking again replaces every file in place.
	os.WriteFile(filepath.Join(dest, "a.txt"), []byte("changed"), 0o600)
	if _, err := Unpack(bytes.NewReader(b.Bytes()), dest); err != nil {
		t.Fatal(err)
	}
	if got := listing(t, dest); !slices.Equal(got, want) {
		t.Errorf("unpacked again:\n%s", strings.Join(got, "\n"))
	}
}

// crafted returns a tar archive of the given entries, in order.
func crafted(t *testing.T, hs ...*tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return b.Bytes()
}

func TestUnpackRefusesEscapes(t *testing.T) {
	outside := t.TempDir()
	for name, arc := range map[string][]byte{
		"dotdot":   crafted(t, &tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"absolute": crafted(t, &tar.Header{Name: filepath.Join(outside, "evil"), Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"through a link": crafted(t,
			&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: outside},
			&tar.Header{Name: "l/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"a device":  crafted(t, &tar.Header{Name: "dev", Typeflag: tar.TypeChar, Mode: 0o644}),
		"hard link": crafted(t, &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}),
	} {
		dest := filepath.Join(t.TempDir(), "d")
		_, err := Unpack(bytes.NewReader(arc), dest)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if name == "dotdot" && !errors.Is(err, ErrEscape) {
			t.Errorf("%s: %v; want ErrEscape", name, err)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("%s: wrote outside the destination: %v", name, ents)
		}
		if ents, _ := os.ReadDir(filepath.Dir(dest)); len(ents) != 1 {
			t.Errorf("%s: %d entries beside the destination; want only it", name, len(ents))
		}
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add([]byte{})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "d", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "d/f", Typeflag: tar.TypeReg, Size: 2, Mode: 0o644})
	tw.Write([]byte("hi"))
	tw.WriteHeader(&tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "/"})
	tw.Close()
	f.Add(b.Bytes())
	syncTrees = false
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dest := filepath.Join(base, "d")
		Unpack(bytes.NewReader(data), dest)
		ents, _ := os.ReadDir(base)
		if len(ents) > 1 {
			t.Fatalf("unpack left %d entries beside the destination", len(ents))
		}
	})
}
