package daemon_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport/local"
)

// BenchmarkFloodMemory runs a command printing 64 MiB on 10 hosts (`shoal agent`
// processes, the local transport, so only the daemon and the client count in this
// process's heap) with the configured 16 MiB output cap. It reports the peak live
// heap sampled during the run, and the heap kept once the run is over and
// collected (what the history and the sessions hold on to).
func BenchmarkFloodMemory(b *testing.B) {
	const n = 10
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("h%d", i+1)
	}
	tr := &local.Transport{Binary: shoaltest.Binary(b), BaseDir: shoaltest.AgentDir(b)}
	d := startDaemonTweak(b, tr, func(o *daemon.Options) {
		o.Session.ConnectTimeout = 2 * time.Minute
		o.OutputCap = 16 << 20
	})
	c, err := client.Dial(context.Background(), client.Options{Socket: d.socket})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	run := func(cmd string) (streamed int64) {
		r, err := c.Run(context.Background(), client.RunRequest{Hosts: hosts, Command: cmd})
		if err != nil {
			b.Fatal(err)
		}
		for ev := range r.Events {
			streamed += int64(len(ev.Data))
			if ev.Kind == proto.EventDone && ev.Result.Status != proto.StatusOK {
				b.Fatalf("%s: %+v", ev.Host, ev.Result)
			}
		}
		return streamed
	}
	run("true") // connect the agents
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	var peak, after uint64
	var streamed int64
	for b.Loop() {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var runPeak uint64
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				runPeak = max(runPeak, m.HeapAlloc)
			}
		}()
		streamed = run("head -c 67108864 /dev/zero")
		close(stop)
		wg.Wait()
		runtime.GC()
		runtime.ReadMemStats(&m)
		peak, after = max(peak, runPeak), m.HeapAlloc
	}
	b.ReportMetric(float64(streamed)/(1<<20), "streamed-MiB")
	b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(int64(after)-int64(base))/(1<<20), "kept-heap-MiB")
}
