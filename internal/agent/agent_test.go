package agent_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/proto"
)

func TestHello(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		h := p.hello
		host, _ := os.Hostname()
		if h.Protocol != proto.Version || h.Role != "agent" || h.PID != p.pid || h.BinarySHA256 == "" {
			t.Fatalf("hello = %+v; want protocol %d, role agent, pid %d, a hash", h, proto.Version, p.pid)
		}
		if !strings.HasPrefix(h.AgentID, host+"-") {
			t.Errorf("agent id %q does not start with the host name %q", h.AgentID, host)
		}
		if len(h.Capabilities) == 0 {
			t.Error("no capabilities in hello")
		}
	})
}

func TestExecStatus(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		tests := []struct {
			name           string
			req            proto.Exec
			code, signal   int
			stdout, stderr string
			timedOut       bool
		}{
			{name: "ok", req: proto.Exec{Cmd: "echo hi"}, stdout: "hi\n"},
			{name: "code", req: proto.Exec{Cmd: "echo oops >&2; exit 3"}, code: 3, stderr: "oops\n"},
			{name: "signal", req: proto.Exec{Cmd: "kill -KILL $$"}, code: -1, signal: 9},
			{name: "stdin", req: proto.Exec{Cmd: "tr a-z A-Z", Stdin: []byte("abc")}, stdout: "ABC"},
			{name: "no stdin", req: proto.Exec{Cmd: "cat; echo end"}, stdout: "end\n"},
			{name: "env", req: proto.Exec{Cmd: `echo "$FOO"`, Env: []string{"FOO=bar baz"}}, stdout: "bar baz\n"},
			{name: "dir", req: proto.Exec{Cmd: `pwd`, Dir: "/"}, stdout: "/\n"},
			{name: "timeout", req: proto.Exec{Cmd: "sleep 1000", Timeout: int64(50 * time.Millisecond)}, code: -1, signal: 9, timedOut: true},
			{name: "bash", req: proto.Exec{Cmd: `a=(x y); echo ${a[1]}`}, stdout: "y\n"},
		}
		for _, tt := range tests {
			r := p.run(&tt.req)
			ex := r.exit
			if ex.Code != tt.code || ex.Signal != tt.signal || ex.TimedOut != tt.timedOut {
				t.Errorf("%s: got code %d signal %d timed out %v; want %d %d %v", tt.name, ex.Code, ex.Signal, ex.TimedOut, tt.code, tt.signal, tt.timedOut)
			}
			if string(r.stdout) != tt.stdout || string(r.stderr) != tt.stderr {
				t.Errorf("%s: got stdout %q stderr %q; want %q %q", tt.name, r.stdout, r.stderr, tt.stdout, tt.stderr)
			}
			if r.started.PID <= 0 || ex.Start == 0 || ex.End < ex.Start || ex.Duration <= 0 {
				t.Errorf("%s: got pid %d start %d end %d duration %d", tt.name, r.started.PID, ex.Start, ex.End, ex.Duration)
			}
		}
		// A command starts in the home directory, as with ssh; SHOAL_RUN_DIR names its result
		// directory, which is not where it runs.
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		r := p.run(&proto.Exec{Cmd: "pwd; echo $SHOAL_RUN_DIR"})
		lines := strings.Fields(string(r.stdout))
		if len(lines) != 2 || lines[0] != home || lines[1] != r.started.Dir || !strings.HasPrefix(lines[1], p.stateDir) {
			t.Errorf("got pwd and SHOAL_RUN_DIR %q; want %q and the result directory %q", lines, home, r.started.Dir)
		}
		// A relative Dir is taken from home, as file paths are.
		for _, dir := range []string{"~", "."} {
			r = p.run(&proto.Exec{Cmd: "pwd", Dir: dir})
			if got := strings.TrimSpace(string(r.stdout)); got != home {
				t.Errorf("pwd with Dir %q: %q; want %q", dir, got, home)
			}
		}
		// CPU time and max RSS are reported.
		r = p.run(&proto.Exec{Cmd: "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"})
		if r.exit.UserCPU+r.exit.SysCPU <= 0 || r.exit.MaxRSS <= 0 {
			t.Errorf("got user %d sys %d maxrss %d; want CPU time and RSS", r.exit.UserCPU, r.exit.SysCPU, r.exit.MaxRSS)
		}
	})
}

