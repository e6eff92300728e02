package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// zstdFile compresses bin with zstd at its best level (made once and kept: the hosts pay for the
// bytes, and decompressing costs them the same at any level), checking the bytes read against
// bin.Hash.
func zstdFile(bin Binary) ([]byte, error) {
	f, err := os.Open(bin.Path)
	if err != nil {
		return nil, fmt.Errorf("compressing agent binary: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	buf.Grow(int(bin.Size / 2))
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("compressing agent binary: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(zw, io.TeeReader(f, h))
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("compressing agent binary %s: %w", bin.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != bin.Size || got != bin.Hash {
		return nil, fmt.Errorf("compressing agent binary %s: it changed since it was hashed", bin.Path)
	}
	return buf.Bytes(), nil
}

// zstdMatches reports whether the zstd stream b decompresses to bin: at most bin.Size bytes
// whose SHA-256 is bin.Hash.
func zstdMatches(b []byte, bin Binary) bool {
	zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(bin.Size)+64<<20))
	if err != nil {
		return false
	}
	defer zr.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(zr, bin.Size+1))
	return err == nil && n == bin.Size && hex.EncodeToString(h.Sum(nil)) == bin.Hash
}
