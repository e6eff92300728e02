package openssh_test

import (
	"os/exec"
	"testing"

	"github.com/shoal-sh/shoal/internal/shoaltest"
	"github.com/shoal-sh/shoal/internal/transport"
	"github.com/shoal-sh/shoal/internal/transport/openssh"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { shoaltest.Main(m) }

func TestConformance(t *testing.T) {
	// Registered first, so it runs after the fleet's cleanup: every goroutine must be gone.
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh binary")
	}
	shoaltest.TransportSuite(t, func(t *testing.T, e shoaltest.SuiteEnv) transport.Transport {
		return openssh.New(openssh.Options{ConfigFile: e.SSHConfig, Source: e.Source})
	})
}
