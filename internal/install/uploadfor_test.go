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
	// format returns how an upload travels: "raw", "gzip" or "zstd".
	format := func(cmd string, body []byte) string {
		if body == nil {
			if strings.Contains(cmd, "gzip") || strings.Contains(cmd, "zstd") {
				t.Fatalf("raw upload with command %q", cmd)
			}
			return "raw"
		}
		if len(body) >= int(bin.Size) {
			t.Fatalf("compressed upload of %d bytes for %d, command %q", len(body), bin.Size, cmd)
		}
		switch {
		case strings.Contains(cmd, "| gzip -dc"):
			return "gzip"
		case strings.Contains(cmd, "| zstd -dcq"):
			return "zstd"
		}
		t.Fatalf("compressed upload with command %q", cmd)
		return ""
	}
	gz, zst, both := Marker{Gzip: true}, Marker{Zstd: true}, Marker{Gzip: true, Zstd: true}
	for _, tc := range []struct {
		mode string
		host Marker
		want string
	}{
		{"", both, "zstd"},
		{"", gz, "gzip"},
		{"", zst, "zstd"},
		{"", Marker{}, "raw"},
		{CompressAuto, both, "zstd"},
		{CompressGzip, both, "gzip"},
		{CompressGzip, zst, "raw"},
		{CompressZstd, both, "zstd"},
		{CompressZstd, gz, "raw"},
		{CompressNone, both, "raw"},
	} {
		s := &Source{Self: p, HashCacheDir: "-", Compression: tc.mode}
		if got := format(s.UploadFor("", bin, tc.host, nil)); got != tc.want {
			t.Errorf("mode %q, host %+v: %s upload; want %s", tc.mode, tc.host, got, tc.want)
		}
	}
	// A binary that changed since it was hashed cannot be compressed: the raw upload is used, and
	// the agent's hello then reports the hash it really has.
	other := bin
	other.Hash = strings.Repeat("0", 64)
	if _, body := src.UploadFor("", other, both, nil); body != nil {
		t.Errorf("unverifiable binary compressed")
	}
}
