package proto

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the seed corpora under testdata/fuzz")

// FuzzReadFrame feeds arbitrary streams to a Conn: frames, envelopes and bodies must fail cleanly.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewConn(bytes.NewReader(data), nil, ConnOptions{MaxFrame: 1 << 16})
		for range 100 {
			env, err := c.Recv()
			if env != nil && err == nil {
				env.DecodeBody()
			}
			if err != nil && env == nil {
				if _, ok := err.(*DecodeError); !ok {
					return
				}
			}
		}
	})
}

// FuzzEnvelope decodes an arbitrary payload as an envelope and its body, and re-encodes what decoded.
func FuzzEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		// The fast path must agree with the general decoder whenever it accepts.
		if fast, ok := decodeEnvelopeFast(data); ok {
			var slow Envelope
			if err := decMode.Unmarshal(data, &slow); err != nil {
				t.Fatalf("fast path accepted %x; general decoder says %v", data, err)
			}
			if fast.Version != slow.Version || fast.ID != slow.ID || fast.Type != slow.Type || !bytes.Equal(fast.Body, slow.Body) {
				t.Fatalf("fast path %+v; general decoder %+v", fast, slow)
			}
		}
		env, err := DecodeEnvelope(data)
		if err != nil {
			return
		}
		body, err := env.DecodeBody()
		if err != nil {
			return
		}
		p, err := Encode(env.Type, env.ID, body)
		if err != nil {
			t.Fatalf("re-encoding a decoded %v: %v", env.Type, err)
		}
		env2, err := DecodeEnvelope(p)
		if err != nil {
			t.Fatalf("decoding a re-encoded %v: %v", env.Type, err)
		}
		if _, err := env2.DecodeBody(); err != nil {
			t.Fatalf("decoding a re-encoded %v body: %v", env.Type, err)
		}
	})
}

// FuzzBody decodes arbitrary bytes as the body of every message type.
func FuzzBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ uint16, data []byte) {
		v, err := NewBody(Type(typ))
		if err != nil {
			return
		}
		env := &Envelope{Version: Version, Type: Type(typ), Body: data}
		env.Decode(v)
	})
}

// seedMessages is one sample of every message, used to build the seed corpora.
func seedMessages() map[Type]any {
	return map[Type]any{
		TypeHello:      &Hello{Protocol: Version, Program: "dev", BinarySHA256: "ab12", Capabilities: AgentCapabilities, AgentID: "h-1-x", PID: 1, Role: "agent"},
		TypePing:       &Ping{},
		TypePong:       &Pong{Clock: 1},
		TypeInfo:       &InfoRequest{},
		TypeInfoResult: &Info{Hostname: "h", OS: "linux", CPUs: 2, Load: [3]float64{0.1, 0.2, 0.3}},
		TypeExec:       &Exec{Cmd: "echo hi", Env: []string{"A=1"}, Stdin: []byte("in"), Timeout: 1e9},
		TypeStarted:    &Started{PID: 42, Dir: "/tmp/x"},
		TypeOutput:     &Output{Stream: Stderr, Data: []byte{0, 1, 2}, Seq: 3},
		TypeExit:       &Exit{Code: -1, Signal: 9, Start: 1, End: 2, Duration: 1, Truncated: true},
		TypeAck:        &Ack{},
		TypeRead:       &Read{Path: "/etc/hosts", Offset: 1, Length: 2, MaxSize: 3},
		TypeReadChunk:  &ReadChunk{Offset: 1, Data: []byte("x"), EOF: true, Size: 2, Mode: 0o644, MTime: 5},
		TypeWrite:      &Write{Path: "/tmp/f", Mode: 0o600, Size: 3},
		TypeWriteChunk: &WriteChunk{Data: []byte("abc")},
		TypeWriteDone:  &WriteDone{},
		TypeWritten:    &Written{Size: 3, SHA256: "cd"},
		TypeKill:       &Kill{Target: 5, Signal: 15},
		TypeKilled:     &Killed{Count: 1},
		TypeBusy:       &Busy{Running: 1, Queued: 2, MaxRunning: 1, MaxQueued: 2},
		TypeError:      &Error{Code: CodeNotFound, Message: "no"},
	}
}

// TestWriteSeeds rewrites testdata/fuzz when run with -update-seeds.
func TestWriteSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite the corpora")
	}
	write := func(fuzz, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		os.MkdirAll(dir, 0o755)
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case uint16:
				fmt.Fprintf(&b, "uint16(%d)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stream []byte
	for typ, body := range seedMessages() {
		p, err := Encode(typ, 7, body)
		if err != nil {
			t.Fatal(err)
		}
		bb, _ := Marshal(body)
		name := typ.String()
		write("FuzzEnvelope", name, p)
		write("FuzzBody", name, uint16(typ), bb)
		stream, _ = AppendFrame(stream, p, 0)
		one, _ := AppendFrame(nil, p, 0)
		write("FuzzReadFrame", name, one)
	}
	write("FuzzReadFrame", "all", stream)
	write("FuzzReadFrame", "truncated", stream[:len(stream)-3])
	write("FuzzReadFrame", "oversized", []byte{0xff, 0xff, 0xff, 0xff, 1, 2})
	write("FuzzReadFrame", "empty-frame", []byte{0, 0, 0, 0})
	write("FuzzEnvelope", "garbage", []byte{0xa4, 0x01, 0x01, 0x02, 0x00, 0x03, 0x06, 0x04, 0xff})
	write("FuzzEnvelope", "unknown-type", func() []byte { p, _ := Encode(99, 1, &Ping{}); return p }())
	write("FuzzBody", "bad-exec", uint16(TypeExec), []byte{0xa1, 0x01, 0x01})
}
