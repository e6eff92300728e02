package fsutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// hashCacheVersion starts every hash cache file, so a format change invalidates old ones.
const hashCacheVersion = "shoal-sha256-v1"

// racyWindow is how old a file's change time must be before its hash is cached.
var racyWindow = time.Second

// fileID is what identifies one version of a file's content without reading it.
type fileID struct {
	dev, ino, size, mtime, ctime int64
}

func statID(st *unix.Stat_t) fileID {
	return fileID{
		dev:   int64(st.Dev), // Dev is int32 on darwin
		ino:   int64(st.Ino),
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
	}
}

func (id fileID) String() string {
	return fmt.Sprintf("%d %d %d %d %d", id.dev, id.ino, id.size, id.mtime, id.ctime)
}

// CachedHash returns the hex SHA-256 and the size of the file at path, reusing the hash stored
// in the file cache when it was taken of the same file: same device, inode, size, modification
// time and change time, all to the nanosecond. Otherwise it hashes the file and rewrites cache
// atomically with mode 0600 (creating its directory with mode 0700); an empty cache, or one that cannot be written, only costs the
// hashing. The change time cannot be set back by a user (utimes sets it to now), so a binary
// modified in place, or replaced, never matches a stale cache entry: callers that check the
// hash against an expected value (the daemon's check of the agent's hello) still catch
// tampering. A user who can write cache can also write the file itself, so the cache must live
// where only that user writes (a 0700 directory). A file changed less than a second ago is
// hashed but not cached.
func CachedHash(path, cache string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	id := statID(&st)
	if cache != "" {
		if h, ok := readHashCache(cache, id); ok {
			return h, id.size, nil
		}
	}
	hs := sha256.New()
	n, err := io.Copy(hs, f)
	if err != nil {
		return "", 0, fmt.Errorf("hashing %s: %w", path, err)
	}
	h := hex.EncodeToString(hs.Sum(nil))
	if cache == "" || n != id.size {
		return h, n, nil
	}
	// Store only when the file did not change while it was read, and its change time is old
	// enough that a later change cannot carry the same timestamp (the kernel stamps with a
	// clock that advances in ticks of up to 10 ms).
	var after unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &after)
	if err == nil && statID(&after) == id && time.Now().UnixNano()-id.ctime > int64(racyWindow) {
		// Best effort: a cache that cannot be written only costs the next caller a hash.
		if os.MkdirAll(filepath.Dir(cache), 0o700) == nil {
			ReplaceFile(cache, []byte(hashCacheVersion+" "+id.String()+" "+h+"\n"), 0o600)
		}
	}
	return h, n, nil
}

// readHashCache returns the hash stored in cache when it was taken of the file identified by id.
func readHashCache(cache string, id fileID) (string, bool) {
	b, err := os.ReadFile(cache)
	if err != nil || len(b) > 512 {
		return "", false
	}
	f := strings.Fields(string(b))
	if len(f) != 7 || f[0] != hashCacheVersion {
		return "", false
	}
	var got [5]int64
	for i := range got {
		v, err := strconv.ParseInt(f[1+i], 10, 64)
		if err != nil {
			return "", false
		}
		got[i] = v
	}
	if (fileID{got[0], got[1], got[2], got[3], got[4]}) != id {
		return "", false
	}
	h := f[6]
	if len(h) != 2*sha256.Size {
		return "", false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", false
	}
	return h, true
}

// RecordHash stores in cache that the file at path, as it is now, has the hex SHA-256 hash,
// without reading the file: for a caller that knows the content because it has just written it
// (an agent started by its installer, which passes the hash it uploaded). The entry is keyed by
// the file's identity like CachedHash's, so any later change to the file makes it stale. Unlike
// CachedHash it stores even when the change time is recent: the caller vouches for the content.
func RecordHash(path, cache, hash string) error {
	if len(hash) != 2*sha256.Size {
		return fmt.Errorf("recording hash of %s: %q is not a SHA-256", path, hash)
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return fmt.Errorf("recording hash of %s: %q is not a SHA-256", path, hash)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("recording hash of %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o700); err != nil {
		return fmt.Errorf("recording hash of %s: %w", path, err)
	}
	return ReplaceFile(cache, []byte(hashCacheVersion+" "+statID(&st).String()+" "+hash+"\n"), 0o600)
}
