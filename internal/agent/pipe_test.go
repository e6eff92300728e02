package agent_test

import (
	"testing"

	"github.com/shoal-sh/shoal/internal/agent"
	"github.com/shoal-sh/shoal/internal/shoaltest"
)

func startPipeRaw(t *testing.T) *shoaltest.AgentPipe {
	return shoaltest.StartAgent(t, agent.Options{})
}
