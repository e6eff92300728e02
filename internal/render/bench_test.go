package render

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

// benchResults returns 1,000 results of ~1 KiB each: 900 hosts share one of 5
// outputs, 80 failed with outputs of their own, 20 are unreachable (one
// group once the host name is masked).
func benchResults() []proto.HostResult {
	common := make([]string, 5)
	for i := range common {
		common[i] = strings.Repeat(fmt.Sprintf("Filesystem %d  Size Used Avail Use%% Mounted on\n", i), 20)
	}
	rs := make([]proto.HostResult, 0, 1000)
	for i := range 1000 {
		host := fmt.Sprintf("rack%d-node%03d", i/100, i%100)
		switch {
		case i%50 == 7:
			rs = append(rs, proto.HostResult{Host: host, Status: proto.StatusUnreachable, Err: "dial tcp: lookup " + host + ": no such host"})
		case i%12 == 5:
			rs = append(rs, proto.HostResult{Host: host, Status: proto.StatusFailed, ExitCode: 1,
				Stdout: []byte(common[0] + host), Stderr: []byte("df: /mnt: stale file handle\n")})
		default:
			rs = append(rs, ok(host, common[i%5]))
		}
	}
	return rs
}

func BenchmarkGroups1000(b *testing.B) {
	rs := benchResults()
	b.ReportAllocs()
	for b.Loop() {
		Groups(rs)
	}
}

func BenchmarkGather1000(b *testing.B) {
	rs := benchResults()
	b.ReportAllocs()
	for b.Loop() {
		if err := Gather(io.Discard, rs, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchResultsShape(t *testing.T) {
	gs := Groups(benchResults())
	ran, notRan := 0, 0
	for _, g := range gs {
		if g.Ran {
			ran++
		} else {
			notRan++
		}
	}
	if ran != 5+80 || notRan != 1 {
		t.Errorf("groups: %d ran, %d not; want 85 and 1", ran, notRan)
	}
}
