package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// shoalTool runs the real shoal binary with its own XDG directories.
type shoalTool struct {
	k       *kit
	timeout time.Duration
	env     []string
	// What the binary offers, probed from its help output.
	hasRun, hasDaemon, hasPut bool
	version                   string
}

// shoalInfo is recorded in the results.
type shoalInfo struct {
	Version   string `json:"version"`
	HasRun    bool   `json:"has_run"`
	HasDaemon bool   `json:"has_daemon"`
	HasPut    bool   `json:"has_put"`
}

func newShoalTool(k *kit, timeout time.Duration) *shoalTool {
	s := &shoalTool{k: k, timeout: timeout, env: k.shoalEnv()}
	subs := s.subcommands()
	s.hasRun = subs["run"]
	s.hasDaemon = subs["daemon"]
	s.hasPut = subs["put"]
	out, _ := s.output("--version")
	s.version = strings.TrimSpace(string(out))
	return s
}

func (s *shoalTool) describe() shoalInfo {
	return shoalInfo{Version: s.version, HasRun: s.hasRun, HasDaemon: s.hasDaemon, HasPut: s.hasPut}
}

func (s *shoalTool) output(args ...string) ([]byte, error) { return s.outputEnv(nil, args...) }

func (s *shoalTool) outputEnv(env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	c := exec.CommandContext(ctx, s.k.shoal, args...)
	c.Env = append(append(os.Environ(), s.env...), env...)
	return c.CombinedOutput()
}

