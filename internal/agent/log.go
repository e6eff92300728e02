package agent

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Logger writes the agent's diagnostics as lines of key=value pairs, the text format of log/slog,
// without log/slog: that and the encoding/json it brings were 300 KB, 9% of the agent that every
// first contact uploads and every host decompresses and pages in. A nil *Logger discards.
type Logger struct {
	out   *output
	debug bool
	attrs string // " k=v" pairs from With, already formatted
}

// output is a Logger's writer, shared by the loggers With derives, one line per write.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogger returns a Logger writing to w, at debug level when debug is set, else from info.
func NewLogger(w io.Writer, debug bool) *Logger {
	return &Logger{out: &output{w: w}, debug: debug}
}

// With returns a Logger that adds the key-value pairs kv to every line.
func (l *Logger) With(kv ...any) *Logger {
	if l == nil {
		return nil
	}
	var b strings.Builder
	b.WriteString(l.attrs)
	appendPairs(&b, kv)
	return &Logger{out: l.out, debug: l.debug, attrs: b.String()}
}

// Debug logs msg and the key-value pairs kv at debug level.
func (l *Logger) Debug(msg string, kv ...any) {
	if l != nil && l.debug {
		l.log("DEBUG", msg, kv)
	}
}

// Info logs msg and the key-value pairs kv at info level.
func (l *Logger) Info(msg string, kv ...any) { l.log("INFO", msg, kv) }

// Warn logs msg and the key-value pairs kv at warning level.
func (l *Logger) Warn(msg string, kv ...any) { l.log("WARN", msg, kv) }

func (l *Logger) log(level, msg string, kv []any) {
	if l == nil || l.out == nil || l.out.w == nil {
		return
	}
	var b strings.Builder
	b.WriteString("time=")
	b.WriteString(time.Now().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteString(" level=")
	b.WriteString(level)
	b.WriteString(" msg=")
	b.WriteString(quoteValue(msg))
	b.WriteString(l.attrs)
	appendPairs(&b, kv)
	b.WriteByte('\n')
	l.out.mu.Lock()
	io.WriteString(l.out.w, b.String())
	l.out.mu.Unlock()
}

// appendPairs writes kv as " key=value" pairs; a key without a value gets "!BADKEY" as its key,
// as in log/slog.
func appendPairs(b *strings.Builder, kv []any) {
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		var v any
		switch {
		case !ok || i+1 == len(kv):
			key, v = "!BADKEY", kv[i]
			i--
		default:
			v = kv[i+1]
		}
		b.WriteByte(' ')
		b.WriteString(key)
		b.WriteByte('=')
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v) // errors and Stringers print as themselves
		}
		b.WriteString(quoteValue(s))
	}
}

// quoteValue quotes s when it is empty or holds a space, '=', a quote or anything unprintable.
func quoteValue(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || r <= ' ' || r == '=' || r == '"' || r == 0x7f || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
		i += n
	}
	return s
}
