package fsutil

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestCachedHash(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	cache := filepath.Join(dir, "bin.sha256")
	data := []byte("version one")
	if err := os.WriteFile(bin, data, 0o700); err != nil {
		t.Fatal(err)
	}
	// A file changed just now is hashed but not cached.
	if h, _, err := CachedHash(bin, cache); err != nil || h != sum(data) {
		t.Fatalf("fresh file: %s, %v", h, err)
	}
	if _, err := os.Stat(cache); err == nil {
		t.Fatal("cache written for a file changed just now")
	}
	old := racyWindow
	racyWindow = 0
	t.Cleanup(func() { racyWindow = old })
	h, n, err := CachedHash(bin, cache)
	if err != nil || h != sum(data) || n != int64(len(data)) {
		t.Fatalf("first hash = %s, %d, %v; want %s, %d", h, n, err, sum(data), len(data))
	}
	st, err := os.Stat(cache)
	if err != nil {
		t.Fatalf("cache not written: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("cache mode = %v, want 0600", st.Mode().Perm())
	}

	// A cache entry with the file's identity is believed without reading the file: prove it by
	// planting a different hash under the same identity.
	b, _ := os.ReadFile(cache)
	planted := strings.Repeat("ab", 32)
	if err := os.WriteFile(cache, []byte(strings.Replace(string(b), sum(data), planted, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := CachedHash(bin, cache); h != planted {
		t.Fatalf("matching cache not used: got %s", h)
	}

	// Rewriting the file in place with the same size and the old mtime changes its ctime: the
	// cache is not used and is rewritten.
	fi, _ := os.Stat(bin)
	before := ctime(t, bin)
	data2 := []byte("version two")
	// The kernel's timestamps advance in ticks: rewrite until the change time moves (bounded).
	for i := 0; i < 200; i++ {
		if err := os.WriteFile(bin, data2, 0o700); err != nil {
			t.Fatal(err)
		}
		if ctime(t, bin) != before {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.Chtimes(bin, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := CachedHash(bin, cache); h != sum(data2) {
		t.Fatalf("after tampering: got %s, want %s", h, sum(data2))
	}
	if h, _, _ := CachedHash(bin, cache); h != sum(data2) {
		t.Fatalf("rewritten cache: got %s, want %s", h, sum(data2))
	}

	// Garbage in the cache is ignored.
	for _, junk := range []string{"", "x", hashCacheVersion + " 1 2 3 4 5 zz\n", strings.Repeat("a", 1000)} {
		os.WriteFile(cache, []byte(junk), 0o600)
		if h, _, _ := CachedHash(bin, cache); h != sum(data2) {
			t.Errorf("cache %q: got %s", junk, h)
		}
	}

	// No cache path: just hash. A cache in a missing directory: hash, no error.
	if h, _, err := CachedHash(bin, ""); err != nil || h != sum(data2) {
		t.Errorf("no cache: %s, %v", h, err)
	}
	if h, _, err := CachedHash(bin, filepath.Join(dir, "bin", "c")); err != nil || h != sum(data2) {
		t.Errorf("unwritable cache: %s, %v", h, err)
	}
	sub := filepath.Join(dir, "new", "c")
	if h, _, err := CachedHash(bin, sub); err != nil || h != sum(data2) {
		t.Errorf("cache in a new directory: %s, %v", h, err)
	}
	if st, err := os.Stat(filepath.Dir(sub)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("cache directory not created 0700: %v", err)
	}
	if _, _, err := CachedHash(filepath.Join(dir, "missing"), cache); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func ctime(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ctim.Nano()
}

func BenchmarkCachedHash(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "bin")
	os.WriteFile(bin, make([]byte, 15<<20), 0o700)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := CachedHash(bin, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		old := racyWindow
		racyWindow = 0
		defer func() { racyWindow = old }()
		cache := filepath.Join(dir, "c")
		for b.Loop() {
			if _, _, err := CachedHash(bin, cache); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRecordHash(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "agent")
	cache := filepath.Join(dir, "sub", ".hash-agent")
	data := []byte("just uploaded")
	if err := os.WriteFile(bin, data, 0o700); err != nil {
		t.Fatal(err)
	}
	// Recorded right after the write (a recent change time), and then believed without a read.
	if err := RecordHash(bin, cache, sum(data)); err != nil {
		t.Fatal(err)
	}
	if h, _, err := CachedHash(bin, cache); err != nil || h != sum(data) {
		t.Fatalf("after RecordHash: %s, %v; want %s", h, err, sum(data))
	}
	// A change to the file makes the record stale: the file is hashed again.
	before := ctime(t, bin)
	for i := 0; i < 200 && ctime(t, bin) == before; i++ {
		if err := os.WriteFile(bin, []byte("replaced by someone"), 0o700); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h, _, _ := CachedHash(bin, cache); h != sum([]byte("replaced by someone")) {
		t.Fatalf("stale record believed: %s", h)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32)} {
		if err := RecordHash(bin, cache, bad); err == nil {
			t.Errorf("RecordHash(%q) accepted a bad hash", bad)
		}
	}
	if err := RecordHash(filepath.Join(dir, "missing"), cache, sum(data)); err == nil {
		t.Error("RecordHash of a missing file: no error")
	}
}