func TestPIDBeforeExit(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		id := p.id()
		p.send(id, proto.TypeExec, &proto.Exec{Cmd: "sleep 5"})
		st := expect[proto.Started](p, id, proto.TypeStarted)
		if st.PID <= 0 {
			t.Fatalf("started with pid %d", st.PID)
		}
		if err := syscall.Kill(st.PID, 0); err != nil {
			t.Fatalf("pid %d from started is not running: %v", st.PID, err)
		}
		p.send(p.id(), proto.TypeKill, &proto.Kill{Target: id})
		r := p.collect(id, &result{})
		if r.exit.Signal != int(syscall.SIGTERM) {
			t.Fatalf("got signal %d; want SIGTERM", r.exit.Signal)
		}
	})
}

func TestBinaryOutputApart(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{ChunkSize: 1000})
		var all bytes.Buffer
		for i := range 256 {
			all.WriteByte(byte(i))
		}
		in := bytes.Repeat(all.Bytes(), 10)
		want := bytes.Repeat(in, 10) // 25 KiB: many chunks
		// Stdout gets all byte values; stderr their reverse; interleaved writes.
		cmd := `for i in 1 2 3 4 5 6 7 8 9 10; do head -c 2560 "$SHOAL_RUN_DIR/stdin"; printf 'e%02d' $i >&2; done`
		r := p.run(&proto.Exec{Cmd: cmd, Stdin: in})
		if !bytes.Equal(r.stdout, want) {
			t.Errorf("stdout: got %d bytes; want %d all-byte-values", len(r.stdout), len(want))
		}
		if string(r.stderr) != "e01e02e03e04e05e06e07e08e09e10" {
			t.Errorf("stderr: got %q", r.stderr)
		}
		if r.exit.StdoutBytes != int64(len(want)) || r.exit.StderrBytes != 30 || r.exit.Truncated {
			t.Errorf("got byte counts %d %d truncated %v", r.exit.StdoutBytes, r.exit.StderrBytes, r.exit.Truncated)
		}
	})
}

func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MB of output")
	}
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		size := 200 << 20
		p := start(t, agent.Options{OutputCap: 256 << 20})
		if p.kind == "pipe" && raceEnabled {
			size = 32 << 20 // the in-process agent's memory is not measured; keep -race runs short
		}
		id := p.id()
		p.send(id, proto.TypeExec, &proto.Exec{Cmd: fmt.Sprintf("head -c %d /dev/urandom | tee /dev/stderr | sha256sum >&2", size)})
		expect[proto.Started](p, id, proto.TypeStarted)
		hOut, hErr := sha256.New(), sha256.New()
		var nOut, nErr int64
		var tail []byte
		for {
			env := p.next(id)
			if env.Type == proto.TypeExit {
				var ex proto.Exit
				env.Decode(&ex)
				if ex.Code != 0 || ex.Truncated {
					t.Fatalf("exit %+v", ex)
				}
				break
			}
			var o proto.Output
			if err := env.Decode(&o); err != nil {
				t.Fatal(err)
			}
			if o.Stream == proto.Stdout {
				t.Fatalf("unexpected stdout %q", o.Data)
			}
			// stderr is the data then "<hex>  -\n": hash all but the last 68 bytes.
			tail = append(tail, o.Data...)
			if len(tail) > 68 {
				n := len(tail) - 68
				hErr.Write(tail[:n])
				nErr += int64(n)
				tail = append(tail[:0], tail[n:]...)
			}
		}
		_ = hOut
		_ = nOut
		if nErr != int64(size) {
			t.Fatalf("got %d bytes of stderr; want %d", nErr, size)
		}
		sum := hexSum(hErr.Sum(nil))
		if !strings.HasPrefix(string(tail), sum) {
			t.Fatalf("stderr hash %s; the command says %q", sum, tail)
		}
		p.send(id, proto.TypeAck, nil)
		if p.kind == "binary" {
			hwm, err := vmHWM(p.pid)
			if err != nil {
				t.Fatal(err)
			}
			// Generous: the race detector's shadow memory multiplies the heap.
			bound := int64(64 << 20)
			if raceEnabled {
				bound = 256 << 20
			}
			t.Logf("agent VmHWM after 200 MB of output: %d MiB", hwm>>20)
			if hwm > bound {
				t.Errorf("agent VmHWM %d MiB; want under %d MiB", hwm>>20, bound>>20)
			}
		}
	})
}

