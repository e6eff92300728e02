package faults_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/daemon"
	"github.com/shoal-sh/shoal/internal/proto"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/local"
)

// frame returns payload with its length prefix.
func frame(payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	return append(b, payload...)
}

// envelope encodes an envelope with any version, type and body (nil for none).
func envelope(t testing.TB, version uint16, id uint64, typ proto.Type, body any) []byte {
	t.Helper()
	env := proto.Envelope{Version: version, ID: id, Type: typ}
	if body != nil {
		b, err := proto.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		env.Body = cbor.RawMessage(b)
	}
	p, err := proto.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func goodHello(t testing.TB) []byte {
	return frame(envelope(t, proto.Version, 0, proto.TypeClientHello,
		&proto.ClientHello{Protocol: proto.Version, Client: proto.ClientVersion, Program: "dev", PID: os.Getpid()}))
}

// TestClientBadFrames dials the daemon's socket and sends what no client should: garbage,
// truncated, oversized and out-of-order frames, unknown versions and types. Each connection
// must end with an answer or a close within a bound; the daemon must live on and serve.
func TestClientBadFrames(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(2, ""))
	c := h.dial()
	pid := h.daemonPID()
	runOne(t, c, []string{"lab1"}, "true", time.Minute)

	hello := goodHello(t)
	cases := []struct {
		name string
		send []byte
		// closeWrite ends the client's side after send.
		closeWrite bool
		// wantText, when set, must appear in what the daemon answers.
		wantText string
	}{
		{name: "http", send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{name: "zero-length", send: []byte{0, 0, 0, 0}},
		{name: "oversized-header", send: []byte{0xff, 0xff, 0xff, 0xff}},
		{name: "just-over-max", send: binary.BigEndian.AppendUint32(nil, daemon.ClientMaxFrame+1)},
		{name: "truncated-header", send: []byte{0, 0}, closeWrite: true},
		{name: "truncated-body", send: append([]byte{0, 0, 0, 100}, make([]byte, 10)...), closeWrite: true},
		{name: "not-cbor", send: frame([]byte("\xff\xfe\xfd not cbor at all"))},
		{name: "cbor-not-envelope", send: frame([]byte{0x83, 0x01, 0x02, 0x03})},
		{name: "deep-nesting", send: frame(bytes.Repeat([]byte{0x81}, 10000))},
		{name: "huge-array-claim", send: frame([]byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})},
		{name: "unknown-version", send: frame(envelope(t, 99, 0, proto.TypeClientHello,
			&proto.ClientHello{Protocol: 99, Client: 99, Program: "future"})), wantText: "protocol"},
		{name: "unknown-client-version", send: frame(envelope(t, proto.Version, 0, proto.TypeClientHello,
			&proto.ClientHello{Protocol: proto.Version, Client: 77, Program: "odd"})), wantText: "protocol"},
		{name: "wrong-binary-hash", send: frame(envelope(t, proto.Version, 0, proto.TypeClientHello,
			&proto.ClientHello{Protocol: proto.Version, Client: proto.ClientVersion, Program: "dev",
				BinarySHA256: strings.Repeat("0", 64)}))},
		{name: "request-before-hello", send: frame(envelope(t, proto.Version, 1, proto.TypeRun,
			&proto.RunRequest{Hosts: []string{"lab1"}, Command: "echo no"})), wantText: "hello"},
		{name: "agent-type-from-client", send: frame(envelope(t, proto.Version, 0, proto.TypeExec,
			&proto.Exec{Cmd: "echo no"}))},
		{name: "unknown-type-after-hello", send: append(append([]byte{}, hello...),
			frame(envelope(t, proto.Version, 5, proto.Type(126), nil))...)},
		{name: "second-hello", send: append(append([]byte{}, hello...), hello...)},
		{name: "body-of-wrong-shape", send: append(append([]byte{}, hello...),
			frame(envelope(t, proto.Version, 6, proto.TypeRun, []string{"not", "a", "run"}))...)},
		{name: "nul-and-bad-utf8-hosts", send: append(append([]byte{}, hello...),
			frame(envelope(t, proto.Version, 7, proto.TypeRun,
				&proto.RunRequest{Hosts: []string{"lab1\x00x", "../../etc", ""}, Command: "echo\x00no"}))...)},
		{name: "get-outside", send: append(append([]byte{}, hello...),
			frame(envelope(t, proto.Version, 8, proto.TypeGet,
				&proto.GetRequest{Hosts: []string{"lab1"}, Src: "/etc/hostname", DestDir: "relative/../../x"}))...)},
		{name: "garbage-after-hello", send: append(append([]byte{}, hello...), bytes.Repeat([]byte{0xaa}, 64)...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nBadInputs.Add(1)
			nc, err := net.DialTimeout("unix", h.socket, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(15 * time.Second))
			if _, err := nc.Write(tc.send); err != nil && !errors.Is(err, syscall.EPIPE) {
				t.Logf("write: %v", err)
			}
			if tc.closeWrite {
				nc.(*net.UnixConn).CloseWrite()
			}
			// Read everything the daemon says until it closes the connection or goes quiet.
			var got bytes.Buffer
			nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, err = io.Copy(&got, nc)
			var ne net.Error
			quiet := errors.As(err, &ne) && ne.Timeout()
			text := describeFrames(got.Bytes())
			t.Logf("answer (%d bytes, quiet=%v): %s", got.Len(), quiet, clip(text))
			if tc.wantText != "" && !strings.Contains(strings.ToLower(text), tc.wantText) {
				t.Errorf("answer %q; want it to mention %q", clip(text), tc.wantText)
			}
			if quiet && !strings.Contains(tc.name, "after-hello") && tc.name != "second-hello" &&
				tc.name != "wrong-binary-hash" && tc.name != "nul-and-bad-utf8-hosts" && tc.name != "get-outside" &&
				tc.name != "body-of-wrong-shape" {
				// A broken greeting must be answered or closed, not held open.
				t.Errorf("the daemon kept a connection with a broken greeting open and silent")
			}
			if !alive(pid) {
				t.Fatalf("the daemon died")
			}
		})
	}
	// The daemon still serves a real client.
	c2 := h.dial()
	res := runOne(t, c2, []string{"lab1", "lab2"}, "echo still", time.Minute)
	for hn, r := range res {
		if r.Status != proto.StatusOK {
			t.Errorf("after bad frames, %s: %s %q", hn, r.Status, r.Err)
		}
	}
	if p := h.daemonPID(); p != pid {
		t.Errorf("daemon pid changed from %d to %d", pid, p)
	}
	logb, _ := os.ReadFile(filepath.Join(h.root, "daemon.out"))
	noPanic(t, string(logb))
}

