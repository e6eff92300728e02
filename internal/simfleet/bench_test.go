package simfleet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/simfleet"
)

// benchSizes are the fleet sizes of BenchmarkDaemon: SIMFLEET_SIZES (comma-separated, e.g.
// 1000,10000,50000), else 100, so that scripts/check's one pass of every benchmark stays short.
func benchSizes(b *testing.B) []int {
	env := os.Getenv("SIMFLEET_SIZES")
	if env == "" {
		return []int{100}
	}
	var sizes []int
	for _, s := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("SIMFLEET_SIZES: bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// idlePeriod is how long BenchmarkDaemon/idle watches a connected daemon doing nothing:
// SIMFLEET_IDLE (a Go duration), else 10s.
func idlePeriod(b *testing.B) time.Duration {
	if env := os.Getenv("SIMFLEET_IDLE"); env != "" {
		d, err := time.ParseDuration(env)
		if err != nil {
			b.Fatalf("SIMFLEET_IDLE: %v", err)
		}
		return d
	}
	return 10 * time.Second
}

// remoteFleet is a simulated fleet in a process of its own (cmd/simfleet), so that what this
// process measures is the daemon's.
type remoteFleet struct {
	dir, sshConfig string
	names          []string
	cmd            *exec.Cmd
}

func startRemoteFleet(b *testing.B, n int, hashes []string) *remoteFleet {
	b.Helper()
	tmp := b.TempDir()
	bin := filepath.Join(tmp, "simfleet")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/shoal-sh/shoal/cmd/simfleet").CombinedOutput(); err != nil {
		b.Fatalf("building cmd/simfleet: %v\n%s", err, out)
	}
	f := &remoteFleet{dir: filepath.Join(tmp, "fleet")}
	f.sshConfig = filepath.Join(f.dir, "client", "ssh_config")
	f.cmd = exec.Command(bin, "-n", strconv.Itoa(n), "-dir", f.dir, "-installed-hash", strings.Join(hashes, ","))
	f.cmd.Stdout, f.cmd.Stderr = os.Stderr, os.Stderr
	if err := f.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		f.cmd.Process.Signal(syscall.SIGTERM)
		f.cmd.Wait()
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(f.dir, "pid")); err == nil {
			break
		}
		if i > 1200 {
			b.Fatal("simulated fleet not up after 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	hosts, err := os.ReadFile(filepath.Join(f.dir, "hosts"))
	if err != nil {
		b.Fatal(err)
	}
	f.names = strings.Fields(string(hosts))
	return f
}

// usage asks the fleet for its own usage (SIGUSR1) and returns it.
func (f *remoteFleet) usage(b *testing.B) simfleet.Usage {
	b.Helper()
	p := filepath.Join(f.dir, "usage")
	os.Remove(p)
	f.cmd.Process.Signal(syscall.SIGUSR1)
	for range 100 {
		if s, err := os.ReadFile(p); err == nil {
			u, err := simfleet.ParseUsage(string(s))
			if err != nil {
				b.Fatal(err)
			}
			return u
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("the fleet wrote no usage")
	return simfleet.Usage{}
}

// self is this process's CPU, RSS, goroutines and descriptors.
type self struct {
	cpu        time.Duration
	rss        int64
	goroutines int
	fds        int
}

func measureSelf() self {
	debug.FreeOSMemory()
	u := simfleet.ReadUsage()
	ents, _ := os.ReadDir("/proc/self/fd")
	return self{cpu: u.User + u.Sys, rss: u.RSS, goroutines: runtime.NumGoroutine(), fds: len(ents)}
}

func cpuNow() time.Duration {
	u := simfleet.ReadUsage()
	return u.User + u.Sys
}

func mustOK(b *testing.B, got map[string]*proto.HostResult, n int, out string) {
	b.Helper()
	bad := 0
	for h, r := range got {
		if r.Status != proto.StatusOK || (out != "" && len(r.Stdout) != len(out)) {
			if bad++; bad < 5 {
				b.Errorf("%s: %s %s (%d bytes)", h, r.Status, r.Err, len(r.Stdout))
			}
		}
	}
	if len(got) != n || bad > 0 {
		b.Fatalf("%d of %d results, %d not ok", len(got), n, bad)
	}
}

// BenchmarkDaemon measures the in-process daemon against a simulated fleet in another process,
// for each of benchSizes: a cold connect of every host (running true), warm true, 1 KiB of
// output per host, daemon status, the daemon's memory, goroutines and descriptors per connected
// host, and its CPU when connected and idle. The fleet's own CPU is reported apart (fleet-*).
func BenchmarkDaemon(b *testing.B) {
	src, hashes := agentSource(b)
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) { benchDaemon(b, n, src, hashes) })
	}
}

func benchDaemon(b *testing.B, n int, src *install.Source, hashes []string) {
	if want := uint64(2*n + 256); simfleet.RaiseFDLimit(want) < want { // the fleet, our child, needs the most
		b.Skipf("RLIMIT_NOFILE cannot be raised to the %d descriptors the fleet of %d hosts needs", want, n)
	}
	f := startRemoteFleet(b, n, hashes)
	ctx := context.Background()
	var c *client.Client
	var stop func()
	b.Cleanup(func() {
		if stop != nil {
			stop()
		}
	})
	before := measureSelf()

	b.Run("connect-cold", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			if stop != nil {
				stop() // each iteration a fresh daemon; the last one stays for what follows
				c, stop = nil, nil
			}
			cl, st := startDaemonStop(b, f.sshConfig, src)
			fu := f.usage(b)
			cpu := cpuNow()
			b.StartTimer()
			mustOK(b, run(b, cl, client.RunRequest{Hosts: f.names, Command: "true"}, 10*time.Minute), n, "")
			b.StopTimer()
			b.ReportMetric(float64((cpuNow()-cpu).Microseconds())/1000/float64(n), "daemon-cpu-ms/host")
			fu2 := f.usage(b)
			b.ReportMetric(float64((fu2.User+fu2.Sys-fu.User-fu.Sys).Microseconds())/1000/float64(n), "fleet-cpu-ms/host")
			c, stop = cl, st
		}
	})
	if c == nil {
		b.Fatal("no daemon connected")
	}
	b.Run("resources", func(b *testing.B) {
		for range b.N {
			m := measureSelf()
			b.ReportMetric(float64(m.rss-before.rss)/1024/float64(n), "rss-KiB/host")
			b.ReportMetric(float64(m.goroutines-before.goroutines)/float64(n), "goroutines/host")
			b.ReportMetric(float64(m.fds-before.fds)/float64(n), "fds/host")
			fu := f.usage(b)
			b.ReportMetric(float64(fu.RSS)/1024/float64(n), "fleet-rss-KiB/host")
			b.ReportMetric(float64(fu.Goroutines)/float64(n), "fleet-goroutines/host")
		}
	})
	b.Run("true-warm", func(b *testing.B) {
		for range b.N {
			mustOK(b, run(b, c, client.RunRequest{Hosts: f.names, Command: "true"}, 10*time.Minute), n, "")
		}
	})
	out := strings.Repeat(strings.Repeat("x", 63)+"\n", 16)
	b.Run("output-1KiB", func(b *testing.B) {
		for range b.N {
			mustOK(b, run(b, c, client.RunRequest{Hosts: f.names, Command: "output 1024"}, 10*time.Minute), n, out)
		}
	})
	b.Run("status", func(b *testing.B) {
		for range b.N {
			st, err := c.Status(ctx)
			if err != nil || len(st.Hosts) != n {
				b.Fatalf("status: %v, %d hosts; want %d", err, len(st.Hosts), n)
			}
			b.ReportMetric(float64(st.HeapLive)/1024/float64(n), "heap-live-KiB/host")
		}
	})
	b.Run("idle", func(b *testing.B) {
		period := idlePeriod(b)
		for range b.N {
			fu := f.usage(b)
			cpu := cpuNow()
			time.Sleep(period)
			b.ReportMetric(100*float64(cpuNow()-cpu)/float64(period), "daemon-cpu-%")
			fu2 := f.usage(b)
			b.ReportMetric(100*float64(fu2.User+fu2.Sys-fu.User-fu.Sys)/float64(period), "fleet-cpu-%")
		}
	})
}
