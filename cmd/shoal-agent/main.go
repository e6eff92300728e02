// Command shoal-agent is the agent-only build of shoal: `shoal agent` without the console, the
// daemon, SSH or TLS, a third of the size. Release builds carry it inside the shoal binary
// (scripts/build, scripts/release; README.md), and the installer uploads it to hosts instead of all of shoal.
//
// It takes the same arguments as `shoal agent`, with or without the word "agent" first.
package main

import (
	"os"
	"runtime/debug"

	"github.com/shoal-sh/shoal/internal/agent"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3", like shoal's own.
var version = "dev"

func main() {
	if bi, ok := debug.ReadBuildInfo(); ok && version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version // go install ...@v1.2.3
	}
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	os.Exit(agent.Main(args, os.Stdin, os.Stdout, os.Stderr, version))
}