// gcLineRE matches a gctrace line's heap sizes: before -> after -> live MB.
var gcLineRE = regexp.MustCompile(`gc \d+ @.* (\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

// daemonLiveHeap returns the live heap after the daemon's last GC, in KiB (0 when unknown).
func (s *shoalTool) daemonLiveHeap() int64 {
	b, err := os.ReadFile(filepath.Join(s.k.work, "xdg", "state", "shoal", "daemon.log"))
	if err != nil {
		return 0
	}
	m := gcLineRE.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return 0
	}
	v, _ := strconv.ParseInt(string(m[len(m)-1][3]), 10, 64)
	return v * 1024
}

// subcommands lists the commands `shoal --help` shows.
func (s *shoalTool) subcommands() map[string]bool {
	out, _ := s.output("--help")
	subs := map[string]bool{}
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Available Commands:"):
			in = true
		case in && strings.HasPrefix(line, "  "):
			if f := strings.Fields(line); len(f) > 0 {
				subs[f[0]] = true
			}
		case in && strings.TrimSpace(line) == "":
			in = false
		}
	}
	return subs
}

// notAvailable is a tool that fails at once with a clear reason.
func notAvailable(name, why string) *tool {
	return &tool{name: name, cmd: func(_, _ int) invocation {
		return invocation{argv: []string{"sh", "-c", `echo "$1" >&2; exit 3`, "na", "not yet available: " + why}}
	}}
}

// runArgs returns `shoal -F CFG run [extra...] TARGETS -- CMD`.
func (s *shoalTool) runArgs(n int, cmd string, extra ...string) []string {
	a := []string{s.k.shoal, "-F", s.k.fl.sshConfig, "run", "--fanout", fmt.Sprint(n)}
	a = append(a, extra...)
	return append(a, hostRange(n), "--", cmd)
}

// cold runs shoal without a daemon, agents already installed (a warm-up run installs them).
func (s *shoalTool) cold(cmd string) *tool {
	if !s.hasRun {
		return notAvailable("shoal-cold", "`shoal run` has not landed")
	}
	installed := 0
	return &tool{name: "shoal-cold",
		before: func(n int) error {
			if installed >= n {
				return nil
			}
			// Make sure the agents are there: one untimed run installs them.
			c := exec.Command(s.runArgs(n, "true", "--no-daemon")[0], s.runArgs(n, "true", "--no-daemon")[1:]...)
			c.Env = append(os.Environ(), s.env...)
			if out, err := c.CombinedOutput(); err != nil {
				return fmt.Errorf("installing agents: %v: %s", err, tail(string(out), 300))
			}
			installed = n
			return nil
		},
		cmd: func(n, _ int) invocation {
			return invocation{argv: s.runArgs(n, cmd, "--no-daemon"), env: s.env}
		}}
}

// first runs shoal without a daemon on hosts whose agent was removed just before.
func (s *shoalTool) first(cmd string) *tool {
	if !s.hasRun {
		return notAvailable("shoal-first", "`shoal run` has not landed")
	}
	return &tool{name: "shoal-first",
		before: func(n int) error {
			for i := 1; i <= n; i++ {
				if err := removeAgentDir(filepath.Join(s.k.fl.homeDir(i), ".cache", "shoal")); err != nil {
					return err
				}
			}
			// All the hosts' homes share one file system, and ext4 skips inodes freed in the
			// last 5 s (10 s while their blocks are dirty) when it allocates: the agents'
			// first files would search past the thousands just freed, at about 8x the CPU of
			// a create. A real host freed nothing just before; write them out and let them age.
			syscall.Sync()
			time.Sleep(6 * time.Second)
			return nil
		},
		cmd: func(n, _ int) invocation {
			return invocation{argv: s.runArgs(n, cmd, "--no-daemon"), env: s.env}
		},
		check: func(out []byte, n int) error {
			if got, missing := countMarkers(out, n); got != n {
				return fmt.Errorf("%d of %d hosts answered (missing %s)", got, n, strings.Join(missing, ","))
			}
			// The agent must have been installed again on every host.
			for i := 1; i <= n; i++ {
				m, _ := filepath.Glob(filepath.Join(s.k.fl.homeDir(i), ".cache", "shoal", "agent-*"))
				if len(m) == 0 {
					return fmt.Errorf("no agent installed on %s after first contact", hostName(i))
				}
			}
			return nil
		}}
}

// daemonPid finds the running shoal daemon started from our binary.
func (s *shoalTool) daemonPid() int {
	for _, p := range listPids() {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p))
		if err != nil || exe != s.k.shoal {
			continue
		}
		if strings.Contains(cmdline(p), "daemon") {
			return p
		}
	}
	return 0
}

// stopDaemon stops the daemon started by this harness, if any.
func (s *shoalTool) stopDaemon() {
	if !s.hasDaemon {
		return
	}
	s.output("-F", s.k.fl.sshConfig, "daemon", "stop")
	for i := 0; i < 50; i++ {
		p := s.daemonPid()
		if p == 0 {
			return
		}
		if i == 20 {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// warmUp restarts the daemon, connects it to n hosts with one untimed run and returns the
// warm tool, or nil after recording why it is not available.
func (s *shoalTool) warmUp(ctx context.Context, sc, n int, cmd string, res *results) *tool {
	if !s.hasRun || !s.hasDaemon {
		res.cell(sc, "shoal-warm", n).Samples = []sample{{Err: "not yet available: `shoal run` with `shoal daemon` has not landed"}}
		return nil
	}
	s.stopDaemon()
	// gctrace makes the daemon log its live heap after each GC (to its log file), so its
	// memory per host can be split between live data and the collector's headroom.
	if out, err := s.outputEnv([]string{"GODEBUG=gctrace=1"}, "-F", s.k.fl.sshConfig, "daemon", "start"); err != nil {
		res.cell(sc, "shoal-warm", n).Samples = []sample{{Err: "starting daemon: " + oneLine(tail(string(out), 300))}}
		return nil
	}
	pid := s.daemonPid()
	if pid != 0 {
		pss, rss := procMem(pid)
		res.daemonIdle(n, pss, rss)
	}
	iv := invocation{argv: s.runArgs(n, cmd), env: s.env}
	sm, out := runOnce(ctx, iv, runOpts{timeout: s.timeout})
	if got, _ := countMarkers(out, n); !sm.OK || got != n {
		logf("s%d n=%d shoal-warm warm-up FAILED (%d of %d hosts): %s %s", sc, n, got, n, sm.Err, oneLine(tail(string(out), 300)))
	} else {
		logf("s%d n=%d shoal-warm warm-up (connect %d hosts): %.2fs", sc, n, n, sm.Wall)
		res.cell(sc, "shoal-connect", n).Samples = append(res.cell(sc, "shoal-connect", n).Samples, sm)
	}
	return &tool{name: "shoal-warm",
		cmd:       func(n, _ int) invocation { return invocation{argv: s.runArgs(n, cmd), env: s.env} },
		extraPids: func() []int { return nonzero(s.daemonPid()) },
	}
}

// recordDaemon stores the daemon's memory while connected to n hosts.
func (s *shoalTool) recordDaemon(n int, res *results) {
	pid := s.daemonPid()
	if pid == 0 {
		return
	}
	pss, rss := procMem(pid)
	hwm := int64(0)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				fmt.Sscan(f[1], &hwm)
			}
		}
	}
	res.daemonConnected(n, pss, rss, hwm)
	heap := s.daemonLiveHeap()
	res.daemonEntry(n).LiveHeap = heap
	logf("daemon at n=%d: PSS %d KiB, RSS %d KiB, peak RSS %d KiB, live heap after last GC %d KiB", n, pss, rss, hwm, heap)
}

func nonzero(p int) []int {
	if p == 0 {
		return nil
	}
	return []int{p}
}

// put pushes src with `shoal put` (through the daemon when there is one, else --no-daemon).
func (s *shoalTool) put(src, sum string) *tool {
	if !s.hasPut {
		return notAvailable("shoal-put", "`shoal put` has not landed")
	}
	return &tool{name: "shoal-put",
		before: func(n int) error { return s.k.clearPush(n) },
		cmd: func(n, _ int) invocation {
			return invocation{argv: []string{s.k.shoal, "-F", s.k.fl.sshConfig, "put", "--fanout", fmt.Sprint(n), "--no-daemon", hostRange(n), src, pushDest},
				env: s.env}
		},
		check: func(_ []byte, n int) error { return s.k.checkPush(n, src, sum) },
	}
}

// removeAgentDir removes an agent's install directory, retrying for up to 10 s: an agent of the
// previous run may still be on its way out, parking its run directory there.
func removeAgentDir(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := os.RemoveAll(dir)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
