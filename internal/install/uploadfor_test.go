package install

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestUploadFor checks the choice between a compressed and a raw upload: by the host's gzip,
// the mode, and whether the binary can be compressed at all.
func TestUploadFor(t *testing.T) {
	p := filepath.Join(t.TempDir(), "shoal")
	if err := os.WriteFile(p, bytes.Repeat([]byte("#!/bin/sh\n"), 1000), 0o755); err != nil {
		t.Fatal(err)
	}
	src := &Source{Self: p, HashCacheDir: "-"}
	bin, err := src.For(runtime.GOOS, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	compressed := func(cmd string, body []byte) bool {
		if body == nil {
			return strings.Contains(cmd, "gzip")
		}
		if len(body) >= int(bin.Size) || !strings.Contains(cmd, "gzip -dc") {
			t.Fatalf("compressed upload of %d bytes for %d, command %q", len(body), bin.Size, cmd)
		}
		return true
	}
	for _, tc := range []struct {
		mode     string
		hostGzip bool
		want     bool
	}{
		{"", true, true},
		{"", false, false},
		{CompressAuto, true, true},
		{CompressGzip, true, true},
		{CompressGzip, false, false},
		{CompressNone, true, false},
	} {
		s := &Source{Self: p, HashCacheDir: "-", Compression: tc.mode}
		if got := compressed(s.UploadFor("", bin, tc.hostGzip, nil)); got != tc.want {
			t.Errorf("mode %q, host gzip %v: compressed %v; want %v", tc.mode, tc.hostGzip, got, tc.want)
		}
	}
	if _, body := (&Source{NoGzip: true}).UploadFor("", bin, true, nil); body != nil {
		t.Errorf("Source.NoGzip: upload compressed")
	}
	// A binary that changed since it was hashed cannot be compressed: the raw upload is used, and
	// the agent's hello then reports the hash it really has.
	other := bin
	other.Hash = strings.Repeat("0", 64)
	if _, body := src.UploadFor("", other, true, nil); body != nil {
		t.Errorf("unverifiable binary compressed")
	}
}