func hexSum(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestOutputCap(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{OutputCap: 100 << 10})
		r := p.run(&proto.Exec{Cmd: "head -c 5000000 /dev/zero; echo after >&2"})
		if !r.exit.Truncated || r.exit.Code != 0 {
			t.Fatalf("got %+v; want truncated, code 0", r.exit)
		}
		if len(r.stdout)+len(r.stderr) != 100<<10 || r.exit.StdoutBytes != 5000000 {
			t.Fatalf("kept %d+%d bytes of %d; want %d in all", len(r.stdout), len(r.stderr), r.exit.StdoutBytes, 100<<10)
		}
		st, err := os.Stat(filepath.Join(r.started.Dir, "out"))
		if err == nil && st.Size() > 1+100<<10 {
			t.Fatalf("stdout file has %d bytes; want at most the cap and its header byte", st.Size())
		}
		// A per-request cap overrides the default.
		r = p.run(&proto.Exec{Cmd: "head -c 5000 /dev/zero", OutputCap: 10})
		if len(r.stdout) != 10 || !r.exit.Truncated {
			t.Fatalf("got %d bytes truncated %v; want 10, true", len(r.stdout), r.exit.Truncated)
		}
	})
}

func TestPingWhileBusy(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{MaxRunning: 2, MaxQueued: 1})
		var ids []uint64
		for range 3 {
			id := p.id()
			ids = append(ids, id)
			p.send(id, proto.TypeExec, &proto.Exec{Cmd: "sleep 1000"})
		}
		expect[proto.Started](p, ids[0], proto.TypeStarted)
		expect[proto.Started](p, ids[1], proto.TypeStarted)
		for range 5 {
			p.ping()
		}
		id := p.id()
		p.send(id, proto.TypeInfo, nil)
		in := expect[proto.Info](p, id, proto.TypeInfoResult)
		if in.Running != 2 || in.Queued != 1 {
			t.Errorf("info says %d running, %d queued; want 2, 1", in.Running, in.Queued)
		}
		kid := p.id()
		p.send(kid, proto.TypeKill, &proto.Kill{All: true, Signal: 9})
		if k := expect[proto.Killed](p, kid, proto.TypeKilled); k.Count != 3 {
			t.Errorf("killed %d; want 3", k.Count)
		}
		for i, id := range ids {
			r := &result{}
			if i == 2 {
				p.collect(id, r)
				if !r.exit.Canceled {
					t.Errorf("queued command: got %+v; want canceled", r.exit)
				}
				continue
			}
			p.collect(id, r)
			if r.exit.Signal != 9 {
				t.Errorf("running command: got %+v; want signal 9", r.exit)
			}
		}
	})
}

