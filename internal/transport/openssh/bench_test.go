package openssh_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/openssh"
	"golang.org/x/sync/errgroup"
)

// BenchmarkWarmConnect measures connect + hello with the agent installed, through one ssh process
// per host, for comparison with the in-process transport's benchmark of the same name.
func BenchmarkWarmConnect(b *testing.B) {
	n := 50
	if v, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_HOSTS")); err == nil && v > 0 {
		n = v
	}
	f := shoaltest.StartFleet(b, shoaltest.FleetOptions{N: n, SharedHome: true})
	tr := openssh.New(openssh.Options{ConfigFile: f.SSHConfig, Source: f.AgentSource(b)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	round := func() []transport.Conn {
		conns := make([]transport.Conn, n)
		var g errgroup.Group
		g.SetLimit(64)
		for i, h := range f.Hosts {
			g.Go(func() error {
				c, err := tr.Connect(ctx, transport.Target{Name: h.Name})
				if err != nil {
					return err
				}
				conns[i] = c
				pc := proto.NewConn(c, c, proto.ConnOptions{ReadBufferSize: 4096})
				if err := pc.Send(0, proto.TypeHello, &proto.Hello{Protocol: proto.Version}); err != nil {
					return err
				}
				_, err = pc.Recv()
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		return conns
	}
	closeAll := func(conns []transport.Conn) {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	closeAll(round()) // install once
	b.ResetTimer()
	for range b.N {
		conns := round()
		b.StopTimer()
		closeAll(conns)
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "hosts")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*n), "ms/host")
}
