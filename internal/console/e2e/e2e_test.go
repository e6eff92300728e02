// Package e2e drives the built shoal binary: the demo fleet through a pipe and through a terminal
// (tmux), and the one-shot commands with --no-daemon on local hosts.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/shoaltest"
)

func TestMain(m *testing.M) { shoaltest.Main(m) }

// env returns an environment whose home, temporary and XDG directories are all under dir, so a
// test never touches the user's files or daemon.
func env(dir string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "XDG_") || k == "HOME" || k == "TMPDIR" || k == "NO_COLOR" || k == "SHOAL_IDENTITY" {
			continue
		}
		out = append(out, kv)
	}
	for _, d := range []string{"home", "tmp", "config", "state", "cache", "run"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	return append(out,
		"HOME="+filepath.Join(dir, "home"),
		"TMPDIR="+filepath.Join(dir, "tmp"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_STATE_HOME="+filepath.Join(dir, "state"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"XDG_RUNTIME_DIR="+filepath.Join(dir, "run"),
	)
}

// shoal runs the binary with args and stdin and returns its stdout, stderr and exit status.
func shoal(t *testing.T, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	requireConsole(t)
	cmd := exec.Command(shoaltest.Binary(t), args...)
	cmd.Env = env(dir)
	cmd.Stdin = strings.NewReader(stdin)
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
	return stdout.String(), stderr.String(), code
}

var (
	consoleOnce sync.Once
	consoleErr  error
)

// requireConsole skips, loudly, when the binary was built without the console's commands.
func requireConsole(t *testing.T) {
	t.Helper()
	bin := shoaltest.Binary(t)
	consoleOnce.Do(func() { consoleErr = exec.Command(bin, "demo", "--help").Run() })
	if consoleErr != nil {
		t.Skip("SKIP: shoal has no demo command: internal/cli/root.go must call addConsoleCommands(root, g)")
	}
}

// noDemoDirs fails when a demo left its temporary directory behind.
func noDemoDirs(t *testing.T, dir string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(dir, "tmp", "shoal-demo-*"))
	if len(left) > 0 {
		t.Errorf("the demo left %v behind", left)
	}
}

func TestDemoPiped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, errOut, code := shoal(t, dir, "echo hello-$((6*7))\n:target @web\n:time\ncase $SHOAL_RUN_DIR in */node2/*) exit 3;; esac\n", "demo", "4")
	if code != 3 {
		t.Errorf("exit status %d; want 3 (the worst)\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"shoal node[1-4] (4)> echo hello-$((6*7))\n",
		"node[1-4] (4)\n",
		"hello-42\n",
		"4 hosts in",
		"targets: node[1-2] (2)\n",
		"HOST ",
		"no outliers",
		"node2 (1) · exit 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("piped output holds escape codes")
	}
	noDemoDirs(t, dir)
}

// writeConfig writes a configuration with local hosts n[1-3] and one unreachable SSH host.
func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "config.toml")
	cfg := `[daemon]
use = false

[ssh]
connect_timeout = "2s"

[tags]
two = "n[1-2]"

[[host]]
name = "n[1-3]"
transport = "local"

[[host]]
name = "dead"
address = "127.0.0.1"
port = 1
transport = "ssh"
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunNoDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	tests := []struct {
		targets, cmd string
		want         int
	}{
		{"n[1-3]", "true", 0},
		{"@two", "echo ok", 0},
		{"n[1-3]", "case $SHOAL_RUN_DIR in */n2/*) exit 3;; */n3/*) exit 5;; esac", 5},
		{"n1", "kill -TERM $$", 128 + 15},
		{"n[1-2],dead", "true", 255},
	}
	for _, tt := range tests {
		out, errOut, code := shoal(t, dir, "", "--config", cfg, "--no-daemon", "run", tt.targets, "--", tt.cmd)
		if code != tt.want {
			t.Errorf("run %s -- %s: status %d; want %d\nstdout:\n%s\nstderr:\n%s", tt.targets, tt.cmd, code, tt.want, out, errOut)
		}
	}
}

func TestRunJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	out, errOut, code := shoal(t, dir, "", "--config", cfg, "--no-daemon", "run", "--json", "n[1-2]", "--", "echo hi; echo oops >&2; exit 2")
	if code != 2 {
		t.Errorf("status %d; want 2\nstderr:\n%s", code, errOut)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var hosts []string
	for sc.Scan() {
		var r struct {
			Host     string `json:"host"`
			Status   string `json:"status"`
			ExitCode *int   `json:"exit_code"`
			Stdout   string `json:"stdout"`
			Stderr   string `json:"stderr"`
			PID      *int   `json:"pid"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if r.Status != "failed" || r.ExitCode == nil || *r.ExitCode != 2 || r.Stdout != "hi\n" || r.Stderr != "oops\n" || r.PID == nil {
			t.Errorf("got %+v; want failed, exit 2, hi, oops and a pid", r)
		}
		hosts = append(hosts, r.Host)
	}
	if strings.Join(hosts, ",") != "n1,n2" {
		t.Errorf("hosts %v; want n1,n2", hosts)
	}
}

