package daemon_test

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
)

// instantTransport connects to an in-process fake agent that answers every exec at
// once with fixed output, so a benchmark measures the daemon's own routing cost.
type instantTransport struct {
	wg sync.WaitGroup
}

type instantConn struct {
	net.Conn
}

func (instantConn) Info() transport.ConnInfo { return transport.ConnInfo{} }
func (instantConn) Side(context.Context, string) ([]byte, error) {
	return nil, nil
}

func (tr *instantTransport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	a, b := net.Pipe()
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		defer b.Close()
		pc := proto.NewConn(b, b, proto.ConnOptions{})
		go pc.Send(0, proto.TypeHello, &proto.Hello{Protocol: proto.Version, Role: "agent", Program: "fake", PID: 1,
			Capabilities: proto.AgentCapabilities})
		for {
			env, err := pc.Recv()
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			switch env.Type {
			case proto.TypePing:
				pc.Send(env.ID, proto.TypePong, &proto.Pong{Clock: now})
			case proto.TypeExec:
				pc.Send(env.ID, proto.TypeStarted, &proto.Started{PID: 1})
				pc.Send(env.ID, proto.TypeOutput, &proto.Output{Stream: proto.Stdout, Data: []byte("Wed Nov 25 23:00:00 UTC 2026\n")})
				pc.Send(env.ID, proto.TypeExit, &proto.Exit{Code: 0, Start: now, End: now, StdoutBytes: 29})
			}
		}
	}()
	return instantConn{a}, nil
}
