package render

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name.golden, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("writing golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: output differs from golden file (go test -run %s -update rewrites it)\ngot:\n%s\nwant:\n%s",
			name, t.Name(), got, want)
	}
}

// t0 is the fixed start time of test results.
var t0 = time.Date(2026, 11, 25, 22, 17, 50, 123456789, time.UTC)

// ok returns a result that exited 0 with stdout out.
func ok(host, out string) proto.HostResult {
	return proto.HostResult{Host: host, Status: proto.StatusOK, PID: 1000, Stdout: []byte(out),
		Started: proto.UnixNanoOf(t0), Ended: proto.UnixNanoOf(t0.Add(250 * time.Millisecond))}
}

// hosts returns prefix01..prefixNN.
func hosts(prefix string, from, to int) []string {
	var hs []string
	for i := from; i <= to; i++ {
		hs = append(hs, fmt.Sprintf("%s%02d", prefix, i))
	}
	return hs
}

// results returns one ok result with out for each host.
func results(hs []string, out string) []proto.HostResult {
	var rs []proto.HostResult
	for _, h := range hs {
		rs = append(rs, ok(h, out))
	}
	return rs
}

func TestGatherGolden(t *testing.T) {
	const date = "Wed Nov 25 22:17:50 UTC 2026\n"
	tests := []struct {
		name    string
		results []proto.HostResult
		opt     Options
	}{
		{"gather_identical", results(hosts("web", 1, 18), date), Options{}},
		{"gather_odd_host", func() []proto.HostResult {
			rs := results(append(hosts("web", 1, 17), hosts("web", 19, 20)...), date)
			rs = append(rs, ok("web18", "Wed Nov 25 22:19:03 UTC 2026\n"))
			return rs
		}(), Options{}},
		{"gather_no_majority", append(results(hosts("a", 1, 2), "x\n"), results(hosts("b", 1, 2), "y\n")...), Options{}},
		{"gather_stderr", []proto.HostResult{
			{Host: "db1", Status: proto.StatusFailed, ExitCode: 2, Stdout: []byte("partial\n"), Stderr: []byte("ls: cannot access '/nope': No such file or directory\n")},
			{Host: "db2", Status: proto.StatusFailed, ExitCode: 2, Stdout: []byte("partial\n"), Stderr: []byte("ls: cannot access '/nope': No such file or directory\n")},
			ok("db3", "partial\n"),
		}, Options{}},
		{"gather_exit_codes", []proto.HostResult{
			{Host: "n1", Status: proto.StatusFailed, ExitCode: 1},
			{Host: "n2", Status: proto.StatusFailed, ExitCode: 3},
			{Host: "n3", Status: proto.StatusFailed, Signal: "KILL"},
			{Host: "n4", Status: proto.StatusTimeout, Signal: "SIGTERM", Stdout: []byte("started\n")},
			{Host: "n5", Status: proto.StatusCancelled, Stdout: []byte("started\n")},
			{Host: "n6", Status: proto.StatusFailed, ExitCode: 1},
			ok("n7", ""),
		}, Options{}},
		{"gather_unreachable", append(results(hosts("web", 1, 4), "up\n"),
			proto.HostResult{Host: "web05", Status: proto.StatusUnreachable, Err: "web05: dial tcp 10.0.0.5:22: connect: no route to host"},
			proto.HostResult{Host: "web06", Status: proto.StatusUnreachable, Err: "dial tcp: lookup web06: no such host"},
			proto.HostResult{Host: "web07", Status: proto.StatusUnreachable, Err: "dial tcp: lookup web07: no such host"},
			proto.HostResult{Host: "web08", Status: proto.StatusRefused, Err: "agent busy: queue full"},
			proto.HostResult{Host: "web09", Status: proto.StatusError},
		), Options{}},
		{"gather_empty", append(results(hosts("h", 1, 3), ""), ok("h04", "\n"), ok("h05", "no newline")), Options{}},
		{"gather_binary", []proto.HostResult{
			ok("bin1", "\x00\x01ELF\xff\xfe\ttab\\slash\nline two é\n"),
			ok("bin2", "\x00\x01ELF\xff\xfe\ttab\\slash\nline two é\n"),
			{Host: "bin3", Status: proto.StatusOK, Stderr: []byte("\x1b[31mraw\xc3\x28\n")},
		}, Options{}},
		{"gather_truncated", []proto.HostResult{
			{Host: "log1", Status: proto.StatusOK, Stdout: []byte("line 1\nline 2\n"), Truncated: true},
			{Host: "log2", Status: proto.StatusOK, Stdout: []byte("line 1\nline 2\n"), Truncated: true},
			{Host: "log3", Status: proto.StatusOK, Stdout: []byte("line 1\nline 2\n")},
		}, Options{}},
		{"gather_color", append(results(hosts("web", 1, 3), "same\n"),
			proto.HostResult{Host: "web04", Status: proto.StatusFailed, ExitCode: 1, Stderr: []byte("boom\n")},
			proto.HostResult{Host: "web05", Status: proto.StatusUnreachable, Err: "connection refused"},
		), Options{Color: true}},
		{"gather_nothing", nil, Options{}},
		// The host's name inside an error chain is dropped where it starts a part (the header
		// names the hosts), and put back for a group of one.
		{"gather_errors", []proto.HostResult{
			{Host: "h008", Status: proto.StatusUnreachable, Err: "h008: refused: h008: connecting to 127.77.0.9:2222: connection refused"},
			{Host: "h010", Status: proto.StatusUnreachable, Err: "h010: refused: h010: connecting to 127.77.0.11:2222: connection refused"},
			{Host: "h1", Status: proto.StatusUnreachable, Err: "h1: connect: h1: dial tcp: lookup h1: no such host"},
			{Host: "h2", Status: proto.StatusUnreachable, Err: "h2: connect: h2: dial tcp: lookup h2: no such host"},
			{Host: "h3", Status: proto.StatusUnreachable, Err: "connect: dial tcp: lookup h3: no such host"},
		}, Options{}},
		{"gather_max_lines", []proto.HostResult{
			{Host: "y1", Status: proto.StatusCancelled, Stdout: []byte(strings.Repeat("y\n", 5000)), Stderr: []byte("e1\ne2\ne3\ne4\ne5 no newline")},
			{Host: "y2", Status: proto.StatusOK, Stdout: []byte("one\ntwo\nthree\n")},
			{Host: "y3", Status: proto.StatusOK, Stdout: []byte("one\ntwo\nthree\nfour\n")},
			{Host: "y4", Status: proto.StatusOK, Stdout: []byte("one\ntwo\nthree\nfour\nfive")},
		}, Options{MaxLines: 3, MoreHint: "shoal last > FILE writes them all"}},
		{"gather_max_bytes", []proto.HostResult{
			{Host: "b1", Status: proto.StatusOK, Stdout: []byte(strings.Repeat("y", 100) + "\nnext\n")},
			{Host: "b2", Status: proto.StatusOK, Stdout: []byte("0123456789\n0123456789\n0123456789\n0123456789\n")},
			{Host: "b3", Status: proto.StatusOK, Stdout: []byte(strings.Repeat("é", 40))},
			{Host: "b4", Status: proto.StatusOK, Stdout: []byte("0123456789\n" + strings.Repeat("z", 100) + "\n")},
		}, Options{MaxBytes: 15, MoreHint: "more elsewhere"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Gather(&b, tt.results, tt.opt); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
}

func TestGroups(t *testing.T) {
	rs := results(append(hosts("web", 1, 17), hosts("web", 19, 20)...), "a\n")
	rs = append(rs, ok("web18", "b\n"), proto.HostResult{Host: "web21", Status: proto.StatusUnreachable, Err: "x"})
	// Shuffle deterministically: grouping must not depend on input order.
	for i := range rs {
		j := (i * 7) % len(rs)
		rs[i], rs[j] = rs[j], rs[i]
	}
	gs := Groups(rs)
	if got, want := len(gs), 3; got != want {
		t.Fatalf("len(groups) = %d; want %d", got, want)
	}
	if got, want := strings.Join(gs[0].Hosts, ","), strings.Join(append(hosts("web", 1, 17), hosts("web", 19, 20)...), ","); got != want {
		t.Errorf("groups[0].Hosts = %s; want %s", got, want)
	}
	if gs[0].Odd || !gs[1].Odd || gs[2].Odd {
		t.Errorf("Odd = %v %v %v; want false true false", gs[0].Odd, gs[1].Odd, gs[2].Odd)
	}
	if gs[2].Ran {
		t.Errorf("unreachable group Ran = true; want false")
	}
}

func TestGroupsTieOrder(t *testing.T) {
	// Equal sizes: natural order of the first host decides (n2 before n10).
	rs := []proto.HostResult{ok("n10", "x\n"), ok("n11", "x\n"), ok("n2", "y\n"), ok("n3", "y\n")}
	gs := Groups(rs)
	if got, want := gs[0].Hosts[0], "n2"; got != want {
		t.Errorf("first group starts with %s; want %s", got, want)
	}
}

func TestGroupsKeyFields(t *testing.T) {
	// Each pair differs in one field that must split the group.
	base := proto.HostResult{Host: "a", Status: proto.StatusFailed, ExitCode: 1, Stdout: []byte("o"), Stderr: []byte("e")}
	mods := map[string]func(*proto.HostResult){
		"exit":      func(r *proto.HostResult) { r.ExitCode = 2 },
		"signal":    func(r *proto.HostResult) { r.Signal = "KILL" },
		"status":    func(r *proto.HostResult) { r.Status = proto.StatusTimeout },
		"stdout":    func(r *proto.HostResult) { r.Stdout = []byte("o2") },
		"stderr":    func(r *proto.HostResult) { r.Stderr = []byte("e2") },
		"boundary":  func(r *proto.HostResult) { r.Stdout, r.Stderr = []byte("oe"), nil },
		"truncated": func(r *proto.HostResult) { r.Truncated = true },
		"err":       func(r *proto.HostResult) { r.Err = "boom" },
	}
	for name, mod := range mods {
		b := base
		b.Host = "b"
		mod(&b)
		if got := len(Groups([]proto.HostResult{base, b})); got != 2 {
			t.Errorf("%s: %d groups; want 2", name, got)
		}
	}
	// The host name in an error message does not split hosts failing alike.
	u1 := proto.HostResult{Host: "web1", Status: proto.StatusUnreachable, Err: "web1: lookup web1: no such host"}
	u2 := proto.HostResult{Host: "web2", Status: proto.StatusUnreachable, Err: "lookup web2: no such host"}
	if gs := Groups([]proto.HostResult{u1, u2}); len(gs) != 1 || gs[0].Err != "lookup <host>: no such host" {
		t.Errorf("Groups(unreachable) = %+v; want one group with the host masked", gs)
	}
}

func TestErrText(t *testing.T) {
	tests := []struct{ host, err, want string }{
		{"web1", "web1: x", "x"},
		{"web1", "lookup web1 on 1.1.1.1", "lookup <host> on 1.1.1.1"},
		{"web1", "lookup web10: no", "lookup web10: no"},
		{"a", "bad a, a day", "bad <host>, <host> day"},
		{"", "x", "x"},
	}
	for _, tt := range tests {
		if got := errText(tt.host, tt.err); got != tt.want {
			t.Errorf("errText(%q, %q) = %q; want %q", tt.host, tt.err, got, tt.want)
		}
	}
}
