package proto

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// clientSeedMessages is one sample of every client↔daemon message, for the seed corpora.
func clientSeedMessages() map[Type]any {
	hr := HostResult{Host: "web1", Status: "failed", ExitCode: 3, Stdout: []byte("out"), Started: 1, Ended: 2, Output: true}
	return map[Type]any{
		TypeClientHello:  &ClientHello{Protocol: Version, Client: ClientVersion, Program: "dev", Identity: "alice", PID: 1},
		TypeDaemonHello:  &DaemonHello{Protocol: Version, Client: ClientVersion, Program: "dev", PID: 2, Started: 3, Err: "no"},
		TypeRun:          &RunRequest{Hosts: []string{"a", "b"}, Command: "date", Timeout: 1e9, Env: map[string]string{"A": "1"}, Fanout: 2},
		TypeRunAccepted:  &RunAccepted{RunID: 9},
		TypeRunEvent:     &RunEvent{Host: "a", Kind: EventDone, Result: &hr},
		TypeRunEnd:       &RunEnd{},
		TypeCancel:       &Cancel{},
		TypePingHosts:    &HostsRequest{Hosts: []string{"a"}},
		TypePingResults:  &PingResults{Results: []PingResult{{Host: "a", RTT: 5, Status: "ok"}}},
		TypeInfoHosts:    &HostsRequest{Hosts: []string{"a"}},
		TypeInfoResults:  &InfoResults{Results: []InfoResult{{Host: "a", Status: "ok", CPUs: 2, Load: [3]float64{1, 2, 3}}}},
		TypeTimeHosts:    &HostsRequest{Hosts: []string{"a"}},
		TypeTimeResults:  &TimeResults{Results: []TimeResult{{Host: "a", Status: "ok", Offset: -5, RTT: 10}}},
		TypePut:          &PutRequest{Hosts: []string{"a"}, LocalPath: "/tmp/f", Dest: "f", Mode: 0o644},
		TypeGet:          &GetRequest{Hosts: []string{"a"}, Src: "/etc/hosts", DestDir: "/tmp/d"},
		TypeFileResults:  &FileResults{Results: []FileResult{{Host: "a", Status: "ok", Bytes: 3, Path: "/tmp/d/a/hosts"}}},
		TypeStatus:       &StatusRequest{},
		TypeStatusResult: &DaemonStatus{PID: 1, Hosts: []HostStatus{{Host: "a", State: "ready", LastRTT: 3}}},
		TypeLast:         &LastRequest{N: 2},
		TypeLastResult:   &LastResult{Runs: []RunRecord{{ID: 1, Command: "date", Results: []HostResult{hr}}}},
		TypeStop:         &Stop{},
		TypeStopping:     &Stopping{},
		TypeFailed:       &Failed{Code: CodeBadRequest, Message: "no hosts"},
	}
}

// TestClientTypes pins the client↔daemon wire values: never reordered, all in 64–127.
func TestClientTypes(t *testing.T) {
	if TypeClientHello != 64 || TypeRun != 66 || TypeRunEvent != 68 || TypeCancel != 70 || TypeFailed != 86 {
		t.Fatal("client wire values changed: they must never be reordered")
	}
	for typ := range clientSeedMessages() {
		if typ < ClientTypeMin || typ > ClientTypeMax {
			t.Errorf("%v = %d outside 64–127", typ, typ)
		}
		if !typ.Known() {
			t.Errorf("%d is not registered", typ)
		}
	}
}

// TestClientSeedsRoundTrip encodes and decodes every seed message.
func TestClientSeedsRoundTrip(t *testing.T) {
	for typ, body := range clientSeedMessages() {
		p, err := Encode(typ, 3, body)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		env, err := DecodeEnvelope(p)
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		got, err := env.DecodeBody()
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		a, _ := Marshal(body)
		b, _ := Marshal(got)
		if !bytes.Equal(a, b) {
			t.Errorf("%v: round trip differs", typ)
		}
	}
}

// TestWriteClientSeeds adds the client messages to the corpora when run with -update-seeds.
func TestWriteClientSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite the corpora")
	}
	write := func(fuzz, name string, lines ...string) {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		os.MkdirAll(dir, 0o755)
		data := "go test fuzz v1\n"
		for _, l := range lines {
			data += l + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for typ, body := range clientSeedMessages() {
		p, err := Encode(typ, 7, body)
		if err != nil {
			t.Fatal(err)
		}
		bb, _ := Marshal(body)
		name := "client-" + typ.String()
		write("FuzzEnvelope", name, fmt.Sprintf("[]byte(%q)", p))
		write("FuzzBody", name, fmt.Sprintf("uint16(%d)", uint16(typ)), fmt.Sprintf("[]byte(%q)", bb))
	}
}
