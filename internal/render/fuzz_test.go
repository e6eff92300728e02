package render

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzStreamChunks checks that cutting output into chunks anywhere prints the
// same lines as writing it whole, for text and JSON streams.
func FuzzStreamChunks(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), uint(3), uint(5))
	f.Add([]byte("\xff\x00\n\r\n"), uint(1), uint(1))
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
					p.Event(Event{Type: EventStdout, Host: "h", Data: c})
				}
				p.Event(Event{Type: EventEnd, Host: "h", Result: Result{Host: "h", Status: StatusOK}})
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
		var rs []Result
		for i, o := range so {
			r := Result{Host: "h" + itoa(i), Status: StatusOK, Stdout: []byte(o)}
			if len(se) > 0 {
				r.Stderr = []byte(se[i%len(se)])
			}
			if len(o) > 0 && o[0]%3 == 0 {
				r.Status, r.ExitCode = StatusFailed, int(o[0])
			}
			rs = append(rs, r)
		}
		byHost := map[string]Result{}
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
