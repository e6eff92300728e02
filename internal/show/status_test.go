package show

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shoal-sh/shoal/internal/client"
)

// TestStatusResources shows the daemon's goroutines, heap and fds on the summary line, and
// leaves them out for a daemon that does not report them.
func TestStatusResources(t *testing.T) {
	tests := []struct {
		st   client.DaemonStatus
		want string // on the first line
		not  string
	}{
		{client.DaemonStatus{PID: 7, Version: "dev", Goroutines: 412, HeapLive: 8 << 20, HeapInUse: 12 << 20, FDs: 37},
			" · 412 goroutines · heap 8.0 MiB live (12.0 MiB in use) · 37 fds\n", ""},
		{client.DaemonStatus{PID: 7, Version: "dev", Goroutines: 1, HeapInUse: 3 << 10, FDs: 1},
			" · 1 goroutine · heap 3.0 KiB in use · 1 fd\n", "live"},
		{client.DaemonStatus{PID: 7, Version: "old"}, "socket \n", "goroutine"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if _, err := WriteStatus(&b, &tt.st, ReportOptions{}); err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(b.String(), "\n")
		first += "\n"
		if !strings.HasSuffix(first, tt.want) || (tt.not != "" && strings.Contains(first, tt.not)) {
			t.Errorf("got %q; want it to end %q without %q", first, tt.want, tt.not)
		}
	}
}

// TestStatusJSON pins the keys of the status object documented in docs/json.md.
func TestStatusJSON(t *testing.T) {
	started := time.Date(2026, 11, 26, 1, 2, 3, 4, time.UTC)
	st := &client.DaemonStatus{PID: 7, Version: "dev", Started: started, Clients: 2, Socket: "/run/s",
		Goroutines: 412, HeapLive: 1000, HeapInUse: 2000, FDs: 37, GCCycles: 9,
		Hosts: []client.HostStatus{
			{Host: "web1", State: "ready", AgentVersion: "dev", AgentPID: 42, LastRTT: 1500 * time.Microsecond, LastSeen: started, Running: 1,
				Config: "-F /home/ann/ssh_config"},
			{Host: "web2", State: "lost", Err: "connection refused"},
		}}
	var b bytes.Buffer
	if _, err := WriteStatus(&b, st, ReportOptions{JSON: true}); err != nil {
		t.Fatal(err)
	}
	want := `{"pid":7,"version":"dev","started_at":"2026-11-26T01:02:03.000000004Z","clients":2,"socket":"/run/s",` +
		`"goroutines":412,"heap_live_bytes":1000,"heap_in_use_bytes":2000,"open_fds":37,"gc_cycles":9,"hosts":[` +
		`{"host":"web1","state":"ready","agent_version":"dev","agent_pid":42,"rtt_ms":1.5,"last_seen":"2026-11-26T01:02:03.000000004Z","running":1,"error":null,"config":"-F /home/ann/ssh_config"},` +
		`{"host":"web2","state":"lost","agent_version":null,"agent_pid":null,"rtt_ms":null,"last_seen":null,"running":0,"error":"connection refused","config":null}]}` + "\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("status JSON (-want +got):\n%s", diff)
	}

	// An older daemon reports no resources: null, not 0.
	b.Reset()
	if _, err := WriteStatus(&b, &client.DaemonStatus{PID: 7}, ReportOptions{JSON: true}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"started_at", "goroutines", "heap_live_bytes", "heap_in_use_bytes", "open_fds", "gc_cycles"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v); want null", k, v, ok)
		}
	}
	if h, ok := m["hosts"].([]any); !ok || len(h) != 0 {
		t.Errorf("hosts = %v; want []", m["hosts"])
	}
}
