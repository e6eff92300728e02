package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/proto"
)

// FuzzStreamChunks checks that cutting output into chunks anywhere prints the
// same lines as writing it whole, for text and JSON streams.
func FuzzStreamChunks(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), uint(3), uint(5))
	f.Add([]byte("\xff\x00\n\r\n"), uint(1), uint(1))
	f.Add([]byte("\x1b[31mred\x1b[1A\x1b]0;t\x07\u009b\n\x1b[1"), uint(4), uint(9))
	f.Fuzz(func(t *testing.T, data []byte, i, j uint) {
		i = i % uint(len(data)+1)
		j = i + j%uint(len(data)+1-int(i))
		for _, newPrinter := range []func(*bytes.Buffer) interface{ Event(Event) error }{
			func(b *bytes.Buffer) interface{ Event(Event) error } {
				return NewStream(b, []string{"h"}, nil, Options{})
			},
			func(b *bytes.Buffer) interface{ Event(Event) error } { return NewJSONStream(b) },
		} {
			run := func(chunks ...[]byte) string {
				var b bytes.Buffer
				p := newPrinter(&b)
				for _, c := range chunks {
					p.Event(Event{Kind: proto.EventStdout, Host: "h", Data: c})
				}
				p.Event(Event{Kind: proto.EventDone, Host: "h", Result: proto.HostResult{Host: "h", Status: proto.StatusOK}})
				return b.String()
			}
			whole := run(data)
			if got := run(data[:i], data[i:j], data[j:]); got != whole {
				t.Fatalf("cut at %d,%d: got %q; want %q", i, j, got, whole)
			}
		}
	})
}

// FuzzGroups checks that grouping keeps every host exactly once and puts only
// identical results together.
func FuzzGroups(f *testing.F) {
	f.Add("a\nb\na\n\xff\nb", "x\n\ny")
	f.Fuzz(func(t *testing.T, outs, errs string) {
		so := strings.Split(outs, "\n")
		se := strings.Split(errs, "\n")
		var rs []proto.HostResult
		for i, o := range so {
			r := proto.HostResult{Host: "h" + itoa(i), Status: proto.StatusOK, Stdout: []byte(o)}
			if len(se) > 0 {
				r.Stderr = []byte(se[i%len(se)])
			}
			if len(o) > 0 && o[0]%3 == 0 {
				r.Status, r.ExitCode = proto.StatusFailed, int(o[0])
			}
			rs = append(rs, r)
		}
		byHost := map[string]proto.HostResult{}
		for _, r := range rs {
			byHost[r.Host] = r
		}
		seen := map[string]bool{}
		for _, g := range Groups(rs) {
			for _, h := range g.Hosts {
				if seen[h] {
					t.Fatalf("host %s in two groups", h)
				}
				seen[h] = true
				r := byHost[h]
				if !sameResult(&g.Result, &r, g.Err, "") {
					t.Fatalf("host %s grouped with a different result", h)
				}
			}
		}
		if len(seen) != len(rs) {
			t.Fatalf("%d hosts grouped; want %d", len(seen), len(rs))
		}
		if err := Gather(&bytes.Buffer{}, rs, Options{Color: true}); err != nil {
			t.Fatal(err)
		}
		// The caps cut lines and whole outputs anywhere, in text and binary output alike.
		whole := []proto.HostResult{{Host: "w", Status: proto.StatusOK, Stdout: []byte(outs), Stderr: []byte(errs)}}
		for _, c := range [][2]int{{2, 7}, {1, 1}, {0, 3}, {3, 0}} {
			if err := Gather(&bytes.Buffer{}, whole, Options{MaxLines: c[0], MaxBytes: c[1], MoreHint: "h"}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestDisplayLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "plain",
		"crlf\r":         "crlf",
		"10%\r50%\r100%": "100%",
		"\r":             "",
	} {
		if got := string(displayLine([]byte(in))); got != want {
			t.Errorf("displayLine(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestRemoteControlSequences checks that a command's output cannot move the cursor, erase the
// screen or set the title: such bytes are shown as \xNN. Its colours pass through (closed at the
// end of the line) only when colour is on; piped or under NO_COLOR they are dropped.
func TestRemoteControlSequences(t *testing.T) {
	out := "\x1b[31mred\x1b[0m \x1b[1Aup\x1b[2K \x1b]0;title\x07 bell\x07 bs\b \u009b tab\tend\n\x1b[1mbold\n"
	tests := []struct {
		color bool
		want  string
	}{
		{false, "red \\x1b[1Aup\\x1b[2K \\x1b]0;title\\x07 bell\\x07 bs\\x08 \\xc2\\x9b tab\tend\nbold\n"},
		{true, "\x1b[31mred\x1b[0m \\x1b[1Aup\\x1b[2K \\x1b]0;title\\x07 bell\\x07 bs\\x08 \\xc2\\x9b tab\tend\n\x1b[1mbold\x1b[0m\n"},
	}
	for _, tt := range tests {
		opt := Options{Color: tt.color}
		var gb bytes.Buffer
		writeBody(&gb, []byte(out), "", opt)
		if gb.String() != tt.want {
			t.Errorf("gather, color %v:\ngot  %q\nwant %q", tt.color, gb.String(), tt.want)
		}
		var sb bytes.Buffer
		s := NewStream(&sb, []string{"h"}, nil, opt)
		s.Event(Event{Kind: proto.EventStdout, Host: "h", Data: []byte(out)})
		prefix := "h | "
		if tt.color {
			prefix = hostColor("h") + "h" + SGRReset + " | "
		}
		want := ""
		for _, l := range strings.SplitAfter(strings.TrimSuffix(tt.want, "\n"), "\n") {
			want += prefix + l
		}
		want += "\n"
		if sb.String() != want {
			t.Errorf("stream, color %v:\ngot  %q\nwant %q", tt.color, sb.String(), want)
		}
	}
}
