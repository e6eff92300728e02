// Command appendagent appends an agent-only build (cmd/shoal-agent) to a shoal executable, so
// the installer uploads that instead of all of shoal (install.AppendAgent). Build tooling only:
//
//	go run ./internal/install/appendagent SHOAL AGENT
package main

import (
	"fmt"
	"os"

	"github.com/shoal-sh/shoal/internal/install"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: appendagent SHOAL AGENT")
		os.Exit(2)
	}
	if err := install.AppendAgent(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "appendagent:", err)
		os.Exit(1)
	}
}
