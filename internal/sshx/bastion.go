package sshx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// DefaultBastionStartups bounds the connections being set up through one jump host at once: the
// first number of OpenSSH's default MaxStartups (10:30:100), past which a stock sshd starts to
// drop unauthenticated connections. Through a shared jump connection they are channels, which
// MaxStartups does not count, but the bound also keeps a fan-out from queueing hundreds of
// channel opens on one connection.
const DefaultBastionStartups = 10

// bastion is one SSH connection to a jump host, shared by every connection that goes through
// that host with the same configuration, as OpenSSH's ControlMaster shares one. It lives while
// a connection holds a reference to it.
type bastion struct {
	key   string
	via   *bastion      // the hop before this one, which this one holds a reference to
	ready chan struct{} // closed once c or err is set
	c     *ssh.Client
	err   error
	sem   chan struct{} // connections being set up through this one
	// drains holds the connection's request loop and the goroutine that notices its end.
	drains sync.WaitGroup

	refs int // guarded by Dialer.bmu
}

// bastionKey identifies a chain of jump hosts by what decides how each hop is reached.
func bastionKey(hops []*HostConfig) string {
	var b strings.Builder
	for _, h := range hops {
		fmt.Fprintf(&b, "%s@%s|%s|%q|%q|%q|%q|%s|%s|%s;", h.User, h.Addr(), h.ProxyCommand, h.IdentityFiles,
			h.CertificateFiles, h.UserKnownHostsFiles, h.GlobalKnownHostsFiles, h.HostKeyAlias,
			h.IdentityAgent, h.StrictHostKeyChecking)
	}
	return b.String()
}

func (d *Dialer) bastionStartups() int {
	if d.BastionStartups > 0 {
		return d.BastionStartups
	}
	return DefaultBastionStartups
}

// acquireBastion returns the shared connection to the last of hops, through the others,
// connecting it (once, whoever asks) when there is none. The caller must release it.
func (d *Dialer) acquireBastion(ctx context.Context, hops []*HostConfig) (*bastion, error) {
	key := bastionKey(hops)
	d.bmu.Lock()
	b := d.bastions[key]
	if b == nil {
		b = &bastion{key: key, ready: make(chan struct{}), sem: make(chan struct{}, d.bastionStartups())}
		if d.bastions == nil {
			d.bastions = map[string]*bastion{}
		}
		d.bastions[key] = b
		b.refs++
		d.bmu.Unlock()
		d.connectBastion(b, hops)
	} else {
		b.refs++
		d.bmu.Unlock()
	}
	select {
	case <-b.ready:
	case <-ctx.Done():
		d.releaseBastion(b)
		return nil, ctx.Err()
	}
	if b.err != nil {
		d.releaseBastion(b)
		return nil, b.err
	}
	return b, nil
}

// connectBastion connects b to the last of hops, in the background, bounded by that hop's own
// ConnectTimeout: the connection serves every host behind it, whichever asked first.
func (d *Dialer) connectBastion(b *bastion, hops []*HostConfig) {
	h := hops[len(hops)-1]
	timeout := h.ConnectTimeout
	if timeout == 0 {
		timeout = d.ConnectTimeout
	}
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var via *ssh.Client
		if len(hops) > 1 {
			v, err := d.acquireBastion(ctx, hops[:len(hops)-1])
			if err != nil {
				d.failBastion(b, err)
				return
			}
			b.via, via = v, v.c
		}
		c, err := d.connectThrough(ctx, b.via, h, via, &b.drains)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Op = "via jump host " + h.Alias + ": " + e.Op
			}
			d.failBastion(b, err)
			return
		}
		d.bmu.Lock()
		b.c = c
		orphan := b.refs == 0 // every waiter gave up while it connected
		if !orphan {
			b.drains.Add(1)
		}
		close(b.ready)
		d.bmu.Unlock()
		if orphan {
			b.close(d)
			return
		}
		go func() {
			defer b.drains.Done()
			c.Wait()
			// A dead connection serves no one new.
			d.bmu.Lock()
			if d.bastions[b.key] == b {
				delete(d.bastions, b.key)
			}
			d.bmu.Unlock()
		}()
	}()
}

// failBastion records why b could not connect and forgets it, so the next dial tries again.
func (d *Dialer) failBastion(b *bastion, err error) {
	if b.via != nil {
		d.releaseBastion(b.via)
		b.via = nil
	}
	d.bmu.Lock()
	defer d.bmu.Unlock()
	if d.bastions[b.key] == b {
		delete(d.bastions, b.key)
	}
	b.err = err
	close(b.ready)
}

// releaseBastion drops a reference to b, closing it after the last. A bastion still
// connecting is closed by connectBastion when it is done.
func (d *Dialer) releaseBastion(b *bastion) {
	d.bmu.Lock()
	b.refs--
	last := b.refs == 0
	if last && d.bastions[b.key] == b {
		delete(d.bastions, b.key)
	}
	connected := false
	select {
	case <-b.ready:
		connected = true
	default:
	}
	d.bmu.Unlock()
	if last && connected {
		b.close(d)
	}
}

// close closes b's connection, waits for its goroutines and releases the hop before it.
func (b *bastion) close(d *Dialer) {
	if b.c != nil {
		b.c.Close()
		b.drains.Wait()
	}
	if b.via != nil {
		d.releaseBastion(b.via)
	}
}

// connectThrough connects h through via (nil for directly), holding one of through's slots
// for new connections while it does.
func (d *Dialer) connectThrough(ctx context.Context, through *bastion, h *HostConfig, via *ssh.Client, wg *sync.WaitGroup) (*ssh.Client, error) {
	if through != nil {
		select {
		case through.sem <- struct{}{}:
			defer func() { <-through.sem }()
		case <-ctx.Done():
			return nil, &Error{Host: h.Alias, Op: "waiting for a slot on the jump connection", Class: ErrTimeout, Err: ctx.Err()}
		}
	}
	return d.connect(ctx, h, via, wg)
}
