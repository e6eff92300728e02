package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "audit.log")
	l, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	c := Client{ID: 1, UID: 1000, PID: 42, Identity: "alice", Version: "dev"}
	l.ClientConnected(c)
	l.Request(c, 7, "run", []string{"a", "b"}, "uptime")
	start := time.Unix(1700000000, 0)
	l.HostOutcome(c, 7, &proto.HostResult{Host: "a", Status: "failed", ExitCode: 3, Started: proto.UnixNanoOf(start),
		Ended: proto.UnixNanoOf(start.Add(1500 * time.Millisecond)), Stdout: make([]byte, 10), Stderr: make([]byte, 2), Err: ""})
	l.ClientLeft(c, errors.New("connection reset"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v; want 0600", st.Mode().Perm())
	}
	lines := readLines(t, path)
	if len(lines) != 4 {
		t.Fatalf("got %d lines; want 4", len(lines))
	}
	wantMsg := []string{"client connected", "request", "host outcome", "client left"}
	for i, m := range lines {
		if m["msg"] != wantMsg[i] {
			t.Errorf("line %d msg %v; want %q", i, m["msg"], wantMsg[i])
		}
		cl, _ := m["client"].(map[string]any)
		if cl["identity"] != "alice" || cl["uid"] != float64(1000) {
			t.Errorf("line %d client %v; want identity alice uid 1000", i, cl)
		}
	}
	if got := lines[1]["command"]; got != "uptime" {
		t.Errorf("request command %v; want uptime", got)
	}
	if got := lines[2]["exit"]; got != float64(3) {
		t.Errorf("outcome exit %v; want 3", got)
	}
	if got := lines[2]["stdout_bytes"]; got != float64(10) {
		t.Errorf("outcome stdout_bytes %v; want 10", got)
	}
	if got := lines[3]["error"]; got != "connection reset" {
		t.Errorf("client left error %v; want connection reset", got)
	}
}

func TestRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := Open(Options{Path: path, MaxSize: 1000, Backups: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 100; i++ {
		l.Event("tick", "n", i, "pad", strings.Repeat("x", 50))
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 3 {
		t.Fatalf("files %v; want audit.log and two rotated copies", names)
	}
	for _, n := range names {
		st, _ := os.Stat(filepath.Join(dir, n))
		if st.Size() > 1000 {
			t.Errorf("%s is %d bytes; want ≤ 1000", n, st.Size())
		}
		for _, m := range readLines(t, filepath.Join(dir, n)) {
			if m["msg"] != "tick" {
				t.Errorf("%s holds a broken record %v", n, m)
			}
		}
	}
	last := readLines(t, path)
	if got := last[len(last)-1]["n"]; got != float64(99) {
		t.Errorf("last record n=%v; want 99", got)
	}
}

// TestSyslog checks that with Syslog each record also reaches a syslog socket (a unixgram
// socket standing in for /dev/log), and that a syslog that is away stops nothing.
func TestSyslog(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Skipf("SKIPPING: no unixgram socket: %v", err)
	}
	defer ln.Close()
	path := filepath.Join(dir, "audit.log")
	l, err := Open(Options{Path: path, Syslog: true, SyslogNetwork: "unixgram", SyslogAddr: sock})
	if err != nil {
		t.Fatal(err)
	}
	l.ClientConnected(Client{ID: 7, UID: 1000, Identity: "alice"})
	ln.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, err := ln.Read(buf)
	if err != nil {
		t.Fatalf("reading the syslog socket: %v", err)
	}
	msg := string(buf[:n])
	// <facility auth (4) * 8 + info (6)>, the tag, and the JSON record.
	if !strings.HasPrefix(msg, "<38>") || !strings.Contains(msg, "shoal[") || !strings.Contains(msg, `"identity":"alice"`) {
		t.Errorf("syslog got %q; want an auth.info record tagged shoal with the JSON", msg)
	}
	ln.Close()
	os.Remove(sock)
	l.ClientLeft(Client{ID: 7}, nil) // syslog is gone: the file still gets it
	l.Close()
	if lines := readLines(t, path); len(lines) != 2 {
		t.Errorf("the file has %d records; want 2", len(lines))
	}
}
