package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// writeExe writes a stand-in executable and a stand-in agent-only build, and appends the agent.
func writeExe(t *testing.T, dir string, agent []byte) (exe string) {
	t.Helper()
	exe = filepath.Join(dir, "shoal")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho I am all of shoal\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ap := filepath.Join(dir, "shoal-agent")
	if err := os.WriteFile(ap, agent, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := AppendAgent(exe, ap); err != nil {
		t.Fatalf("AppendAgent: %v", err)
	}
	return exe
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestEmbeddedAgent checks that a Source offers the agent an executable carries, unpacked into
// its cache directory and hashed as the agent, not as the executable.
func TestEmbeddedAgent(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	agent := []byte("#!/bin/sh\necho I am the agent\n")
	exe := writeExe(t, dir, agent)

	e, ok, err := ReadEmbedded(exe)
	if err != nil || !ok || e.Size != int64(len(agent)) || e.Hash != hexSum(agent) {
		t.Fatalf("ReadEmbedded = %+v %v %v; want the %d-byte agent", e, ok, err, len(agent))
	}
	src := &Source{Self: exe, HashCacheDir: cache}
	b, err := src.For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash != hexSum(agent) || b.Size != int64(len(agent)) || !strings.HasPrefix(b.Path, filepath.Join(cache, "agents")+"/") {
		t.Fatalf("For = %+v; want the agent unpacked under %s", b, cache)
	}
	if got, _ := os.ReadFile(b.Path); !bytes.Equal(got, agent) {
		t.Fatalf("unpacked agent holds %q; want %q", got, agent)
	}
	if st, _ := os.Stat(b.Path); st.Mode().Perm() != 0o755 {
		t.Errorf("unpacked agent has mode %v; want 0755", st.Mode().Perm())
	}
	// The executable still runs as itself.
	if out, err := runOutput(exe); err != nil || out != "I am all of shoal\n" {
		t.Errorf("running the executable with an agent appended: %q %v", out, err)
	}

	// Removed from the cache (a prune by another version): the same Source unpacks it again.
	os.Remove(b.Path)
	b2, err := src.For(runtime.GOOS, runtime.GOARCH)
	if err != nil || b2 != b {
		t.Fatalf("For after the unpacked agent was removed = %+v %v; want %+v", b2, err, b)
	}
	if _, err := os.Stat(b.Path); err != nil {
		t.Fatalf("not unpacked again: %v", err)
	}
	// A torn or tampered unpacked file is replaced by a new Source.
	os.WriteFile(b.Path, []byte("garbage"), 0o755)
	b3, err := (&Source{Self: exe, HashCacheDir: cache}).For(runtime.GOOS, runtime.GOARCH)
	if got, _ := os.ReadFile(b.Path); err != nil || b3 != b || !bytes.Equal(got, agent) {
		t.Fatalf("For over a damaged unpacked agent = %+v %v, file %q; want it rewritten", b3, err, got)
	}

	// Nowhere to unpack: the whole executable is the agent.
	whole, err := (&Source{Self: exe, HashCacheDir: "-"}).For(runtime.GOOS, runtime.GOARCH)
	if err != nil || whole.Path != exe {
		t.Fatalf("For without a cache = %+v %v; want the executable itself", whole, err)
	}
}

// runOutput runs path and returns its output.
func runOutput(path string) (string, error) {
	out, err := exec.Command(path).Output()
	return string(out), err
}

// TestEmbeddedDamaged checks that damaged agent bytes are an error that says so, not an upload.
func TestEmbeddedDamaged(t *testing.T) {
	dir := t.TempDir()
	agent := []byte("the agent, soon damaged")
	exe := writeExe(t, dir, agent)
	data, _ := os.ReadFile(exe)
	e, _, _ := ReadEmbedded(exe)
	data[e.Offset+3] ^= 0xff
	os.WriteFile(exe, data, 0o755)
	_, err := (&Source{Self: exe, HashCacheDir: t.TempDir()}).For(runtime.GOOS, runtime.GOARCH)
	if err == nil || !strings.Contains(err.Error(), "do not match the hash") {
		t.Fatalf("For with damaged agent bytes: %v; want a hash mismatch error", err)
	}
}

// TestAppendAgentRefuses checks the mistakes AppendAgent catches.
func TestAppendAgentRefuses(t *testing.T) {
	dir := t.TempDir()
	exe := writeExe(t, dir, []byte("agent"))
	if err := AppendAgent(exe, filepath.Join(dir, "shoal-agent")); err == nil || !strings.Contains(err.Error(), "already carries") {
		t.Errorf("appending twice: %v; want an error", err)
	}
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("x"), 0o755)
	if err := AppendAgent(other, exe); err == nil || !strings.Contains(err.Error(), "not the agent-only build") {
		t.Errorf("appending a full shoal: %v; want an error", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o755)
	if err := AppendAgent(other, empty); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("appending an empty agent: %v; want an error", err)
	}
}

// TestReadEmbeddedBadTrailer checks that a trailer claiming more bytes than the file has is an
// error naming the file, and that files without a trailer have no agent.
func TestReadEmbeddedBadTrailer(t *testing.T) {
	dir := t.TempDir()
	exe := writeExe(t, dir, []byte("agent"))
	data, _ := os.ReadFile(exe)
	tr := data[len(data)-trailerSize:]
	tr[0] = 0x7f // a huge size
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, tr, 0o755)
	if _, _, err := ReadEmbedded(bad); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("ReadEmbedded with an impossible size: %v; want an error", err)
	}
	for _, content := range []string{"", "short", strings.Repeat("x", 200)} {
		p := filepath.Join(dir, "plain")
		os.WriteFile(p, []byte(content), 0o755)
		if _, ok, err := ReadEmbedded(p); ok || err != nil {
			t.Errorf("ReadEmbedded(%d plain bytes) = %v %v; want no agent", len(content), ok, err)
		}
	}
}

// TestUnpackedPrune checks that the cache keeps a bounded number of unpacked agents.
func TestUnpackedPrune(t *testing.T) {
	cache := t.TempDir()
	for i := range unpackedKeep + 3 {
		dir := t.TempDir()
		exe := writeExe(t, dir, []byte("agent version "+string(rune('a'+i))))
		if _, err := (&Source{Self: exe, HashCacheDir: cache}).For(runtime.GOOS, runtime.GOARCH); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(cache, "agents"))
	var n int
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "agent-") {
			n++
		}
	}
	if n != unpackedKeep {
		t.Errorf("%d unpacked agents kept; want %d", n, unpackedKeep)
	}
}

// FuzzReadEmbedded checks that any file tail either has no agent, an error, or an agent that
// fits inside the file.
func FuzzReadEmbedded(f *testing.F) {
	f.Add([]byte("plain"))
	var good bytes.Buffer
	good.WriteString("exe")
	good.WriteString("agent")
	good.Write([]byte{0, 0, 0, 0, 0, 0, 0, 5})
	good.Write(make([]byte, sha256.Size))
	good.WriteString(trailerMagic)
	f.Add(good.Bytes())
	f.Add(good.Bytes()[3:])
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "exe")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		e, ok, err := ReadEmbedded(p)
		if err != nil || !ok {
			return
		}
		if e.Offset < 0 || e.Size <= 0 || e.Offset+e.Size+int64(trailerSize) != int64(len(data)) || len(e.Hash) != 64 {
			t.Fatalf("ReadEmbedded(%d bytes) = %+v", len(data), e)
		}
	})
}
