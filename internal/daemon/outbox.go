package daemon

import (
	"net"
	"sync"
	"time"

	"github.com/shoal-sh/shoal/internal/proto"
)

// outboxMax is how many bytes of frames may wait for one client before senders wait.
const outboxMax = 8 << 20

// outbox batches the frames going to one client: senders (one goroutine per host of
// every run) append encoded frames under a short lock, and one writer goroutine writes
// whatever has gathered in a single Write. A client that stops reading makes the Write
// time out, which fails every sender from then on.
type outbox struct {
	nc      net.Conn
	timeout time.Duration
	done    chan struct{} // closed when run returns

	mu     sync.Mutex // protects the following
	cond   *sync.Cond // signalled when buf grows or drains, or err or closed is set
	buf    []byte
	spare  []byte
	err    error
	closed bool
}

func newOutbox(nc net.Conn, timeout time.Duration) *outbox {
	o := &outbox{nc: nc, timeout: timeout, done: make(chan struct{})}
	o.cond = sync.NewCond(&o.mu)
	return o
}

// send queues one frame, waiting while too much is queued.
func (o *outbox) send(id uint64, t proto.Type, body any) error {
	p, err := proto.Encode(t, id, body)
	if err != nil {
		return err
	}
	if len(p) > ClientMaxFrame {
		return &proto.FrameSizeError{Size: uint64(len(p)), Max: ClientMaxFrame}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.err == nil && !o.closed && len(o.buf) > 0 && len(o.buf)+len(p) > outboxMax {
		o.cond.Wait()
	}
	if o.err != nil {
		return o.err
	}
	if o.closed {
		return net.ErrClosed
	}
	o.buf, err = proto.AppendFrame(o.buf, p, ClientMaxFrame)
	o.cond.Broadcast()
	return err
}

// run writes queued frames until close (after a last flush) or a write error.
func (o *outbox) run() {
	defer close(o.done)
	for {
		o.mu.Lock()
		for len(o.buf) == 0 && !o.closed && o.err == nil {
			o.cond.Wait()
		}
		if o.err != nil || len(o.buf) == 0 {
			o.mu.Unlock()
			return
		}
		b := o.buf
		o.buf, o.spare = o.spare[:0], nil
		o.mu.Unlock()

		o.nc.SetWriteDeadline(time.Now().Add(o.timeout))
		_, err := o.nc.Write(b)

		o.mu.Lock()
		if cap(b) <= 1<<20 {
			o.spare = b[:0]
		}
		if err != nil {
			o.err = err
		}
		o.cond.Broadcast()
		o.mu.Unlock()
		if err != nil {
			o.nc.Close()
			return
		}
	}
}

// close flushes what is queued, stops the writer and waits for it. Idempotent.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.cond.Broadcast()
	o.mu.Unlock()
	<-o.done
}