func TestBusy(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{MaxRunning: 1, MaxQueued: 1})
		a, b, c := p.id(), p.id(), p.id()
		p.send(a, proto.TypeExec, &proto.Exec{Cmd: "sleep 1000"})
		expect[proto.Started](p, a, proto.TypeStarted)
		p.send(b, proto.TypeExec, &proto.Exec{Cmd: "echo queued"})
		p.send(c, proto.TypeExec, &proto.Exec{Cmd: "echo refused"})
		busy := expect[proto.Busy](p, c, proto.TypeBusy)
		if busy.Running != 1 || busy.Queued != 1 || busy.MaxRunning != 1 || busy.MaxQueued != 1 {
			t.Errorf("busy = %+v", busy)
		}
		// A duplicate id is refused too.
		p.send(a, proto.TypeExec, &proto.Exec{Cmd: "true"})
		if e := expect[proto.Error](p, a, proto.TypeError); e.Code != proto.CodeDuplicateID {
			t.Errorf("duplicate id: got %v", e)
		}
		p.send(p.id(), proto.TypeKill, &proto.Kill{Target: a, Signal: 9})
		p.collect(a, &result{})
		expect[proto.Started](p, b, proto.TypeStarted)
		if r := p.collect(b, &result{}); string(r.stdout) != "queued\n" {
			t.Errorf("queued command printed %q", r.stdout)
		}
	})
}

func TestKillTree(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		id := p.id()
		p.send(id, proto.TypeExec, &proto.Exec{Cmd: "bash -c 'sleep 1000 & echo $!; sleep 1000'"})
		st := expect[proto.Started](p, id, proto.TypeStarted)
		out := expect[proto.Output](p, id, proto.TypeOutput) // the background child exists
		child, err := strconv.Atoi(strings.TrimSpace(string(out.Data)))
		if err != nil {
			t.Fatalf("child pid %q: %v", out.Data, err)
		}
		if len(groupAlive(st.PID)) < 2 {
			t.Fatalf("group %d has %v; want at least the two sleeps", st.PID, groupAlive(st.PID))
		}
		kid := p.id()
		p.send(kid, proto.TypeKill, &proto.Kill{Target: id}) // SIGTERM
		if k := expect[proto.Killed](p, kid, proto.TypeKilled); k.Count != 1 {
			t.Errorf("killed %d; want 1", k.Count)
		}
		r := p.collect(id, &result{})
		if r.exit.Signal != int(syscall.SIGTERM) {
			t.Errorf("got %+v; want SIGTERM", r.exit)
		}
		waitGroupGone(t, st.PID)
		if err := syscall.Kill(child, 0); err == nil && len(groupAlive(st.PID)) > 0 {
			t.Errorf("background child %d survived", child)
		}
	})
}

