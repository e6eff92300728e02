package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"golang.org/x/sys/unix"
)

// Figures counted over the whole run, printed by TestMain for docs/RELIABILITY.md.
var (
	nCommands  atomic.Int64 // host-commands run (one command on one host counts one)
	nFaults    atomic.Int64 // faults injected (kills, stops, full disks, silent hosts, ...)
	nBadInputs atomic.Int64 // malformed inputs sent
	nLost      atomic.Int64 // results lost (a host without a result or a clear error)
)

func TestMain(m *testing.M) {
	if v := os.Getenv("SHOAL_FAULTS_HELPER"); v != "" {
		os.Exit(runHelper(v))
	}
	// Daemons are started detached and re-parented: become their subreaper so the tests reap
	// them instead of leaving zombies.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	// Most parallel tests wait on timeouts and heartbeats, not the CPU: run four at once
	// unless -test.parallel was given.
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		flag.Set("test.parallel", "4")
	}
	code := m.Run()
	fmt.Fprintf(os.Stderr, "faults: host-commands %d, faults injected %d, bad inputs %d, results lost %d, known bugs %d\n",
		nCommands.Load(), nFaults.Load(), nBadInputs.Load(), nLost.Load(), nKnownBugs.Load())
	// What shoaltest.Main does after m.Run: remove the binary built by shoaltest.Binary.
	if p := builtBinary.Load(); p != nil && strings.Contains(filepath.Dir(*p), "shoal-bin-") {
		os.RemoveAll(filepath.Dir(*p))
	}
	os.Exit(code)
}

// builtBinary is the path shoaltest.Binary returned, for TestMain to remove.
var builtBinary atomic.Pointer[string]

// long reports whether the long variants run (SHOAL_LONG=1).
func long() bool { return os.Getenv("SHOAL_LONG") == "1" }

// home is a private set of XDG directories and a config for one test's shoal.
type home struct {
	t      testing.TB
	bin    string
	root   string
	env    []string
	socket string
	state  string // $XDG_STATE_HOME/shoal
	cache  string // $XDG_CACHE_HOME/shoal
	config string // the config file
	marker []byte // an environment entry only this home's processes carry
}

// newHome makes a home whose config file holds conf. A short root under /tmp keeps the socket
// path under the 108-byte limit. Cleanup stops, by PID, every process that carries the home's
// environment (the daemon and local agents) and removes the directory.
func newHome(t testing.TB, conf string) *home {
	t.Helper()
	bin := shoaltest.Binary(t)
	builtBinary.Store(&bin)
	root, err := os.MkdirTemp("", "shoal-f-")
	if err != nil {
		t.Fatal(err)
	}
	h := &home{t: t, bin: bin, root: root, socket: filepath.Join(root, "run", "shoal", "shoal.sock"),
		state: filepath.Join(root, "state", "shoal"), cache: filepath.Join(root, "cache", "shoal"),
		config: filepath.Join(root, "cfg", "shoal", "config.toml")}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "XDG_") || strings.HasPrefix(kv, "SSH_AUTH_SOCK=") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	for k, d := range map[string]string{"XDG_RUNTIME_DIR": "run", "XDG_STATE_HOME": "state",
		"XDG_CONFIG_HOME": "cfg", "XDG_CACHE_HOME": "cache", "HOME": "home"} {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, k+"="+p)
	}
	env = append(env, "XDG_CONFIG_DIRS="+filepath.Join(root, "nonexistent"))
	h.env = env
	h.marker = []byte("XDG_RUNTIME_DIR=" + filepath.Join(root, "run") + "\x00")
	if err := os.MkdirAll(filepath.Dir(h.config), 0o700); err != nil {
		t.Fatal(err)
	}
	h.writeConfig(conf)
	t.Cleanup(func() {
		h.stopAll()
		os.RemoveAll(root)
	})
	return h
}

// writeConfig replaces the config file.
func (h *home) writeConfig(conf string) {
	h.t.Helper()
	if err := os.WriteFile(h.config, []byte(conf), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// fleetConfig returns a config naming hosts h001..hN of a fleet whose ssh_config is sshConfig.
func fleetConfig(sshConfig string, n int, extra string) string {
	return fmt.Sprintf("fanout = 256\n[ssh]\nssh_config = %q\nconnect_timeout = \"3s\"\n[[host]]\nname = \"h[001-%03d]\"\n%s",
		sshConfig, n, extra)
}

// localConfig returns a config naming local-transport hosts lab1..labN.
func localConfig(n int, extra string) string {
	return fmt.Sprintf("fanout = 256\n[[host]]\nname = \"lab[1-%d]\"\ntransport = \"local\"\n%s", n, extra)
}

// procs lists the pids of processes carrying h's environment marker.
func (h *home) procs() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(environ, h.marker) {
			out = append(out, pid)
		}
	}
	return out
}

// daemons lists the pids of `shoal daemon` processes of h.
func (h *home) daemons() []int {
	var out []int
	for _, pid := range h.procs() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.HasPrefix(cmdline, []byte(h.bin+"\x00daemon\x00")) || bytes.Equal(cmdline, []byte(h.bin+"\x00daemon")) {
			out = append(out, pid)
		}
	}
	return out
}

// daemonPID returns the one daemon of h, failing the test when there is not exactly one.
func (h *home) daemonPID() int {
	h.t.Helper()
	d := h.daemons()
	if len(d) != 1 {
		h.t.Fatalf("%d daemons running (%v); want 1", len(d), d)
	}
	return d[0]
}

// stopAll stops the daemon (SIGTERM, then SIGKILL) and then any process of h left over.
func (h *home) stopAll() {
	for _, pid := range h.daemons() {
		syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(pid, 10*time.Second) {
			syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, 5*time.Second)
		}
	}
	for range 3 {
		left := h.procs()
		if len(left) == 0 {
			return
		}
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, pid := range left {
			waitGone(pid, 5*time.Second)
		}
	}
}

