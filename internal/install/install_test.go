package install

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeAgent writes a script standing in for shoal: it prints its arguments and echoes stdin.
func fakeAgent(t *testing.T, version string) Binary {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shoal")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n# "+version+"\necho \"ARGS $*\"\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Source{Self: p, HashCacheDir: t.TempDir()}
	b, err := s.For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sh runs a remote command locally, as sshd would, with HOME set to home.
func sh(t *testing.T, home, command string, stdin io.Reader) (Marker, string, error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil && out.Len() == 0 {
		return Marker{}, "", err
	}
	m, err := ReadMarker(&out)
	for err == nil && m.Ready {
		m, err = ReadMarker(&out) // an upload script's: the bytes were there from the start
	}
	return m, out.String(), err
}

func TestBootstrapAndUpload(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("POSIX shell needed")
	}
	home := t.TempDir()
	bin := fakeAgent(t, "v1")
	args := []string{"--max-running", "it's 4"}

	m, _, err := sh(t, home, Bootstrap("", []Binary{bin}, args), nil)
	if err != nil || m.Exec || m.Uname == "" {
		t.Fatalf("first bootstrap: %+v %v; want missing with uname", m, err)
	}
	goos, goarch, ok := Platform(m.Uname)
	if !ok || goos != runtime.GOOS || goarch != runtime.GOARCH {
		t.Errorf("Platform(%q) = %s/%s %v", m.Uname, goos, goarch, ok)
	}

	f, _ := os.Open(bin.Path)
	defer f.Close()
	m, rest, err := sh(t, home, Upload("", bin, args), io.MultiReader(f, strings.NewReader("after\n")))
	want := filepath.Join(home, ".cache", "shoal", bin.Name())
	if err != nil || !m.Exec || m.AgentPath != want {
		t.Fatalf("upload: %+v %v; want exec of %s", m, err, want)
	}
	if wantOut := "ARGS agent --state-dir " + filepath.Dir(want) + " --max-running it's 4\nafter\n"; rest != wantOut {
		t.Errorf("agent output %q; want %q", rest, wantOut)
	}
	if h, _, _ := HashFile(want); h != bin.Hash {
		t.Errorf("installed hash %s; want %s", h, bin.Hash)
	}

	m, _, err = sh(t, home, Bootstrap("", []Binary{bin}, args), nil)
	if err != nil || !m.Exec || m.AgentPath != want {
		t.Fatalf("second bootstrap: %+v %v; want exec", m, err)
	}
	// A reinstall offers nothing, so the bootstrap reports missing.
	if m, _, _ = sh(t, home, Bootstrap("", nil, args), nil); m.Exec {
		t.Errorf("bootstrap with no binaries started an agent")
	}

	// Unsafe installs are not run.
	for _, tc := range []struct {
		name   string
		break_ func()
		fix    func()
	}{
		{"group-writable agent", func() { os.Chmod(want, 0o770) }, func() { os.Chmod(want, 0o700) }},
		{"world-writable agent", func() { os.Chmod(want, 0o702) }, func() { os.Chmod(want, 0o700) }},
		{"non-executable agent", func() { os.Chmod(want, 0o600) }, func() { os.Chmod(want, 0o700) }},
		{"open install dir", func() { os.Chmod(filepath.Dir(want), 0o755) }, func() { os.Chmod(filepath.Dir(want), 0o700) }},
		{"symlinked agent", func() {
			os.Rename(want, want+".real")
			os.Symlink(want+".real", want)
		}, func() { os.Remove(want); os.Rename(want+".real", want) }},
	} {
		tc.break_()
		m, _, _ := sh(t, home, Bootstrap("", []Binary{bin}, args), nil)
		if m.Exec {
			t.Errorf("%s: bootstrap started it", tc.name)
		}
		tc.fix()
	}
	if m, _, _ := sh(t, home, Bootstrap("", []Binary{bin}, args), nil); !m.Exec {
		t.Errorf("after fixing: bootstrap did not start the agent")
	}

	// A short upload leaves nothing behind and says so.
	bin2 := fakeAgent(t, "v2")
	m, _, err = sh(t, home, Upload("", bin2, nil), strings.NewReader("#!/bin/sh\n"))
	if err != nil || m.Exec || m.Fail == "" {
		t.Errorf("short upload: %+v %v; want a failure marker", m, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(want))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".agent-") || e.Name() == bin2.Name() {
			t.Errorf("short upload left %s", e.Name())
		}
	}
}

func TestCustomDirWithSpaces(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(t.TempDir(), "my 'odd' dir")
	bin := fakeAgent(t, "v1")
	f, _ := os.Open(bin.Path)
	defer f.Close()
	m, _, err := sh(t, home, Upload(dir, bin, nil), f)
	if err != nil || !m.Exec || m.AgentPath != filepath.Join(dir, bin.Name()) {
		t.Fatalf("upload to %q: %+v %v", dir, m, err)
	}
	if m, _, _ := sh(t, home, Bootstrap(dir, []Binary{bin}, nil), nil); !m.Exec {
		t.Errorf("bootstrap in %q did not start the agent", dir)
	}
}

