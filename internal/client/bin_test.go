package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// Daemons are started detached: their starter exits and they are re-parented.
	// Becoming their subreaper lets the tests reap them instead of leaving zombies
	// to an init that may not reap.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	shoaltest.Main(m)
}

// home is a private set of XDG directories for one test's daemon.
type home struct {
	bin    string
	root   string
	env    []string
	socket string
}

// newHome builds the shoal binary and XDG directories under a temp dir, with a config
// of local-transport hosts lab1…labN. It skips when the binary has no daemon command.
func newHome(t testing.TB, hosts int) *home {
	t.Helper()
	bin := shoaltest.Binary(t)
	if out, err := exec.Command(bin, "daemon", "--help").CombinedOutput(); err != nil {
		t.Skipf("this shoal has no daemon command yet (root.go): %v: %s", err, out)
	}
	// A short root keeps the socket path under the 108-byte limit.
	root, err := os.MkdirTemp("", "shoal-home-")
	if err != nil {
		t.Fatal(err)
	}
	h := &home{bin: bin, root: root, socket: filepath.Join(root, "run", "shoal", "shoal.sock")}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	for k, d := range map[string]string{"XDG_RUNTIME_DIR": "run", "XDG_STATE_HOME": "state", "XDG_CONFIG_HOME": "cfg", "XDG_CACHE_HOME": "cache"} {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, k+"="+p)
	}
	h.env = env
	os.MkdirAll(filepath.Join(root, "cfg", "shoal"), 0o700)
	conf := "fanout = 256\n"
	if hosts > 0 {
		conf += fmt.Sprintf("[[host]]\nname = \"lab[1-%d]\"\ntransport = \"local\"\n", hosts)
	}
	if err := os.WriteFile(filepath.Join(root, "cfg", "shoal", "config.toml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range h.daemons() {
			syscall.Kill(pid, syscall.SIGTERM)
			h.waitGone(t, pid)
		}
		os.RemoveAll(root)
	})
	return h
}

func (h *home) options() client.Options {
	return client.Options{Socket: h.socket, Version: "dev", Start: &client.StartOptions{Binary: h.bin, Env: h.env}}
}

func (h *home) dial(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), h.options())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// daemons lists the pids of `shoal daemon` processes using this home.
func (h *home) daemons() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	marker := []byte("XDG_RUNTIME_DIR=" + filepath.Join(h.root, "run") + "\x00")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		// A started daemon may carry flags after "daemon" (--log FILE).
		if !bytes.HasPrefix(cmdline, []byte(h.bin+"\x00daemon\x00")) {
			continue
		}
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if bytes.Contains(environ, marker) {
			out = append(out, pid)
		}
	}
	return out
}

// waitGone waits, bounded, until pid has exited (it is not our child: init reaps it).
func (h *home) waitGone(t testing.TB, pid int) {
	t.Helper()
	for range 1000 {
		var ws syscall.WaitStatus
		if wpid, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); wpid == pid {
			return
		}
		// A zombie leader may still have threads tearing down (and its socket open):
		// gone means no process, or a zombie with no thread left but the leader.
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil || (bytes.Contains(st, []byte(") Z ")) && len(tasks) <= 1) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("daemon %d did not exit within 10s", pid)
}

func TestTenRacingClientsStartOneDaemon(t *testing.T) {
	h := newHome(t, 0)
	var wg sync.WaitGroup
	pids := make([]int, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(context.Background(), h.options())
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			st, err := c.Status(context.Background())
			if err != nil {
				errs[i] = err
				return
			}
			pids[i] = st.PID
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	for i, pid := range pids {
		if pid != pids[0] || pid == 0 {
			t.Errorf("client %d talked to daemon %d, client 0 to %d", i, pid, pids[0])
		}
	}
	if d := h.daemons(); len(d) != 1 {
		t.Errorf("%d daemons running (%v); want exactly 1", len(d), d)
	}
}

func TestDaemonKilledIsRestarted(t *testing.T) {
	h := newHome(t, 2)
	c := h.dial(t)
	pid1 := c.DaemonPID()
	c.Close()
	if err := syscall.Kill(pid1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.waitGone(t, pid1)
	// The socket file is still there, stale: the next client must start a new daemon anyway.
	if _, err := os.Stat(h.socket); err != nil {
		t.Fatalf("stale socket gone: %v", err)
	}
	c2 := h.dial(t)
	if c2.DaemonPID() == pid1 || c2.DaemonPID() == 0 {
		t.Fatalf("daemon pid %d after restart; want a new one (old %d)", c2.DaemonPID(), pid1)
	}
	r, err := c2.Run(context.Background(), client.RunRequest{Hosts: []string{"lab1", "lab2"}, Command: "echo hi"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ev := range r.Events {
		if ev.Kind == proto.EventDone {
			n++
			if ev.Result.Status != proto.StatusOK || string(ev.Result.Stdout) != "hi\n" {
				t.Errorf("%s: %+v", ev.Host, ev.Result)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d results; want 2", n)
	}
}

func TestStatusAndStopCommands(t *testing.T) {
	h := newHome(t, 1)
	c := h.dial(t)
	pid := c.DaemonPID()
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"lab1"}, Command: "true"})
	if err != nil {
		t.Fatal(err)
	}
	for range r.Events {
	}
	c.Close()
	st := exec.Command(h.bin, "daemon", "status")
	st.Env = h.env
	out, err := st.CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("pid %d,", pid)) || !strings.Contains(string(out), "lab1  ready") ||
		!strings.Contains(string(out), " goroutines, heap ") || !strings.Contains(string(out), " fds\n") {
		t.Errorf("shoal daemon status: %v:\n%s", err, out)
	}
	cmd := exec.Command(h.bin, "daemon", "stop")
	cmd.Env = h.env
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "stopped") {
		t.Fatalf("shoal daemon stop: %v: %s", err, out)
	}
	h.waitGone(t, pid)
	if _, err := client.Dial(context.Background(), client.Options{Socket: h.socket}); !errors.Is(err, client.ErrNotRunning) {
		t.Errorf("Dial after stop: %v; want ErrNotRunning", err)
	}
}

// BenchmarkWarmDate measures one `date` on N local-transport hosts through a running
// daemon whose agents are already connected, against starting N `bash -c date`.
func BenchmarkWarmDate(b *testing.B) {
	for _, n := range []int{10, 50, 200} {
		hosts := make([]string, n)
		for i := range hosts {
			hosts[i] = fmt.Sprintf("lab%d", i+1)
		}
		b.Run(fmt.Sprintf("daemon/hosts=%d", n), func(b *testing.B) {
			h := newHome(b, n)
			c := h.dial(b)
			run := func() {
				r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: "date"})
				if err != nil {
					b.Fatal(err)
				}
				for ev := range r.Events {
					if ev.Kind == proto.EventDone && ev.Result.Status != proto.StatusOK {
						b.Fatalf("%s: %+v", ev.Host, ev.Result)
					}
				}
			}
			rss0 := rssKiB(c.DaemonPID())
			run() // connect every agent
			perHost := float64(rssKiB(c.DaemonPID())-rss0) / float64(n)
			b.ResetTimer()
			for b.Loop() {
				run()
			}
			b.ReportMetric(perHost, "daemon-KiB/host")
		})
		b.Run(fmt.Sprintf("bash/procs=%d", n), func(b *testing.B) {
			for b.Loop() {
				var wg sync.WaitGroup
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := exec.Command("bash", "-c", "date").Run(); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

// rssKiB returns the resident set size of pid in KiB, from /proc.
func rssKiB(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
