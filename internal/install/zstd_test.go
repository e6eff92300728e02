package install

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestMarkerTools(t *testing.T) {
	for in, want := range map[string]Marker{
		"SHOAL-MISSING Linux x86_64\tgzip zstd\n": {Uname: "Linux x86_64", Gzip: true, Zstd: true},
		"SHOAL-MISSING Linux x86_64\t zstd\n":     {Uname: "Linux x86_64", Zstd: true},
		"SHOAL-MISSING Linux x86_64\tzstdx\n":     {Uname: "Linux x86_64"},
	} {
		m, err := ReadMarker(strings.NewReader(in))
		if err != nil || m != want {
			t.Errorf("ReadMarker(%q) = %+v, %v; want %+v", in, m, err, want)
		}
	}
}

// TestBootstrapReportsZstd checks that the bootstrap says whether zstd is on the PATH.
func TestBootstrapReportsZstd(t *testing.T) {
	for _, tool := range []string{"zstd", "uname"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here", tool)
		}
	}
	bin := fakeAgent(t, "v1")
	m, _, err := sh(t, t.TempDir(), Bootstrap("", []Binary{bin}, nil), nil)
	if err != nil || m.Exec || !m.Zstd {
		t.Fatalf("bootstrap with zstd on PATH: %+v %v; want missing with zstd", m, err)
	}
	pathDir := t.TempDir()
	u, _ := exec.LookPath("uname")
	os.Symlink(u, filepath.Join(pathDir, "uname"))
	cmd := exec.Command("/bin/sh", "-c", Bootstrap("", []Binary{bin}, nil))
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + pathDir}
	out, _ := cmd.Output()
	if m, err := ReadMarker(bytes.NewReader(out)); err != nil || m.Zstd || m.Gzip || m.Uname == "" {
		t.Errorf("bootstrap without zstd or gzip: %+v %v; want missing with neither", m, err)
	}
}

// TestUploadZstd installs a binary sent through the host's zstd, and checks that a short or
// corrupt stream fails and leaves nothing behind.
func TestUploadZstd(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("no zstd here")
	}
	home := t.TempDir()
	bin := fakeAgent(t, "v1")
	src := &Source{HashCacheDir: "-"}
	z, err := src.Zstded(bin)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	zr.Close()
	if want, _ := os.ReadFile(bin.Path); !bytes.Equal(raw, want) {
		t.Fatal("Zstded does not decompress to the binary")
	}
	m, rest, err := sh(t, home, UploadZstd("", bin, int64(len(z)), []string{"x"}),
		io.MultiReader(bytes.NewReader(z), strings.NewReader("after\n")))
	want := filepath.Join(home, ".cache", "shoal", bin.Name())
	if err != nil || !m.Exec || m.AgentPath != want {
		t.Fatalf("zstd upload: %+v %v; want exec of %s", m, err, want)
	}
	if wantOut := "ARGS agent --state-dir " + filepath.Dir(want) + " x\nafter\n"; rest != wantOut {
		t.Errorf("agent output %q; want %q", rest, wantOut)
	}
	if h, _, _ := HashFile(want); h != bin.Hash {
		t.Errorf("installed hash %s; want %s", h, bin.Hash)
	}

	bin2 := fakeAgent(t, "v2")
	z2, err := src.Zstded(bin2)
	if err != nil {
		t.Fatal(err)
	}
	badUploads(t, home, UploadZstd("", bin2, int64(len(z2)), nil), bin2, z2)
}

// TestZstdedDiskCache checks that the compressed binary is kept in HashCacheDir and reused by
// the next Source only when it decompresses to the binary.
func TestZstdedDiskCache(t *testing.T) {
	dir := t.TempDir()
	bin := fakeAgent(t, "v1")
	z, err := (&Source{HashCacheDir: dir}).Zstded(bin)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "upload", "agent-"+bin.Hash+".zst")
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("compressed binary not cached 0600: %v", err)
	}
	// Another valid stream of the same binary (a lower level) is reused as it is.
	var other bytes.Buffer
	zw, _ := zstd.NewWriter(&other, zstd.WithEncoderLevel(zstd.SpeedFastest))
	raw, _ := os.ReadFile(bin.Path)
	zw.Write(raw)
	zw.Close()
	os.WriteFile(cache, other.Bytes(), 0o600)
	if got, _ := (&Source{HashCacheDir: dir}).Zstded(bin); !bytes.Equal(got, other.Bytes()) {
		t.Errorf("cached compressed binary not reused")
	}
	// One that does not decompress to the binary is replaced.
	var wrong bytes.Buffer
	zw, _ = zstd.NewWriter(&wrong)
	zw.Write(append(raw, '!'))
	zw.Close()
	for name, bad := range map[string][]byte{"truncated": z[:len(z)-1], "garbage": []byte("not zstd"), "other content": wrong.Bytes()} {
		os.WriteFile(cache, bad, 0o600)
		got, err := (&Source{HashCacheDir: dir}).Zstded(bin)
		if err != nil || !bytes.Equal(got, z) {
			t.Errorf("%s cache: got %d bytes, %v; want a fresh compression", name, len(got), err)
		}
		if b, _ := os.ReadFile(cache); !bytes.Equal(b, z) {
			t.Errorf("%s cache not replaced", name)
		}
	}
}