func TestWriteRead(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		dir := t.TempDir()
		path := filepath.Join(dir, "sub", "f")
		data := make([]byte, 300<<10)
		for i := range data {
			data[i] = byte(i * 7)
		}
		id := p.id()
		p.send(id, proto.TypeWrite, &proto.Write{Path: path, Mode: 0o640, Size: int64(len(data)), MkdirAll: true, Sum: true})
		// Chunks of odd sizes, larger than the agent's write pieces (64 KiB), as a put sends.
		const chunk = 100<<10 + 3
		for off := 0; off < len(data); off += chunk {
			p.send(id, proto.TypeWriteChunk, &proto.WriteChunk{Data: data[off:min(off+chunk, len(data))]})
		}
		p.send(id, proto.TypeWriteDone, nil)
		w := expect[proto.Written](p, id, proto.TypeWritten)
		sum := sha256.Sum256(data)
		if w.Size != int64(len(data)) || w.SHA256 != hexSum(sum[:]) {
			t.Fatalf("written %+v; want %d bytes and the data's hash", w, len(data))
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o640 {
			t.Fatalf("stat after write: %v %v; want mode 0640", st.Mode(), err)
		}

		// Read it back in small chunks.
		id = p.id()
		p.send(id, proto.TypeRead, &proto.Read{Path: path, ChunkSize: 10 << 10})
		var got []byte
		for {
			c := expect[proto.ReadChunk](p, id, proto.TypeReadChunk)
			if c.Offset != int64(len(got)) || c.Size != int64(len(data)) || c.Mode != 0o640 || c.MTime != st.ModTime().UnixNano() {
				t.Fatalf("chunk at %d: %+v", len(got), c)
			}
			got = append(got, c.Data...)
			if c.EOF {
				break
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes; want the %d written", len(got), len(data))
		}
		// A range.
		id = p.id()
		p.send(id, proto.TypeRead, &proto.Read{Path: path, Offset: 1000, Length: 10})
		if c := expect[proto.ReadChunk](p, id, proto.TypeReadChunk); !c.EOF || !bytes.Equal(c.Data, data[1000:1010]) {
			t.Fatalf("range read: got %+v", c)
		}
		// Limits and errors.
		for _, tt := range []struct {
			req  proto.Read
			code proto.ErrorCode
		}{
			{proto.Read{Path: path, MaxSize: 1000}, proto.CodeTooLarge},
			{proto.Read{Path: filepath.Join(dir, "missing")}, proto.CodeNotFound},
			{proto.Read{Path: dir}, proto.CodeBadRequest},
		} {
			id = p.id()
			p.send(id, proto.TypeRead, &tt.req)
			if e := expect[proto.Error](p, id, proto.TypeError); e.Code != tt.code {
				t.Errorf("read %+v: got %v; want code %v", tt.req, e, tt.code)
			}
		}
		// Empty file.
		empty := filepath.Join(dir, "empty")
		os.WriteFile(empty, nil, 0o600)
		id = p.id()
		p.send(id, proto.TypeRead, &proto.Read{Path: empty})
		if c := expect[proto.ReadChunk](p, id, proto.TypeReadChunk); !c.EOF || len(c.Data) != 0 || c.Mode != 0o600 {
			t.Fatalf("empty read: got %+v", c)
		}
		// Without Sum, written carries no hash (the agent does not compute one).
		id = p.id()
		other := filepath.Join(filepath.Dir(path), "nosum")
		p.send(id, proto.TypeWrite, &proto.Write{Path: other, Size: 3})
		p.send(id, proto.TypeWriteChunk, &proto.WriteChunk{Data: []byte("abc")})
		p.send(id, proto.TypeWriteDone, nil)
		if w := expect[proto.Written](p, id, proto.TypeWritten); w.Size != 3 || w.SHA256 != "" {
			t.Fatalf("written without Sum: %+v; want 3 bytes and no hash", w)
		}
		os.Remove(other)
		// A wrong size leaves the old file.
		id = p.id()
		p.send(id, proto.TypeWrite, &proto.Write{Path: path, Size: 5})
		p.send(id, proto.TypeWriteChunk, &proto.WriteChunk{Data: []byte("abc")})
		p.send(id, proto.TypeWriteDone, nil)
		expect[proto.Error](p, id, proto.TypeError)
		// A killed write leaves the old file.
		id = p.id()
		p.send(id, proto.TypeWrite, &proto.Write{Path: path})
		p.send(id, proto.TypeWriteChunk, &proto.WriteChunk{Data: []byte("new")})
		p.send(p.id(), proto.TypeKill, &proto.Kill{Target: id})
		expect[proto.Error](p, id, proto.TypeError)
		if b, _ := os.ReadFile(path); !bytes.Equal(b, data) {
			t.Fatalf("after failed writes the file has %d bytes; want the old %d", len(b), len(data))
		}
		ents, _ := os.ReadDir(filepath.Dir(path))
		if len(ents) != 1 {
			t.Fatalf("directory holds %d entries; want just the file, no temporaries", len(ents))
		}
	})
}

func TestWriteInterrupted(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		path := filepath.Join(t.TempDir(), "f")
		os.WriteFile(path, []byte("old contents"), 0o600)
		id := p.id()
		p.send(id, proto.TypeWrite, &proto.Write{Path: path, Mode: 0o644, Size: 1 << 20})
		p.send(id, proto.TypeWriteChunk, &proto.WriteChunk{Data: make([]byte, 512<<10)})
		p.ping() // the chunk has been handled
		p.closeIn()
		p.drainToEnd()
		if b, _ := os.ReadFile(path); string(b) != "old contents" {
			t.Fatalf("after an interrupted write the file holds %q", b)
		}
		ents, _ := os.ReadDir(filepath.Dir(path))
		if len(ents) != 1 {
			t.Fatalf("directory holds %d entries; want just the file", len(ents))
		}
	})
}