func TestOneShotTables(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	src := filepath.Join(dir, "src.sh")
	os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o751)
	base := []string{"--config", cfg, "--no-daemon"}
	out, errOut, code := shoal(t, dir, "", append(base, "ping", "n[1-3]")...)
	if code != 0 || !strings.Contains(out, "ok n[1-3] (3): rtt min") {
		t.Errorf("ping: status %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = shoal(t, dir, "", append(base, "time", "n[1-3]")...)
	if code != 0 || !strings.Contains(out, "median offset") {
		t.Errorf("time: status %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = shoal(t, dir, "", append(base, "info", "n1")...)
	if code != 0 || !strings.Contains(out, "linux/") {
		t.Errorf("info: status %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	dest := filepath.Join(dir, "put-dest")
	out, errOut, code = shoal(t, dir, "", append(base, "put", "n1", src, dest)...)
	if code != 0 || !strings.Contains(out, "ok n1 (1): put") {
		t.Errorf("put: status %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o751 {
		t.Errorf("put: %v, mode %v; want 0751", err, fi)
	}
	gets := filepath.Join(dir, "gets")
	out, errOut, code = shoal(t, dir, "", append(base, "get", "n[1-2]", dest, gets)...)
	if code != 0 {
		t.Errorf("get: status %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, h := range []string{"n1", "n2"} {
		if b, err := os.ReadFile(filepath.Join(gets, h, "put-dest")); err != nil || !strings.Contains(string(b), "echo hi") {
			t.Errorf("get: %s: %q, %v", h, b, err)
		}
	}
	_, _, code = shoal(t, dir, "", append(base, "ping", "n1,dead")...)
	if code != 255 {
		t.Errorf("ping with an unreachable host: status %d; want 255", code)
	}
}

func TestManAndCompletion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	man := filepath.Join(dir, "man")
	if _, errOut, code := shoal(t, dir, "", "man", man); code != 0 {
		t.Fatalf("man: status %d: %s", code, errOut)
	}
	b, err := os.ReadFile(filepath.Join(man, "shoal-run.1"))
	if err != nil || !bytes.Contains(b, []byte(".SH SYNOPSIS")) || !bytes.Contains(b, []byte(`\-\-timeout`)) {
		t.Errorf("shoal-run.1: %v\n%s", err, b)
	}
	out, _, _ := shoal(t, dir, "", "--config", cfg, "__complete", "run", "n")
	for _, want := range []string{"n1\n", "n3\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("completion of hosts lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = shoal(t, dir, "", "--config", cfg, "__complete", "ping", "n1,@t")
	if !strings.Contains(out, "n1,@two\n") {
		t.Errorf("completion of tags:\n%s", out)
	}
	for _, sh := range []string{"bash"} {
		if out, _, code := shoal(t, dir, "", "completion", sh); code != 0 || len(out) < 100 {
			t.Errorf("completion %s: status %d, %d bytes", sh, code, len(out))
		}
	}
}

// term is a tmux session running one command on its own server.
type term struct {
	t    *testing.T
	sock string
}

func newTerm(t *testing.T, dir string, command string, extraEnv ...string) *term {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("SKIP: tmux is not installed")
	}
	requireConsole(t)
	tm := &term{t: t, sock: filepath.Join(dir, "tmux.sock")}
	conf := filepath.Join(dir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g history-limit 5000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tmux", "-S", tm.sock, "-f", conf, "new-session", "-d", "-x", "120", "-y", "40", "bash", "-c", command+"; echo EXITED $?")
	cmd.Env = append(append(env(dir), "TERM=xterm-256color"), extraEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("starting tmux: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-S", tm.sock, "kill-server").Run() })
	return tm
}

// keys sends keys (tmux key names) one call at a time, as a person types.
func (tm *term) keys(keys ...string) {
	tm.t.Helper()
	for _, k := range keys {
		if out, err := exec.Command("tmux", "-S", tm.sock, "send-keys", k).CombinedOutput(); err != nil {
			tm.t.Fatalf("send-keys %q: %v: %s", k, err, out)
		}
	}
}

// typeLine types s literally and presses Enter.
func (tm *term) typeLine(s string) {
	tm.t.Helper()
	if out, err := exec.Command("tmux", "-S", tm.sock, "send-keys", "-l", s).CombinedOutput(); err != nil {
		tm.t.Fatalf("send-keys: %v: %s", err, out)
	}
	tm.keys("Enter")
}

func (tm *term) screen() string {
	out, err := exec.Command("tmux", "-S", tm.sock, "capture-pane", "-p", "-S", "-1000").Output()
	if err != nil {
		var msg []byte
		if ee, ok := err.(*exec.ExitError); ok {
			msg = ee.Stderr
		}
		tm.t.Fatalf("capture-pane: %v: %s", err, msg)
	}
	return string(out)
}

// waitFor polls the screen until ok accepts it, and returns it.
func (tm *term) waitFor(what string, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := tm.screen()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenEsc returns the screen with its colours and attributes as escape sequences.
func (tm *term) screenEsc() string {
	out, err := exec.Command("tmux", "-S", tm.sock, "capture-pane", "-e", "-p", "-S", "-1000").Output()
	if err != nil {
		tm.t.Fatalf("capture-pane: %v", err)
	}
	return string(out)
}

// waitPrompt waits until the screen ends with an empty prompt, as a person waits before typing.
func (tm *term) waitPrompt() string {
	tm.t.Helper()
	return tm.waitFor("an empty prompt", func(s string) bool {
		s = strings.TrimSpace(s)
		last := s[strings.LastIndexByte(s, '\n')+1:]
		return strings.HasPrefix(last, "shoal ") && strings.HasSuffix(last, ">")
	})
}

func (tm *term) waitCount(sub string, n int) string {
	tm.t.Helper()
	return tm.waitFor(strconv.Quote(sub)+" ×"+strconv.Itoa(n), func(s string) bool { return strings.Count(s, sub) >= n })
}

func TestConsoleInTerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tm := newTerm(t, dir, shoaltest.Binary(t)+" demo 4")
	tm.waitPrompt()

	// Tab lists the candidates with their descriptions, as bash does, instead of silently
	// inserting the first one; C-u leaves the menu and the line.
	tm.keys(":", "p", "Tab")
	tm.waitFor("the built-ins menu", func(s string) bool {
		return strings.Contains(s, ":put") && strings.Contains(s, ":ping") && strings.Contains(s, "copy the local file")
	})
	tm.keys("C-u")
	tm.waitFor("the menu gone", func(s string) bool { return !strings.Contains(s, ":put") })

	// A command, then a built-in that changes the prompt.
	tm.typeLine("echo hello-$((6*7))")
	tm.waitCount("hello-42", 1)
	tm.waitCount("4 hosts in", 1)
	tm.waitPrompt()
	tm.typeLine(":target @web")
	tm.waitCount("shoal node[1-2] (2)>", 1)
	tm.waitPrompt()
	if esc := tm.screenEsc(); !strings.Contains(esc, "\x1b[1m") {
		t.Errorf("no bold on a terminal without NO_COLOR:\n%q", esc)
	}

	// History: Up twice is the echo again, now on two hosts.
	tm.keys("Up")
	tm.waitFor("the built-in from history", func(s string) bool { return strings.HasSuffix(strings.TrimSpace(s), "> :target @web") })
	tm.keys("Up")
	tm.waitFor("the command from history", func(s string) bool {
		return strings.HasSuffix(strings.TrimSpace(s), "> echo hello-$((6*7))")
	})
	tm.keys("Enter")
	tm.waitCount("2 hosts in", 1)
	tm.waitPrompt()
	if s := tm.screen(); strings.Count(s, "hello-42") < 2 {
		t.Errorf("history did not rerun the command:\n%s", s)
	}

	// A flood of output is cut short on a terminal, with a note saying how much was left out.
	tm.typeLine("seq 2500")
	tm.waitCount("(… 500 more lines, 2.4 KiB, not shown; run it again with :output stream", 1)
	tm.waitPrompt()
	// A local command's unfinished line is kept: the prompt starts a new row after it.
	tm.typeLine("!printf unfinished-$((6*7))")
	tm.waitFor("the local output kept", func(s string) bool { return strings.Contains(s, "\nunfinished-42\nshoal node[1-2] (2)>") })
	tm.waitPrompt()
	tm.typeLine("head -c 1000000 /dev/zero | tr '\\0' a")
	tm.waitCount("(… line cut: 464.6 KiB more, not shown", 1)
	tm.waitPrompt()

	// Ctrl-C during a long command: cancelled everywhere, nothing left running.
	tm.typeLine(":output stream")
	tm.waitCount("output: stream", 1)
	tm.waitPrompt()
	tm.typeLine("echo pid=$$; exec sleep 1000")
	s := tm.waitFor("two pids", func(s string) bool { return len(regexp.MustCompile(`\| pid=\d+`).FindAllString(s, -1)) >= 2 })
	var pids []int
	for _, m := range regexp.MustCompile(`\| pid=(\d+)`).FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		pids = append(pids, n)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("sleep %d is not running before Ctrl-C", pid)
		}
	}
	tm.waitFor("the progress line", func(s string) bool { return strings.Contains(s, "[0/2] running 2 · failed 0 · unreachable 0") })
	tm.keys("C-c")
	tm.waitFor("the cancel shown", func(s string) bool { return strings.Contains(s, "cancelling") || strings.Contains(s, "interrupted:") })
	s = tm.waitCount("interrupted: 2 not finished: node[1-2]", 1)
	tm.waitPrompt()
	if !strings.Contains(s, "2 cancelled") {
		t.Errorf("no cancelled summary:\n%s", s)
	}
	for _, pid := range pids {
		deadline := time.Now().Add(5 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("sleep %d still runs after Ctrl-C", pid)
		}
	}

	// Ctrl-C at an empty prompt does not quit; Ctrl-D does.
	prompts := strings.Count(tm.screen(), "shoal node[1-2] (2)>")
	tm.keys("C-c")
	tm.waitCount("shoal node[1-2] (2)>", prompts+1)
	tm.waitPrompt()
	tm.typeLine("echo still-here")
	tm.waitCount("node2 | still-here", 1)
	tm.waitPrompt()
	tm.keys("C-d")
	s = tm.waitCount("EXITED ", 1)
	if !strings.Contains(s, "EXITED 0") {
		t.Errorf("the console did not exit 0:\n%s", s)
	}
	noDemoDirs(t, dir)
}

// alive reports whether a process with pid exists (and is not a zombie we could not see reaped).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Field 3 is the state; Z is a zombie.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// TestConsoleIdentity answers the identity question a configuration asks for, and finds the
// answer in the audit log.
func TestConsoleIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "id.toml")
	os.WriteFile(cfg, []byte("[daemon]\nuse = false\n\n[console]\nrequire_identity = true\n\n[[host]]\nname = \"n1\"\ntransport = \"local\"\n"), 0o600)
	tm := newTerm(t, dir, shoaltest.Binary(t)+" --config "+cfg+" --no-daemon n1", "NO_COLOR=1")
	tm.waitFor("the identity question", func(s string) bool { return strings.Contains(s, "Who are you?") })
	tm.typeLine("ada lovelace")
	tm.waitPrompt()
	tm.typeLine("echo marker-$((2*21))")
	tm.waitCount("marker-42", 1)
	tm.waitPrompt()
	if esc := tm.screenEsc(); strings.Contains(esc, "\x1b[1m") || strings.Contains(esc, "\x1b[3") {
		t.Errorf("colours on the screen with NO_COLOR set:\n%q", esc)
	}
	tm.typeLine(":quit")
	tm.waitCount("EXITED 0", 1)
	b, err := os.ReadFile(filepath.Join(dir, "state", "shoal", "audit.log"))
	if err != nil || !strings.Contains(string(b), "ada lovelace") {
		t.Errorf("audit log: %v; want the identity in it:\n%s", err, b)
	}
}
