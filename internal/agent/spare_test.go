package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/proto"
)

// TestSpareDirs checks that recycled result directories never leak one command's files or status
// into another's, and that a result in a recycled directory is re-delivered intact.
func TestSpareDirs(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		state := t.TempDir()
		a := start(t, agent.Options{StateDir: state})
		for i := range 6 {
			// Long statuses and outputs first, so later ones are shorter than what they overwrite.
			r := a.run(&proto.Exec{Cmd: `cd "$SHOAL_RUN_DIR" && ls; echo ` + strings.Repeat("x", 100) + "; echo err >&2; exit 3"})
			if strings.Contains(string(r.stdout), "mark") || strings.Contains(string(r.stdout), "stdout") || r.exit.Code != 3 {
				t.Fatalf("run %d: stdout %q exit %+v; want a clean directory and code 3", i, r.stdout, r.exit)
			}
			a.run(&proto.Exec{Cmd: `touch "$SHOAL_RUN_DIR/mark"`})
		}
		id := a.id()
		a.send(id, proto.TypeExec, &proto.Exec{Cmd: "echo hi"})
		expect[proto.Started](a, id, proto.TypeStarted)
		a.closeIn()
		a.drainToEnd()

		b := start(t, agent.Options{StateDir: state})
		st := expect[proto.Started](b, id, proto.TypeStarted)
		r := b.collect(id, &result{started: st})
		if string(r.stdout) != "hi\n" || len(r.stderr) != 0 || r.exit.Code != 0 || !r.exit.Redelivered {
			t.Fatalf("re-delivered stdout %q stderr %q exit %+v; want hi, code 0", r.stdout, r.stderr, r.exit)
		}
		b.send(id, proto.TypeAck, nil)
		waitGone(t, filepath.Join(state, "run", a.hello.AgentID))
		b.closeIn()
		b.drainToEnd()
		// b had no results left: its run directory is kept idle for the next agent.
		ents, _ := os.ReadDir(filepath.Join(state, "run"))
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".idle-") {
				t.Errorf("left in the run directory: %s", e.Name())
			}
		}
	})
}
