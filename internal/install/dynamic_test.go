package install

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// elfFile writes a minimal 64-bit little-endian ELF executable: a header and, when interp, one
// PT_INTERP program header as a dynamically linked executable has.
func elfFile(t testing.TB, interp bool) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shoal")
	if err := os.WriteFile(p, elfBytes(interp), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func elfBytes(interp bool) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	b.Write(make([]byte, 8))
	var phnum uint16
	if interp {
		phnum = 1
	}
	binary.Write(&b, le, struct {
		Type, Machine                                        uint16
		Version                                              uint32
		Entry, Phoff, Shoff                                  uint64
		Flags                                                uint32
		Ehsize, Phentsize, Phnum, Shentsize, Shnum, Shstrndx uint16
	}{Type: 2, Machine: 62, Version: 1, Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: phnum})
	if interp {
		binary.Write(&b, le, struct {
			Type, Flags                             uint32
			Off, Vaddr, Paddr, Filesz, Memsz, Align uint64
		}{Type: 3, Flags: 4, Off: 120, Filesz: 28, Memsz: 28, Align: 1})
		b.WriteString("/lib64/ld-linux-x86-64.so.2\x00")
	}
	return b.Bytes()
}

func TestIsDynamic(t *testing.T) {
	if IsDynamic(elfFile(t, false)) {
		t.Error("a static ELF file is dynamic")
	}
	if !IsDynamic(elfFile(t, true)) {
		t.Error("an ELF file with PT_INTERP is not dynamic")
	}
	if IsDynamic(fakeAgent(t, "v1").Path) || IsDynamic(filepath.Join(t.TempDir(), "gone")) {
		t.Error("a script or a missing file is dynamic")
	}
}

// TestForDynamicSelf checks that a dynamically linked running executable without an agent is
// never offered: the error says how to get a static one, or the platform directory's is used.
func TestForDynamicSelf(t *testing.T) {
	dyn := elfFile(t, true)
	s := &Source{HashCacheDir: "-", executable: func() (string, error) { return dyn, nil }}
	_, err := s.For(runtime.GOOS, runtime.GOARCH)
	var nb *NoBinaryError
	if !errors.As(err, &nb) || nb.Dynamic != dyn {
		t.Fatalf("For: %v; want a *NoBinaryError naming %s", err, dyn)
	}
	for _, want := range []string{"dynamically linked", "CGO_ENABLED=0 go install github.com/shoal-sh/shoal/cmd/shoal@latest", "scripts/build", "platform_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %q", err, want)
		}
	}
	if got := s.Available(); len(got) != 0 {
		t.Errorf("Available offers %v; want nothing", got)
	}

	s.PlatformDir = t.TempDir()
	if _, err := s.For(runtime.GOOS, runtime.GOARCH); !errors.As(err, &nb) || !strings.Contains(err.Error(), s.PlatformDir) {
		t.Errorf("with an empty platform directory: %v; want it named", err)
	}
	static := filepath.Join(s.PlatformDir, "shoal-"+runtime.GOOS+"-"+runtime.GOARCH)
	os.WriteFile(static, elfBytes(false), 0o755)
	if b, err := s.For(runtime.GOOS, runtime.GOARCH); err != nil || b.Path != static {
		t.Errorf("with a static binary in the platform directory: %+v, %v; want %s", b, err, static)
	}

	st := elfFile(t, false)
	s = &Source{HashCacheDir: "-", executable: func() (string, error) { return st, nil }}
	if b, err := s.For(runtime.GOOS, runtime.GOARCH); err != nil || b.Path != st {
		t.Errorf("a static executable: %+v, %v; want itself", b, err)
	}
	// An executable carrying the agent-only build offers that, however it is linked.
	agent := filepath.Join(t.TempDir(), "agent")
	os.WriteFile(agent, elfBytes(false), 0o755)
	if err := AppendAgent(dyn, agent); err != nil {
		t.Fatal(err)
	}
	s = &Source{HashCacheDir: t.TempDir(), executable: func() (string, error) { return dyn, nil }}
	if b, err := s.For(runtime.GOOS, runtime.GOARCH); err != nil || b.Path == dyn {
		t.Errorf("a dynamic executable with an agent: %+v, %v; want the agent", b, err)
	}
}

func FuzzIsDynamic(f *testing.F) {
	f.Add(elfBytes(false))
	f.Add(elfBytes(true))
	f.Add([]byte("#!/bin/sh\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		IsDynamic(p) // must not panic
	})
}
