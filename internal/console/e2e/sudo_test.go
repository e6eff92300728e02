package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// shoalWith is shoal with extra environment entries.
func shoalWith(t *testing.T, dir string, extra []string, args ...string) (map[string]hostLine, string, int) {
	t.Helper()
	cmd := exec.Command(shoaltest.Binary(t), args...)
	cmd.Env = append(env(dir), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running shoal %v: %v", args, err)
	}
	got := map[string]hostLine{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r hostLine
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Host != "" {
			got[r.Host] = r
		}
	}
	return got, stderr.String(), code
}

// sudoFleet starts a fleet of four hosts whose users sudo may run everything: h001 without a
// password, h002 and h003 with one, h004 with one and requiretty. It returns the fleet and the
// password. The sudoers file and the passwords are undone at cleanup.
func sudoFleet(t *testing.T) (*shoaltest.Fleet, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the sudo tests give test users passwords and sudo rules: run them as root")
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Skip("SKIP: no sudo here (apt-get install sudo; scripts/check installs it)")
	}
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 4})
	b := make([]byte, 12)
	rand.Read(b)
	pw := "pw-" + hex.EncodeToString(b)
	u := func(i int) string { return f.Hosts[i].User }
	rules := "# written by shoal's TestFleetSudo; removed when it ends\n" +
		"Defaults:" + u(0) + "," + u(1) + "," + u(2) + "," + u(3) + " lecture=never\n" +
		"Defaults:" + u(3) + " requiretty\n" +
		u(0) + " ALL=(ALL) NOPASSWD: ALL\n" +
		u(1) + " ALL=(ALL) ALL\n" +
		u(2) + " ALL=(ALL) ALL\n" +
		u(3) + " ALL=(ALL) ALL\n"
	file := "/etc/sudoers.d/shoal-test-sudo"
	// A file left by an earlier run is overwritten.
	if err := os.WriteFile(file, []byte(rules), 0o440); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file) })
	if out, err := exec.Command("visudo", "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("visudo: %v: %s", err, out)
	}
	var lines []string
	for i := 1; i < 4; i++ {
		lines = append(lines, u(i)+":"+pw)
	}
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		for i := 1; i < 4; i++ {
			exec.Command("usermod", "-p", "*", u(i)).Run() // locked again, as the fleet made them
		}
	})
	return f, pw
}

