package ssh

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shoal-sh/shoal/internal/install"
	"github.com/shoal-sh/shoal/internal/transport"
)

// TestUploadCmd checks that the upload is compressed when the host has gzip, and sent as it is
// otherwise or when the binary cannot be compressed.
func TestUploadCmd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "shoal")
	if err := os.WriteFile(p, bytes.Repeat([]byte("#!/bin/sh\n"), 1000), 0o755); err != nil {
		t.Fatal(err)
	}
	src := &install.Source{Self: p, HashCacheDir: "-"}
	bin, err := src.For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	tg := transport.Target{Name: "h"}
	cmd, body := uploadCmd(src, tg, bin, true)
	if body == nil || len(body) >= int(bin.Size) || !strings.Contains(cmd, "gzip -dc") {
		t.Errorf("host with gzip: %d of %d bytes, command %q; want a compressed upload", len(body), bin.Size, cmd)
	}
	if cmd, body := uploadCmd(src, tg, bin, false); body != nil || strings.Contains(cmd, "gzip") {
		t.Errorf("host without gzip: body %d bytes, command %q; want the raw upload", len(body), cmd)
	}
	if _, body := uploadCmd(&install.Source{NoGzip: true}, tg, bin, true); body != nil {
		t.Errorf("Source.NoGzip: upload compressed")
	}
	// A binary that changed since it was hashed cannot be compressed: the raw upload is used, and
	// the agent's hello then reports the hash it really has.
	other := bin
	other.Hash = strings.Repeat("0", 64)
	if _, body := uploadCmd(src, tg, other, true); body != nil {
		t.Errorf("unverifiable binary compressed")
	}
}
