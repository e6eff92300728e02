package install

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// session runs command under /bin/sh with HOME=home and PATH=path (empty: this process's), as
// sshd would, and returns its stdio: stdin is a pipe whose write end is in.
func session(t *testing.T, home, path, command string) (io.ReadWriter, *os.File, *exec.Cmd) {
	t.Helper()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("POSIX shell needed")
	}
	if path == "" {
		path = os.Getenv("PATH")
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Env = []string{"HOME=" + home, "PATH=" + path}
	cmd.Stderr = os.Stderr
	r, in, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return struct {
		io.Reader
		io.Writer
	}{out, in}, in, cmd
}

// TestInstallInSession installs through the bootstrap's own session, as both transports do: the
// bootstrap reports the agent missing, runs the upload script it is sent, and the agent speaks
// on the same stdio afterwards.
func TestInstallInSession(t *testing.T) {
	home := t.TempDir()
	bin := fakeAgent(t, "v1")
	rw, in, _ := session(t, home, "", Bootstrap("", []Binary{bin}, []string{"x"}))
	m, err := ReadMarker(rw)
	if err != nil || m.Exec || m.Uname == "" {
		t.Fatalf("bootstrap: %+v %v; want missing", m, err)
	}
	m, err = Install(rw, Upload("", bin, []string{"x"}), bin, nil)
	want := filepath.Join(home, ".cache", "shoal", bin.Name())
	if err != nil || !m.Exec || m.AgentPath != want {
		t.Fatalf("Install: %+v %v; want exec of %s", m, err, want)
	}
	// The fake agent prints its arguments, then echoes stdin: nothing of the upload is left over.
	if _, err := io.WriteString(in, "after\n"); err != nil {
		t.Fatal(err)
	}
	in.Close()
	rest, _ := io.ReadAll(rw)
	if wantOut := "ARGS agent --state-dir " + filepath.Dir(want) + " x\nafter\n"; string(rest) != wantOut {
		t.Errorf("agent output %q; want %q", rest, wantOut)
	}
}

// TestInstallCompressedInSession sends the gzip form through the session.
func TestInstallCompressedInSession(t *testing.T) {
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("no gzip")
	}
	home := t.TempDir()
	bin := fakeAgent(t, "v1")
	rw, in, _ := session(t, home, "", Bootstrap("", []Binary{bin}, nil))
	m, err := ReadMarker(rw)
	if err != nil || !m.Gzip {
		t.Fatalf("bootstrap: %+v %v; want missing with gzip", m, err)
	}
	src := &Source{Self: bin.Path, HashCacheDir: t.TempDir(), Compression: CompressGzip}
	script, body := src.UploadFor("", bin, m, nil)
	if body == nil {
		t.Fatal("UploadFor sent no gzip body")
	}
	if m, err = Install(rw, script, bin, body); err != nil || !m.Exec {
		t.Fatalf("Install: %+v %v", m, err)
	}
	in.Close()
	got, _ := os.ReadFile(filepath.Join(home, ".cache", "shoal", bin.Name()))
	orig, _ := os.ReadFile(bin.Path)
	if string(got) != string(orig) {
		t.Error("installed agent differs from the binary")
	}
}

// TestBootstrapEndOfInput checks that a bootstrap told nothing after SHOAL-MISSING exits, having
// written nothing.
func TestBootstrapEndOfInput(t *testing.T) {
	home := t.TempDir()
	bin := fakeAgent(t, "v1")
	rw, in, cmd := session(t, home, "", Bootstrap("", []Binary{bin}, nil))
	if m, err := ReadMarker(rw); err != nil || m.Exec {
		t.Fatalf("bootstrap: %+v %v", m, err)
	}
	in.Close()
	if err := cmd.Wait(); err == nil {
		t.Error("bootstrap with no upload exited 0")
	}
	if _, err := os.Stat(filepath.Join(home, ".cache")); !os.IsNotExist(err) {
		t.Errorf("bootstrap with no upload left %v", err)
	}
}

