package daemon_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
	sshtr "github.com/shoal-sh/shoal/internal/transport/ssh"
)

// BenchmarkWarmDate runs `date` on N hosts whose agents (`shoal agent` processes, the
// local transport) are already connected, through an in-process daemon on a Unix
// socket, against starting N `bash -c date` processes directly.
func BenchmarkWarmDate(b *testing.B) {
	for _, n := range []int{10, 50, 200} {
		hosts := make([]string, n)
		for i := range hosts {
			hosts[i] = fmt.Sprintf("h%d", i+1)
		}
		b.Run(fmt.Sprintf("daemon/hosts=%d", n), func(b *testing.B) {
			tr := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: shoaltest.AgentDir(b)}
			// The first connect starts n agents at once, each hashing its binary.
			d := startDaemonTweak(b, tr, func(o *daemon.Options) { o.Session.ConnectTimeout = 2 * time.Minute })
			c, err := client.Dial(context.Background(), client.Options{Socket: d.socket})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
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
			run()
			b.ResetTimer()
			for b.Loop() {
				run()
			}
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

// BenchmarkRouting runs a command on N hosts whose fake agents answer at once: the
// cost of the client, the daemon and the host sessions alone, per run.
func BenchmarkRouting(b *testing.B) {
	for _, n := range []int{10, 200, 1000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			hosts := make([]string, n)
			for i := range hosts {
				hosts[i] = fmt.Sprintf("h%d", i+1)
			}
			tr := &instantTransport{}
			b.Cleanup(tr.wg.Wait) // runs after the daemon's cleanup has closed the sessions
			d := startDaemonTweak(b, tr, nil)
			c, err := client.Dial(context.Background(), client.Options{Socket: d.socket})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
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
			run()
			b.ResetTimer()
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/host")
		})
	}
}

// BenchmarkFleetWarmDate runs `date` on N real sshd hosts (agents installed and
// connected over in-process SSH) and reports the daemon process's resident memory
// per connected host.
func BenchmarkFleetWarmDate(b *testing.B) {
	for _, n := range []int{10, 30} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			f := shoaltest.StartFleet(b, shoaltest.FleetOptions{N: n})
			tr := sshtr.New(sshtr.Options{Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"}, Source: f.AgentSource(b)})
			d := startDaemonTweak(b, tr, func(o *daemon.Options) {
				o.Session.ConnectTimeout = 2 * time.Minute
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
			debug.FreeOSMemory()
			rss0 := selfRSSKiB()
			run()
			debug.FreeOSMemory() // drop what the agent uploads left behind
			perHost := float64(selfRSSKiB()-rss0) / float64(n)
			b.ResetTimer()
			for b.Loop() {
				run()
			}
			b.ReportMetric(perHost, "daemon-KiB/host")
		})
	}
}

// selfRSSKiB returns this process's resident set size in KiB.
func selfRSSKiB() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
