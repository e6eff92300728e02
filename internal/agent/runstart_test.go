package agent_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/proto"
)

// TestConcurrentStarts starts many agents at once on one state directory: every one must get to
// hello, whatever the others are doing to the run directory.
func TestConcurrentStarts(t *testing.T) {
	state := t.TempDir()
	const n = 50
	for round := range 4 {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inR, inW := io.Pipe()
				outR, outW := io.Pipe()
				done := make(chan error, 1)
				go func() {
					err := agent.Serve(context.Background(), inR, outW, agent.Options{StateDir: state, BinarySHA256: "test"})
					outW.CloseWithError(fmt.Errorf("serve returned %v: %w", err, io.EOF))
					done <- err
				}()
				c := proto.NewConn(outR, inW, proto.ConnOptions{})
				env, err := c.Recv()
				switch {
				case err != nil:
					errs <- fmt.Errorf("round %d agent %d: no hello: %w", round, i, err)
				case env.Type != proto.TypeHello:
					errs <- fmt.Errorf("round %d agent %d: first message %v; want hello", round, i, env.Type)
				}
				inW.Close()
				go io.Copy(io.Discard, outR)
				if err := <-done; err != nil {
					errs <- fmt.Errorf("round %d agent %d: Serve: %w", round, i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
	}
	// Every agent stopped cleanly: what is left are at most IdleMax idle run directories.
	ents, err := os.ReadDir(filepath.Join(state, "run"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > agent.IdleMax {
		t.Errorf("%d entries left in the run directory; want at most %d", len(ents), agent.IdleMax)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".idle-") {
			t.Errorf("left in the run directory: %s", e.Name())
		}
	}
}
