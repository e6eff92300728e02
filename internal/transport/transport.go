// Package transport defines how the daemon reaches a running agent on a host.
//
// A Transport turns a Target into a Conn: the stdin and stdout of a `shoal agent`
// process on that host, speaking the framed protocol of package proto. Making
// sure the agent is there (replication) is the transport's job, done by Replicate
// for those that reach a host through a remote command (ssh, openssh); the
// protocol, heartbeats and reconnects belong to the caller (package hostsess).
//
// Implementations are sibling packages: local (a subprocess on this machine),
// ssh (in-process golang.org/x/crypto/ssh) and openssh (the system ssh binary).
// They share one conformance suite.
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/shoal-sh/shoal/internal/proto"
)

// Target is everything a transport needs to reach one host.
type Target struct {
	// Name is the host as the user wrote it; for SSH it is the ssh_config alias.
	Name string
	// Address overrides the host name to connect to (ssh_config HostName); empty means Name.
	Address string
	// Port overrides the port; 0 means the ssh_config or default port.
	Port int
	// User overrides the login user; empty means the ssh_config or current user.
	User string
	// InstallDir is the remote directory for the agent binary; empty means "~/.cache/shoal".
	InstallDir string
	// AgentArgs are extra arguments passed to `shoal agent` (queue limits, state dir).
	AgentArgs []string
	// Reinstall asks the transport to upload the agent even if one with the right hash is there.
	Reinstall bool
}

// Conn is a running agent: write request frames to it, read response frames from it.
type Conn interface {
	io.Reader // the agent's stdout
	io.Writer // the agent's stdin
	// Close closes the agent's stdin and releases the connection. It does not wait
	// for running commands: the agent keeps their results for the next connection.
	Close() error
	// Info describes how the connection was made.
	Info() ConnInfo
	// Side runs a short shell command on the host outside the agent (to check or kill
	// the agent's processes when it stops answering) and returns its combined output.
	Side(ctx context.Context, cmd string) ([]byte, error)
}

// ConnInfo describes an established Conn.
type ConnInfo struct {
	Installed  bool   // the agent binary was uploaded during this connect
	AgentPath  string // where the agent binary lives on the host
	AgentHash  string // hex SHA-256 of that binary
	RemoteOS   string // e.g. "linux", when known
	RemoteArch string // e.g. "amd64", when known
}

// Transport connects to hosts.
type Transport interface {
	Connect(ctx context.Context, t Target) (Conn, error)
}

// Error is a connect failure: why (one of the proto.Reason values for reaching a host and
// starting its agent; proto.ReasonConnectFailed when no finer one is known), the host, and
// the cause.
type Error struct {
	Reason proto.Reason
	Host   string
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %s", e.Host, e.Reason.Phrase())
	}
	return fmt.Sprintf("%s: %s: %v", e.Host, e.Reason.Phrase(), e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the first *Error in err's chain, or "" when there is none.
func ReasonOf(err error) proto.Reason {
	var te *Error
	if errors.As(err, &te) {
		return te.Reason
	}
	return ""
}
