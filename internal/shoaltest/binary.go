// Package shoaltest is the test harness: the shoal binary built once per test run,
// a real sshd fleet on loopback, and agents over pipes. Only tests import it.
package shoaltest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shoal-sh/shoal/internal/install"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Main runs the tests of a package that uses Binary and removes the built binary afterwards.
// Call it from TestMain: func TestMain(m *testing.M) { shoaltest.Main(m) }.
// It also stops race-built children from sleeping a second at exit (GORACE atexit_sleep_ms=0),
// and points XDG_CACHE_HOME at a temporary directory, so hash and upload caches written by the
// code under test never land in the user's home. Go's own build cache, which lives under
// XDG_CACHE_HOME by default, is pinned first to where it was, so Binary links from the warm
// cache (about a second) instead of rebuilding the whole tree in every test process.
func Main(m *testing.M) {
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	pinGoCache()
	cache, err := os.MkdirTemp("", "shoal-cache-")
	if err == nil {
		os.Setenv("XDG_CACHE_HOME", cache)
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if cache != "" {
		os.RemoveAll(cache)
	}
	os.Exit(code)
}

// pinGoCache sets GOCACHE to the build cache the go command would use now, before
// XDG_CACHE_HOME moves: go env's rule is $GOCACHE, else the user cache dir's go-build.
func pinGoCache() {
	if os.Getenv("GOCACHE") != "" {
		return
	}
	if dir, err := os.UserCacheDir(); err == nil {
		os.Setenv("GOCACHE", filepath.Join(dir, "go-build"))
	}
}

// Binary returns the path of the shoal binary, built once per test process with -race
// when the tests run with it. Like a release build (scripts/build) it carries the agent-only
// build (cmd/shoal-agent), which the installer uploads to hosts. The package's TestMain must
// call Main so it is removed.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "shoal-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "shoal")
		agentPath := filepath.Join(buildDir, "shoal-agent")
		if buildErr = goBuild(agentPath, "github.com/shoal-sh/shoal/cmd/shoal-agent"); buildErr != nil {
			return
		}
		if buildErr = goBuild(buildPath, "github.com/shoal-sh/shoal/cmd/shoal"); buildErr != nil {
			return
		}
		buildErr = install.AppendAgent(buildPath, agentPath)
	})
	if buildErr != nil {
		t.Fatalf("building shoal: %v", buildErr)
	}
	return buildPath
}

// goBuild builds pkg into out, with -race when the tests run with it.
func goBuild(out, pkg string) error {
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool(), append(args, pkg)...)
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// goTool finds the go command: on PATH, else where the official tarball puts it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// Race reports whether the tests, and so the binary Binary builds, run under the race detector,
// whose runtime keeps memory of its own outside the Go heap (and makes RSS a poor leak measure).
const Race = raceEnabled
