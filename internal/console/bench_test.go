package console

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/show"
)

// BenchmarkExec measures the console's side of a command on many hosts: consuming the events,
// folding the results and rendering them, with a daemon that answers at once.
func BenchmarkExec(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		for _, mode := range []show.Mode{show.ModeGather, show.ModeStream, show.ModeJSON} {
			b.Run(fmt.Sprintf("hosts=%d/%s", n, mode), func(b *testing.B) {
				hosts := make([]string, n)
				for i := range hosts {
					hosts[i] = fmt.Sprintf("web%05d", i)
				}
				f := newFake(func(host, cmd string) (proto.HostResult, bool) {
					r := proto.HostResult{Host: host, Status: proto.StatusOK, Stdout: []byte("Wed Nov 25 22:17:50 UTC 2026\n")}
					if host == "web00042" {
						r.Stdout = []byte("Wed Nov 25 22:17:53 UTC 2026\n")
					}
					return r, false
				})
				defer f.Close()
				req := client.RunRequest{Hosts: hosts, Command: "date"}
				v := show.View{Out: io.Discard, Mode: mode, Summary: true}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := show.Run(context.Background(), f, req, v, nil); err != nil {
						b.Fatal(err)
					}
					<-f.started
				}
			})
		}
	}
}

// BenchmarkCompleteHosts measures completing a host name among 100,000 configured hosts.
func BenchmarkCompleteHosts(b *testing.B) {
	names := make([]string, 100000)
	for i := range names {
		names[i] = fmt.Sprintf("rack%03d-n%03d", i/1000, i%1000)
	}
	c := &console{opt: Options{HostNames: func() []string { return names }}}
	for b.Loop() {
		_, cands := c.complete(":target web01,rack042-n", len(":target web01,rack042-n"))
		if len(cands) != 500 {
			b.Fatalf("got %d candidates", len(cands))
		}
	}
}
