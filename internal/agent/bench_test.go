package agent_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
)

// benchAgent starts an in-process agent over pipes and returns the daemon's side after hello.
func benchAgent(b *testing.B) *proto.Conn {
	// SHOAL_BENCH_STATE puts the result directories elsewhere (say, on tmpfs) to separate the
	// agent's own cost from the file system's.
	dir := b.TempDir()
	if base := os.Getenv("SHOAL_BENCH_STATE"); base != "" {
		var err error
		if dir, err = os.MkdirTemp(base, "bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	a := shoaltest.StartAgent(b, agent.Options{StateDir: dir})
	c := proto.NewConn(a, a, proto.ConnOptions{})
	shoaltest.Handshake(b, c)
	return c
}

func recvType(b *testing.B, c *proto.Conn, want proto.Type) {
	env, err := c.Recv()
	if err != nil {
		b.Fatal(err)
	}
	if env.Type != want {
		b.Fatalf("got %v; want %v", env.Type, want)
	}
}

// BenchmarkPing is a ping round trip through an agent over pipes.
func BenchmarkPing(b *testing.B) {
	c := benchAgent(b)
	id := uint64(0)
	for b.Loop() {
		id++
		if err := c.Send(id, proto.TypePing, nil); err != nil {
			b.Fatal(err)
		}
		recvType(b, c, proto.TypePong)
	}
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExecTrue runs `true` through an agent over pipes: exec, started, exit, ack. It also
// reports the CPU time the agent (and the test's side) used per command, which a loaded machine
// disturbs less than the elapsed time.
func BenchmarkExecTrue(b *testing.B) {
	c := benchAgent(b)
	id := uint64(0)
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op") }()
	for b.Loop() {
		id++
		if err := c.Send(id, proto.TypeExec, &proto.Exec{Cmd: "true"}); err != nil {
			b.Fatal(err)
		}
		recvType(b, c, proto.TypeStarted)
		recvType(b, c, proto.TypeExit)
		c.Send(id, proto.TypeAck, nil)
	}
}

// BenchmarkExecEcho is BenchmarkExecTrue with a command that writes a line to stdout, as `date`
// does: the agent keeps the output in a file of the result directory until the ack.
func BenchmarkExecEcho(b *testing.B) {
	c := benchAgent(b)
	id := uint64(0)
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op") }()
	for b.Loop() {
		id++
		if err := c.Send(id, proto.TypeExec, &proto.Exec{Cmd: "echo Thu Nov 26 01:25:39 UTC 2026"}); err != nil {
			b.Fatal(err)
		}
		recvType(b, c, proto.TypeStarted)
		recvType(b, c, proto.TypeOutput)
		recvType(b, c, proto.TypeExit)
		c.Send(id, proto.TypeAck, nil)
	}
}

// BenchmarkBareBashTrue is the baseline for BenchmarkExecTrue: bash -c true with no agent.
func BenchmarkBareBashTrue(b *testing.B) {
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op") }()
	for b.Loop() {
		if err := exec.Command("bash", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
