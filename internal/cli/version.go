package cli

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/shoal-sh/shoal/internal/install"
)

// writeVersion writes what `shoal version` says: the version, the commit it was built from,
// the Go toolchain, and whether the binary carries the agent-only build hosts receive.
func writeVersion(w io.Writer) {
	fmt.Fprintf(w, "shoal %s\n", Version)
	commit, when, dirty := Commit, "", false
	if bi, ok := debug.ReadBuildInfo(); ok && commit == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	if dirty {
		commit += " (with uncommitted changes)"
	}
	if when != "" {
		commit += " of " + when
	}
	fmt.Fprintf(w, "commit: %s\n", commit)
	fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	agent := "not embedded: hosts receive this whole binary (scripts/build embeds the agent-only build)"
	if exe, err := os.Executable(); err != nil {
		agent = "unknown: " + err.Error()
	} else if e, ok, err := install.ReadEmbedded(exe); err != nil {
		agent = "unreadable: " + err.Error()
	} else if ok {
		agent = fmt.Sprintf("embedded, %d bytes, sha256 %s", e.Size, e.Hash)
	}
	fmt.Fprintf(w, "agent: %s\n", agent)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version, and whether the agent is embedded",
		Args:  argsUsage(cobra.NoArgs),
		Run:   func(*cobra.Command, []string) { writeVersion(g.stdout) },
	}
}
