package hostsess

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/transport"
)

// writeLog is a transport whose connections record the size of every write, to see what the
// transport below (sshx.Stream.Write picks its packet size by the size of a write) is given.
type writeLog struct {
	transport.Transport
	mu    sync.Mutex
	sizes []int
}

func (l *writeLog) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	c, err := l.Transport.Connect(ctx, t)
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, l: l}, nil
}

func (l *writeLog) taken() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sizes
	l.sizes = nil
	return s
}

type loggedConn struct {
	transport.Conn
	l *writeLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.sizes = append(c.l.sizes, len(p))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// TestWriteFileInBulk checks that each full chunk of a file write reaches the connection in
// one write, large enough for the ssh transport to send in its large packets, while the other
// frames stay small.
func TestWriteFileInBulk(t *testing.T) {
	var wl *writeLog
	s, _, _ := newLocalSession(t, func(o *Options) {
		wl = &writeLog{Transport: o.Transport}
		o.Transport = wl
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if before := wl.taken(); len(before) == 0 {
		t.Error("nothing written before WriteFile; want the hello and the ping")
	}
	dest := t.TempDir() + "/f"
	data := bytes.Repeat([]byte("0123456789abcdef"), 3*writeChunk/16+1000) // three full chunks and a short one
	if err := s.WriteFile(ctx, dest, 0o600, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file after WriteFile: %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	// The three full chunks go in one write each; the short one (16000 bytes), the request
	// and the done in small ones.
	var big, small int
	for _, n := range wl.taken() {
		switch {
		case n >= writeChunk && n <= writeChunk+64:
			big++
		case n < 64<<10:
			small += n
		default:
			t.Errorf("a write of %d bytes; want whole chunk frames (%d bytes and a header) or small frames", n, writeChunk)
		}
	}
	if big != 3 {
		t.Errorf("%d writes of a whole chunk frame; want 3", big)
	}
	if small < 16000 {
		t.Errorf("%d bytes in small writes; want the short chunk and the small frames", small)
	}
}

func TestCountingWriter(t *testing.T) {
	var buf bytes.Buffer
	cw := &countingWriter{w: &buf}
	big := make([]byte, writeChunk+1)
	if n, err := cw.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	if cw.n.Load() != int64(len(big)) || buf.Len() != len(big) {
		t.Errorf("counted %d, wrote %d; want %d both", cw.n.Load(), buf.Len(), len(big))
	}
}
