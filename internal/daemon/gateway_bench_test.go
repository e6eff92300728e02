package daemon_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	sshtr "github.com/shoal-sh/shoal/internal/transport/ssh"
)

// BenchmarkGatewayTree runs a warm `date` on N sshd fleet hosts reached directly by
// one daemon, and through a front daemon whose two gateways (over mutual TLS on
// loopback) hold N/2 hosts each. The two alternate within each iteration, so drift
// in the machine's load falls on both; it reports each one's wall time per run and
// tree/direct, the tree's cost relative to direct. N is $SHOAL_BENCH_GATEWAY_HOSTS
// (default 100).
func BenchmarkGatewayTree(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_GATEWAY_HOSTS")); err == nil && v > 1 {
		n = v
	}
	f := shoaltest.StartFleet(b, shoaltest.FleetOptions{N: n})
	ssh := sshtr.New(sshtr.Options{Dialer: &sshx.Dialer{ConfigFile: f.SSHConfig, AgentSocket: "none"}, Source: f.AgentSource(b)})
	ca := newTestCA(b, "bench CA")
	names := f.Names()
	// First contact is not measured: connect fewer hosts at once than the default,
	// so that many handshakes on two cores do not time out.
	slow := func(o *daemon.Options) { o.Fanout = 16 }
	direct := startTLSDaemonTweak(b, ca, "direct", ssh, slow)
	gwA := startTLSDaemonTweak(b, ca, "gwa", ssh, slow)
	gwB := startTLSDaemonTweak(b, ca, "gwb", ssh, slow)
	front := startTLSDaemonTweak(b, ca, "front", ssh, slow,
		gatewayTo(ca, "front", gwA, names[:n/2]...), gatewayTo(ca, "front", gwB, names[n/2:]...))
	dial := func(d *tlsDaemon) *client.Client {
		c, err := client.Dial(context.Background(), client.Options{Socket: d.socket, Version: "test"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	cd, ct := dial(direct), dial(front)
	run := func(c *client.Client) time.Duration {
		t0 := time.Now()
		r, err := c.Run(context.Background(), client.RunRequest{Hosts: names, Command: "date"})
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for ev := range r.Events {
			if ev.Kind == proto.EventDone {
				got++
				if ev.Result.Status != proto.StatusOK {
					b.Fatalf("%s: %+v", ev.Host, ev.Result)
				}
			}
		}
		if got != n {
			b.Fatalf("%d results; want %d", got, n)
		}
		return time.Since(t0)
	}
	t0 := time.Now()
	for _, c := range []*client.Client{cd, ct} {
		// Connect and install, not measured; a host whose first handshake timed out
		// on the loaded machine gets another try.
		for try := 0; ; try++ {
			res, err := c.Ping(context.Background(), names)
			if err != nil {
				b.Fatal(err)
			}
			bad := 0
			for _, p := range res {
				if p.Status != proto.StatusOK {
					bad++
				}
			}
			if bad == 0 {
				break
			}
			if try == 3 {
				b.Fatalf("%d hosts still not connected after %d tries", bad, try+1)
			}
		}
	}
	b.Logf("hosts=%d: first contact, direct then tree, took %v", n, time.Since(t0).Round(time.Millisecond))
	var dsum, tsum time.Duration
	b.ResetTimer()
	for b.Loop() {
		dsum += run(cd)
		tsum += run(ct)
	}
	b.ReportMetric(float64(dsum.Microseconds())/1000/float64(b.N), "direct-ms/run")
	b.ReportMetric(float64(tsum.Microseconds())/1000/float64(b.N), "tree-ms/run")
	b.ReportMetric(float64(tsum)/float64(dsum), "tree/direct")
	b.ReportMetric(float64(n), "hosts")
}
