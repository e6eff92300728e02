package proto

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.golden from goldenMessages")

// goldenFile holds the wire bytes of goldenMessages.
const goldenFile = "testdata/wire.golden"

// goldenID is the envelope id of every golden message but the hellos, which use 0.
const goldenID = 300

// goldenMessages is one message of every type with every field set, so that each field's key
// and encoding is pinned in goldenFile. Literals are untyped where they can be, so that a
// field's Go type may change (string to a named string type, int to int64) without touching
// this table; the bytes must not change with it.
func goldenMessages() map[Type]any {
	hostResult := func(host string) HostResult {
		return HostResult{Host: host, Status: "failed", ExitCode: 3, Signal: "SIGTERM", PID: 4242,
			Stdout: []byte("out\n"), Stderr: []byte("err\n"), Truncated: true, Started: 1764000000000000000,
			Ended: 1764000001500000000, UserCPU: 2000000, SysCPU: 1000000, MaxRSS: 8 << 20, Err: "exit status 3", Output: true, Sudo: SudoRefused, Reason: "host_key_changed"}
	}
	fileResult := FileResult{Host: "web2", Status: "ok", Err: "none", Bytes: 1234, Path: "/tmp/d/web2/hosts", Mode: 0o644}
	return map[Type]any{
		TypeHello: &Hello{Protocol: 1, Program: "v0.3.1", BinarySHA256: "9f86d081884c7d65", Capabilities: []string{"exec", "ping"},
			AgentID: "web1-4242-x7", PID: 4242, Role: "agent", Hostname: "web1", Clock: 1764000000000000000},
		TypePing: &Ping{},
		TypePong: &Pong{Clock: 1764000000000000000},
		TypeInfo: &InfoRequest{},
		TypeInfoResult: &Info{Hostname: "web1", OS: "linux", Arch: "amd64", Kernel: "6.8.0-45-generic", CPUs: 8,
			MemTotal: 16 << 30, MemAvailable: 9 << 30, Load: [3]float64{0.5, 1.25, 2}, Uptime: 86400000000000,
			Version: "v0.3.1", BinarySHA256: "9f86d081884c7d65", Clock: 1764000000000000000, AgentID: "web1-4242-x7",
			PID: 4242, Running: 2, Queued: 1, StateDir: "/home/u/.cache/shoal"},
		TypeExec: &Exec{Cmd: "uptime", Env: []string{"LANG=C"}, Stdin: []byte("in\n"), Timeout: 30000000000,
			Dir: "/tmp", OutputCap: 1 << 20, KillGrace: 2000000000,
			SudoUser: "root", SudoPassword: []byte("pw"), SudoCheck: true,
			Script: []byte("#!/bin/sh\necho hi\n"), Args: []string{"-v"}, Login: true,
			PTY: &PTY{Term: "xterm-256color", Rows: 40, Cols: 120}},
		TypeStarted: &Started{PID: 4243, Dir: "/home/u/.cache/shoal/run/a/300", Redelivered: true, Cmd: "uptime", AgentID: "web1-4000-q2"},
		TypeOutput:  &Output{Stream: Stderr, Data: []byte("hello\n"), Seq: 2},
		TypeExit: &Exit{Code: -1, Signal: 9, Start: 1764000000000000000, End: 1764000001500000000, Duration: 1500000000,
			UserCPU: 2000000, SysCPU: 1000000, MaxRSS: 8 << 20, Truncated: true, TimedOut: true, Canceled: true,
			Redelivered: true, StdoutBytes: 70000, StderrBytes: 12, Err: "signal: killed", Sudo: SudoNoTTY},
		TypeAck:        &Ack{},
		TypeRead:       &Read{Path: "/etc/hosts", Offset: 10, Length: 100, MaxSize: 1 << 30, ChunkSize: 1 << 18, Tree: true},
		TypeReadChunk:  &ReadChunk{Offset: 10, Data: []byte("127.0.0.1"), EOF: true, Size: 110, Mode: 0o644, MTime: 1764000000000000000},
		TypeWrite:      &Write{Path: "/tmp/f", Mode: 0o600, Size: 3, MkdirAll: true, Sum: true, Tree: true},
		TypeWriteChunk: &WriteChunk{Data: []byte("abc")},
		TypeWriteDone:  &WriteDone{},
		TypeWritten:    &Written{Size: 3, SHA256: "ba7816bf8f01cfea"},
		TypeKill:       &Kill{Target: 299, All: true, Signal: 15, Grace: 2000000000},
		TypeKilled:     &Killed{Count: 2},
		TypeBusy:       &Busy{Running: 8, Queued: 64, MaxRunning: 8, MaxQueued: 64},
		TypeError:      &Error{Code: CodeNotFound, Message: "no such file"},

		TypeClientHello: &ClientHello{Protocol: 1, Client: 1, Program: "v0.3.1", Identity: "alice", PID: 777,
			BinarySHA256: "9f86d081884c7d65", Hops: 1,
			Config: &ClientConfig{ConfigFile: "/home/ann/shoal.toml", SSHConfig: "/home/ann/ssh_config", ConnectTimeout: 2e9, User: "ops"}},
		TypeDaemonHello: &DaemonHello{Protocol: 1, Client: 1, Program: "v0.3.1", PID: 778, Started: 1764000000000000000,
			Socket: "/run/user/1000/shoal/daemon.sock", BinarySHA256: "9f86d081884c7d65", Err: "client version 2, want 1",
			Caps: []string{CapFileStream}},
		TypeRun: &RunRequest{Hosts: []string{"web1", "web2"}, Command: "uptime", Timeout: 30000000000,
			Env: map[string]string{"LANG": "C"}, Stdin: []byte("in\n"), Identity: "alice", Fanout: 64, Dir: "src", KillGrace: 2000000000,
			Rollout: &Rollout{Batch: 2, BatchPercent: 25, Waves: true, Wait: 5000000000, MaxFail: 1, MaxFailPercent: 10,
				Canary: 1, Shuffle: true, Seed: 42},
			Subst: true, Masked: []string{"TOKEN"}, Index: []int{1, 3}, Count: 5, RunID: 17,
			SudoUser: "root", SudoPassword: []byte("pw"), SudoCheck: true,
			Script: []byte("#!/bin/sh\necho hi\n"), ScriptName: "fix.sh", Args: []string{"-v"}, Login: true,
			PTY: &PTY{Term: "xterm-256color", Rows: 40, Cols: 120}},
		TypeRunAccepted: &RunAccepted{RunID: 17},
		TypeRunEvent: &RunEvent{Host: "web1", Kind: EventDone, State: "ready", PID: 4243, Data: []byte("out\n"),
			Result: func() *HostResult { r := hostResult("web1"); return &r }()},
		TypeRunEnd:    &RunEnd{},
		TypeCancel:    &Cancel{Now: true},
		TypePingHosts: &HostsRequest{Hosts: []string{"web1", "web2"}},
		TypePingResults: &PingResults{Results: []PingResult{
			{Host: "web1", RTT: 350000, Status: "ok", Err: "none"}}},
		TypeInfoHosts: &HostsRequest{Hosts: []string{"web1"}},
		TypeInfoResults: &InfoResults{Results: []InfoResult{{Host: "web1", Status: "ok", Err: "none", Hostname: "web1",
			OS: "linux", Arch: "arm64", Kernel: "6.8.0", CPUs: 4, MemTotal: 8 << 30, MemAvailable: 1 << 30,
			Load: [3]float64{0.5, 1.25, 2}, Uptime: 3600000000000, AgentVersion: "v0.3.1", AgentHash: "9f86d081884c7d65",
			Clock: 1764000000000000000}}},
		TypeTimeHosts:   &HostsRequest{Hosts: []string{"web2"}},
		TypeTimeResults: &TimeResults{Results: []TimeResult{{Host: "web2", Status: "ok", Err: "none", Offset: -5000, RTT: 350000}}},
		TypePut:         &PutRequest{Hosts: []string{"web1"}, LocalPath: "/tmp/f", Dest: "f", Mode: 0o755, Tree: true},
		TypeGet:         &GetRequest{Hosts: []string{"web2"}, Src: "/etc/hosts", DestDir: "/tmp/d", Tree: true},
		TypeFileResults: &FileResults{Results: []FileResult{fileResult}},
		TypeStatus:      &StatusRequest{},
		TypeStatusResult: &DaemonStatus{PID: 778, Version: "v0.3.1", Started: 1764000000000000000, Clients: 2,
			Socket: "/run/user/1000/shoal/daemon.sock", Hosts: []HostStatus{{Host: "web1", State: "ready",
				AgentVersion: "v0.3.1", AgentPID: 4242, LastRTT: 350000, LastSeen: 1764000000000000000, Running: 1, Err: "none",
				Config: "--config /home/ann/shoal.toml"}},
			Goroutines: 40, HeapLive: 4 << 20, HeapInUse: 6 << 20, FDs: 12, GCCycles: 9},
		TypeLast: &LastRequest{N: 2},
		TypeLastResult: &LastResult{Runs: []RunRecord{{ID: 17, Command: "uptime", Started: 1764000000000000000,
			Ended: 1764000001500000000, Identity: "alice", Results: []HostResult{hostResult("web2")}, UID: 1000,
			Cert: "ops", Unseen: true}}, Problem: "record 3 is damaged"},
		TypeStop:      &Stop{},
		TypeStopping:  &Stopping{},
		TypeReload:    &Reload{},
		TypeReloaded:  &Reloaded{},
		TypeFailed:    &Failed{Code: CodeBadRequest, Message: "no hosts"},
		TypePutStream: &PutStream{Hosts: []string{"web1"}, Dest: "f", Mode: 0o600, Size: 3, Name: "f.txt", Tree: true},
		TypePutData:   &PutData{Data: []byte("abc"), EOF: true},
		TypeGetStream: &GetStream{Hosts: []string{"web2"}, Src: "/etc/hosts", Tree: true},
		TypeGetData:   &GetData{Host: "web2", Data: []byte("127.0.0.1"), End: &fileResult},
	}
}

