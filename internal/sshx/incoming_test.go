package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// pipeServer runs an SSH server on one end of a loopback connection and returns the
// client's connection on the other, and the server's.
func pipeServer(t *testing.T) (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, *ssh.ServerConn) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	scfg := &ssh.ServerConfig{NoClientAuth: true}
	scfg.AddHostKey(signer)
	// A loopback TCP pair, not net.Pipe: both ends write their version line at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	type srv struct {
		c   *ssh.ServerConn
		err error
	}
	done := make(chan srv, 1)
	go func() {
		c, chans, reqs, err := ssh.NewServerConn(sn, scfg)
		if err == nil {
			go ssh.DiscardRequests(reqs)
			go func() {
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no")
				}
			}()
		}
		done <- srv{c, err}
	}()
	cc, chans, reqs, err := ssh.NewClientConn(cn, "pipe", &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	s := <-done
	if s.err != nil {
		t.Fatal(s.err)
	}
	t.Cleanup(func() { s.c.Close(); cc.Close() })
	return cc, chans, reqs, s.c
}

// TestNewClientServesIncoming checks that the one goroutine newClient starts answers
// the server's requests (a keepalive gets its "no"), refuses the channels the server
// opens, and ends when the connection closes.
func TestNewClientServesIncoming(t *testing.T) {
	cc, chans, reqs, srv := pipeServer(t)
	var wg sync.WaitGroup
	cl := newClient(cc, chans, reqs, &wg, "")

	ok, _, err := srv.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || ok {
		t.Errorf("keepalive: ok %v, err %v; want false, nil", ok, err)
	}
	_, _, err = srv.OpenChannel("forwarded-tcpip", nil)
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.UnknownChannelType {
		t.Errorf("server's channel open: %v; want UnknownChannelType", err)
	}
	// The client still works both ways after serving them.
	if _, _, err := cl.SendRequest("ping@test", true, nil); err != nil {
		t.Errorf("client request: %v", err)
	}
	cl.Close()
	wg.Wait() // hangs if the goroutine outlives the connection
}
