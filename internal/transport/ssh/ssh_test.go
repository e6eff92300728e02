package ssh_test

import (
	"testing"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/sshx"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/ssh"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { shoaltest.Main(m) }

func TestConformance(t *testing.T) {
	// Registered first, so it runs after the fleet's cleanup: every goroutine must be gone.
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	shoaltest.TransportSuite(t, func(t *testing.T, e shoaltest.SuiteEnv) transport.Transport {
		return ssh.New(ssh.Options{
			Dialer: &sshx.Dialer{ConfigFile: e.SSHConfig, AgentSocket: "none"},
			Source: e.Source,
		})
	})
}
