package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/proto"
)

// Shell is how Replicate reaches one host: a transport's way of running the bootstrap there
// (package install's commands travel on its stdio).
type Shell interface {
	// Start runs cmd on the host and returns its stdout to read and its stdin to write; once
	// the agent has started, they carry its frames. An *Error returned is the transport's own
	// account of the failure; any other error is an install failure.
	Start(cmd string) (io.ReadWriter, error)
	// Abort unblocks Start and every read and write on what it returned, for good. Replicate
	// calls it from another goroutine when its context ends first: before, during or after
	// Start.
	Abort()
	// End stops the command Start started, after Replicate gave up on it for err, and returns
	// err with what the transport saw of the cause: an *Error in the result (openssh: ssh's
	// own stderr naming a refused connection) says why it failed.
	End(err error) error
}

// Replicate starts the agent on the host t names through sh: it runs the bootstrap (offering
// src's binaries, none when t.Reinstall), and when the host reports the agent missing picks
// the binary for its platform (src.For), the upload that suits it (src.UploadFor) and installs
// it in the bootstrap's own session (install.Install). On success the agent speaks on what
// sh.Start returned, and the ConnInfo says what was found or installed. A failure is an
// *Error; sh's command has then been ended. When ctx ends first, the failure is a proto.ReasonConnectTimeout.
func Replicate(ctx context.Context, sh Shell, src *install.Source, t Target) (ConnInfo, error) {
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(aborted)
		sh.Abort()
	})
	info, err := replicate(sh, src, t)
	if !stop() {
		<-aborted // ctx ended and Abort runs, or ran: wait for it
		if err == nil {
			sh.End(context.Cause(ctx))
		}
	} else if err == nil || ctx.Err() == nil {
		return info, err
	}
	return ConnInfo{}, &Error{Reason: proto.ReasonConnectTimeout, Host: t.Name, Err: fmt.Errorf("starting agent: %w", context.Cause(ctx))}
}

// replicate is Replicate without the context.
func replicate(sh Shell, src *install.Source, t Target) (ConnInfo, error) {
	bins := src.Available()
	offer := bins
	if t.Reinstall {
		offer = nil
	}
	rw, err := sh.Start(install.Bootstrap(t.InstallDir, offer, t.AgentArgs))
	if err != nil {
		return ConnInfo{}, failure(t, proto.ReasonInstallFailed, fmt.Errorf("running bootstrap: %w", err))
	}
	m, err := install.ReadMarker(rw)
	if err != nil {
		return ConnInfo{}, failure(t, proto.ReasonInstallFailed, sh.End(fmt.Errorf("running bootstrap: %w", err)))
	}
	goos, goarch, _ := install.Platform(m.Uname)
	info := ConnInfo{RemoteOS: goos, RemoteArch: goarch}
	if m.Exec {
		b, _ := install.Match(bins, m.Uname)
		info.AgentPath, info.AgentHash = m.AgentPath, b.Hash
		return info, nil
	}
	var bin install.Binary
	if goos == "" {
		err = &install.NoBinaryError{Uname: m.Uname}
	} else {
		bin, err = src.For(goos, goarch)
	}
	if err != nil {
		// The host is fine; this side has nothing to offer it.
		sh.End(err)
		reason := proto.ReasonConnectFailed
		if nb := (*install.NoBinaryError)(nil); errors.As(err, &nb) {
			reason = proto.ReasonNoAgentBinary
		}
		return ConnInfo{}, &Error{Reason: reason, Host: t.Name, Err: err}
	}
	// The bootstrap waits for the upload script on its stdin: one session, not two.
	script, body := src.UploadFor(t.InstallDir, bin, m, t.AgentArgs)
	if m, err = install.Install(rw, script, bin, body); err != nil {
		return ConnInfo{}, failure(t, proto.ReasonInstallFailed, sh.End(fmt.Errorf("installing agent %s: %w", bin.Name(), err)))
	}
	info.Installed, info.AgentPath, info.AgentHash = true, m.AgentPath, bin.Hash
	return info, nil
}

// failure is err as the connect failure of t: the transport's own *Error when err holds one
// (it knows why), else an *Error with reason.
func failure(t Target, reason proto.Reason, err error) error {
	if te := (*Error)(nil); errors.As(err, &te) {
		return te
	}
	return &Error{Reason: reason, Host: t.Name, Err: err}
}

// ErrHashMismatch means the agent that answered is not the binary the transport meant to start.
var ErrHashMismatch = errors.New("agent binary hash mismatch")

// CheckHash compares the hash an agent reported (in its hello) with the one the transport
// installed or found (AgentHash); an empty AgentHash means unknown, and matches. On a mismatch
// the caller reconnects once with Target.Reinstall set, and reports the error if it happens
// again.
func (i ConnInfo) CheckHash(reported string) error {
	if i.AgentHash == "" {
		return nil
	}
	if !strings.EqualFold(i.AgentHash, reported) {
		return fmt.Errorf("%w: %s reports %.16s, expected %.16s", ErrHashMismatch, i.AgentPath, reported, i.AgentHash)
	}
	return nil
}