// TestInstallFails checks that an install directory the script cannot make is the host's
// SHOAL-FAIL, reported before any byte of the binary is sent.
func TestInstallFails(t *testing.T) {
	home := t.TempDir()
	bin := fakeAgent(t, "v1")
	// A file where the directory's parent should be: mkdir fails, root or not.
	dir := filepath.Join(home, "file", "agents")
	os.WriteFile(filepath.Join(home, "file"), nil, 0o600)
	rw, _, _ := session(t, home, "", Bootstrap(dir, []Binary{bin}, nil))
	if m, err := ReadMarker(rw); err != nil || m.Exec {
		t.Fatalf("bootstrap: %+v %v", m, err)
	}
	m, err := Install(rw, Upload(dir, bin, nil), bin, nil)
	if err == nil || m.Exec || !strings.Contains(err.Error(), "the host says: could not write") {
		t.Errorf("Install under a file: %+v %v; want the host's failure", m, err)
	}
}

func TestInstallMultiLine(t *testing.T) {
	bin := fakeAgent(t, "v1")
	var w strings.Builder
	_, err := Install(struct {
		io.Reader
		io.Writer
	}{strings.NewReader(""), &w}, Upload("", bin, []string{"a\nb"}), bin, nil)
	if !errors.Is(err, ErrMultiLine) || w.Len() != 0 {
		t.Errorf("Install with a newline in an argument: %v, sent %q; want ErrMultiLine and nothing sent", err, w.String())
	}
}

func TestInstallNoReady(t *testing.T) {
	bin := fakeAgent(t, "v1")
	for _, out := range []string{"", "SHOAL-FAIL could not write x\n", "SHOAL-EXEC Linux x86_64\t/a\n"} {
		var w strings.Builder
		_, err := Install(struct {
			io.Reader
			io.Writer
		}{strings.NewReader(out), &w}, Upload("", bin, nil), bin, nil)
		if err == nil || strings.Count(w.String(), "\n") != 1 {
			t.Errorf("host printing %q: %v, sent %d bytes; want an error and only the script sent", out, err, w.Len())
		}
	}
}

// TestGrowPipe checks that the upload script's reader enlarges the pipe it reads before it says
// it is ready, where it can: perl on Linux.
func TestGrowPipe(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("F_SETPIPE_SZ is Linux's")
	}
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("no perl: head reads, and the pipe stays as it is")
	}
	home := t.TempDir()
	bin := fakeAgent(t, "v1")
	out, w, _ := session(t, home, "", Bootstrap("", []Binary{bin}, nil))
	if m, err := ReadMarker(out); err != nil || m.Exec {
		t.Fatalf("bootstrap: %+v %v", m, err)
	}
	if _, err := io.WriteString(w, Upload("", bin, nil)+"\n"); err != nil {
		t.Fatal(err)
	}
	if m, err := ReadMarker(out); err != nil || !m.Ready {
		t.Fatalf("upload script: %+v %v; want ready", m, err)
	}
	n, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil || n < 1<<20 {
		t.Errorf("pipe size when ready: %d %v; want at least 1 MiB", n, err)
	}
	f, _ := os.ReadFile(bin.Path)
	w.Write(f)
	if m, err := ReadMarker(out); err != nil || !m.Exec {
		t.Errorf("after the upload: %+v %v; want exec", m, err)
	}
}

// TestInstallWithoutPerl installs on a host with no perl: head reads the bytes.
func TestInstallWithoutPerl(t *testing.T) {
	path := t.TempDir()
	for _, tool := range []string{"head", "wc", "chmod", "mv", "mkdir", "rm", "find", "uname", "cat", "gzip"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("no %s", tool)
		}
		if err := os.Symlink(p, filepath.Join(path, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for _, compress := range []string{CompressNone, CompressGzip} {
		home := t.TempDir()
		bin := fakeAgent(t, "v1")
		rw, in, cmd := session(t, home, path, Bootstrap("", []Binary{bin}, nil))
		m, err := ReadMarker(rw)
		if err != nil || m.Exec {
			t.Fatalf("bootstrap: %+v %v", m, err)
		}
		src := &Source{Self: bin.Path, HashCacheDir: t.TempDir(), Compression: compress}
		script, body := src.UploadFor("", bin, m, nil)
		if strings.Contains(script, "zstd") {
			t.Fatalf("%s: UploadFor chose zstd on a host without it", compress)
		}
		if m, err = Install(rw, script, bin, body); err != nil || !m.Exec {
			t.Errorf("%s: Install without perl: %+v %v", compress, m, err)
		}
		in.Close()
		cmd.Wait()
		got, _ := os.ReadFile(filepath.Join(home, ".cache", "shoal", bin.Name()))
		orig, _ := os.ReadFile(bin.Path)
		if string(got) != string(orig) {
			t.Errorf("%s: installed agent differs from the binary", compress)
		}
	}
}