// waitGone waits, bounded, until pid has exited, reaping it when it is our child or was
// re-parented to us. It reports whether the process is gone.
func waitGone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		if wpid, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); wpid == pid {
			return true
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if i := bytes.LastIndexByte(st, ')'); i > 0 && bytes.HasPrefix(st[i:], []byte(") Z")) {
			tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
			if len(tasks) <= 1 {
				// A zombie that is not ours: its parent reaps it.
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// result is the outcome of one shoal command line.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// shoal runs the shoal binary with args in h's environment, killing it after limit.
func (h *home) shoal(limit time.Duration, args ...string) result {
	h.t.Helper()
	return h.shoalIn(limit, nil, args...)
}

// shoalIn is shoal with stdin.
func (h *home) shoalIn(limit time.Duration, stdin []byte, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env
	cmd.Dir = h.root
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		h.t.Fatalf("shoal %q did not finish within %v (a hang); stderr:\n%s", args, limit, clip(r.stderr))
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		h.t.Fatalf("running shoal %q: %v", args, err)
	}
	noPanic(h.t, r.stderr)
	return r
}

// noPanic fails t when out shows a Go panic or a race report.
func noPanic(t testing.TB, out string) {
	t.Helper()
	for _, bad := range []string{"panic:", "goroutine ", "WARNING: DATA RACE", "fatal error:"} {
		if strings.Contains(out, bad) {
			t.Errorf("output shows %q:\n%s", bad, clip(out))
		}
	}
}

// clip shortens s for a failure message.
func clip(s string) string {
	if len(s) > 3000 {
		return s[:1500] + "\n...\n" + s[len(s)-1500:]
	}
	return s
}

// jsonResult is one line of `shoal run --json`.
type jsonResult struct {
	Host      string  `json:"host"`
	Status    string  `json:"status"`
	ExitCode  *int    `json:"exit_code"`
	Signal    *string `json:"signal"`
	Stdout    string  `json:"stdout"`
	Stderr    string  `json:"stderr"`
	Error     *string `json:"error"`
	Reason    *string `json:"reason"`
	Truncated bool    `json:"truncated"`
}

// parseResults decodes the JSON lines of `shoal --json run`, keyed by host.
func parseResults(t testing.TB, out string) map[string]jsonResult {
	t.Helper()
	m := map[string]jsonResult{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r jsonResult
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("decoding JSON line %q: %v", clip(string(line)), err)
		}
		if r.Host != "" && r.Status != "" {
			m[r.Host] = r
		}
	}
	return m
}

// hostNames returns prefix001..prefixN (or prefix1..N when width is 0).
func hostNames(prefix string, n, width int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%0*d", prefix, width, i+1)
	}
	return out
}

// checkEveryHost counts results and fails t for each host without a result or a clear error.
func checkEveryHost(t testing.TB, res map[string]jsonResult, hosts []string) {
	t.Helper()
	for _, hn := range hosts {
		nCommands.Add(1)
		r, ok := res[hn]
		switch {
		case !ok:
			nLost.Add(1)
			t.Errorf("%s: no result", hn)
		case r.Status != "ok" && r.Status != "failed" && (r.Error == nil || *r.Error == ""):
			nLost.Add(1)
			t.Errorf("%s: status %s without an error message", hn, r.Status)
		}
	}
}

// dial connects a client to h's daemon, starting one when none answers.
func (h *home) dial() *client.Client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Socket: h.socket, Version: "dev",
		Start: &client.StartOptions{Binary: h.bin, Env: h.env, LogFile: filepath.Join(h.root, "daemon.out")}})
	if err != nil {
		h.t.Fatalf("dialling the daemon: %v", err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// collect drains a run's events and returns the results by host, failing t after limit.
func collect(t testing.TB, r *client.Run, limit time.Duration) map[string]*proto.HostResult {
	t.Helper()
	out := map[string]*proto.HostResult{}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-r.Events:
			if !ok {
				return out
			}
			if ev.Kind == proto.EventDone {
				out[ev.Host] = ev.Result
			}
		case <-timer.C:
			r.Cancel()
			t.Fatalf("run %d: no end within %v (a hang); %d results so far", r.ID, limit, len(out))
			return out
		}
	}
}

// checkClientResults is checkEveryHost for client results.
func checkClientResults(t testing.TB, res map[string]*proto.HostResult, hosts []string) {
	t.Helper()
	for _, hn := range hosts {
		nCommands.Add(1)
		r := res[hn]
		switch {
		case r == nil:
			nLost.Add(1)
			t.Errorf("%s: no result", hn)
		case r.Status != proto.StatusOK && r.Status != proto.StatusFailed && r.Err == "":
			nLost.Add(1)
			t.Errorf("%s: status %s without an error message", hn, r.Status)
		}
	}
}

// waitFor polls cond every 20 ms until it holds or limit passes, and reports whether it held.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childrenOf returns the direct children of pid.
func childrenOf(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// ppidOf returns the parent pid of pid, or 0.
func ppidOf(pid int) int {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(st[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(st, ')')
	return i > 0 && !bytes.HasPrefix(st[i:], []byte(") Z"))
}

// knownBug records a bug found in a package still being written: the test goes on, and the
// bug is logged with a "KNOWN BUG" prefix that names the package so it can be routed.
func knownBug(t testing.TB, pkg, format string, args ...any) {
	t.Helper()
	nKnownBugs.Add(1)
	t.Logf("KNOWN BUG (%s): %s", pkg, fmt.Sprintf(format, args...))
}

var nKnownBugs atomic.Int64
