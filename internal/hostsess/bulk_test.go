package hostsess

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sh/shoal/internal/transport"
)

// bulkTransport gives its connections a WriteBulk, as the ssh transport's have, and
// counts the bytes written each way.
type bulkTransport struct {
	transport.Transport
	bulk, plain atomic.Int64
}

func (b *bulkTransport) Connect(ctx context.Context, t transport.Target) (transport.Conn, error) {
	c, err := b.Transport.Connect(ctx, t)
	if err != nil {
		return nil, err
	}
	return &bulkConn{Conn: c, t: b}, nil
}

type bulkConn struct {
	transport.Conn
	t *bulkTransport
}

func (c *bulkConn) Write(p []byte) (int, error) {
	c.t.plain.Add(int64(len(p)))
	return c.Conn.Write(p)
}

func (c *bulkConn) WriteBulk(p []byte) (int, error) {
	c.t.bulk.Add(int64(len(p)))
	return c.Conn.Write(p)
}

func TestWriteFileInBulk(t *testing.T) {
	var bt *bulkTransport
	s, _, _ := newLocalSession(t, func(o *Options) {
		bt = &bulkTransport{Transport: o.Transport}
		o.Transport = bt
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	plain := bt.plain.Load()
	dest := t.TempDir() + "/f"
	data := bytes.Repeat([]byte("0123456789abcdef"), 3*writeChunk/16+1000) // three full chunks and a short one
	if err := s.WriteFile(ctx, dest, 0o600, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file after WriteFile: %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	// The three full chunks go in bulk; the short one (16000 bytes), the request and the
	// done go in ordinary writes, as do the hello and the ping before.
	if b := bt.bulk.Load(); b < 3*writeChunk || b > 3*(writeChunk+64) {
		t.Errorf("%d bytes written in bulk; want the three full chunks' frames (%d bytes and headers)", b, 3*writeChunk)
	}
	if p := bt.plain.Load() - plain; p < 16000 || p >= bulkFrame {
		t.Errorf("%d bytes written plainly during WriteFile; want the short chunk and the small frames", p)
	}
	if plain == 0 {
		t.Error("nothing written plainly before WriteFile; want the hello and the ping")
	}
}

func TestCountingWriterWithoutBulk(t *testing.T) {
	var buf bytes.Buffer
	cw := &countingWriter{w: &buf}
	big := make([]byte, bulkFrame+1)
	if n, err := cw.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	if cw.n.Load() != int64(len(big)) || buf.Len() != len(big) {
		t.Errorf("counted %d, wrote %d; want %d both", cw.n.Load(), buf.Len(), len(big))
	}
}
