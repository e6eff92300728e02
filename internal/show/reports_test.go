package show

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/client"
	"github.com/shoal-sh/shoal/internal/proto"
)

func TestTimeOutliers(t *testing.T) {
	rs := []client.TimeResult{
		{Host: "a", Status: proto.StatusOK, Offset: 1 * time.Millisecond},
		{Host: "b", Status: proto.StatusOK, Offset: 2 * time.Millisecond},
		{Host: "c", Status: proto.StatusOK, Offset: -2 * time.Second},
		{Host: "d", Status: proto.StatusOK, Offset: 300 * time.Millisecond, RTT: time.Second}, // uncertain enough
		{Host: "e", Status: proto.StatusUnreachable},
	}
	median, out := TimeOutliers(rs)
	if median != 1500*time.Microsecond {
		t.Errorf("median %v; want 1.5ms", median)
	}
	if !out["c"] || out["a"] || out["b"] || out["d"] || out["e"] {
		t.Errorf("outliers %v; want only c", out)
	}
}

// TestPingFailureText groups hosts failing the same way and names each once: a host's name that
// starts a part of the error chain is dropped, and h1's name is not taken out of h10's.
func TestPingFailureText(t *testing.T) {
	res := []client.PingResult{
		{Host: "h1", Status: proto.StatusUnreachable, Err: "h1: refused: h1: connecting to 127.0.0.2:22: connection refused"},
		{Host: "h10", Status: proto.StatusUnreachable, Err: "h10: refused: h10: connecting to 127.0.0.2:22: connection refused"},
		{Host: "h2", Status: proto.StatusUnreachable, Err: "h2: dial tcp: lookup h2: no such host"},
	}
	var b bytes.Buffer
	if st, err := WritePing(&b, res, ReportOptions{}); err != nil || st != ExitNotRun {
		t.Fatalf("WritePing = %d, %v; want %d, nil", st, err, ExitNotRun)
	}
	want := "unreachable h[1,10] (2): refused: connecting to 127.0.0.2:22: connection refused\n" +
		"unreachable h2 (1): dial tcp: lookup h2: no such host\n"
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestStatusHostError shows a lost host's error with its name said once.
func TestStatusHostError(t *testing.T) {
	st := &client.DaemonStatus{PID: 1, Version: "dev", Hosts: []client.HostStatus{
		{Host: "h008", State: "lost", Err: "h008: refused: h008: connecting to 127.0.0.9:2222: connection refused"},
	}}
	var b bytes.Buffer
	if _, err := WriteStatus(&b, st, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "h008: refused: connecting to 127.0.0.9:2222: connection refused\n"; !strings.Contains(b.String(), want) {
		t.Errorf("got:\n%s\nwant a line %q", b.String(), want)
	}
}

// TestTimeOneHost says "1 host", not "1 hosts".
func TestTimeOneHost(t *testing.T) {
	var b bytes.Buffer
	res := []client.TimeResult{{Host: "h1", Status: proto.StatusOK, Offset: time.Millisecond, RTT: time.Millisecond}}
	if _, err := WriteTime(&b, res, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "1 host · median offset") {
		t.Errorf("got:\n%s\nwant \"1 host · median offset\"", b.String())
	}
}
