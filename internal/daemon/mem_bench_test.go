package daemon_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	sshtr "github.com/shoal-sh/shoal/internal/transport/ssh"
)

// benchHosts returns the fleet size for benchmarks: SHOAL_BENCH_HOSTS, default def.
func benchHosts(def int) int {
	if n, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_HOSTS")); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkFleetIdleMemory connects an in-process daemon to N real sshd hosts
// (SHOAL_BENCH_HOSTS, default 10) over in-process SSH, runs `true` on every host
// once, and reports what each connected idle host costs the daemon: live heap,
// goroutine stacks, goroutines and resident memory (this process, which holds the
// daemon and one client; the GC runs at the resident daemon's GOGC=30). With
// SHOAL_BENCH_COLD=1 every host gets the agent installed by the daemon. With
// SHOAL_BENCH_PROFILE=dir it writes a heap profile and a goroutine dump there.
func BenchmarkFleetIdleMemory(b *testing.B) {
	n := benchHosts(10)
	if os.Getenv("SHOAL_BENCH_PROFILE") != "" {
		defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1024
	}
	defer debug.SetGCPercent(debug.SetGCPercent(30))
	// SHOAL_BENCH_COLD=1 gives every host its own home, so the daemon installs the
	// agent on each: what a first contact leaves behind.
	cold := os.Getenv("SHOAL_BENCH_COLD") == "1"
	f := shoaltest.StartFleet(b, shoaltest.FleetOptions{N: n, SharedHome: !cold})
	// Agents' stderr goes to a plain writer, as the daemon's log forwarder is.
	stderr := func(string) io.Writer { return discard{} }
	tr := sshtr.New(sshtr.Options{Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"}, Source: f.AgentSource(b), Stderr: stderr})
	d := startDaemonTweak(b, tr, func(o *daemon.Options) {
		o.Session.ConnectTimeout = 5 * time.Minute
		o.Resolve = func(host string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: host}, Transport: tr, TransportName: "ssh"}, nil
		}
	})
	c, err := client.Dial(context.Background(), client.Options{Socket: d.socket})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	hosts := f.Names()
	run := func() {
		r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: "true"})
		if err != nil {
			b.Fatal(err)
		}
		ok := 0
		for ev := range r.Events {
			if ev.Kind == proto.EventDone {
				if ev.Result.Status != proto.StatusOK {
					b.Fatalf("%s: %+v", ev.Host, ev.Result)
				}
				ok++
			}
		}
		if ok != n {
			b.Fatalf("%d hosts answered; want %d", ok, n)
		}
	}
	// The first host pays for the install (and the binary's hash); connect it
	// alone so that the baseline already includes those one-time costs.
	r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts[:1], Command: "true"})
	if err != nil {
		b.Fatal(err)
	}
	for range r.Events {
	}
	measure := func() (runtime.MemStats, int, int) {
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms, runtime.NumGoroutine(), selfRSSKiB()
	}
	ms0, g0, rss0 := measure()
	run()
	ms1, g1, rss1 := measure()
	if dir := os.Getenv("SHOAL_BENCH_PROFILE"); dir != "" {
		writeProfiles(b, dir)
	}
	m := float64(n - 1)
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	b.ReportMetric(float64(n), "hosts")
	b.ReportMetric(float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/1024/m, "heap-KiB/host")
	b.ReportMetric(float64(int64(ms1.StackInuse)-int64(ms0.StackInuse))/1024/m, "stack-KiB/host")
	b.ReportMetric(float64(g1-g0)/m, "goroutines/host")
	b.ReportMetric(float64(rss1-rss0)/m, "RSS-KiB/host")
}

// writeProfiles writes a heap profile and a goroutine dump into dir.
func writeProfiles(b *testing.B, dir string) {
	for _, p := range []struct {
		name, file string
		debug      int
	}{{"heap", "heap.pprof", 0}, {"goroutine", "goroutines.txt", 1}} {
		fh, err := os.Create(filepath.Join(dir, p.file))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup(p.name).WriteTo(fh, p.debug); err != nil {
			b.Fatal(err)
		}
		fh.Close()
	}
}

// discard is a writer without ReadFrom, like the daemon's agent stderr forwarder.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
