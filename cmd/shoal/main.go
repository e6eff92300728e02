// Command shoal runs shell commands on many machines at once.
//
// One binary plays every role: the console (shoal), the resident daemon
// (shoal daemon) and the remote agent (shoal agent). See README.md.
package main

import (
	"os"

	"github.com/shoal-sh/shoal/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
