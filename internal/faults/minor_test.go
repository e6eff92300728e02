package faults_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPutDaemonDies SIGKILLs the daemon while `shoal --json put` writes 256 MiB: the client
// exits 255, as docs/console.md says, and still writes a JSON line for the host.
func TestPutDaemonDies(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(1, ""))
	if r := h.shoal(time.Minute, "run", "lab1", "--", "true"); r.code != 0 {
		t.Fatalf("warm-up: exit %d\n%s", r.code, r.stderr)
	}
	pid := h.daemonPID()
	src := filepath.Join(h.root, "big")
	if err := os.WriteFile(src, bytes.Repeat([]byte("p"), 256<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(src)
	dest := filepath.Join(h.root, "target", "big")
	os.MkdirAll(filepath.Dir(dest), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, "--json", "put", "lab1", src, dest)
	cmd.Env, cmd.Dir = h.env, h.root
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Minute, func() bool { return len(partials(dest)) > 0 }) {
		cancel()
		cmd.Wait()
		t.Fatalf("the put never started writing\n%s", se.String())
	}
	nFaults.Add(1)
	syscall.Kill(pid, syscall.SIGKILL)
	err := cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	nCommands.Add(1)
	t.Logf("put whose daemon was killed: exit %d, stdout %q, stderr %q", code, strings.TrimSpace(so.String()), strings.TrimSpace(se.String()))
	if code != 255 {
		t.Errorf("exit %d; want 255 (a host could not be reached)", code)
	}
	if !strings.Contains(so.String(), `"host":"lab1"`) || !strings.Contains(so.String(), `"status":"error"`) {
		t.Errorf("no JSON error line for lab1: %q", so.String())
	}
}

// TestGetUnreachableLeavesNothing gets a file from a host whose ssh_config entry points at a
// closed loopback port: no DEST/<host>/ directory is left behind.
func TestGetUnreachableLeavesNothing(t *testing.T) {
	t.Parallel()
	h := newHome(t, "")
	cfg := filepath.Join(h.root, "ssh_config")
	os.WriteFile(cfg, fmt.Appendf(nil, "Host u*\n  HostName 127.0.0.1\n  Port %d\n  ConnectTimeout 5\n", closedPort(t)), 0o600)
	h.writeConfig(fmt.Sprintf("[ssh]\nssh_config = %q\n", cfg))
	dest := filepath.Join(h.root, "dest")
	r := h.shoal(time.Minute, "get", "u1,u2", "/etc/hostname", dest)
	nCommands.Add(2)
	ents, _ := os.ReadDir(dest)
	t.Logf("get from 2 unreachable hosts: exit %d, %d entries in DESTDIR; %s", r.code, len(ents), strings.TrimSpace(r.stdout+r.stderr))
	if r.code != 255 {
		t.Errorf("exit %d; want 255", r.code)
	}
	for _, e := range ents {
		t.Errorf("left in DESTDIR: %s", e.Name())
	}
}

// TestSmallDurationAccepted checks that a duration under a millisecond written with its unit is
// accepted, and a bare number still refused.
func TestSmallDurationAccepted(t *testing.T) {
	t.Parallel()
	h := newHome(t, "command_timeout = \"1us\"\n")
	if r := h.shoal(time.Minute, "config", "check"); r.code != 0 {
		t.Errorf(`command_timeout = "1us": exit %d: %s`, r.code, r.stderr)
	}
	h.writeConfig("command_timeout = 30\n")
	nBadInputs.Add(1)
	r := h.shoal(time.Minute, "config", "check")
	t.Logf("command_timeout = 30: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	if r.code != 1 || !strings.Contains(r.stderr, "bare number") {
		t.Errorf("command_timeout = 30: exit %d: %s; want a bare-number error", r.code, r.stderr)
	}
}
