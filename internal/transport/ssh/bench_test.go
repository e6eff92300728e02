package ssh_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"golang.org/x/sync/errgroup"
)

// benchHosts returns the fleet size for benchmarks: SHOAL_BENCH_HOSTS, default def.
func benchHosts(def int) int {
	if n, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_HOSTS")); err == nil && n > 0 {
		return n
	}
	return def
}

// connectAll connects to every host of f at once, exchanges hellos and runs `true` through
// each agent, and returns the open connections.
func connectAll(b testing.TB, tr transport.Transport, f *shoaltest.Fleet) []transport.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conns := make([]transport.Conn, len(f.Hosts))
	var g errgroup.Group
	g.SetLimit(64) // like the daemon's bound on concurrent handshakes
	for i, h := range f.Hosts {
		g.Go(func() error {
			c, err := tr.Connect(ctx, transport.Target{Name: h.Name})
			if err != nil {
				return err
			}
			conns[i] = c
			pc := proto.NewConn(c, c, proto.ConnOptions{ReadBufferSize: 4096})
			hello(b, pc)
			if _, code := run(b, pc, 1, "true"); code != 0 {
				return fmt.Errorf("%s: true exited %d", h.Name, code)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return conns
}

func closeAll(conns []transport.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// BenchmarkColdInstall measures connect + install + `true` on every host of a fleet whose hosts
// have no agent (each has its own home). The fleet offers curve25519-sha256 only.
func BenchmarkColdInstall(b *testing.B) {
	n := benchHosts(50)
	bin := shoaltest.Binary(b)
	f := shoaltest.StartFleet(b, shoaltest.FleetOptions{N: n})
	tr := newTransport(f, bin)
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for _, h := range f.Hosts {
			os.RemoveAll(filepath.Join(h.Home, ".cache"))
		}
		b.StartTimer()
		cpu0 := selfCPU()
		conns := connectAll(b, tr, f)
		cpu += selfCPU() - cpu0
		b.StopTimer()
		for _, c := range conns {
			if !c.Info().Installed {
				b.Fatalf("cold connect did not install")
			}
		}
		closeAll(conns)
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "hosts")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*n), "ms/host")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N*n), "client-CPU-ms/host")
}

// selfCPU returns the user and system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWarmConnect measures connect + hello + `true` when the agent is already installed.
func BenchmarkWarmConnect(b *testing.B) {
	for _, def := range []bool{false, true} {
		b.Run(fmt.Sprintf("serverDefaultKex=%v", def), func(b *testing.B) {
			n := benchHosts(50)
			bin := shoaltest.Binary(b)
			f := shoaltest.StartFleet(b, shoaltest.FleetOptions{N: n, SharedHome: true, ServerDefaultKex: def})
			tr := newTransport(f, bin)
			closeAll(connectAll(b, tr, f)) // install once
			b.ResetTimer()
			for range b.N {
				conns := connectAll(b, tr, f)
				b.StopTimer()
				for _, c := range conns {
					if c.Info().Installed {
						b.Fatalf("warm connect uploaded the agent")
					}
				}
				closeAll(conns)
				b.StartTimer()
			}
			b.ReportMetric(float64(n), "hosts")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*n), "ms/host")
		})
	}
}

// BenchmarkIdleSessionMemory measures the daemon-side memory (Go heap and stacks) held per open
// SSH connection whose agent is idle, and the goroutines per connection. The proto.Conn read
// buffer (4 KiB here) is included.
func BenchmarkIdleSessionMemory(b *testing.B) {
	n := benchHosts(50)
	bin := shoaltest.Binary(b)
	f := shoaltest.StartFleet(b, shoaltest.FleetOptions{N: n, SharedHome: true})
	tr := newTransport(f, bin)
	closeAll(connectAll(b, tr, f))
	var perHost, goroutines float64
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		conns := connectAll(b, tr, f)
		runtime.GC()
		runtime.ReadMemStats(&after)
		g1 := runtime.NumGoroutine()
		perHost = float64(after.HeapAlloc+after.StackInuse-before.HeapAlloc-before.StackInuse) / float64(n)
		goroutines = float64(g1-g0) / float64(n)
		closeAll(conns)
	}
	b.ReportMetric(perHost/1024, "KiB/host")
	b.ReportMetric(goroutines, "goroutines/host")
}
