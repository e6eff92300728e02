package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

// startedChecker is the agent's output: at the moment the agent writes a started frame, it
// checks that the command's pid record is already on disk.
type startedChecker struct {
	mu      sync.Mutex
	missing []string
	exits   chan uint64
}

func (c *startedChecker) Write(b []byte) (int, error) {
	env, err := proto.DecodeEnvelope(b[proto.HeaderSize:])
	if err != nil {
		return 0, fmt.Errorf("decoding the agent's frame: %w", err)
	}
	switch env.Type {
	case proto.TypeStarted:
		var st proto.Started
		env.Decode(&st)
		if _, err := os.Stat(filepath.Join(st.Dir, fileRequest)); err != nil {
			c.mu.Lock()
			c.missing = append(c.missing, err.Error())
			c.mu.Unlock()
		}
	case proto.TypeExit:
		c.exits <- env.ID
	}
	return len(b), nil
}

// TestRecordBeforeStarted checks that a command's pid record is on disk before its started is
// sent, so an agent killed right after never reports a running command as one that never started.
func TestRecordBeforeStarted(t *testing.T) {
	inR, inW := io.Pipe()
	out := &startedChecker{exits: make(chan uint64, 1)}
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), inR, out, Options{StateDir: t.TempDir(), BinarySHA256: "test"})
	}()
	c := proto.NewConn(nil, inW, proto.ConnOptions{})
	c.Send(0, proto.TypeHello, &proto.Hello{Protocol: proto.Version, Role: "daemon"})
	for id := uint64(1); id <= 5; id++ {
		c.Send(id, proto.TypeExec, &proto.Exec{Cmd: "true"})
		<-out.exits
		c.Send(id, proto.TypeAck, nil)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(out.missing) > 0 {
		t.Errorf("started sent before the pid record was written: %v", out.missing)
	}
}