func TestInfo(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		id := p.id()
		before := time.Now()
		p.send(id, proto.TypeInfo, nil)
		in := expect[proto.Info](p, id, proto.TypeInfoResult)
		host, _ := os.Hostname()
		if in.Hostname != host || in.OS == "" || in.Arch == "" || in.Kernel == "" || in.CPUs < 1 ||
			in.MemTotal == 0 || in.Uptime <= 0 || in.BinarySHA256 == "" || in.AgentID != p.hello.AgentID {
			t.Errorf("info = %+v", in)
		}
		if clock := time.Unix(0, in.Clock); clock.Before(before.Add(-time.Second)) || clock.After(time.Now().Add(time.Second)) {
			t.Errorf("agent clock %v is off", clock)
		}
	})
}

// TestRedeliver closes the agent's input while a command runs; the command finishes into its
// directory, and the next agent on the same state directory offers the result first.
func TestRedeliver(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		state := t.TempDir()
		fifo := filepath.Join(t.TempDir(), "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		a := start(t, agent.Options{StateDir: state})
		id := a.id()
		a.send(id, proto.TypeExec, &proto.Exec{Cmd: "echo before; echo warn >&2; cat " + fifo + "; echo after; exit 7"})
		expect[proto.Started](a, id, proto.TypeStarted)
		if o := expect[proto.Output](a, id, proto.TypeOutput); string(o.Data) != "before\n" && string(o.Data) != "warn\n" {
			t.Fatalf("first output %q", o.Data)
		}
		a.closeIn()
		// Let the command finish now that its agent has no input.
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("middle\n")
		f.Close()
		a.drainToEnd()

		b := start(t, agent.Options{StateDir: state})
		if first := b.recv(); first.ID != id || first.Type != proto.TypeStarted {
			t.Fatalf("first message after hello: %v for %d; want the re-delivered started for %d", first.Type, first.ID, id)
		} else {
			b.stash[id] = append(b.stash[id], first)
		}
		st := expect[proto.Started](b, id, proto.TypeStarted)
		if !st.Redelivered || !strings.HasPrefix(st.Cmd, "echo before") || st.AgentID != a.hello.AgentID {
			t.Fatalf("re-delivered started = %+v", st)
		}
		r := b.collect(id, &result{started: st})
		if string(r.stdout) != "before\nmiddle\nafter\n" || string(r.stderr) != "warn\n" || r.exit.Code != 7 || !r.exit.Redelivered {
			t.Fatalf("re-delivered stdout %q stderr %q exit %+v", r.stdout, r.stderr, r.exit)
		}

		// A third agent sharing the directory must not take b's pending result.
		c := start(t, agent.Options{StateDir: state})
		c.ping()
		if len(c.stash) != 0 {
			t.Fatalf("a live agent's result was offered by another: %v", c.stash)
		}

		b.send(id, proto.TypeAck, nil)
		waitGone(t, filepath.Join(state, "run", a.hello.AgentID))
		// Acknowledged results are gone for good.
		d := start(t, agent.Options{StateDir: state})
		d.ping()
		if len(d.stash) != 0 {
			t.Fatalf("an acknowledged result was offered again: %v", d.stash)
		}
	})
}

func TestAckRemovesResult(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		id := p.id()
		p.send(id, proto.TypeExec, &proto.Exec{Cmd: "echo x"})
		st := expect[proto.Started](p, id, proto.TypeStarted)
		p.collect(id, &result{})
		for _, f := range []string{"out", "status", "request"} {
			if _, err := os.Stat(filepath.Join(st.Dir, f)); err != nil {
				t.Errorf("result file %s: %v", f, err)
			}
		}
		p.send(id, proto.TypeAck, nil)
		waitGone(t, st.Dir)
	})
}

