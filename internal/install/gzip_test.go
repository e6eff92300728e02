package install

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMarkerGzip(t *testing.T) {
	for in, want := range map[string]Marker{
		"SHOAL-MISSING Linux x86_64\tgzip\n": {Uname: "Linux x86_64", Gzip: true},
		"SHOAL-MISSING Linux x86_64\t\n":     {Uname: "Linux x86_64"},
		"SHOAL-MISSING Linux x86_64\n":       {Uname: "Linux x86_64"},
	} {
		m, err := ReadMarker(strings.NewReader(in))
		if err != nil || m != want {
			t.Errorf("ReadMarker(%q) = %+v, %v; want %+v", in, m, err, want)
		}
	}
}

// TestBootstrapReportsGzip checks that the bootstrap says whether gzip is on the PATH.
func TestBootstrapReportsGzip(t *testing.T) {
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("no gzip here")
	}
	home := t.TempDir()
	bin := fakeAgent(t, "v1")
	m, _, err := sh(t, home, Bootstrap("", []Binary{bin}, nil), nil)
	if err != nil || m.Exec || !m.Gzip {
		t.Fatalf("bootstrap with gzip on PATH: %+v %v; want missing with gzip", m, err)
	}
	// No gzip on the PATH: an empty directory only (uname is a shell builtin nowhere, so give
	// it a PATH with uname but not gzip).
	pathDir := t.TempDir()
	u, err := exec.LookPath("uname")
	if err != nil {
		t.Skip("no uname")
	}
	os.Symlink(u, filepath.Join(pathDir, "uname"))
	cmd := exec.Command("/bin/sh", "-c", Bootstrap("", []Binary{bin}, nil))
	cmd.Env = []string{"HOME=" + home, "PATH=" + pathDir}
	out, _ := cmd.Output()
	if m, err := ReadMarker(bytes.NewReader(out)); err != nil || m.Exec || m.Gzip || m.Uname == "" {
		t.Errorf("bootstrap without gzip: %+v %v; want missing without gzip", m, err)
	}
}

func TestUploadGzip(t *testing.T) {
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("no gzip here")
	}
	home := t.TempDir()
	src := &Source{Self: fakeAgent(t, "v1").Path, HashCacheDir: "-"}
	bin, err := src.For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := src.Gzipped(bin)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	if want, _ := os.ReadFile(bin.Path); !bytes.Equal(raw, want) {
		t.Fatal("Gzipped does not decompress to the binary")
	}
	m, rest, err := sh(t, home, UploadGzip("", bin, int64(len(gz)), []string{"x"}),
		io.MultiReader(bytes.NewReader(gz), strings.NewReader("after\n")))
	want := filepath.Join(home, ".cache", "shoal", bin.Name())
	if err != nil || !m.Exec || m.AgentPath != want {
		t.Fatalf("gzip upload: %+v %v; want exec of %s", m, err, want)
	}
	if wantOut := "ARGS agent --state-dir " + filepath.Dir(want) + " x\nafter\n"; rest != wantOut {
		t.Errorf("agent output %q; want %q", rest, wantOut)
	}
	if h, _, _ := HashFile(want); h != bin.Hash {
		t.Errorf("installed hash %s; want %s", h, bin.Hash)
	}
	st, _ := os.Stat(want)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("installed mode %v; want 0700", st.Mode().Perm())
	}

	// A corrupt or short stream fails, and leaves no temp file or agent behind.
	bin2 := fakeAgent(t, "v2")
	gz2, err := (&Source{Self: bin2.Path, HashCacheDir: "-"}).Gzipped(bin2)
	if err != nil {
		t.Fatal(err)
	}
	badUploads(t, home, UploadGzip("", bin2, int64(len(gz2)), nil), bin2, gz2)
}

// badUploads checks that the upload command cmd fails on a short or corrupt compressed stream
// of bin (whole: the good one) and leaves no temp file or agent behind.
func badUploads(t *testing.T, home, cmd string, bin Binary, whole []byte) {
	t.Helper()
	for name, body := range map[string][]byte{
		"short":   whole[:len(whole)/2],
		"corrupt": append(append([]byte{}, whole[:10]...), bytes.Repeat([]byte{0x5a}, len(whole)-10)...),
	} {
		m, _, err := sh(t, home, cmd, bytes.NewReader(body))
		if err != nil || m.Exec || m.Fail == "" {
			t.Errorf("%s upload: %+v %v; want a failure marker", name, m, err)
		}
		dir := filepath.Join(home, ".cache", "shoal")
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".agent-") || e.Name() == bin.Name() {
				t.Errorf("%s upload left %s", name, e.Name())
			}
		}
	}
}

// TestGzippedOnce checks that concurrent callers share one compression of a binary.
func TestGzippedOnce(t *testing.T) {
	bin := fakeAgent(t, "v1")
	src := &Source{HashCacheDir: "-"}
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() {
			b, err := src.Gzipped(bin)
			if err != nil {
				t.Error(err)
			}
			got[i] = b
		})
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) == 0 || &got[i][0] != &got[0][0] {
			t.Fatalf("caller %d got its own compression", i)
		}
	}
}

