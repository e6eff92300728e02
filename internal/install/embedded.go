package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoal-sh/shoal/internal/fsutil"
)

// A shoal executable may carry the agent-only build of itself (cmd/shoal-agent, a third of its
// size) appended after its own bytes, followed by a fixed-size trailer:
//
//	[shoal executable][agent: size bytes][size: 8 bytes big-endian][SHA-256 of the agent: 32 bytes][trailerMagic: 16 bytes]
//
// The system's loader ignores bytes past what the executable's headers describe, so the file
// runs as before. scripts/release and the test harness append the agent with AppendAgent; a
// plain `go build` has no trailer, and the installer then uploads the whole executable.
const trailerMagic = "\x00shoal-agent-v1\n"

// trailerSize is the length of the trailer at the end of an executable that carries an agent.
const trailerSize = 8 + sha256.Size + len(trailerMagic)

// Embedded is the agent carried inside an executable.
type Embedded struct {
	Offset int64  // where the agent starts in the executable
	Size   int64  // its length
	Hash   string // its hex SHA-256, as the trailer states it
}

// ReadEmbedded returns the agent carried inside the executable at path; ok is false when the
// file has no trailer. A trailer that does not fit the file is an error.
func ReadEmbedded(path string) (e Embedded, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return Embedded{}, false, fmt.Errorf("reading agent binary: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Embedded{}, false, fmt.Errorf("reading agent binary: %w", err)
	}
	if st.Size() < int64(trailerSize) {
		return Embedded{}, false, nil
	}
	var tr [trailerSize]byte
	if _, err := f.ReadAt(tr[:], st.Size()-int64(trailerSize)); err != nil {
		return Embedded{}, false, fmt.Errorf("reading the trailer of %s: %w", path, err)
	}
	if string(tr[8+sha256.Size:]) != trailerMagic {
		return Embedded{}, false, nil
	}
	size := binary.BigEndian.Uint64(tr[:8])
	if size == 0 || size > uint64(st.Size()-int64(trailerSize)) {
		return Embedded{}, false, fmt.Errorf("%s: its trailer says it carries a %d-byte agent, which does not fit the %d-byte file", path, size, st.Size())
	}
	return Embedded{
		Offset: st.Size() - int64(trailerSize) - int64(size),
		Size:   int64(size),
		Hash:   hex.EncodeToString(tr[8 : 8+sha256.Size]),
	}, true, nil
}

// AppendAgent appends the agent binary at agentPath, and the trailer that finds it, to the
// executable at exe (build tooling: scripts/release, the test harness). An exe that already
// carries an agent is an error: strip it by building again.
func AppendAgent(exe, agentPath string) error {
	if _, ok, err := ReadEmbedded(exe); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("appending the agent to %s: it already carries one", exe)
	}
	agent, err := os.ReadFile(agentPath)
	if err != nil {
		return fmt.Errorf("appending the agent: %w", err)
	}
	if len(agent) == 0 {
		return fmt.Errorf("appending the agent: %s is empty", agentPath)
	}
	if _, ok, _ := ReadEmbedded(agentPath); ok {
		return fmt.Errorf("appending the agent: %s is a shoal executable carrying an agent, not the agent-only build", agentPath)
	}
	sum := sha256.Sum256(agent)
	var tr bytes.Buffer
	tr.Grow(trailerSize)
	binary.Write(&tr, binary.BigEndian, uint64(len(agent)))
	tr.Write(sum[:])
	tr.WriteString(trailerMagic)
	f, err := os.OpenFile(exe, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("appending the agent: %w", err)
	}
	_, err = f.Write(append(agent, tr.Bytes()...))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("appending the agent to %s: %w", exe, err)
	}
	return nil
}

// errNoCacheDir says there is nowhere to unpack an embedded agent (HashCacheDir "-").
var errNoCacheDir = errors.New("no cache directory")

// unpack returns the agent that the executable at exe carries, as a file of its own in the
// cache directory (<cache>/agents/agent-<hash>), writing that file when it is missing or wrong.
// The bytes are checked against the trailer's hash before they are used.
func (s *Source) unpack(exe string, e Embedded, goos, goarch string) (Binary, error) {
	dir := s.cacheDir()
	if dir == "" {
		return Binary{}, errNoCacheDir
	}
	dir = filepath.Join(dir, "agents")
	p := filepath.Join(dir, "agent-"+e.Hash[:16])
	hc := s.hashCachePath(p)
	if h, n, err := fsutil.CachedHash(p, hc); err == nil && h == e.Hash {
		return Binary{Path: p, Hash: h, Size: n, OS: goos, Arch: goarch}, nil
	}
	f, err := os.Open(exe)
	if err != nil {
		return Binary{}, fmt.Errorf("unpacking the agent: %w", err)
	}
	defer f.Close()
	data := make([]byte, e.Size)
	if _, err := f.ReadAt(data, e.Offset); err != nil {
		return Binary{}, fmt.Errorf("unpacking the agent from %s: %w", exe, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != e.Hash {
		return Binary{}, fmt.Errorf("unpacking the agent from %s: its bytes do not match the hash in its trailer (a damaged file?)", exe)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Binary{}, fmt.Errorf("unpacking the agent: %w", err)
	}
	// A cache: a crash may lose the file, and the hash check above catches a torn one.
	if err := fsutil.ReplaceFile(p, data, 0o755); err != nil {
		return Binary{}, fmt.Errorf("unpacking the agent: %w", err)
	}
	if hc != "" {
		fsutil.RecordHash(p, hc, e.Hash) // best effort: the next process hashes it once more
	}
	pruneCache(dir, p, "", unpackedKeep)
	return Binary{Path: p, Hash: e.Hash, Size: e.Size, OS: goos, Arch: goarch}, nil
}

// unpackedKeep is how many unpacked agents the cache keeps: two versions of every platform, so
// an old daemon and a new client sharing the cache do not remove each other's.
var unpackedKeep = 2 * len(Platforms)
