package render_test

import (
	"os"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/render"
)

func ExampleGather() {
	var results []proto.HostResult
	for _, h := range []string{"web01", "web02", "web04", "web03"} {
		results = append(results, proto.HostResult{Host: h, Status: proto.StatusOK, Stdout: []byte("Wed Nov 25 22:17:50 UTC 2026\n")})
	}
	results = append(results,
		proto.HostResult{Host: "web05", Status: proto.StatusFailed, ExitCode: 1, Stdout: []byte("Wed Nov 25 22:19:03 UTC 2026\n"), Stderr: []byte("date: clock skew\n")},
		proto.HostResult{Host: "web06", Status: proto.StatusUnreachable, Err: "web06: dial tcp: connect: connection refused"},
	)
	render.Gather(os.Stdout, results, render.Options{})
	render.WriteSummary(os.Stdout, render.Summarize(results, 1234*time.Millisecond), render.Options{})
	// Output:
	// ------------------------------------------
	// web[01-04] (4)
	// ------------------------------------------
	// Wed Nov 25 22:17:50 UTC 2026
	// ------------------------------------------
	// web05 (1) · exit 1 · differs from majority
	// ------------------------------------------
	// Wed Nov 25 22:19:03 UTC 2026
	// stderr: date: clock skew
	// ------------------------------------------
	// web06 (1) · unreachable
	// ------------------------------------------
	// dial tcp: connect: connection refused
	// 6 hosts in 1.23s: 4 ok, 1 failed, 1 unreachable
	//   failed:      web05 (exit 1)
	//   unreachable: web06
}

func ExampleStream() {
	s := render.NewStream(os.Stdout, []string{"web01", "db1"}, nil, render.Options{})
	s.Event(render.Event{Kind: proto.EventStdout, Host: "db1", Data: []byte("load: 0.1")})
	s.Event(render.Event{Kind: proto.EventStdout, Host: "web01", Data: []byte("load: 3.2\n")})
	s.Event(render.Event{Kind: proto.EventStdout, Host: "db1", Data: []byte("5\n")})
	s.Event(render.Event{Kind: proto.EventStderr, Host: "web01", Data: []byte("high load\n")})
	s.Event(render.Event{Kind: proto.EventDone, Host: "web01", Result: proto.HostResult{Host: "web01", Status: proto.StatusFailed, ExitCode: 2}})
	// Output:
	// web01 | load: 3.2
	// db1   | load: 0.15
	// web01 | stderr: high load
	// web01 | exit 2
}
