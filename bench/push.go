package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// pushDest is where scenario 5 writes the file on every host (each host's /root is its own).
const pushDest = "/root/push.bin"

// makePushFile writes mb MB of random bytes to WORK/push.bin and returns its path and SHA-256.
func makePushFile(work string, mb int) (string, string, error) {
	p := filepath.Join(work, "push.bin")
	f, err := os.Create(p)
	if err != nil {
		return "", "", fmt.Errorf("creating push file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, int64(mb)<<20); err != nil {
		return "", "", fmt.Errorf("writing push file: %w", err)
	}
	return p, hex.EncodeToString(h.Sum(nil)), f.Close()
}

// clearPush removes the pushed file from hosts 1..n.
func (k *kit) clearPush(n int) error {
	for i := 1; i <= n; i++ {
		if err := os.Remove(filepath.Join(k.fl.homeDir(i), "push.bin")); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// checkPush verifies that hosts 1..n all hold an exact copy of src. It compares sizes and
// 16 spread 64 KiB blocks on every host, and the full SHA-256 on the first and last host.
func (k *kit) checkPush(n int, src, sum string) error {
	want, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		p := filepath.Join(k.fl.homeDir(i), "push.bin")
		if i == 1 || i == n {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("%s: %w", hostName(i), err)
			}
			h := sha256.Sum256(b)
			if hex.EncodeToString(h[:]) != sum {
				return fmt.Errorf("%s: pushed file differs (sha256)", hostName(i))
			}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("%s: %w", hostName(i), err)
		}
		st, _ := f.Stat()
		if st.Size() != int64(len(want)) {
			f.Close()
			return fmt.Errorf("%s: pushed file has %d bytes, want %d", hostName(i), st.Size(), len(want))
		}
		blk := make([]byte, 64<<10)
		for j := 0; j < 16; j++ {
			off := int64(j) * (int64(len(want)) - int64(len(blk))) / 15
			if _, err := f.ReadAt(blk, off); err != nil || !bytes.Equal(blk, want[off:off+int64(len(blk))]) {
				f.Close()
				return fmt.Errorf("%s: pushed file differs at offset %d", hostName(i), off)
			}
		}
		f.Close()
	}
	return nil
}

// pushers returns the peers' ways of pushing src to every host.
func (k *kit) pushers(src, sum string) []*tool {
	check := func(_ []byte, n int) error { return k.checkPush(n, src, sum) }
	clear := func(n int) error { return k.clearPush(n) }
	return []*tool{
		{name: "pdcp", peer: true, before: clear, check: check, cmd: func(n, _ int) invocation {
			return invocation{argv: []string{"pdcp", "-R", "ssh", "-f", fmt.Sprint(n), "-w", hostRange(n), src, pushDest},
				env: []string{"PDSH_SSH_ARGS_APPEND=-F " + k.fl.sshConfig, "SSH_AUTH_SOCK="}}
		}},
		{name: "clush-copy", peer: true, before: clear, check: check, cmd: func(n, _ int) invocation {
			return invocation{argv: []string{"clush", "-f", fmt.Sprint(n), "-w", hostRange(n), "-o", "-F " + k.fl.sshConfig,
				"--copy", src, "--dest", filepath.Dir(pushDest) + "/"}, env: []string{"SSH_AUTH_SOCK="}}
		}},
		{name: "pscp", peer: true, before: clear, check: check, cmd: func(n, _ int) invocation {
			return invocation{argv: []string{"parallel-scp", "-h", k.hostsFile(n), "-p", fmt.Sprint(n), "-t", "0",
				"-x", "-F " + k.fl.sshConfig, src, pushDest}, env: []string{"SSH_AUTH_SOCK="}}
		}},
	}
}