// goldenEntry is one message of goldenFile.
type goldenEntry struct {
	name    string
	payload []byte
}

// goldenText returns goldenFile's content for msgs: for every type in wire order, its name and
// value, the frame payload in hex, and the same in CBOR diagnostic notation (RFC 8949 §8).
func goldenText(t *testing.T, msgs map[Type]any) []byte {
	var b bytes.Buffer
	b.WriteString("# The wire bytes of one fully populated message of every type (internal/proto goldenMessages):\n" +
		"# type number and name, the frame payload (envelope and body) in hex, and in CBOR diagnostic notation.\n" +
		"# A change here is a change of the wire. Regenerate: go test ./internal/proto -run TestWireGolden -update\n")
	types := slices.Sorted(func(yield func(Type) bool) {
		for typ := range msgs {
			if !yield(typ) {
				return
			}
		}
	})
	for _, typ := range types {
		p := goldenPayload(t, typ, msgs[typ])
		diag, err := cbor.Diagnose(p)
		if err != nil {
			t.Fatalf("%v: diagnosing %x: %v", typ, p, err)
		}
		fmt.Fprintf(&b, "\n%d %s\n%x\n%s\n", typ, typ, p, diag)
	}
	return b.Bytes()
}

func goldenPayload(t *testing.T, typ Type, body any) []byte {
	var id uint64 = goldenID
	if typ == TypeHello || typ == TypeClientHello || typ == TypeDaemonHello {
		id = 0
	}
	p, err := Encode(typ, id, body)
	if err != nil {
		t.Fatalf("encoding %v: %v", typ, err)
	}
	return p
}