func TestMalformedFrames(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		// A frame that is not CBOR: an error, and the agent goes on.
		proto.WriteFrame(p.raw, []byte("not cbor"), 0)
		if e := expect[proto.Error](p, 0, proto.TypeError); e.Code != proto.CodeBadRequest {
			t.Errorf("garbage: got %v", e)
		}
		p.ping()
		// An unknown type: an error with its id.
		p.send(77, proto.Type(60), nil)
		if e := expect[proto.Error](p, 77, proto.TypeError); e.Code != proto.CodeUnknownType {
			t.Errorf("unknown type: got %v", e)
		}
		// A body of the wrong shape.
		pl, _ := proto.Marshal(&proto.Envelope{Version: proto.Version, ID: 78, Type: proto.TypeExec, Body: []byte{0x01}})
		proto.WriteFrame(p.raw, pl, 0)
		if e := expect[proto.Error](p, 78, proto.TypeError); e.Code != proto.CodeBadRequest {
			t.Errorf("bad body: got %v", e)
		}
		// Another version.
		pl, _ = proto.Marshal(&proto.Envelope{Version: 99, ID: 79, Type: proto.TypePing})
		proto.WriteFrame(p.raw, pl, 0)
		if e := expect[proto.Error](p, 79, proto.TypeError); e.Code != proto.CodeVersion {
			t.Errorf("version: got %v", e)
		}
		p.ping()
		// An oversized frame: an error, then the agent stops reading and exits.
		p.raw.Write([]byte{0x7f, 0xff, 0xff, 0xff})
		if e := expect[proto.Error](p, 0, proto.TypeError); e.Code != proto.CodeBadRequest || !strings.Contains(e.Message, "exceeds") {
			t.Errorf("oversized: got %v", e)
		}
		p.drainToEnd()
	})
}

func TestTruncatedFrame(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		p.raw.Write([]byte{0, 0, 0, 100, 1, 2, 3})
		p.closeIn()
		if e := expect[proto.Error](p, 0, proto.TypeError); e.Code != proto.CodeBadRequest {
			t.Errorf("truncated: got %v", e)
		}
		p.drainToEnd()
	})
}

func TestVersionMismatch(t *testing.T) {
	a := startPipeRaw(t)
	c := proto.NewConn(a, a, proto.ConnOptions{})
	c.Send(0, proto.TypeHello, &proto.Hello{Protocol: proto.Version + 1})
	var sawHello, sawErr bool
	for {
		env, err := c.Recv()
		if err != nil {
			break
		}
		switch env.Type {
		case proto.TypeHello:
			sawHello = true
		case proto.TypeError:
			var e proto.Error
			env.Decode(&e)
			sawErr = e.Code == proto.CodeVersion
		}
	}
	var ve *proto.VersionError
	if err := a.Wait(); !errors.As(err, &ve) || !sawHello || !sawErr {
		t.Fatalf("got %v (hello %v, version error %v); want a *VersionError after both", err, sawHello, sawErr)
	}
}

// TestSharedStateDir runs two live agents on one state directory with the same request ids.
func TestSharedStateDir(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		state := t.TempDir()
		a := start(t, agent.Options{StateDir: state})
		b := start(t, agent.Options{StateDir: state})
		if a.hello.AgentID == b.hello.AgentID {
			t.Fatalf("two agents share the id %s", a.hello.AgentID)
		}
		a.send(7, proto.TypeExec, &proto.Exec{Cmd: "echo a"})
		b.send(7, proto.TypeExec, &proto.Exec{Cmd: "echo b"})
		ra := a.collect(7, &result{started: expect[proto.Started](a, 7, proto.TypeStarted)})
		rb := b.collect(7, &result{started: expect[proto.Started](b, 7, proto.TypeStarted)})
		if string(ra.stdout) != "a\n" || string(rb.stdout) != "b\n" || ra.started.Dir == rb.started.Dir {
			t.Fatalf("got %q in %s and %q in %s", ra.stdout, ra.started.Dir, rb.stdout, rb.started.Dir)
		}
	})
}

// TestSIGTERM checks that `shoal agent` stops on SIGTERM, killing its commands, even while its
// stdin stays open.
func TestSIGTERM(t *testing.T) {
	p := startBinary(t, agent.Options{})
	id := p.id()
	p.send(id, proto.TypeExec, &proto.Exec{Cmd: "sleep 1000"})
	st := expect[proto.Started](p, id, proto.TypeStarted)
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := p.collect(id, &result{started: st})
	if r.exit.Signal != 9 {
		t.Errorf("got %+v; want the command killed", r.exit)
	}
	p.drainToEnd()
	waitGroupGone(t, st.PID)
}

