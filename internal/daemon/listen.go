package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-sh/shoal/internal/certs"
	"github.com/shoal-sh/shoal/internal/fsutil"
)

// ErrRunning reports that another daemon already answers on the socket.
var ErrRunning = errors.New("a shoal daemon is already running")

// Listen creates the daemon's Unix socket at path: its directory is created (or
// tightened) to 0700 and the socket is 0600. A socket left by a dead daemon is
// dialled first and removed only when nothing answers; a live one is ErrRunning.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating socket directory: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("checking socket directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("socket directory %s is not a directory", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return nil, fmt.Errorf("socket directory %s belongs to uid %d, not to us (%d)", dir, sys.Uid, os.Getuid())
	}
	if st.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("tightening socket directory: %w", err)
		}
	}
	if _, err := os.Lstat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listening on %s: %w", path, ErrRunning)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	}
	// Create the socket with no group/other bits from the start, then make sure.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting socket mode: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return ln, nil
}

// PeerCred is who is on the other end of a client connection.
type PeerCred struct {
	UID, PID int
	Known    bool   // read from the kernel (SO_PEERCRED)
	Remote   bool   // a network (TLS) client: UID and PID are unknown (-1, 0)
	Name     string // a TLS client's certificate common name ("" when it showed none)
}

// tlsHandshakeTimeout bounds a TLS client's handshake.
const tlsHandshakeTimeout = 10 * time.Second

// peerCred says who is on the other end of c: SO_PEERCRED for a Unix socket, this
// process for an in-memory pipe, the verified certificate for TLS. Any other kind of
// connection is refused.
func peerCred(c net.Conn) (PeerCred, error) {
	switch nc := c.(type) {
	case *memConn:
		return PeerCred{UID: os.Getuid(), PID: os.Getpid(), Known: true}, nil
	case *tls.Conn:
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		defer cancel()
		if err := nc.HandshakeContext(ctx); err != nil {
			return PeerCred{UID: -1}, fmt.Errorf("TLS handshake: %w", err)
		}
		cs := nc.ConnectionState()
		name := ""
		if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
			name = cs.VerifiedChains[0][0].Subject.CommonName
		}
		return PeerCred{UID: -1, Remote: true, Name: name}, nil
	case *net.UnixConn:
		raw, err := nc.SyscallConn()
		if err != nil {
			return PeerCred{UID: -1}, fmt.Errorf("reading peer credentials: %w", err)
		}
		var uid, pid int
		var cerr error
		if err := raw.Control(func(fd uintptr) { uid, pid, cerr = fsutil.SocketPeer(int(fd)) }); err != nil {
			return PeerCred{UID: -1}, fmt.Errorf("reading peer credentials: %w", err)
		}
		if cerr != nil {
			return PeerCred{UID: -1}, fmt.Errorf("reading peer credentials: %w", cerr)
		}
		return PeerCred{UID: uid, PID: pid, Known: true}, nil
	}
	return PeerCred{UID: -1}, fmt.Errorf("refusing a %T connection: only Unix sockets, TLS and in-process pipes are served", c)
}

// PeerError refuses a client.
type PeerError struct {
	UID, Want int
	Reason    string // set for network clients
}

func (e *PeerError) Error() string {
	if e.Reason != "" {
		return "refusing network client: " + e.Reason
	}
	return fmt.Sprintf("refusing client of uid %d: this daemon serves uid %d only", e.UID, e.Want)
}

// checkPeer returns a *PeerError unless cred is the daemon's own user, or a TLS
// client with a verified certificate (or any TLS client when allowUnverified).
func checkPeer(cred PeerCred, own int, allowUnverified bool) error {
	if cred.Remote {
		if cred.Name == "" && !allowUnverified {
			return &PeerError{UID: -1, Want: own, Reason: "no verified client certificate"}
		}
		return nil
	}
	if cred.UID != own {
		return &PeerError{UID: cred.UID, Want: own}
	}
	return nil
}

// Merge returns a listener that accepts from every one of lns; closing it closes them all.
func Merge(lns ...net.Listener) net.Listener {
	m := &mergedListener{lns: lns, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, ln := range lns {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				select {
				case m.conns <- c:
				case <-m.done:
					c.Close()
					return
				}
			}
		}()
	}
	return m
}

// mergedListener is Merge's listener. Its accept goroutines end when Close closes
// the listeners under them; Close waits for them.
type mergedListener struct {
	lns   []net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func (m *mergedListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *mergedListener) Close() error {
	m.once.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			ln.Close()
		}
		m.wg.Wait()
	})
	return nil
}

func (m *mergedListener) Addr() net.Addr { return m.lns[0].Addr() }

// MemListener is an in-memory net.Listener: Dial returns one end of a pipe whose other
// end Accept returns. It serves the daemon in-process (--no-daemon).
type MemListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

// NewMemListener returns an in-memory listener.
func NewMemListener() *MemListener {
	return &MemListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// memAddr is the address of a MemListener.
type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "in-process" }

// Accept waits for the next Dial.
func (l *MemListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and Dial.
func (l *MemListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address.
func (l *MemListener) Addr() net.Addr { return memAddr{} }

// memConn is the daemon's end of an in-memory connection: the same process, trusted.
type memConn struct{ net.Conn }

// Dial connects to the listener.
func (l *MemListener) Dial(ctx context.Context) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.conns <- &memConn{b}:
		return a, nil
	case <-l.done:
		a.Close()
		b.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		a.Close()
		b.Close()
		return nil, ctx.Err()
	}
}

// TLSOptions configure ListenTLS.
type TLSOptions struct {
	Cert, Key string // the daemon's certificate and key (PEM files)
	// ClientCA is the CA client certificates must chain to. It is required unless
	// InsecureNoClientAuth is set.
	ClientCA             string
	InsecureNoClientAuth bool
	// Logger receives the warning an insecure listener gets on every start.
	Logger *slog.Logger
}

// ErrNoClientCA refuses a TLS listener that would not check client certificates.
var ErrNoClientCA = errors.New("a TLS listener needs a client CA (daemon.client_ca) to check client certificates; " +
	"set insecure_no_client_auth = true to serve without one, which lets anyone who reaches the port run commands")

// ListenTLS listens on addr (HOST:PORT) with TLS 1.3, demanding a client certificate
// signed by opts.ClientCA. Without a client CA it returns ErrNoClientCA unless
// opts.InsecureNoClientAuth is set; then it serves any client and warns loudly.
func ListenTLS(addr string, opts TLSOptions) (net.Listener, error) {
	var conf *tls.Config
	switch {
	case opts.ClientCA == "" && !opts.InsecureNoClientAuth:
		return nil, ErrNoClientCA
	case opts.ClientCA == "":
		pair, err := tls.LoadX509KeyPair(opts.Cert, opts.Key)
		if err != nil {
			return nil, fmt.Errorf("loading the daemon's TLS certificate: %w", err)
		}
		conf = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}}
	default:
		var err error
		if conf, err = certs.ServerConfig(opts.Cert, opts.Key, opts.ClientCA); err != nil {
			return nil, err
		}
		if opts.InsecureNoClientAuth {
			conf.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	ln, err := tls.Listen("tcp", addr, conf)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if opts.InsecureNoClientAuth && opts.Logger != nil {
		opts.Logger.Warn("INSECURE: the TLS listener accepts clients WITHOUT a client certificate "+
			"(insecure_no_client_auth = true): anyone who reaches this port can run commands on every host",
			"listen", ln.Addr().String())
	}
	return ln, nil
}