// readGolden parses goldenFile into entries by type.
func readGolden(t *testing.T) map[Type]goldenEntry {
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	defer f.Close()
	out := map[Type]goldenEntry{}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines)%3 != 0 {
		t.Fatalf("%s: %d lines of entries; want 3 per type (number and name, hex, diagnostic)", goldenFile, len(lines))
	}
	for i := 0; i < len(lines); i += 3 {
		num, name, _ := strings.Cut(lines[i], " ")
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil {
			t.Fatalf("%s: bad entry head %q", goldenFile, lines[i])
		}
		p, err := hex.DecodeString(lines[i+1])
		if err != nil {
			t.Fatalf("%s: %s: %v", goldenFile, lines[i], err)
		}
		out[Type(n)] = goldenEntry{name: name, payload: p}
	}
	return out
}

// TestWireGolden compares the encoding of goldenMessages with goldenFile byte by byte, and
// decodes each golden payload back to its message: a renamed Go field, a changed tag or a
// changed field type cannot move the wire without this failing.
func TestWireGolden(t *testing.T) {
	msgs := goldenMessages()
	if *update {
		if err := os.WriteFile(goldenFile, goldenText(t, msgs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readGolden(t)
	for typ, body := range msgs {
		g, ok := golden[typ]
		if !ok {
			t.Errorf("%v (%d): no entry in %s; run with -update", typ, typ, goldenFile)
			continue
		}
		if g.name != typ.String() {
			t.Errorf("%s names type %d %q; the registry says %q", goldenFile, typ, g.name, typ)
		}
		if got := goldenPayload(t, typ, body); !bytes.Equal(got, g.payload) {
			gd, _ := cbor.Diagnose(got)
			wd, _ := cbor.Diagnose(g.payload)
			t.Errorf("%v: the wire changed:\n got %x\n     %s\nwant %x\n     %s", typ, got, gd, g.payload, wd)
		}
		env, err := DecodeEnvelope(g.payload)
		if err != nil {
			t.Errorf("%v: decoding the golden payload: %v", typ, err)
			continue
		}
		dec, err := env.DecodeBody()
		if err != nil {
			t.Errorf("%v: decoding the golden body: %v", typ, err)
			continue
		}
		if d := cmp.Diff(body, dec); d != "" {
			t.Errorf("%v: the golden payload decodes to another message (-want +got):\n%s", typ, d)
		}
	}
	for typ := range golden {
		if _, ok := msgs[typ]; !ok {
			t.Errorf("%s has type %d, which goldenMessages lacks", goldenFile, typ)
		}
	}
}

// TestGoldenCoversEveryType checks that every registered type has a golden message of its body
// type with every field set, nested ones included, so a new type or field cannot skip the
// golden file.
func TestGoldenCoversEveryType(t *testing.T) {
	msgs := goldenMessages()
	for _, typ := range Types() {
		body, ok := msgs[typ]
		if !ok {
			t.Errorf("%v (%d) has no golden message: add one to goldenMessages and run with -update", typ, typ)
			continue
		}
		want, _ := NewBody(typ)
		if reflect.TypeOf(body) != reflect.TypeOf(want) {
			t.Errorf("%v: golden message is a %T; the type's body is a %T", typ, body, want)
		}
		for _, f := range zeroFields(reflect.ValueOf(body), reflect.TypeOf(body).Elem().Name()) {
			t.Errorf("%v: golden message leaves %s zero; set it, so its encoding is pinned", typ, f)
		}
	}
	for typ := range msgs {
		if !typ.Known() {
			t.Errorf("golden message for unregistered type %d", typ)
		}
	}
}

// zeroFields returns the paths of the fields under v that are zero, looking into structs,
// pointers and the elements of slices.
func zeroFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return zeroFields(v.Elem(), path)
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			out = append(out, zeroFields(v.Field(i), path+"."+f.Name)...)
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // bytes: any content
		}
		var out []string
		for i := range v.Len() {
			out = append(out, zeroFields(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}