// TestGzippedChangedBinary checks that a binary changed since it was hashed is not sent.
func TestGzippedChangedBinary(t *testing.T) {
	bin := fakeAgent(t, "v1")
	if err := os.WriteFile(bin.Path, []byte("#!/bin/sh\n# something else\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Source{HashCacheDir: "-"}).Gzipped(bin); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("Gzipped of a changed binary: %v; want an error", err)
	}
}

// TestSourceHashCache checks that a Source keeps its binary's hash in HashCacheDir, and that
// another Source (another process) reuses it. The binary must be older than a second for
// fsutil.CachedHash to store it, so the test uses /bin/sh.
func TestSourceHashCache(t *testing.T) {
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	dir := filepath.Join(t.TempDir(), "cache")
	b1, err := (&Source{Self: sh, HashCacheDir: dir}).For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := HashFile(sh); h != b1.Hash {
		t.Fatalf("hash %s; want %s", b1.Hash, h)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Skipf("%s is too new to be cached (%d cache files)", sh, len(ents))
	}
	cache := filepath.Join(dir, ents[0].Name())
	b, _ := os.ReadFile(cache)
	planted := strings.Repeat("cd", 32)
	os.WriteFile(cache, []byte(strings.Replace(string(b), b1.Hash, planted, 1)), 0o600)
	b2, err := (&Source{Self: sh, HashCacheDir: dir}).For(runtime.GOOS, runtime.GOARCH)
	if err != nil || b2.Hash != planted {
		t.Errorf("second Source: %s, %v; want the cached %s", b2.Hash, err, planted)
	}
	if b3, _ := (&Source{Self: sh, HashCacheDir: "-"}).For(runtime.GOOS, runtime.GOARCH); b3.Hash != b1.Hash {
		t.Errorf("HashCacheDir \"-\" used a cache")
	}
}

func BenchmarkGzip(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	bin, err := (&Source{Self: exe, HashCacheDir: "-"}).For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		b.Fatal(err)
	}
	var n int
	for b.Loop() {
		gz, err := gzipFile(bin)
		if err != nil {
			b.Fatal(err)
		}
		n = len(gz)
	}
	b.ReportMetric(float64(bin.Size), "raw-bytes")
	b.ReportMetric(float64(n), "gz-bytes")
}

// BenchmarkSourceFor measures finding and hashing the running binary in a new Source, as each
// `shoal run --no-daemon` does: with the hash cache on disk and without.
func BenchmarkSourceFor(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, dir string }{{"nocache", "-"}, {"cache", b.TempDir()}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := (&Source{Self: exe, HashCacheDir: c.dir}).For(runtime.GOOS, runtime.GOARCH); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestGzippedDiskCache checks that the compressed binary is kept in HashCacheDir and that a
// new Source (the next process) reuses it when its trailer matches the binary, and not
// otherwise.
func TestGzippedDiskCache(t *testing.T) {
	dir := t.TempDir()
	bin := fakeAgent(t, "v1")
	gz, err := (&Source{HashCacheDir: dir}).Gzipped(bin)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "upload", "agent-"+bin.Hash+".gz")
	st, err := os.Stat(cache)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("compressed binary not cached 0600: %v", err)
	}
	// Mark the cached copy (the header's OS byte) to see whether it is used.
	marked := append([]byte{}, gz...)
	marked[9] ^= 0xff
	os.WriteFile(cache, marked, 0o600)
	if got, _ := (&Source{HashCacheDir: dir}).Gzipped(bin); !bytes.Equal(got, marked) {
		t.Errorf("cached compressed binary not reused")
	}
	// A cache that does not end with the binary's CRC and size is not used, and is replaced.
	for name, bad := range map[string][]byte{"truncated": gz[:len(gz)-1], "garbage": []byte("not gzip at all, nope")} {
		os.WriteFile(cache, bad, 0o600)
		got, err := (&Source{HashCacheDir: dir}).Gzipped(bin)
		if err != nil || !bytes.Equal(got, gz) {
			t.Errorf("%s cache: got %d bytes, %v; want a fresh compression", name, len(got), err)
		}
		if b, _ := os.ReadFile(cache); !bytes.Equal(b, gz) {
			t.Errorf("%s cache not replaced", name)
		}
	}
}

func TestPruneGzCache(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	var names []string
	for i := range 7 {
		n := filepath.Join(dir, fmt.Sprintf("agent-%d.gz", i))
		os.WriteFile(n, nil, 0o600)
		mt := now.Add(-time.Duration(i) * time.Hour) // agent-0 is the newest
		os.Chtimes(n, mt, mt)
		names = append(names, n)
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, nil, 0o600)
	keep := names[6] // the oldest, but just written by this process
	pruneCache(dir, keep, ".gz", packedKeep)
	for i, n := range names {
		_, err := os.Stat(n)
		want := i < packedKeep-1 || n == keep
		if (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(n), err == nil, want)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("pruning removed a file that is not a compressed binary")
	}
}
