package agent

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-sh/shoal/internal/fsutil"
)

// InstalledHashEnv names the environment variable through which the installer passes the SHA-256
// of the agent binary it has just uploaded and started (internal/install), so that the agent's
// first start does not read its whole binary to report a hash the installer already knows.
const InstalledHashEnv = "SHOAL_AGENT_HASH"

// hashCachePath is where ExecutableHash and InstalledHash keep the hash of the executable exe.
func hashCachePath(cacheDir, exe string) string {
	return filepath.Join(cacheDir, ".hash-"+filepath.Base(exe))
}

// InstalledHash returns the hash passed in InstalledHashEnv, and removes the variable so the
// commands the agent runs do not inherit it. It accepts the hash only when it is a SHA-256 in
// hex whose first 16 digits name the running executable (agent-<hash16>, the install name), and
// then records it in stateDir's hash cache for the executable's current identity, so later
// agents believe it without reading the binary until the file changes. ok is false otherwise,
// and the caller hashes the executable itself.
//
// This does not weaken the daemon's check of the hash in hello: the installer that sets the
// variable has written the file a moment before, in a directory of mode 0700, from bytes whose
// size it checked and whose integrity SSH guarantees; a binary changed later has a new identity.
func InstalledHash(stateDir string) (hash string, ok bool) {
	h, set := os.LookupEnv(InstalledHashEnv)
	if !set {
		return "", false
	}
	os.Unsetenv(InstalledHashEnv)
	if len(h) != 64 || strings.ToLower(h) != h {
		return "", false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", false
	}
	exe, err := os.Executable()
	if err != nil || filepath.Base(exe) != "agent-"+h[:16] {
		return "", false
	}
	if stateDir != "" {
		fsutil.RecordHash(exe, hashCachePath(stateDir, exe), h) // best effort: else the next agent hashes
	}
	return h, true
}
