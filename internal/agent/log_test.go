package agent

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, false).With("agent", "h-1-ab")
	l.Debug("hidden at info")
	l.Info("agent stopped", "err", errors.New(`read "x": closed`), "n", 3, "empty", "")
	l.Warn("odd", "key")
	want := []string{
		`level=INFO msg="agent stopped" agent=h-1-ab err="read \"x\": closed" n=3 empty=""`,
		`level=WARN msg=odd agent=h-1-ab !BADKEY=key`,
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("logged %q; want %d lines", buf.String(), len(want))
	}
	stamp := regexp.MustCompile(`^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) `)
	for i, line := range lines {
		if !stamp.MatchString(line) || stamp.ReplaceAllString(line, "") != want[i] {
			t.Errorf("line %d: %q; want time=... %s", i, line, want[i])
		}
	}

	buf.Reset()
	NewLogger(&buf, true).Debug("shown", "x", "a=b")
	if !strings.HasSuffix(buf.String(), ` level=DEBUG msg=shown x="a=b"`+"\n") {
		t.Errorf("debug line %q", buf.String())
	}

	var nilLog *Logger
	nilLog.With("a", 1).Warn("discarded") // must not panic
}

// TestLoggerConcurrent checks that lines from many goroutines never interleave.
func TestLoggerConcurrent(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, false)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				l.With("g", g).Info("line", "payload", strings.Repeat("x", 100))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines; want 800", len(lines))
	}
	for _, line := range lines {
		if !strings.HasSuffix(line, strings.Repeat("x", 100)) || strings.Count(line, "time=") != 1 {
			t.Fatalf("interleaved line %q", line)
		}
	}
}
