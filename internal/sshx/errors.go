package sshx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// The failure classes of Dial; match them with errors.Is.
var (
	ErrUnreachable    = errors.New("host unreachable")
	ErrRefused        = errors.New("connection refused")
	ErrTimeout        = errors.New("timed out")
	ErrAuth           = errors.New("authentication failed")
	ErrHostKeyUnknown = errors.New("host key unknown")
	ErrHostKeyChanged = errors.New("host key changed")
)

// Error is a failure to reach or log in to a host; Is matches it against its class.
type Error struct {
	Host  string // the alias being dialled
	Op    string // what was being done, e.g. "dialing 10.0.0.1:22"
	Class error  // one of the Err* values above, or nil
	Err   error  // the cause
}

func (e *Error) Error() string {
	cause := causeText(e.Err)
	if e.Class != nil && !strings.Contains(cause, e.Class.Error()) {
		return fmt.Sprintf("%s: %s: %v: %s", e.Host, e.Op, e.Class, cause)
	}
	return fmt.Sprintf("%s: %s: %s", e.Host, e.Op, cause)
}

// causeText is err's message without what Op already says: a dial's *net.OpError
// repeats the network and address ("dial tcp 10.0.0.1:22: connect: connection
// refused"), so only its cause ("connect: connection refused") is kept.
func causeText(err error) string {
	if err == nil {
		return "unknown cause"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && op.Err != nil && err == error(op) {
		return op.Err.Error()
	}
	return err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the class of e.
func (e *Error) Is(target error) bool { return e.Class != nil && target == e.Class }

// HostKeyError says a host's key is unknown or differs from known_hosts. Its message names the
// file and line of the expected key so the user can inspect or fix it.
type HostKeyError struct {
	Host        string // host:port as looked up in known_hosts
	Fingerprint string // SHA256 fingerprint of the key the host presented
	KeyType     string
	Changed     bool   // true: known_hosts holds a different key for this host
	File        string // where the expected key was found (Changed) or where to add one
	Line        int
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for %s: it presented %s key %s, "+
			"which differs from the key in %s:%d; someone may be intercepting the connection, "+
			"or the host key was replaced: check, then remove that line to accept the new key",
			e.Host, e.KeyType, e.Fingerprint, e.File, e.Line)
	}
	where := "known_hosts"
	if e.File != "" {
		where = e.File
	}
	return fmt.Sprintf("no host key for %s is known (%s key %s); add it to %s "+
		"(for example by connecting once with ssh) or set StrictHostKeyChecking accept-new",
		e.Host, e.KeyType, e.Fingerprint, where)
}

// Is reports whether target is ErrHostKeyChanged or ErrHostKeyUnknown matching e.
func (e *HostKeyError) Is(target error) bool {
	if e.Changed {
		return target == ErrHostKeyChanged
	}
	return target == ErrHostKeyUnknown
}

// classifyNet returns the class of a dial error.
func classifyNet(err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return ErrUnreachable
}
