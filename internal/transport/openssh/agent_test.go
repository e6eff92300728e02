package openssh_test

import (
	"context"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/openssh"
)

// TestRealAgent installs the real shoal agent with the system ssh and checks its hello.
func TestRealAgent(t *testing.T) {
	f := shoaltest.StartFleet(t, shoaltest.FleetOptions{N: 1})
	tr := openssh.New(openssh.Options{ConfigFile: f.SSHConfig, Source: f.AgentSource(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, wantInstalled := range []bool{true, false} {
		c, err := tr.Connect(ctx, transport.Target{Name: f.Hosts[0].Name})
		if err != nil {
			t.Fatal(err)
		}
		if c.Info().Installed != wantInstalled {
			t.Errorf("connect %d: installed=%v; want %v", i, c.Info().Installed, wantInstalled)
		}
		pc := proto.NewConn(c, c, proto.ConnOptions{ReadBufferSize: 4096})
		if err := pc.Send(0, proto.TypeHello, &proto.Hello{Protocol: proto.Version, Role: "daemon"}); err != nil {
			t.Fatal(err)
		}
		env, err := pc.Recv()
		if err != nil || env.Type != proto.TypeHello {
			t.Fatalf("agent hello: %v %v", env, err)
		}
		var h proto.Hello
		if err := proto.Unmarshal(env.Body, &h); err != nil {
			t.Fatal(err)
		}
		if err := c.Info().CheckHash(h.BinarySHA256); err != nil {
			t.Errorf("connect %d: %v", i, err)
		}
		c.Close()
	}
}