func TestReadMarkerSkipsNoise(t *testing.T) {
	in := "Welcome!\nlast login\nSHOAL-EXEC Linux x86_64\t/h/agent-1\nFRAMES"
	r := strings.NewReader(in)
	m, err := ReadMarker(r)
	if err != nil || !m.Exec || m.Uname != "Linux x86_64" || m.AgentPath != "/h/agent-1" {
		t.Fatalf("got %+v %v", m, err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "FRAMES" {
		t.Errorf("ReadMarker consumed past the marker: rest %q", rest)
	}
	if _, err := ReadMarker(strings.NewReader(strings.Repeat("x", MaxMarkerBytes+10))); !errors.Is(err, ErrNoMarker) {
		t.Errorf("endless line: got %v; want ErrNoMarker", err)
	}
	if _, err := ReadMarker(strings.NewReader("bash: oops\n")); !errors.Is(err, ErrNoMarker) {
		t.Errorf("no marker: got %v; want ErrNoMarker", err)
	}
}

func TestPlatform(t *testing.T) {
	for in, want := range map[string]string{
		"Linux x86_64": "linux/amd64", "Linux aarch64": "linux/arm64", "Darwin arm64": "darwin/arm64",
		"Darwin x86_64": "darwin/amd64", "FreeBSD amd64": "", "Linux riscv64": "", "": "",
	} {
		goos, goarch, ok := Platform(in)
		got := goos + "/" + goarch
		if !ok {
			got = ""
		}
		if got != want {
			t.Errorf("Platform(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestNoBinaryError(t *testing.T) {
	s := &Source{PlatformDir: t.TempDir()}
	other := "darwin"
	if runtime.GOOS == "darwin" {
		other = "linux"
	}
	_, err := s.For(other, "arm64")
	var nb *NoBinaryError
	if !errors.As(err, &nb) {
		t.Fatalf("got %v; want *NoBinaryError", err)
	}
	msg := err.Error()
	for _, want := range []string{other + "/arm64", "shoal-" + other + "-arm64", s.PlatformDir, "make release"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}
	os.WriteFile(filepath.Join(s.PlatformDir, "shoal-"+other+"-arm64"), []byte("bin"), 0o755)
	b, err := s.For(other, "arm64")
	if err != nil || b.Size != 3 || len(b.Hash) != 64 {
		t.Errorf("with the file: %+v %v", b, err)
	}
	if got := len(s.Available()); got < 1 {
		t.Errorf("Available found %d binaries", got)
	}
}

func FuzzReadMarker(f *testing.F) {
	f.Add([]byte("SHOAL-EXEC Linux x86_64\t/a\n"))
	f.Add([]byte("motd\nSHOAL-MISSING Darwin arm64\n"))
	f.Add([]byte("SHOAL-MISSING Linux x86_64\tgzip\n"))
	f.Add([]byte("SHOAL-FAIL could not write\n"))
	f.Add([]byte("SHOAL-EXEC no tab\n"))
	f.Add([]byte("SHOAL-READY\n"))
	f.Add([]byte("SHOAL-READY now\nSHOAL-FAIL x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadMarker(bytes.NewReader(b))
		if err == nil && m.Exec && m.AgentPath == "" && !bytes.Contains(b, []byte("\t\n")) {
			t.Errorf("exec marker without a path from %q", b)
		}
		if err == nil && m.Ready && !bytes.Contains(b, []byte("SHOAL-READY\n")) {
			t.Errorf("ready marker from %q", b)
		}
	})
}

// TestUploadPassesHash checks that the upload starts the agent with the hash it uploaded in
// SHOAL_AGENT_HASH (agent.InstalledHash), and that a later bootstrap, single- or multi-binary,
// starts it without.
func TestUploadPassesHash(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("POSIX shell needed")
	}
	home := t.TempDir()
	p := filepath.Join(t.TempDir(), "shoal")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"HASH=${SHOAL_AGENT_HASH:-}\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := &Source{Self: p, HashCacheDir: t.TempDir()}
	bin, err := src.For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(bin.Path)
	defer f.Close()
	m, rest, err := sh(t, home, Upload("", bin, nil), f)
	if err != nil || !m.Exec || rest != "HASH="+bin.Hash+"\n" {
		t.Fatalf("upload: %+v %v, agent printed %q; want HASH=%s", m, err, rest, bin.Hash)
	}
	m, rest, err = sh(t, home, Bootstrap("", []Binary{bin}, nil), nil)
	if err != nil || !m.Exec || rest != "HASH=\n" {
		t.Fatalf("bootstrap: %+v %v, agent printed %q; want no hash", m, err, rest)
	}
	if goos, goarch, _ := Platform(m.Uname); goos != runtime.GOOS || goarch != runtime.GOARCH {
		t.Errorf("single-binary bootstrap reported platform %q", m.Uname)
	}
	// With binaries for several platforms the bootstrap asks uname which one to run.
	other := Binary{Path: "/nonexistent", Hash: strings.Repeat("0", 64), OS: "linux", Arch: "arm64"}
	if runtime.GOARCH == "arm64" {
		other.Arch = "amd64"
	}
	m, rest, err = sh(t, home, Bootstrap("", []Binary{other, bin}, nil), nil)
	if err != nil || !m.Exec || rest != "HASH=\n" {
		t.Fatalf("multi-binary bootstrap: %+v %v, agent printed %q", m, err, rest)
	}
	if b, ok := Match([]Binary{other, bin}, m.Uname); !ok || b.Hash != bin.Hash {
		t.Errorf("multi-binary bootstrap reported %q, which matches %+v", m.Uname, b)
	}
	// Only the other platform's binary offered: missing, with the real uname.
	m, _, err = sh(t, home, Bootstrap("", []Binary{other}, nil), nil)
	if err != nil || m.Exec {
		t.Fatalf("bootstrap offering another platform: %+v %v; want missing", m, err)
	}
	if goos, goarch, _ := Platform(m.Uname); goos != runtime.GOOS || goarch != runtime.GOARCH {
		t.Errorf("missing marker reported platform %q", m.Uname)
	}
}