// TestFleetSudo runs commands through sudo over real SSH: one password, asked once through
// SHOAL_ASKPASS and only because some host needs it, reaches sudo everywhere and nowhere else
// (no argv, environment or file on the hosts, nothing shoal writes); a wrong one is one error
// per host; NOPASSWD hosts never ask; a requiretty host gets a terminal for sudo.
func TestFleetSudo(t *testing.T) {
	requireConsole(t)
	f, pw := sudoFleet(t)
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	conf, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(conf), "use = false", "use = true", 1)), 0o600)
	startDaemonCleanup(t, dir, cfg)
	askpass := filepath.Join(dir, "askpass")
	calls := filepath.Join(dir, "askpass.calls")
	os.WriteFile(askpass, []byte("#!/bin/sh\necho called >> "+calls+"\necho '"+pw+"'\n"), 0o700)
	wrongpass := filepath.Join(dir, "wrongpass")
	os.WriteFile(wrongpass, []byte("#!/bin/sh\necho called >> "+calls+"\necho wrong-password\n"), 0o700)
	countCalls := func() int {
		b, _ := os.ReadFile(calls)
		os.Remove(calls)
		return strings.Count(string(b), "called")
	}
	base := []string{"--config", cfg, "run", "--json"}

	// A wrong password first (no host has cached credentials yet): one error per host that
	// wanted a password, no hang, the NOPASSWD host runs the command.
	start := time.Now()
	got, errOut, code := shoalWith(t, dir, []string{"SHOAL_ASKPASS=" + wrongpass}, append(base, "--sudo", "h[001-003]", "--", "id -u")...)
	if code == 0 || got["h001"].Stdout != "0\n" {
		t.Errorf("wrong password: status %d, h001 %+v; want h001 to run as root\nstderr:\n%s", code, got["h001"], errOut)
	}
	for _, h := range []string{"h002", "h003"} {
		if got[h].Status != "error" || !strings.Contains(got[h].Error, "password was refused") || got[h].Stdout != "" ||
			strings.Contains(got[h].Stderr, "Sorry") {
			t.Errorf("wrong password, %s: %+v; want one clear error and nothing of sudo's", h, got[h])
		}
	}
	if n := countCalls(); n != 1 {
		t.Errorf("SHOAL_ASKPASS called %d times; want once", n)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("a wrong password took %s", d)
	}

	// NOPASSWD alone: no password asked at all.
	got, errOut, code = shoalWith(t, dir, []string{"SHOAL_ASKPASS=" + askpass}, append(base, "--sudo", "h001", "--", "id -u")...)
	if code != 0 || got["h001"].Stdout != "0\n" || countCalls() != 0 {
		t.Errorf("NOPASSWD: status %d, %+v, or the password was asked\nstderr:\n%s", code, got["h001"], errOut)
	}

	// The right password: asked once, id -u prints 0 everywhere. Meanwhile nothing on the
	// hosts carries it in its argv or environment.
	stop := make(chan struct{})
	var seen []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			seen = append(seen, procsWith(pw)...)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	got, errOut, code = shoalWith(t, dir, []string{"SHOAL_ASKPASS=" + askpass}, append(base, "--sudo", "--env", "A=1", "h[001-003]", "--", "id -u; echo $A; sleep 1")...)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Errorf("sudo id -u: status %d\nstderr:\n%s", code, errOut)
	}
	for _, h := range []string{"h001", "h002", "h003"} {
		if got[h].Stdout != "0\n1\n" || got[h].Stderr != "" {
			t.Errorf("%s: %+v; want 0 and 1, nothing on stderr", h, got[h])
		}
	}
	if n := countCalls(); n != 1 {
		t.Errorf("SHOAL_ASKPASS called %d times; want once", n)
	}
	if len(seen) > 0 {
		t.Errorf("the password is in the argv or environment of %v", seen)
	}

	// --sudo-user: another user than root.
	got, errOut, _ = shoalWith(t, dir, []string{"SHOAL_ASKPASS=" + askpass}, append(base, "--sudo-user", "nobody", "h001", "--", "id -un")...)
	if got["h001"].Stdout != "nobody\n" {
		t.Errorf("--sudo-user nobody: %+v\nstderr:\n%s", got["h001"], errOut)
	}

	// requiretty: sudo gets a terminal of its own; the command's output stays apart.
	ttyStart := time.Now()
	got, errOut, code = shoalWith(t, dir, []string{"SHOAL_ASKPASS=" + askpass}, append(base, "--sudo", "h004", "--", "id -u; echo err >&2")...)
	t.Logf("requiretty run: %s", time.Since(ttyStart))
	if code != 0 || got["h004"].Stdout != "0\n" || got["h004"].Stderr != "err\n" {
		t.Errorf("requiretty: status %d, %+v; want 0 on stdout, err on stderr\nstderr:\n%s", code, got["h004"], errOut)
	}
	if n := countCalls(); n != 1 {
		t.Errorf("requiretty: SHOAL_ASKPASS called %d times; want once", n)
	}

	// Nothing shoal wrote holds the password: its state, audit log, history, daemon.log and
	// the hosts' agent directories.
	roots := []string{dir, os.TempDir()}
	for _, h := range f.Hosts {
		roots = append(roots, h.Home)
	}
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || p == askpass {
				return nil
			}
			if info, err := d.Info(); err != nil || info.Size() > 64<<20 {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(pw)) {
				t.Errorf("%s holds the password", p)
			}
			return nil
		})
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "state", "shoal", "audit.log"))
	if !strings.Contains(string(audit), `"sudo":"root"`) || !strings.Contains(string(audit), `"sudo":"nobody"`) {
		t.Errorf("the audit log does not say sudo was used and as whom:\n%s", audit)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "shoal", "daemon.log")); err != nil {
		t.Logf("no daemon.log to check: %v", err)
	}

	// The figures of docs/BENCHMARKS.md: a warm daemon, one-shot `true` with and without sudo.
	if os.Getenv("SHOAL_SUDO_FIGURES") == "1" {
		const n = 10
		for _, c := range []struct{ name, host, flag string }{
			{"no sudo", "h002", ""}, {"sudo, NOPASSWD", "h001", "--sudo"}, {"sudo, password", "h002", "--sudo"},
		} {
			args := append(append([]string{}, base...), c.host, "--", "true")
			if c.flag != "" {
				args = append(append([]string{}, base...), c.flag, c.host, "--", "true")
			}
			start := time.Now()
			for range n {
				shoalWith(t, dir, []string{"SHOAL_ASKPASS=" + askpass}, args...)
			}
			t.Logf("%-16s %s per one-shot run (%d runs)", c.name, time.Since(start)/n, n)
		}
	}
}

// procsWith returns the processes whose command line or environment holds s.
func procsWith(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if err == nil && bytes.Contains(b, []byte(s)) {
				cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				out = append(out, e.Name()+" "+f+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
			}
		}
	}
	return out
}

// TestConsoleSudo switches sudo on in the console, in a terminal: the password is asked on
// the terminal once, only for the host that needs it, asked again once after a typo, and
// reused by the next command.
func TestConsoleSudo(t *testing.T) {
	requireConsole(t)
	f, pw := sudoFleet(t)
	dir := t.TempDir()
	cfg := fleetConfig(t, dir, f)
	tm := newTerm(t, dir, shoaltest.Binary(t)+" --config "+cfg+" --no-daemon -o stream 'h[001-002]'")
	tm.waitPrompt()
	tm.typeLine(":sudo on")
	tm.waitCount("sudo: on, as root", 1)
	tm.typeLine("id -u")
	tm.waitCount("[sudo] password for root on h002:", 1)
	tm.typeLine("not-the-password")
	tm.waitCount("sudo: the password was refused on h002; try again", 1)
	tm.waitCount("[sudo] password for root on h002:", 2)
	tm.typeLine(pw)
	tm.waitFor("both hosts", func(s string) bool {
		return strings.Contains(s, "h001 | 0") && strings.Contains(s, "h002 | 0")
	})
	tm.waitPrompt()
	tm.typeLine("id -un")
	s := tm.waitFor("root twice", func(s string) bool { return strings.Count(s, "| root") >= 2 })
	if n := strings.Count(s, "[sudo] password"); n != 2 {
		t.Errorf("the password was asked %d times; want twice (one typo)\n%s", n, s)
	}
	if strings.Contains(s, pw) {
		t.Errorf("the password shows on the terminal:\n%s", s)
	}
	tm.typeLine(":sudo off")
	tm.typeLine("id -u")
	tm.waitFor("not root", func(s string) bool { return strings.Contains(s, "h002 | 100") })
	tm.typeLine(":quit")
	tm.waitCount("EXITED", 1)
}
