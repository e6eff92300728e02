package daemon_test

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport/local"
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
			tr := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: b.TempDir()}
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
					if ev.Kind == client.EventDone && ev.Result.Status != client.StatusOK {
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
					if ev.Kind == client.EventDone && ev.Result.Status != client.StatusOK {
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
