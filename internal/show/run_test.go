package show

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/shoal-sh/shoal/internal/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExitStatus(t *testing.T) {
	ok := proto.HostResult{Status: proto.StatusOK}
	tests := []struct {
		rs   []proto.HostResult
		want int
	}{
		{nil, 0},
		{[]proto.HostResult{ok, ok}, 0},
		{[]proto.HostResult{ok, {Status: proto.StatusFailed, ExitCode: 2}, {Status: proto.StatusFailed, ExitCode: 1}}, 2},
		{[]proto.HostResult{{Status: proto.StatusFailed, Signal: "KILL"}}, 137},
		{[]proto.HostResult{{Status: proto.StatusFailed, Signal: "SIGTERM"}}, 143},
		{[]proto.HostResult{{Status: proto.StatusCancelled}}, 130},
		{[]proto.HostResult{{Status: proto.StatusFailed, ExitCode: 200}, {Status: proto.StatusTimeout}}, 255},
		{[]proto.HostResult{ok, {Status: proto.StatusRefused}}, 255},
		{[]proto.HostResult{{Status: proto.StatusError}}, 255},
	}
	for _, tt := range tests {
		if got := ExitStatus(tt.rs); got != tt.want {
			t.Errorf("ExitStatus(%+v) = %d; want %d", tt.rs, got, tt.want)
		}
	}
}

// TestKeptOutputBounded checks that Run's own copy of a host's output stops at keptOutput and
// says it was cut.
func TestKeptOutputBounded(t *testing.T) {
	var st hostState
	chunk := make([]byte, 64<<10)
	for range 2 * keptOutput / len(chunk) {
		st.keep(&st.stdout, chunk)
	}
	if st.kept != keptOutput || !st.cut || len(st.stdout) != keptOutput/len(chunk) {
		t.Errorf("kept %d bytes in %d chunks, cut %v; want %d, %d, true", st.kept, len(st.stdout), st.cut, keptOutput, keptOutput/len(chunk))
	}
}
