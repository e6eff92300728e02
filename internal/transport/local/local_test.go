package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
)

func TestMain(m *testing.M) {
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	shoaltest.Main(m)
}

func TestConnectExecClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	base := t.TempDir()
	tr := &local.Transport{Binary: shoaltest.Binary(t), BaseDir: base}
	c, err := tr.Connect(context.Background(), transport.Target{Name: "web/1", AgentArgs: []string{"--max-running", "3"}})
	if err != nil {
		t.Fatal(err)
	}
	lc := c.(*local.Conn)
	info := c.Info()
	if info.AgentPath != tr.Binary || len(info.AgentHash) != 64 || info.RemoteOS == "" {
		t.Errorf("info = %+v", info)
	}
	pc := proto.NewConn(c, c, proto.ConnOptions{})
	h := shoaltest.Handshake(t, pc)
	if h.BinarySHA256 != info.AgentHash || h.PID != lc.PID() {
		t.Errorf("hello hash %s pid %d; want %s %d", h.BinarySHA256, h.PID, info.AgentHash, lc.PID())
	}
	pc.Send(1, proto.TypeInfo, nil)
	env, err := pc.Recv()
	if err != nil || env.Type != proto.TypeInfoResult {
		t.Fatalf("info: %v %v", env, err)
	}
	var in proto.Info
	env.Decode(&in)
	if want := filepath.Join(base, "web_1"); in.StateDir != want {
		t.Errorf("state dir %q; want %q", in.StateDir, want)
	}
	out, err := c.Side(context.Background(), "echo side")
	if err != nil || string(out) != "side\n" {
		t.Errorf("side: %q %v", out, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := lc.Wait(); err != nil {
		t.Errorf("agent exit: %v", err)
	}
}

func TestConnectMissingBinary(t *testing.T) {
	tr := &local.Transport{Binary: filepath.Join(t.TempDir(), "nope"), BaseDir: t.TempDir()}
	_, err := tr.Connect(context.Background(), transport.Target{Name: "h"})
	if transport.ReasonOf(err) != proto.ReasonNoAgentBinary || !strings.Contains(err.Error(), "h:") {
		t.Fatalf("got %v (kind %v); want no agent binary", err, transport.ReasonOf(err))
	}
}

func TestCloseWhileRunning(t *testing.T) {
	defer goleak.VerifyNone(t)
	tr := &local.Transport{Binary: shoaltest.Binary(t), BaseDir: shoaltest.AgentDir(t)}
	c, err := tr.Connect(context.Background(), transport.Target{Name: "h"})
	if err != nil {
		t.Fatal(err)
	}
	pc := proto.NewConn(c, c, proto.ConnOptions{})
	shoaltest.Handshake(t, pc)
	pc.Send(5, proto.TypeExec, &proto.Exec{Cmd: "sleep 1000"})
	env, err := pc.Recv()
	if err != nil || env.Type != proto.TypeStarted {
		t.Fatalf("started: %v %v", env, err)
	}
	var st proto.Started
	env.Decode(&st)
	t.Cleanup(func() { syscall.Kill(-st.PID, syscall.SIGKILL) })
	// Closing does not wait for the command; the agent exits once it ends.
	c.Close()
	lc := c.(*local.Conn)
	select {
	case <-lc.Done():
		t.Fatal("the agent exited while its command still ran")
	default:
	}
	// End the command from outside, as a daemon's side channel would.
	if _, err := c.Side(context.Background(), "kill -TERM -- -"+strconv.Itoa(st.PID)); err != nil {
		t.Fatal(err)
	}
	if err := lc.Wait(); err != nil {
		t.Errorf("agent exit: %v", err)
	}
}
