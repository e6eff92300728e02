package simfleet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// Commands lists the command table of the simulated hosts: a command is its first word and
// arguments separated by blanks (no shell syntax); anything else fails with status 127.
var Commands = map[string]string{
	"true":     "exit 0",
	"false":    "exit 1",
	"exit N":   "exit N",
	"echo ...": "print the arguments and a newline",
	"sleep S":  "wait S seconds (a decimal), or until killed",
	"date":     "print the time as date(1) does",
	"hostname": "print the host's name",
	"whoami":   "print the host's user",
	"output N": "print N bytes: lines of 63 x's and a newline, the last cut short",
	"stall":    "freeze the host (Host.Freeze): it stops answering until thawed",
	"die":      "kill the host (Host.Kill): it drops its connections and refuses new ones",
}

// exec runs one command of the table, for agent.Options.Exec.
func (h *Host) exec(ctx context.Context, req *proto.Exec, stdout, stderr io.Writer) (int, error) {
	f := strings.Fields(req.Cmd)
	if b := h.takeBreak(); b != "" {
		f = []string{string(b)}
	}
	if len(f) == 0 {
		return 0, nil
	}
	arg := func(i int) (float64, bool) {
		if len(f) <= i {
			return 0, false
		}
		v, err := strconv.ParseFloat(f[i], 64)
		return v, err == nil && v >= 0
	}
	switch f[0] {
	case "true", ":":
		return 0, nil
	case "false":
		return 1, nil
	case "exit":
		n, _ := arg(1)
		return int(n) & 0xff, nil
	case "echo":
		io.WriteString(stdout, strings.Join(f[1:], " ")+"\n")
		return 0, nil
	case "date":
		io.WriteString(stdout, time.Now().Format("Mon Jan _2 15:04:05 MST 2006")+"\n")
		return 0, nil
	case "hostname":
		io.WriteString(stdout, h.Name+"\n")
		return 0, nil
	case "whoami":
		io.WriteString(stdout, h.User+"\n")
		return 0, nil
	case "sleep":
		s, ok := arg(1)
		if !ok {
			fmt.Fprintf(stderr, "sleep: invalid time interval\n")
			return 1, nil
		}
		t := time.NewTimer(time.Duration(s * float64(time.Second)))
		defer t.Stop()
		select {
		case <-t.C:
			return 0, nil
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	case "output":
		n, ok := arg(1)
		if !ok {
			fmt.Fprintf(stderr, "output: want a byte count\n")
			return 2, nil
		}
		writeBytes(stdout, int64(n))
		return 0, nil
	case "stall":
		h.Freeze()
		<-ctx.Done()
		return 0, context.Cause(ctx)
	case "die":
		h.Kill()
		<-ctx.Done()
		return 0, context.Cause(ctx)
	}
	fmt.Fprintf(stderr, "simfleet: %s: command not found\n", f[0])
	return 127, nil
}

// line is one line of output's pattern.
var line = append(bytes.Repeat([]byte{'x'}, 63), '\n')

func writeBytes(w io.Writer, n int64) {
	block := bytes.Repeat(line, 512) // 32 KiB
	for n > 0 {
		k := min(n, int64(len(block)))
		w.Write(block[:k])
		n -= k
	}
}

// Break is how BreakNext breaks a host.
type Break string

// The ways to break a host.
const (
	Stall Break = "stall" // Freeze
	Die   Break = "die"   // Kill
)

// BreakNext makes the next command h runs, whatever it is, stall or die as the commands of
// those names do.
func (h *Host) BreakNext(b Break) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.brk = b
}

func (h *Host) takeBreak() Break {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.brk
	h.brk = ""
	return b
}