// TestRequestErrors covers requests that cannot be carried out.
func TestRequestErrors(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		p := start(t, agent.Options{})
		// A missing working directory: an exit with the reason, not a hang.
		id := p.id()
		p.send(id, proto.TypeExec, &proto.Exec{Cmd: "true", Dir: "/nonexistent/dir"})
		if ex := expect[proto.Exit](p, id, proto.TypeExit); ex.Code != -1 || !strings.Contains(ex.Err, "nonexistent") {
			t.Errorf("exec in a missing directory: got %+v", ex)
		}
		p.send(id, proto.TypeAck, nil)
		// Kill of nothing, ack of nothing, chunks for no write.
		id = p.id()
		p.send(id, proto.TypeKill, &proto.Kill{Target: 424242})
		if k := expect[proto.Killed](p, id, proto.TypeKilled); k.Count != 0 {
			t.Errorf("kill of an unknown id: killed %d", k.Count)
		}
		p.send(424242, proto.TypeAck, nil)
		p.send(424243, proto.TypeWriteChunk, &proto.WriteChunk{Data: []byte("x")})
		p.send(424244, proto.TypeWriteDone, nil)
		if e := expect[proto.Error](p, 424244, proto.TypeError); e.Code != proto.CodeNotFound {
			t.Errorf("write-done without write: got %v", e)
		}
		// A write into a missing directory without MkdirAll.
		id = p.id()
		p.send(id, proto.TypeWrite, &proto.Write{Path: filepath.Join(t.TempDir(), "no", "f")})
		if e := expect[proto.Error](p, id, proto.TypeError); e.Code != proto.CodeNotFound {
			t.Errorf("write into a missing directory: got %v", e)
		}
		// A reply type sent as a request.
		id = p.id()
		p.send(id, proto.TypePong, nil)
		if e := expect[proto.Error](p, id, proto.TypeError); e.Code != proto.CodeBadRequest {
			t.Errorf("pong as a request: got %v", e)
		}
		p.ping()
		if len(p.stash) != 0 {
			t.Errorf("unexpected messages: %v", p.stash)
		}
	})
}

// TestLiveWriterKeepsItsTempFile starts a second agent in the state directory of one that is
// in the middle of a write: the second must leave the live writer's temporary file alone (its
// run directory is locked), and the write then completes.
func TestLiveWriterKeepsItsTempFile(t *testing.T) {
	forEachKind(t, func(t *testing.T, start func(testing.TB, agent.Options) *peer) {
		state := t.TempDir()
		a := start(t, agent.Options{StateDir: state})
		path := filepath.Join(t.TempDir(), "f")
		id := a.id()
		a.send(id, proto.TypeWrite, &proto.Write{Path: path, Mode: 0o644, Size: 8})
		a.send(id, proto.TypeWriteChunk, &proto.WriteChunk{Data: []byte("half")})
		a.ping()
		tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".f.shoal-*"))
		if len(tmps) != 1 {
			t.Fatalf("%d temporary files during the write; want 1", len(tmps))
		}
		b := start(t, agent.Options{StateDir: state})
		b.ping() // b has started, and looked for dead agents' leftovers
		if _, err := os.Stat(tmps[0]); err != nil {
			t.Fatalf("a second agent removed a live writer's temporary file: %v", err)
		}
		a.send(id, proto.TypeWriteChunk, &proto.WriteChunk{Data: []byte("done")})
		a.send(id, proto.TypeWriteDone, nil)
		for {
			env := a.recv()
			if env.ID != id {
				continue
			}
			if env.Type != proto.TypeWritten {
				t.Fatalf("write: %v; want written", env.Type)
			}
			break
		}
		if got, _ := os.ReadFile(path); string(got) != "halfdone" {
			t.Errorf("file holds %q; want halfdone", got)
		}
	})
}
