package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// passwordServer is an in-process SSH server on loopback that lets in only who knows the
// password, by the password method or, with kbd, by keyboard-interactive. It returns its port
// and host key; it stops with the test.
func passwordServer(t *testing.T, password string, kbd bool) (int, ssh.PublicKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ServerConfig{}
	if kbd {
		cfg.KeyboardInteractiveCallback = func(c ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			a, err := ask("", "", []string{"Password: "}, []bool{false})
			if err != nil || len(a) != 1 || a[0] != password {
				return nil, errors.New("wrong answer")
			}
			return nil, nil
		}
	} else {
		cfg.PasswordCallback = func(c ssh.ConnMetadata, p []byte) (*ssh.Permissions, error) {
			if string(p) != password {
				return nil, errors.New("wrong password")
			}
			return nil, nil
		}
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no channels here")
				}
				sc.Close()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, signer.PublicKey()
}

// TestPasswordAskedOnce logs in to many hosts that want the same password, by password and by
// keyboard-interactive: each question is asked once and its answer reused.
func TestPasswordAskedOnce(t *testing.T) {
	for _, kbd := range []bool{false, true} {
		t.Run(map[bool]string{false: "password", true: "keyboard-interactive"}[kbd], func(t *testing.T) {
			port, key := passwordServer(t, "sesame", kbd)
			dir := t.TempDir()
			kh := filepath.Join(dir, "known_hosts")
			os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize("127.0.0.1:" + strconv.Itoa(port))}, key)+"\n"), 0o600)
			cfg := filepath.Join(dir, "config")
			os.WriteFile(cfg, []byte(fmt.Sprintf("Host pw*\n  HostName 127.0.0.1\n  Port %d\n  User ann\n  UserKnownHostsFile %s\n"+
				"  IdentityFile /nonexistent\n  StrictHostKeyChecking yes\n", port, kh)), 0o600)
			var asked atomic.Int32
			d := &Dialer{ConfigFile: cfg, AgentSocket: "none", Prompt: func(q string) ([]byte, error) {
				asked.Add(1)
				return []byte("sesame"), nil
			}}
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := d.Dial(t.Context(), fmt.Sprintf("pw%d", i), Override{})
					if err == nil {
						c.Close()
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if n := asked.Load(); n != 1 {
				t.Errorf("asked %d times; want once", n)
			}
			// BatchMode never asks.
			os.WriteFile(cfg, []byte(fmt.Sprintf("Host pw*\n  HostName 127.0.0.1\n  Port %d\n  User bob\n  UserKnownHostsFile %s\n"+
				"  IdentityFile /nonexistent\n  BatchMode yes\n", port, kh)), 0o600)
			if c, err := d.Dial(t.Context(), "pw1", Override{}); !errors.Is(err, ErrAuth) {
				if c != nil {
					c.Close()
				}
				t.Errorf("BatchMode: got %v; want an auth failure", err)
			}
		})
	}
}

func TestAskpassPrompt(t *testing.T) {
	prog := filepath.Join(t.TempDir(), "askpass")
	os.WriteFile(prog, []byte("#!/bin/sh\necho \"answer to $1\"\necho second line\n"), 0o700)
	got, err := AskpassPrompt(prog)("Password for ann: ")
	if err != nil || string(got) != "answer to Password for ann: " {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := AskpassPrompt("/bin/false")("x"); err == nil {
		t.Errorf("a failing askpass program gave an answer")
	}
}
