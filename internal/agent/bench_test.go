package agent_test

import (
	"os"
	"os/exec"
	"testing"

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

// BenchmarkExecTrue runs `true` through an agent over pipes: exec, started, exit, ack.
func BenchmarkExecTrue(b *testing.B) {
	c := benchAgent(b)
	id := uint64(0)
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

// BenchmarkBareBashTrue is the baseline for BenchmarkExecTrue: bash -c true with no agent.
func BenchmarkBareBashTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("bash", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
