package agent

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecutableHashCache checks that the agent's hash of its own binary is stored in the
// state directory and that the cached value is the one a fresh hash gives.
func TestExecutableHashCache(t *testing.T) {
	dir := t.TempDir()
	plain, err := ExecutableHash("")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		h, err := ExecutableHash(dir)
		if err != nil || h != plain {
			t.Fatalf("ExecutableHash(dir) = %s, %v; want %s", h, err, plain)
		}
	}
	exe, _ := os.Executable()
	// The test binary was just linked: CachedHash caches only files older than a second, so
	// the cache file may or may not exist; when it does it is private and names the hash.
	if b, err := os.ReadFile(filepath.Join(dir, ".hash-"+filepath.Base(exe))); err == nil {
		if !strings.Contains(string(b), plain) {
			t.Errorf("cache file %q does not hold %s", b, plain)
		}
		st, _ := os.Stat(filepath.Join(dir, ".hash-"+filepath.Base(exe)))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("cache file mode %v", st.Mode().Perm())
		}
	}
}

// TestStartQuietAtInfo checks that a normal start logs nothing at info level: the daemon
// forwards an agent's stderr, one line per host.
func TestStartQuietAtInfo(t *testing.T) {
	var logBuf bytes.Buffer
	log := NewLogger(&logBuf, false)
	inR, inW := io.Pipe()
	inW.Close()
	err := Serve(context.Background(), inR, io.Discard, Options{StateDir: t.TempDir(), BinarySHA256: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if logBuf.Len() != 0 {
		t.Errorf("agent logged at info level on a normal start and stop:\n%s", logBuf.String())
	}
}