// describeFrames renders what a daemon sent: each frame's type and any error text in it.
func describeFrames(b []byte) string {
	var out []string
	r := bytes.NewReader(b)
	for {
		p, err := proto.ReadFrame(r, 0)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				out = append(out, "frame error: "+err.Error())
			}
			break
		}
		env, err := proto.DecodeEnvelope(p)
		if env == nil {
			out = append(out, "undecodable: "+err.Error())
			continue
		}
		s := env.Type.String()
		switch env.Type {
		case proto.TypeDaemonHello:
			var dh proto.DaemonHello
			env.Decode(&dh)
			s += " err=" + dh.Err
		case proto.TypeFailed:
			var f proto.Failed
			env.Decode(&f)
			s += " " + f.Code.String() + ": " + f.Message
		}
		out = append(out, s)
	}
	return strings.Join(out, " | ")
}

// fakeAgentDaemon serves an in-process daemon whose host "fake" is a local agent played by a
// shell script that writes the bytes of file frames and then reads stdin until it ends.
func fakeAgentDaemon(t *testing.T, frames []byte) *client.Client {
	t.Helper()
	dir := t.TempDir()
	fpath := filepath.Join(dir, "frames")
	if err := os.WriteFile(fpath, frames, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "fake-agent")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat '"+fpath+"'\nexec cat >/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr := &local.Transport{Binary: script, BaseDir: filepath.Join(dir, "state")}
	ln := daemon.NewMemListener()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts := daemon.Options{
		Resolve: func(host string) (daemon.Host, error) {
			return daemon.Host{Target: transport.Target{Name: host}, Transport: tr, TransportName: "local"}, nil
		},
		Version: "dev",
	}
	opts.Session.Heartbeat = 200 * time.Millisecond
	opts.Session.ConnectTimeout = 3 * time.Second
	opts.Session.Backoff = 100 * time.Millisecond
	go func() { done <- daemon.Serve(ctx, ln, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("in-process daemon did not stop within 20s")
		}
	})
	c, err := client.New(ctx, mustDial(t, ln), client.Options{Version: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustDial(t testing.TB, ln *daemon.MemListener) net.Conn {
	t.Helper()
	nc, err := ln.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// agentHello encodes an agent's hello.
func agentHello(t testing.TB, version uint16, hash string) []byte {
	return frame(envelope(t, version, 0, proto.TypeHello, &proto.Hello{Protocol: version, Program: "dev",
		BinarySHA256: hash, Capabilities: proto.AgentCapabilities, Role: "agent", AgentID: "fake-1-x", PID: 1}))
}

// TestAgentBadFrames plays a broken agent: every kind of bad output from the agent's side must
// end the command on that host with a clear error within a bound, never a hang or a panic.
func TestAgentBadFrames(t *testing.T) {
	good := agentHello(t, proto.Version, "")
	cases := []struct {
		name   string
		frames []byte
	}{
		{"nothing", nil},
		{"text-instead-of-frames", []byte("Welcome to host! Last login: yesterday\n")},
		{"oversized", []byte{0x7f, 0xff, 0xff, 0xff}},
		{"truncated", append([]byte{0, 0, 1, 0}, 1, 2, 3)},
		{"not-cbor", frame([]byte("\xff\xff\xff"))},
		{"unknown-version", agentHello(t, 42, "")},
		{"wrong-hash", agentHello(t, proto.Version, strings.Repeat("ab", 32))},
		{"no-hello-first", frame(envelope(t, proto.Version, 1, proto.TypeExit, &proto.Exit{Code: 0}))},
		{"out-of-order-after-hello", append(append([]byte{}, good...), append(
			frame(envelope(t, proto.Version, 424242, proto.TypeExit, &proto.Exit{Code: 3})),
			frame(envelope(t, proto.Version, 1, proto.TypeOutput, []byte("odd")))...)...)},
		{"unknown-type-after-hello", append(append([]byte{}, good...), frame(envelope(t, proto.Version, 9, proto.Type(60), nil))...)},
		{"client-type-from-agent", append(append([]byte{}, good...), frame(envelope(t, proto.Version, 0, proto.TypeDaemonHello, &proto.DaemonHello{}))...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nBadInputs.Add(1)
			c := fakeAgentDaemon(t, tc.frames)
			r, err := c.Run(context.Background(), client.RunRequest{Hosts: []string{"fake"}, Command: "echo hi"})
			if err != nil {
				t.Fatal(err)
			}
			res := collect(t, r, 45*time.Second)
			nCommands.Add(1)
			got := res["fake"]
			if got == nil {
				nLost.Add(1)
				t.Fatalf("no result")
			}
			t.Logf("%s: %s %q", tc.name, got.Status, got.Err)
			if got.Status == proto.StatusOK || got.Err == "" {
				t.Errorf("a broken agent gave %s with error %q; want a clear error", got.Status, got.Err)
			}
		})
	}
}

// TestBadConfigAndTargets feeds the one-shot commands broken target expressions, host files
// with garbage and broken TOML: each is a clear error (non-zero exit, a message), never a panic
// or a hang.
func TestBadConfigAndTargets(t *testing.T) {
	t.Parallel()
	h := newHome(t, localConfig(2, "[tags]\nweb = \"lab1\"\n"))
	garbage := filepath.Join(h.root, "garbage-hosts")
	os.WriteFile(garbage, []byte("lab1\n\x00\xff\xfe\x01[[[\n@@@\nweb[1-\n"+strings.Repeat("x", 70000)+"\n"), 0o600)
	huge := filepath.Join(h.root, "huge-hosts")
	os.WriteFile(huge, bytes.Repeat([]byte("n[1-100000]\n"), 5), 0o600)
	for _, expr := range []string{"web[1-", "web[5-1]", "@nosuchtag", "a&&b", "x[1-99999999]",
		"x[1-2000][1-1000]", "^/nonexistent", "^" + garbage, "^" + huge, "\xff\xfe", "a\x01b", "!", "[",
		strings.Repeat("[", 10000), strings.Repeat("a,", 50000) + "!"} {
		nBadInputs.Add(1)
		r := h.shoal(30*time.Second, "hosts", expr)
		t.Logf("hosts %q: exit %d in %v, %s", clip(expr), r.code, r.took, strings.TrimSpace(clip(r.stderr)))
		if expr == "^"+huge {
			// Valid (100,000 hosts, each named five times): it must finish, and does.
			if r.code != 0 {
				t.Errorf("hosts file of repeated ranges: exit %d", r.code)
			}
			continue
		}
		if r.code == 0 {
			t.Errorf("hosts %q: exit 0 (%s)", clip(expr), clip(r.stdout))
		} else if strings.TrimSpace(r.stderr) == "" {
			t.Errorf("hosts %q: exit %d without a message", clip(expr), r.code)
		}
	}
	for _, conf := range []string{"fanout = = 3\n", "[ssh\nuser = 1\n", "fanout = \"many\"\n", "\x00\xff\xfe\x01",
		"[[host]]\nname = \"web[1-\"\n", "[[host]]\nname = \"x[1-99999999]\"\n", "nosuchkey = 1\n",
		strings.Repeat("[a.", 5000) + "\n", "command_timeout = \"-5s\"\n"} {
		nBadInputs.Add(1)
		h.writeConfig(conf)
		r := h.shoal(30*time.Second, "config", "check")
		r2 := h.shoal(30*time.Second, "--no-daemon", "run", "lab1", "--", "true")
		t.Logf("config %q: check exit %d, run exit %d: %s", clip(conf), r.code, r2.code, strings.TrimSpace(clip(r.stderr)))
		if r.code == 0 || r2.code == 0 {
			t.Errorf("config %q: check exit %d, run exit %d; want both non-zero", clip(conf), r.code, r2.code)
		}
		if strings.TrimSpace(r.stderr+r.stdout) == "" {
			t.Errorf("config %q: no message", clip(conf))
		}
	}
}
