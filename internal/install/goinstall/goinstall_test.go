// Package goinstall_test checks the README's install line: `CGO_ENABLED=0 go install` yields a
// static shoal that installs itself on a fleet host and runs a command there, and a cgo build
// refuses to upload itself, saying what to do.
package goinstall_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/shoaltest"
)

func TestMain(m *testing.M) { shoaltest.Main(m) }

// build runs the go command in the module's root with extra environment, as a user would.
func build(t *testing.T, env []string, args ...string) error {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join("..", "..", "..")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("go %s: %s", strings.Join(args, " "), out)
	}
	return err
}

func TestGoInstallStatic(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("SKIPPING: no go command to build with")
	}
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	static, dynamic := filepath.Join(bin, "shoal"), filepath.Join(dir, "shoal-cgo")
	var wg sync.WaitGroup
	var staticErr, dynamicErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		// The README's line, with the module of this checkout instead of @latest.
		staticErr = build(t, []string{"CGO_ENABLED=0", "GOBIN=" + bin}, "install", "./cmd/shoal")
	}()
	go func() {
		defer wg.Done()
		dynamicErr = build(t, []string{"CGO_ENABLED=1"}, "build", "-o", dynamic, "./cmd/shoal")
	}()
	wg.Wait()
	if staticErr != nil {
		t.Fatalf("CGO_ENABLED=0 go install: %v", staticErr)
	}
	if install.IsDynamic(static) {
		t.Errorf("CGO_ENABLED=0 go install made a dynamically linked %s", static)
	}

	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(`[daemon]
use = false

[ssh]
ssh_config = "`+f.SSHConfig+`"

[[host]]
name = "h001"
transport = "ssh"
`), 0o600)
	run := func(exe string) (string, string, int) {
		cmd := exec.Command(exe, "--config", cfg, "--no-daemon", "run", "h001", "--", "echo hello from $(id -un)")
		cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
			"XDG_STATE_HOME="+filepath.Join(dir, "state"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("running %s: %v", exe, err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}
	out, errOut, code := run(static)
	if code != 0 || !strings.Contains(out, "hello from "+f.Hosts[0].User) {
		t.Errorf("the go install build on h001: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	if dynamicErr != nil || !install.IsDynamic(dynamic) {
		t.Skipf("SKIPPING the cgo build (no C toolchain on %s/%s?): %v", runtime.GOOS, runtime.GOARCH, dynamicErr)
	}
	out, errOut, code = run(dynamic)
	if code != 255 || !strings.Contains(out+errOut, "dynamically linked") || !strings.Contains(out+errOut, "CGO_ENABLED=0 go install") {
		t.Errorf("the cgo build on h001: status %d; want 255 and an error saying to install a static build\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
