package sshx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys caches parsed known_hosts files, reloading them when one changes on disk, so that
// thousands of connects parse the files once.
type hostKeys struct {
	// mu protects the following.
	mu    sync.Mutex
	cache map[string]*hostKeyDB // keyed by the file list joined with NUL
}

type hostKeyDB struct {
	db    *knownhosts.HostKeyDB
	stamp string // sizes and mtimes of the files when parsed
}

// stampOf returns a string that changes when any of files changes, and the files that exist.
func stampOf(files []string) (string, []string) {
	var b strings.Builder
	var exist []string
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			b.WriteString("-;")
			continue
		}
		exist = append(exist, f)
		fmt.Fprintf(&b, "%d.%d;", st.Size(), st.ModTime().UnixNano())
	}
	return b.String(), exist
}

// db returns the parsed database of files, reparsing when they changed.
func (hk *hostKeys) db(files []string) (*knownhosts.HostKeyDB, error) {
	key := strings.Join(files, "\x00")
	stamp, exist := stampOf(files)
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if e := hk.cache[key]; e != nil && e.stamp == stamp {
		return e.db, nil
	}
	db, err := knownhosts.NewDB(exist...)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts: %w", err)
	}
	if hk.cache == nil {
		hk.cache = map[string]*hostKeyDB{}
	}
	hk.cache[key] = &hostKeyDB{db: db, stamp: stamp}
	return db, nil
}

// appendKey adds a line for hostport to file, creating it (and its directory, 0700) when missing.
func (hk *hostKeys) appendKey(file, hostport string, remote net.Addr, key ssh.PublicKey, hashed bool) error {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("adding host key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("adding host key: %w", err)
	}
	if hashed {
		_, err = fmt.Fprintln(f, knownhosts.Line([]string{xknownhosts.HashHostname(knownhosts.Normalize(hostport))}, key))
	} else if remote == nil {
		_, err = fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key))
	} else {
		err = knownhosts.WriteKnownHost(f, hostport, remote, key)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("adding host key to %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("adding host key to %s: %w", file, err)
	}
	// Make sure the next lookup reparses even if the mtime did not move.
	for k, e := range hk.cache {
		if strings.Contains(k, file) {
			e.stamp = ""
		}
	}
	return nil
}

// callback returns the host key callback for h and the key algorithms to offer, most preferred
// first. Keys are looked up in UserKnownHostsFiles then GlobalKnownHostsFiles, under
// HostKeyAlias when set, as ssh does. It never accepts a changed key; it adds an unknown one,
// to the first user file, only under accept-new.
func (hk *hostKeys) callback(h *HostConfig) (ssh.HostKeyCallback, []string, error) {
	files := slices.Concat(h.UserKnownHostsFiles, h.GlobalKnownHostsFiles)
	db, err := hk.db(files)
	if err != nil {
		return nil, nil, err
	}
	hostport := h.Addr()
	if h.HostKeyAlias != "" {
		// ssh records and looks up the alias alone, without the port.
		hostport = joinHostPort(h.HostKeyAlias, 22)
	}
	inner := db.HostKeyCallback()
	cb := func(_ string, remote net.Addr, key ssh.PublicKey) error {
		hostname := hostport
		if _, ok := remote.(*net.TCPAddr); !ok {
			// A ProxyCommand's pipe: the name is all there is to check.
			remote = &net.TCPAddr{IP: net.IPv4zero}
		}
		err := inner(hostname, remote, key)
		if err == nil {
			return nil
		}
		var ke *xknownhosts.KeyError
		if !errors.As(err, &ke) {
			return fmt.Errorf("checking host key of %s: %w", hostname, err)
		}
		he := &HostKeyError{Host: hostname, Fingerprint: ssh.FingerprintSHA256(key), KeyType: key.Type()}
		if len(ke.Want) > 0 {
			he.Changed = true
			he.File, he.Line = ke.Want[0].Filename, ke.Want[0].Line
			return he
		}
		if len(h.UserKnownHostsFiles) > 0 {
			he.File = h.UserKnownHostsFiles[0]
		}
		if h.StrictHostKeyChecking != "accept-new" || he.File == "" {
			return he
		}
		if h.HostKeyAlias != "" || remote.(*net.TCPAddr).IP.IsUnspecified() {
			remote = nil // record the name alone
		}
		return hk.appendKey(he.File, hostname, remote, key, h.HashKnownHosts)
	}
	return cb, db.HostKeyAlgorithms(hostport), nil
}
