package ssh_test

import (
	"testing"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/ssh"
)

func TestMain(m *testing.M) { shoaltest.Main(m) }

func TestConformance(t *testing.T) {
	shoaltest.TransportSuite(t, func(t *testing.T, e shoaltest.SuiteEnv) transport.Transport {
		return ssh.New(ssh.Options{
			Dialer: &sshx.Dialer{ConfigFile: e.SSHConfig, AgentSocket: "none"},
			Source: e.Source,
		})
	})
}
