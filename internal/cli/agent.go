package cli

import (
	"github.com/spf13/cobra"

	"github.com/shoal-sh/shoal/internal/agent"
)

// newAgentCmd builds `shoal agent`: the remote half, speaking frames on stdin and stdout. Its
// flags are agent.Main's own, shared with the agent-only build (cmd/shoal-agent) that the
// installer uploads; Main calls agent.Main directly when the first argument is "agent".
func newAgentCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:                "agent",
		Short:              "Run the agent: requests on stdin, responses on stdout (started by the daemon)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := agent.Main(args, g.stdin, g.stdout, g.stderr, Version); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}
