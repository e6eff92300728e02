package render

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProgressGolden(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, 0, Options{})
	p.Clear() // nothing shown: writes nothing
	p.Draw(Counts{Total: 20, Done: 0, Running: 20}, 0)
	p.Draw(Counts{Total: 20, Done: 12, Running: 8, Failed: 1, Unreachable: 2}, 3200*time.Millisecond)
	p.Draw(Counts{Total: 20, Done: 13, Running: 7, Failed: 2, Unreachable: 2, Cancelling: true}, 3300*time.Millisecond)
	p.Clear()
	p.Clear()
	golden(t, "progress", []byte(strings.ReplaceAll(b.String(), "\x1b", "<ESC>")))
}

func TestProgressWidth(t *testing.T) {
	var b bytes.Buffer
	p := NewProgress(&b, 20, Options{Color: true})
	p.Draw(Counts{Total: 2000, Done: 1000, Running: 1000, Failed: 7}, time.Minute)
	line := strings.TrimPrefix(b.String(), eraseLine)
	if strings.Contains(line, "\x1b") || len([]rune(line)) != 19 {
		t.Errorf("line %q: want 19 runes without colour", line)
	}
	if got := ProgressLine(Counts{Failed: 1}, 0, Options{Color: true}); visibleLen(got) != len([]rune(ProgressLine(Counts{Failed: 1}, 0, Options{}))) {
		t.Errorf("visibleLen(%q) disagrees with the plain line", got)
	}
}

func TestColorEnabled(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var b bytes.Buffer
	if ColorEnabled(&b, env(nil)) {
		t.Errorf("ColorEnabled(buffer) = true; want false")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || ColorEnabled(f, env(nil)) || TerminalWidth(f) != 0 {
		t.Errorf("a regular file counts as a terminal")
	}
	// A terminal, when the test has one, is coloured unless NO_COLOR or TERM=dumb.
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if IsTerminal(tty) {
			if !ColorEnabled(tty, env(nil)) {
				t.Errorf("ColorEnabled(tty) = false; want true")
			}
			if ColorEnabled(tty, env(map[string]string{"NO_COLOR": "1"})) || ColorEnabled(tty, env(map[string]string{"TERM": "dumb"})) {
				t.Errorf("ColorEnabled ignores NO_COLOR or TERM=dumb")
			}
		}
	}
}

func TestProgressPaced(t *testing.T) {
	got := ProgressLine(Counts{Total: 6, Done: 3, Running: 1, Waiting: 1, Failed: 1, Skipped: 1}, 1500*time.Millisecond, Options{})
	if want := "[3/6] running 1 · waiting 1 · failed 1 · unreachable 0 · skipped 1 · 1.5s"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
